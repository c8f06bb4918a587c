"""Dictionary: every table and column, what it means, its type, how full it is, example values.

Driven by the warehouse catalog (a table the config has never heard of is
listed too) and labelled from pipeline.toml's descriptions. It also says which
source columns are deliberately absent (personal data) or pseudonymised.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import i18n
from dashboard.i18n import t
from dashboard.warehouse import QueryTimeout, WarehouseBusy, app_warehouse, quote

SAMPLE_ROWS = 2000  # example values come from a sample, not the whole table
EXAMPLES = 3



def first_distinct(values: pd.Series, n: int) -> list:
    """The first n different non-missing values, in the sample's order (stops early: usually within a few rows)."""
    found: list = []
    for v in values:
        if v is None or pd.isna(v) or v in found:
            continue
        found.append(v)
        if len(found) == n:
            break
    return found


wh = app_warehouse()
st.title(t("page_dictionary"))
st.caption(t("dict_intro"))

try:
    catalog = wh.catalog()
except WarehouseBusy:
    st.warning(t("busy"))
    st.stop()
if catalog.empty:
    st.info(t("no_data"))
    st.stop()

for name, info in catalog.tables.items():
    spec = wh.table_spec(name)
    desc = i18n.pick(spec.description) if spec and spec.description else ""
    header = f"{name} — {desc}" if desc else name
    with st.expander(f"{header}  ·  {t('rows_n', n=i18n.fmt_number(info.row_count))}", expanded=False):
        if spec is None:
            st.caption(t("dict_not_in_config"))
        if spec and spec.absent_columns:
            st.markdown(t("dict_absent", cols=", ".join(f"`{c}`" for c in spec.absent_columns)))
        hashed = [c.name for c in spec.columns if c.hash] if spec else []
        if hashed:
            st.markdown(t("dict_hashed", cols=", ".join(f"`{c}`" for c in hashed)))
        try:
            counts = wh.query(
                "SELECT count(*) AS n, " + ", ".join(f"count({quote(c.name)}) AS c{i}" for i, c in enumerate(info.columns))
                + f" FROM {info.qualified}"
            ).iloc[0]
            sample = wh.query(f"SELECT * FROM {info.qualified} USING SAMPLE {SAMPLE_ROWS} ROWS")
        except (WarehouseBusy, QueryTimeout) as exc:
            st.warning(t("busy") if isinstance(exc, WarehouseBusy) else t("timeout", s=wh.app.query_timeout_seconds))
            continue
        total = int(counts["n"])
        rows = []
        for i, c in enumerate(info.columns):
            description = wh.description(name, c.name)
            values = first_distinct(sample[c.name], EXAMPLES) if c.name in sample else []
            rows.append({
                t("dict_column"): c.name,
                t("dict_label"): i18n.column_label(c.name, description),
                t("dict_type"): c.type,
                t("dict_null_share"): f"{(1 - int(counts[f'c{i}']) / total) * 100:.1f}%" if total else "—",
                t("dict_examples"): ", ".join(
                    i18n.value_label(c.name, v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for v in values),
                t("dict_description"): description,
            })
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", placeholder=i18n.EMPTY)
