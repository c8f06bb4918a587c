"""One rule for every page: a failed warehouse read becomes a message, never a traceback."""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from dashboard import i18n
from dashboard.access.enforce import AccessDenied
from dashboard.i18n import t
from dashboard.warehouse import QueryTimeout, Warehouse, WarehouseBusy


def page_guard(wh: Warehouse, *, catch_all: bool = True, before_stop: Callable[[], None] | None = None):
    """`guarded(fn, *args)` for a page: returns `fn(*args)`, or shows why not and stops the page.

    A busy file says "try again", a time-out says after how long, a missing
    warehouse says how to start the pipeline; with `catch_all`, any other error
    shows its first line. `before_stop` renders what the page can show anyway
    (the Pipeline page's alert history needs no warehouse).
    """

    def guarded(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except WarehouseBusy:
            st.warning(t("busy"))
        except QueryTimeout:
            st.error(t("timeout", s=i18n.fmt_number(wh.app.query_timeout_seconds)))
        except FileNotFoundError:
            st.info(t("no_data"))
        except AccessDenied:
            st.warning(t("no_access"), icon=":material/lock:")
        except Exception as exc:  # noqa: BLE001 - a page must never show a traceback
            if not catch_all:
                raise
            st.error(t("query_failed", msg=str(exc).splitlines()[0]))
        if before_stop is not None:
            before_stop()
        st.stop()

    return guarded
