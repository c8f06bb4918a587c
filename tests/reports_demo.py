"""A small, deterministic prepaid-card dataset and a warehouse file laid out like the worker's.

Used by the report, page and browser tests. The rows are plain Python dicts,
so tests compute their expectations from them directly (never by running the
report SQL). The warehouse follows the worker's layout: tables in `main` with the
underscore columns, tombstones kept (`_deleted = true`), one view per table in
`live` hiding them, and `_meta` from ingest/sql/meta.sql.

Every table gets a few tombstones whose values would change the answers if a
report read `main` instead of the live views (a built-in negative control).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SEOUL = ZoneInfo("Asia/Seoul")

PRODUCTS = ("standard", "transit", "gift", "youth")
CHANNELS = ("bank_transfer", "card", "convenience_store", "mobile", "auto_charge")
CATEGORIES = ("convenience", "cafe", "restaurant", "transport", "online", "culture", "retail")
REGIONS = ("서울", "경기", "인천", "부산", "대구", "대전", "광주", "울산", "세종", "강원", "충북", "충남", "전북", "전남", "경북", "경남", "제주")

COLUMNS = {
    "members": {
        "member_id": "VARCHAR", "birth_year": "INTEGER", "region": "VARCHAR", "status": "VARCHAR",
        "joined_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ",
    },
    "cards": {
        "card_id": "INTEGER", "member_id": "VARCHAR", "product": "VARCHAR", "status": "VARCHAR",
        "balance_krw": "INTEGER", "issued_at": "TIMESTAMPTZ", "last_used_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ",
    },
    "merchants": {
        "merchant_id": "INTEGER", "merchant_name": "VARCHAR", "category": "VARCHAR", "region": "VARCHAR",
        "created_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ",
    },
    "topups": {
        "topup_id": "INTEGER", "card_id": "INTEGER", "channel": "VARCHAR", "amount_krw": "INTEGER",
        "created_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ",
    },
    "payments": {
        "payment_id": "INTEGER", "card_id": "INTEGER", "merchant_id": "INTEGER", "amount_krw": "INTEGER",
        "status": "VARCHAR", "created_at": "TIMESTAMPTZ", "cancelled_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ",
    },
    "refunds": {
        "refund_id": "INTEGER", "payment_id": "INTEGER", "card_id": "INTEGER", "merchant_id": "INTEGER",
        "amount_krw": "INTEGER", "reason": "VARCHAR", "created_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ",
    },
}


@dataclass
class Dataset:
    today: dt.date  # Asia/Seoul
    now: dt.datetime
    rows: dict[str, list[dict]] = field(default_factory=dict)  # live rows only
    tombstones: dict[str, list[dict]] = field(default_factory=dict)
    mismatched_cards: dict[int, int] = field(default_factory=dict)  # card_id → planted balance error

    def live(self, table: str) -> list[dict]:
        return self.rows[table]


def member_hash(n: int) -> str:
    return hashlib.sha256(f"demo-member-{n}".encode()).hexdigest()


def make_dataset(today: dt.date, seed: int = 7) -> Dataset:
    """~100 cards, ~30 merchants, ~1.5k top-ups, ~3k payments over the last ~150 days before `today`."""
    rnd = random.Random(seed)
    # Rows end just before the real "now" when `today` is today (pages use the real clock), else at noon.
    real_now = dt.datetime.now(SEOUL).replace(microsecond=0)
    now = real_now - dt.timedelta(seconds=30) if real_now.date() == today else dt.datetime.combine(today, dt.time(12, 0), SEOUL)
    ds = Dataset(today=today, now=now)

    def ts(days_ago_max: float, days_ago_min: float = 0.0) -> dt.datetime:
        # A moment in [now - max, now - min], at any hour: many fall between 00:00 and 09:00
        # Seoul, the hours where a UTC-bucketing bug would move them to the previous day.
        seconds = rnd.uniform(days_ago_min * 86400, days_ago_max * 86400)
        return (now - dt.timedelta(seconds=seconds)).replace(microsecond=0)

    members = []
    for n in range(1, 61):
        members.append({
            "member_id": member_hash(n),
            "birth_year": rnd.randint(today.year - 75, today.year - 14),
            "region": rnd.choice(REGIONS),
            "status": rnd.choices(("active", "dormant", "left"), (8, 2, 1))[0],
            "joined_at": ts(900, 400),
            "updated_at": ts(300, 200),
        })
    ds.rows["members"] = members[:-3]
    ds.tombstones["members"] = members[-3:]  # left members: their cards join to nothing ("unknown" band)

    merchants = []
    for n in range(1, 31):
        category = CATEGORIES[n % len(CATEGORIES)]
        name = f"{'한빛' if n % 3 else '바다'} {category.title()} {n}호점"
        merchants.append({
            "merchant_id": n, "merchant_name": name, "category": category, "region": REGIONS[n % 6],
            "created_at": ts(900, 500), "updated_at": ts(400, 300),
        })
    ds.rows["merchants"] = merchants[:-1]
    ds.tombstones["merchants"] = merchants[-1:]

    cards = []
    for n in range(1, 101):
        dormant = n <= 15  # issued long ago, used only long ago (or never)
        cards.append({
            "card_id": n,
            "member_id": member_hash(1 + (n * 7) % 60),
            "product": PRODUCTS[n % 4],
            "status": "closed" if n in (5, 50) else ("suspended" if n % 17 == 0 else "active"),
            "balance_krw": 0,
            "issued_at": ts(420, 300) if dormant else ts(400, 1),
            "last_used_at": None,
            "updated_at": None,
        })
    live_cards = cards[:-2]
    ds.tombstones["cards"] = cards[-2:]

    def card_for_payment() -> dict:
        return rnd.choice(cards)

    topups, payments, refunds = [], [], []
    for n in range(1, 1501):
        card = rnd.choice(cards)
        low = max(0.0, (now - card["issued_at"]).total_seconds() / 86400)
        when = ts(min(low, 150), 0)
        topups.append({
            "topup_id": n, "card_id": card["card_id"], "channel": rnd.choice(CHANNELS),
            "amount_krw": rnd.randint(10, 200) * 1000, "created_at": when, "updated_at": when,
        })
    pid = 0
    for n in range(1, 3201):
        card = card_for_payment()
        if card["card_id"] <= 15:
            if card["card_id"] % 2:  # odd dormant cards: never used
                continue
            when = ts(160, 120)  # even dormant cards: used 120+ days ago
        else:
            issued_days = (now - card["issued_at"]).total_seconds() / 86400
            when = ts(min(issued_days, 150), 0)
        pid += 1
        merchant = rnd.choice(merchants[:-1]) if n % 50 else merchants[-1]
        status = "cancelled" if rnd.random() < 0.08 else "approved"
        payments.append({
            "payment_id": pid, "card_id": card["card_id"], "merchant_id": merchant["merchant_id"],
            "amount_krw": rnd.randint(10, 500) * 100, "status": status, "created_at": when,
            "cancelled_at": when + dt.timedelta(minutes=rnd.randint(1, 600)) if status == "cancelled" else None,
            "updated_at": when,
        })
    rid = 0
    for p in payments:
        if p["status"] == "approved" and rnd.random() < 0.05:
            rid += 1
            when = p["created_at"] + dt.timedelta(hours=rnd.uniform(0.1, 72))
            when = min(when, now).replace(microsecond=0)
            amount = p["amount_krw"] if rnd.random() < 0.5 else p["amount_krw"] // 200 * 100
            refunds.append({
                "refund_id": rid, "payment_id": p["payment_id"], "card_id": p["card_id"], "merchant_id": p["merchant_id"],
                "amount_krw": max(amount, 100), "reason": rnd.choice(("고객 변심", "상품 불량", "중복 결제")),
                "created_at": when, "updated_at": when,
            })

    # Tombstones among the movements: deleted at the source, kept in main, hidden by the views.
    ds.tombstones["topups"] = topups[-20:]
    ds.rows["topups"] = topups[:-20]
    ds.tombstones["payments"] = [p for p in payments if p["payment_id"] % 97 == 0]
    ds.rows["payments"] = [p for p in payments if p["payment_id"] % 97 != 0]
    ds.tombstones["refunds"] = refunds[-3:]
    ds.rows["refunds"] = refunds[:-3]

    # Balances follow the rule over the live movements; a few cards carry a planted error.
    balance = {c["card_id"]: 0 for c in cards}
    last_used: dict[int, dt.datetime] = {}
    for t in ds.rows["topups"]:
        balance[t["card_id"]] += t["amount_krw"]
    for p in ds.rows["payments"]:
        if p["status"] == "approved":
            balance[p["card_id"]] -= p["amount_krw"]
        last_used[p["card_id"]] = max(last_used.get(p["card_id"], p["created_at"]), p["created_at"])
    for r in ds.rows["refunds"]:
        balance[r["card_id"]] += r["amount_krw"]
    ds.mismatched_cards = {21: 5000, 42: -1200, 77: 300}
    for c in cards:
        c["balance_krw"] = balance[c["card_id"]] + ds.mismatched_cards.get(c["card_id"], 0)
        c["last_used_at"] = last_used.get(c["card_id"])
        c["updated_at"] = max([c["issued_at"]] + ([c["last_used_at"]] if c["last_used_at"] else []))
    ds.rows["cards"] = live_cards
    return ds


def build_warehouse(path: Path, ds: Dataset, with_meta: bool = True) -> Path:
    """Write `ds` into a DuckDB file laid out like the worker's (main + live views + _meta)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")  # the worker's zone does not matter: values are instants
        con.execute((ROOT / "ingest/sql/meta.sql").read_text(encoding="utf-8"))
        ingested = ds.now - dt.timedelta(minutes=3)
        for table, cols in COLUMNS.items():
            col_sql = ", ".join(f'"{c}" {t}' for c, t in cols.items())
            con.execute(
                f"CREATE TABLE main.{table} ({col_sql}, _source_ts TIMESTAMPTZ, _ingested_at TIMESTAMPTZ, "
                "_deleted BOOLEAN, _kafka_partition INTEGER, _kafka_offset BIGINT)"
            )
            records = []
            for deleted, rows in ((False, ds.rows[table]), (True, ds.tombstones.get(table, []))):
                for i, row in enumerate(rows):
                    rec = {c: row.get(c) for c in cols}
                    rec["_source_ts"] = row.get("updated_at") or ingested
                    rec["_ingested_at"] = ingested - dt.timedelta(seconds=i % 50)
                    rec["_deleted"] = deleted
                    rec["_kafka_partition"] = i % 3
                    rec["_kafka_offset"] = i
                    records.append(rec)
            frame = pd.DataFrame.from_records(records, columns=list(cols) + ["_source_ts", "_ingested_at", "_deleted", "_kafka_partition", "_kafka_offset"])
            con.register("frame", frame)
            select = ", ".join(f'CAST("{c}" AS {t})' for c, t in cols.items())
            con.execute(
                f"INSERT INTO main.{table} SELECT {select}, CAST(_source_ts AS TIMESTAMPTZ), CAST(_ingested_at AS TIMESTAMPTZ), "
                "_deleted, _kafka_partition, _kafka_offset FROM frame"
            )
            con.unregister("frame")
            con.execute(
                f"CREATE OR REPLACE VIEW live.{table} AS SELECT * EXCLUDE (_deleted, _kafka_partition, _kafka_offset) "
                f"FROM main.{table} WHERE NOT _deleted"
            )
        if with_meta:
            add_pipeline_meta(con, ds.now)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    path.with_name(path.name + ".version").write_text("12", encoding="utf-8")
    return path


# What add_pipeline_meta writes, for the Pipeline page tests to compare against.
META_BATCHES = 12
DEAD_LETTER_REASONS = ("not JSON: Expecting value at line 1 column 1", "envelope: 'op' must be upsert or delete, got 'merge'")
LONG_RAW = b'{"table": "payments", "op": "merge", "pk": {"payment_id": 7}, "row": {' + b'"x": "' + b"y" * 600 + b'"}}'


def add_pipeline_meta(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> None:
    """Batches, partitions, dead letters and a heartbeat like a running worker's."""
    for b in range(1, META_BATCHES + 1):
        committed = now - dt.timedelta(minutes=2 * (META_BATCHES - b))
        con.execute(
            "INSERT INTO _meta.batches (batch_id, started_at, committed_at, messages, upserts, deletes, skipped_stale, dead_letters, seconds, tables, offsets, lag_messages) VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?)",
            [b, committed - dt.timedelta(seconds=1), committed, 100 * b, 100 * b - (1 if b in (3, 7) else 0),
             1 if b in (3, 7) else 0, 0.1 * b, ["payments", "topups"], json.dumps({"prepaid.payments/0": [0, 100 * b]}), 10 * (META_BATCHES - b)],
        )
    for table in COLUMNS:
        for part in range(3):
            stopped = table == "refunds" and part == 2
            con.execute(
                "INSERT INTO _meta.partitions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [f"prepaid.{table}", part, 1000 + part, 1000 + part + (40 if stopped else part), 40 if stopped else part,
                 "stopped" if stopped else "ok", "stored offset 1040 is beyond the broker's end 1002" if stopped else None, now],
            )
            con.execute("INSERT INTO _meta.offsets VALUES (?, ?, ?, ?)", [f"prepaid.{table}", part, 1000 + part, now])
    con.execute(
        "INSERT INTO _meta.dead_letters (batch_id, topic, \"partition\", \"offset\", key, raw, raw_sha256, reason, received_at) VALUES (3, 'prepaid.payments', 1, 4242, ?, ?, ?, ?, ?)",
        [b'{"payment_id": 7}', b"\xff\xfenot json", hashlib.sha256(b"\xff\xfenot json").hexdigest(), DEAD_LETTER_REASONS[0], now - dt.timedelta(minutes=18)],
    )
    con.execute(
        "INSERT INTO _meta.dead_letters (batch_id, topic, \"partition\", \"offset\", key, raw, raw_sha256, reason, received_at) VALUES (7, 'prepaid.payments', 0, 4343, ?, ?, ?, ?, ?)",
        [b'{"payment_id": 7}', LONG_RAW, hashlib.sha256(LONG_RAW).hexdigest(), DEAD_LETTER_REASONS[1], now - dt.timedelta(minutes=10)],
    )
    con.execute(
        "INSERT INTO _meta.heartbeat VALUES ('worker', ?, ?, 'idle', 4321, 'demo-host', ?, 3, 'waiting for messages')",
        [now - dt.timedelta(seconds=4), now - dt.timedelta(hours=2), META_BATCHES],
    )


def write_alert_history(path: Path, now: dt.datetime) -> list[dict]:
    """Two alerts and one recovery, as the watchdog appends them (JSON lines), plus one torn line."""
    entries = [
        {"at": (now - dt.timedelta(hours=3)).isoformat(), "kind": "alert", "problem": "worker_down",
         "subject": "[datadesk] 워커 중지 / worker down", "body": "heartbeat is 300 s old", "delivered": True},
        {"at": (now - dt.timedelta(hours=2, minutes=50)).isoformat(), "kind": "recovery", "problem": "worker_down",
         "subject": "[datadesk] 워커 복구 / worker recovered", "body": "heartbeat fresh again", "delivered": True},
        {"at": (now - dt.timedelta(minutes=30)).isoformat(), "kind": "alert", "problem": "dead_letters",
         "subject": "[datadesk] 데드레터 증가 / dead letters grew", "body": "2 new dead letters", "delivered": False},
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for e in entries:
            fh.write(json.dumps(e, ensure_ascii=False) + "\n")
        fh.write('{"at": "torn')  # a watchdog killed mid-write leaves half a line
    return entries


def seoul_day(ts: dt.datetime) -> dt.date:
    return ts.astimezone(SEOUL).date()


def write_app_config(tmp_path: Path, warehouse: Path, reports_dir: Path | None = None, alerts_history: Path | None = None) -> Path:
    """A pipeline.toml for the app: the demo tables, this warehouse, optionally another reports folder."""
    text = (ROOT / "pipeline.toml").read_text(encoding="utf-8")
    text = text.replace('path = "data/warehouse.duckdb"', f'path = "{warehouse}"')
    if alerts_history is not None:
        text = text.replace("[alerts]", f'[alerts]\nhistory_path = "{alerts_history}"', 1)
    if reports_dir is not None:
        text = text.replace("[app]", f'[app]\nreports_dir = "{reports_dir}"', 1)
    path = tmp_path / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    return path
