"""Files people take away: CSV (UTF-8 with BOM), Excel and Parquet — carrying what the screen shows.

The small API the pages use (Explore, Reports, anything that shows a table):

    download_buttons(fetch_table, columns, basename="topups_2026-10-01_2026-10-31",
                     filters_text=["충전 경로: 모바일"], total_rows=12345)

`fetch_table` is a no-argument callable returning a `pyarrow.Table` of the
rows to save, in the order the screen shows them; it runs only when someone
clicks (Streamlit's deferred `data=callable`), and clicking does not rerun
the page (`on_click="ignore"`). `columns` are the table's
`dashboard.tables.ColumnView`s — the same ones the screen was drawn with —
so every file has the screen's headers and words (자동충전, not
auto_charge) in the language shown when the button was drawn. A switch
above the buttons gives analysts the stored codes and column names instead.

- CSV starts with a UTF-8 BOM so that Excel on Windows shows Korean text.
  A CSV has no place for the filters, so the page shows them beside the button.
- Excel gets a header row, column widths, real dates/times (Asia/Seoul wall
  clock), ids without thousands separators and a second sheet listing the
  filters in force. Above Excel's 1,048,576-row sheet limit the page says so
  and offers CSV/Parquet.
- Parquet keeps the column types exactly.

Every file is recorded in the audit trail (dashboard/audit.py) before it is
served: who, what (title, file name), the filters as shown, the format, the
page and the rows in the file. When the row cannot be written the file is
refused, and when the trail cannot be opened at all the buttons are off with
a message — "who downloaded what" stays complete. `audited_button` is the
same for a single ready-made file (the pivot's Excel); no page calls
`st.download_button` directly.

The byte builders (`csv_bytes`, `xlsx_bytes`, `parquet_bytes`) are pure
functions of an Arrow table; `file_bytes` is the whole path a click takes
(labelling included), used by the tests and bench/app.py directly.
"""

from __future__ import annotations

import io
import os
import tempfile
from datetime import datetime
from typing import Callable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import streamlit as st
import xlsxwriter

from dashboard import audit, i18n, tables
from dashboard.access import current_person
from dashboard.access.enforce import acting_as
from dashboard.tables import ColumnView

EXCEL_MAX_ROWS = 1_048_576 - 1  # one sheet, minus the header row
BOM = "\ufeff".encode("utf-8")
MIME_CSV = "text/csv"
MIME_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MIME_PARQUET = "application/vnd.apache.parquet"
_WIDTH_SAMPLE = 500


def _wall_clock(table: pa.Table) -> pa.Table:
    """Time stamps with a zone → Asia/Seoul wall clock without zone (what Excel and people expect)."""
    cols = []
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_timestamp(col.type) and col.type.tz is not None:
            cols.append(pc.local_timestamp(col.cast(pa.timestamp(col.type.unit, "Asia/Seoul"))))
        else:
            cols.append(col)
    return pa.table(cols, names=table.column_names)


def csv_bytes(table: pa.Table) -> bytes:
    """UTF-8 CSV with a BOM and a header row; time stamps as Seoul wall clock."""
    buf = io.BytesIO()
    buf.write(BOM)
    pacsv.write_csv(_wall_clock(table), buf, pacsv.WriteOptions(include_header=True))
    return buf.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _width(values: Sequence[object], header: str) -> float:
    longest = len(header) * 2 if any(ord(ch) > 0x1100 for ch in header) else len(header)
    for v in values:
        text = v if isinstance(v, str) else ("2026-01-01 00:00:00" if isinstance(v, datetime) else str(v))
        n = sum(2 if ord(ch) > 0x1100 else 1 for ch in text)  # Hangul is about two characters wide
        longest = max(longest, n)
    return min(max(longest + 2, 8), 60)


def xlsx_bytes(table: pa.Table, filters_text: Sequence[str] = (), title: str = "",
               kinds: Mapping[str, str] | None = None) -> bytes:
    """An .xlsx: sheet 1 the rows (header, widths, real dates), sheet 2 the filters in force.

    `kinds` (header → dashboard.tables kind) marks the id columns, which get no
    thousands separators (card 7056, not 7,056).

    Raises ValueError above Excel's row limit. Written in constant-memory mode
    (row by row to a temporary file), so a million rows do not need a million
    cell objects in memory.
    """
    if table.num_rows > EXCEL_MAX_ROWS:
        raise ValueError(i18n.t("excel_too_many", n=i18n.fmt_number(table.num_rows)))
    table = _wall_clock(table)
    headers = list(table.column_names)
    kinds = kinds or {}
    fd, tmp = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    try:
        wb = xlsxwriter.Workbook(tmp, {"constant_memory": True, "strings_to_numbers": False,
                                        "strings_to_formulas": False, "strings_to_urls": False,
                                        "default_date_format": "yyyy-mm-dd hh:mm:ss"})
        bold = wb.add_format({"bold": True, "bg_color": "#EEF2F7", "border": 1})
        date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
        time_fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        number_fmt = wb.add_format({"num_format": "#,##0"})
        id_fmt = wb.add_format({"num_format": "0"})
        ws = wb.add_worksheet(i18n.t("sheet_data"))
        columns = [c.to_pylist() for c in table.columns]
        for j, (col, header) in enumerate(zip(table.columns, headers)):
            fmt = None
            if pa.types.is_date(col.type):
                fmt = date_fmt
            elif pa.types.is_timestamp(col.type):
                fmt = time_fmt
            elif kinds.get(header) == "id":
                fmt = id_fmt
            elif pa.types.is_integer(col.type):
                fmt = number_fmt
            ws.set_column(j, j, _width([v for v in columns[j][:_WIDTH_SAMPLE] if v is not None], header), fmt)
        ws.write_row(0, 0, headers, bold)
        ws.freeze_panes(1, 0)
        writers = []
        for col in table.columns:
            if pa.types.is_date(col.type):
                writers.append(lambda r, c, v, w=ws: w.write_datetime(r, c, datetime(v.year, v.month, v.day), date_fmt))
            elif pa.types.is_timestamp(col.type):
                writers.append(lambda r, c, v, w=ws: w.write_datetime(r, c, v, time_fmt))
            elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type):
                writers.append(ws.write_number)
            elif pa.types.is_boolean(col.type):
                writers.append(ws.write_boolean)
            else:
                writers.append(lambda r, c, v, w=ws: w.write_string(r, c, str(v)))
        for i, row in enumerate(zip(*columns), start=1):
            for j, v in enumerate(row):
                if v is not None:
                    writers[j](i, j, v)
        info = wb.add_worksheet(i18n.t("sheet_filters"))
        info.set_column(0, 0, 80)
        info.write(0, 0, i18n.t("filters_in_force"), bold)
        lines = list(filters_text) or [i18n.t("no_filters")]
        for i, line in enumerate(lines, start=1):
            info.write_string(i, 0, line)
        row = len(lines) + 2
        if title:
            info.write_string(row, 0, f"{i18n.t('source_table')}: {title}")
            row += 1
        info.write_string(row, 0, f"{i18n.t('rows_n', n=i18n.fmt_number(table.num_rows))}")
        info.write_string(row + 1, 0, f"{i18n.t('generated_at')}: {datetime.now(i18n.SEOUL):%Y-%m-%d %H:%M:%S} (Asia/Seoul)")
        wb.close()
        with open(tmp, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(tmp)


FORMATS = ("csv", "xlsx", "parquet")
RAW_KEY = "dl_raw"  # the same switch (one key) on every page that offers downloads


def file_bytes(fmt: str, table: pa.Table, columns: Sequence[ColumnView], raw: bool = False,
               filters_text: Sequence[str] = (), title: str = "") -> bytes:
    """The file a click produces: the rows labelled like the screen (or raw), in the given format."""
    out = tables.file_table(table, columns, raw)
    if fmt == "csv":
        return csv_bytes(out)
    if fmt == "xlsx":
        return xlsx_bytes(out, filters_text, title, tables.file_kinds(columns, raw))
    if fmt == "parquet":
        return parquet_bytes(out)
    raise ValueError(fmt)


def _audit_store():
    """The app-state store of the app's config, or None when there is no config to find (the page shows why)."""
    from dashboard.warehouse import ConfigError, get_warehouse  # late: warehouse is heavier than this module

    try:
        return audit.store_of(get_warehouse().config)
    except ConfigError:
        return None


def audited(build: Callable[[], tuple[bytes, int]], target: str, detail: Mapping[str, object]) -> Callable[[], bytes]:
    """A deferred `data=` callable that records the download (rows = the file's rows), then returns the file.

    Who and which page are taken now, while the page draws: the click runs
    outside the page run. Raises (and logs) when the audit row cannot be
    written, so no file leaves without its record.
    """
    person = current_person()
    store = _audit_store()
    detail = {"page": audit.current_page(), **detail}

    def run() -> bytes:
        with acting_as(person):  # the file holds what the person may see, though the click has no page run
            data, rows = build()
        if store is None:
            raise audit.AuditError(i18n.t("audit_failed", msg="no app configuration (PIPELINE_CONFIG)"))
        audit.record(store, person, audit.DOWNLOAD, target, detail, rows=rows)
        return data
    return run


def downloads_blocked() -> str | None:
    """The message to show (and the buttons are off) when the audit trail cannot be written now."""
    store = _audit_store()
    return None if store is None else audit.check_writable(store)


def audited_button(label: str, build: Callable[[], tuple[bytes, int]], file_name: str, mime: str, key: str,
                   target: str, filters_text: Sequence[str] = (), icon: str | None = None) -> None:
    """One download button whose file (built on click by `build` → (bytes, rows)) is audited like the others."""
    blocked = downloads_blocked()
    if blocked:
        st.error(i18n.t("audit_downloads_off", msg=blocked))
    fmt = file_name.rsplit(".", 1)[-1]
    st.download_button(label, data=audited(build, target, {"file": file_name, "format": fmt,
                                                           "filters": list(filters_text)}),
                       file_name=file_name, mime=mime, on_click="ignore", key=key, icon=icon, disabled=bool(blocked))


def download_buttons(
    fetch_table: Callable[[], pa.Table],
    columns: Sequence[ColumnView],
    basename: str,
    filters_text: Sequence[str] = (),
    total_rows: int | None = None,
    max_rows: int | None = None,
    key: str = "dl",
    title: str = "",
    order_note: str | None = None,
    raw_table: Callable[[], tuple[pa.Table, Sequence[ColumnView]]] | None = None,
) -> None:
    """A raw-codes switch and three download buttons (CSV, Excel, Parquet) whose files are built on click.

    `total_rows` (rows matching the filters) decides whether Excel can hold
    them; `max_rows` is the app's download cap (`[app] max_download_rows`),
    which `fetch_table` is expected to apply with its LIMIT. `order_note`
    says how the rows are sorted (the files keep the screen's order).
    `raw_table`, for data that `fetch_table` gives already labelled (question
    results), gives the stored codes and names with their views instead.
    """
    code = i18n.lang()  # the click runs outside the page: build the file in the language shown now
    raw = st.toggle(i18n.t("download_raw"), key=RAW_KEY, help=i18n.t("download_raw_help"))
    suffix = "_raw" if raw else ""

    def build(fmt: str):
        name = f"{basename}{suffix}.{fmt}"

        def run() -> tuple[bytes, int]:
            with i18n.language(code):
                table, views = raw_table() if (raw and raw_table is not None) else (fetch_table(), columns)
                return file_bytes(fmt, table, views, raw, filters_text, title), table.num_rows
        return audited(run, title or basename, {"file": name, "format": fmt, "raw": raw,
                                                "filters": list(filters_text), "title": title})

    blocked = downloads_blocked()
    if blocked:
        st.error(i18n.t("audit_downloads_off", msg=blocked))

    if total_rows is not None and max_rows is not None and total_rows > max_rows:
        st.warning(i18n.t("download_capped", cap=i18n.fmt_number(max_rows), n=i18n.fmt_number(total_rows)))
    rows_in_file = min(total_rows, max_rows) if (total_rows is not None and max_rows is not None) else total_rows
    too_big_for_excel = rows_in_file is not None and rows_in_file > EXCEL_MAX_ROWS
    c1, c2, c3 = st.columns(3)
    with c1:
        st.download_button(i18n.t("download_csv"), data=build("csv"), file_name=f"{basename}{suffix}.csv",
                           mime=MIME_CSV, on_click="ignore", key=f"{key}_csv", icon=":material/download:",
                           disabled=bool(blocked))
    with c2:
        st.download_button(i18n.t("download_xlsx"), data=build("xlsx"), file_name=f"{basename}{suffix}.xlsx",
                           mime=MIME_XLSX, on_click="ignore", key=f"{key}_xlsx", disabled=too_big_for_excel or bool(blocked),
                           icon=":material/table:")
    with c3:
        st.download_button(i18n.t("download_parquet"), data=build("parquet"), file_name=f"{basename}{suffix}.parquet",
                           mime=MIME_PARQUET, on_click="ignore", key=f"{key}_parquet", icon=":material/database:",
                           disabled=bool(blocked))
    if too_big_for_excel:
        st.info(i18n.t("excel_too_many", n=i18n.fmt_number(rows_in_file)))
    notes = [i18n.t("csv_note", filters="; ".join(filters_text) if filters_text else i18n.t("no_filters"))]
    if order_note:
        notes.append(i18n.t("download_sorted", sort=order_note))
    if raw:  # the switch shows nothing else on screen: say which files the buttons give now
        notes.append(i18n.t("download_raw_on", name=f"{basename}{suffix}"))
    st.caption(" · ".join(notes))
