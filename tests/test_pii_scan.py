"""The PII scan of the warehouse (`tests/pii_scan.py`) sees what compression hides from a byte search.

The negative control for the scan the pipeline tests rely on: markers
planted in a real DuckDB file, in a 6,000-row string column (stored
compressed) and in the other kinds of column that hold text, must all be
found; a byte search of the same file must miss the compressed one, which
is why the scan is SQL.
"""

from __future__ import annotations

import random
import uuid

import duckdb
import pyarrow as pa

from tests.pii_scan import file_bytes, find_in_text, find_in_warehouse

MARKER = r"vis[0-9a-f]{16}"
BRANDS = ("행복", "햇살", "바다", "하늘", "우리", "새봄", "푸른", "한빛", "미소", "온누리", "초록", "다온")
SHOPS = ("편의점", "커피", "식당", "교통", "온라인몰", "문화공간", "마트")


def _marker() -> str:
    return f"vis{uuid.uuid4().hex[:16]}"


def test_markers_in_every_kind_of_column_are_found_even_where_compression_hides_them_from_the_bytes(tmp_path):
    rng = random.Random(5)
    n = 6000
    names = [f"{rng.choice(BRANDS)}{rng.choice(SHOPS)} {i}호점" for i in range(n)]
    in_names, in_blob, in_json, in_list, in_struct = (_marker() for _ in range(5))
    names[n // 2] = f"사장님 {in_names} 직통"
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    merchants = pa.table({"merchant_id": list(range(n)), "merchant_name": names})
    con.execute("CREATE TABLE main.merchants AS SELECT * FROM merchants")
    con.execute("CREATE SCHEMA _meta")
    con.execute("CREATE TABLE _meta.dead_letters (raw BLOB, reason VARCHAR)")
    con.execute("INSERT INTO _meta.dead_letters VALUES ($raw, 'not valid JSON')",
                {"raw": b"\xff\xfe" + f"전화 {in_blob}".encode()})
    con.execute("CREATE TABLE _meta.batches (offsets JSON, tables VARCHAR[], detail STRUCT(note VARCHAR))")
    con.execute("INSERT INTO _meta.batches VALUES ($json, $list, {'note': $note})",
                {"json": f'{{"k": "{in_json}"}}', "list": ["cards", in_list], "note": in_struct})
    con.execute("CREATE VIEW main.shown AS SELECT * FROM main.merchants")  # views add nothing: their tables are scanned
    con.execute("CHECKPOINT")
    con.close()

    # The blind spot this scan exists for: the compressed column's marker is not in the bytes.
    assert in_names.encode() not in file_bytes(path), "DuckDB stored the column uncompressed: raise n"
    assert find_in_warehouse(path, MARKER) == {
        "main.merchants.merchant_name": {in_names},
        "_meta.dead_letters.raw": {in_blob},
        "_meta.batches.offsets": {in_json},
        "_meta.batches.tables": {in_list},
        "_meta.batches.detail": {in_struct},
    }


def test_clean_files_and_texts_report_nothing(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT range AS id, 'vis' || range AS short FROM range(100)")  # near misses
    con.close()
    assert find_in_warehouse(path, MARKER) == {}
    marker = _marker()
    assert find_in_text(f"batch 1: 10 messages\n{marker}\n".encode(), MARKER) == {marker}
    assert find_in_text(b"\xff\xfe batch 2: vis123", MARKER) == set()
