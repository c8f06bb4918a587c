-- Pipeline bookkeeping, schema _meta. Created by the worker (ingest/landing.py)
-- before its first batch; read by the app (Pipeline page, freshness) and the
-- watchdog. No PRIMARY KEY / UNIQUE anywhere: DuckDB's ART indexes have open
-- WAL-replay bugs after kill -9 with upserts; the landing keeps rows unique.

CREATE SCHEMA IF NOT EXISTS _meta;
CREATE SCHEMA IF NOT EXISTS live;   -- one view per table: current rows, tombstones hidden

-- The truth about how far each partition has been landed: written in the
-- SAME transaction as the rows it covers.
CREATE TABLE IF NOT EXISTS _meta.offsets (
    topic        VARCHAR NOT NULL,
    "partition"  INTEGER NOT NULL,
    next_offset  BIGINT  NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- One row per landed batch. max(batch_id) is the data version the app caches by.
CREATE TABLE IF NOT EXISTS _meta.batches (
    batch_id      BIGINT NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,  -- first message of the batch taken from Kafka
    committed_at  TIMESTAMPTZ NOT NULL,
    messages      BIGINT NOT NULL,       -- Kafka messages covered (incl. dead letters)
    upserts       BIGINT NOT NULL,       -- rows written after dedupe
    deletes       BIGINT NOT NULL,       -- tombstones written after dedupe
    skipped_stale BIGINT NOT NULL,       -- changes older than what the warehouse holds
    dead_letters  BIGINT NOT NULL,
    seconds       DOUBLE NOT NULL,       -- landing time (open → commit)
    tables        VARCHAR[] NOT NULL,
    offsets       JSON NOT NULL,         -- {"topic/partition": [first, next]}
    lag_messages  BIGINT                 -- behind the high watermark after this batch
);

CREATE TABLE IF NOT EXISTS _meta.dead_letters (
    batch_id     BIGINT NOT NULL,
    topic        VARCHAR NOT NULL,
    "partition"  INTEGER NOT NULL,
    "offset"     BIGINT NOT NULL,
    key          BLOB,
    raw          BLOB,
    raw_sha256   VARCHAR NOT NULL,       -- re-delivery of the same message adds nothing
    reason       VARCHAR NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL
);

-- One row per worker (name 'worker'): liveness for the watchdog and the app.
CREATE TABLE IF NOT EXISTS _meta.heartbeat (
    worker          VARCHAR NOT NULL,
    beat_at         TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    state           VARCHAR NOT NULL,    -- running | idle | broker_unreachable | degraded | stopped
    pid             INTEGER,
    host            VARCHAR,
    last_batch_id   BIGINT,
    lag_messages    BIGINT,
    message         VARCHAR              -- human-readable: what is wrong and what to do
);

-- Per partition: position, high watermark seen in fetches, lag, stopped or not.
CREATE TABLE IF NOT EXISTS _meta.partitions (
    topic           VARCHAR NOT NULL,
    "partition"     INTEGER NOT NULL,
    next_offset     BIGINT,
    high_watermark  BIGINT,
    lag_messages    BIGINT,
    state           VARCHAR NOT NULL,    -- ok | stopped
    reason          VARCHAR,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS _meta.schema_changes (
    batch_id     BIGINT NOT NULL,
    changed_at   TIMESTAMPTZ NOT NULL,
    table_name   VARCHAR NOT NULL,
    column_name  VARCHAR,
    change       VARCHAR NOT NULL,       -- create_table | add_column | widen | declare (a schema record)
    old_type     VARCHAR,
    new_type     VARCHAR
);

-- The column types the source declares (schema records, docs/contracts.md): one row
-- per column of the newest schema seen for each table. Values are checked against them.
CREATE TABLE IF NOT EXISTS _meta.declared_columns (
    table_name     VARCHAR NOT NULL,
    column_name    VARCHAR NOT NULL,
    declared_type  VARCHAR NOT NULL,
    schema_id      VARCHAR NOT NULL,
    batch_id       BIGINT NOT NULL,      -- the batch that brought this schema
    declared_at    TIMESTAMPTZ NOT NULL
);

-- Added after the first release; IF NOT EXISTS keeps older warehouses working.
-- Dead letters that `python -m ingest replay` later landed (or re-checked).
ALTER TABLE _meta.dead_letters ADD COLUMN IF NOT EXISTS replayed_at TIMESTAMPTZ;     -- landed by a replay
ALTER TABLE _meta.dead_letters ADD COLUMN IF NOT EXISTS replay_batch_id BIGINT;      -- in this _meta.batches row
ALTER TABLE _meta.dead_letters ADD COLUMN IF NOT EXISTS last_replay_at TIMESTAMPTZ;  -- last time a replay tried it
ALTER TABLE _meta.dead_letters ADD COLUMN IF NOT EXISTS last_replay_reason VARCHAR;  -- why it still fails today
-- 'kafka': a batch read from Kafka; 'replay': dead letters landed by a replay (its offsets are {}).
ALTER TABLE _meta.batches ADD COLUMN IF NOT EXISTS kind VARCHAR DEFAULT 'kafka';

-- The exporter's own word (control records on <topic_prefix>._control, ingest/control.py):
-- its newest status per exporter, landed in the same transaction as the batch that carried it.
-- Read by ingest/health.py (the watchdog and the Pipeline page).
CREATE TABLE IF NOT EXISTS _meta.exporter_status (
    exporter        VARCHAR NOT NULL,
    state           VARCHAR NOT NULL,    -- ok | degraded | source_unreachable | stopping
    exported_at     TIMESTAMPTZ NOT NULL, -- the exporter's clock, end of its pass
    landed_at       TIMESTAMPTZ NOT NULL,
    pass_seconds    DOUBLE,
    rows_sent       BIGINT,              -- this pass
    message         VARCHAR,             -- what is wrong and what to do
    broker_outage   VARCHAR,             -- the exporter lost the broker during this pass (why)
    errors          VARCHAR[],           -- "table: source read failure" of this pass
    stopped_tables  VARCHAR[],           -- stopped by the PII guard or a configuration mismatch
    rows_behind     BIGINT               -- source rows past the watermarks (catching up); NULL: not counted
);

-- Per exporter and table, as of the exporter's newest status.
CREATE TABLE IF NOT EXISTS _meta.exporter_tables (
    exporter             VARCHAR NOT NULL,
    table_name           VARCHAR NOT NULL,
    watermark            TIMESTAMPTZ,     -- newest change the broker acknowledged
    rows_sent            BIGINT,          -- this pass
    rows_total           BIGINT,          -- since the watermarks were last reset
    error                VARCHAR,
    stopped              VARCHAR,
    queries              BIGINT,          -- source reads this pass
    query_seconds_max    DOUBLE,
    query_seconds_total  DOUBLE,
    exported_at          TIMESTAMPTZ NOT NULL,
    rows_behind          BIGINT
);

-- The completeness proof (control records of op "counts"): per table and local day of the
-- watermark column, the source's row count as of a watermark beside the warehouse's count at
-- the same watermark, compared by the worker in the transaction that landed the counts.
CREATE TABLE IF NOT EXISTS _meta.completeness (
    exporter         VARCHAR NOT NULL,
    table_name       VARCHAR NOT NULL,
    day              DATE NOT NULL,        -- Asia/Seoul day of the watermark column
    as_of            TIMESTAMPTZ NOT NULL, -- both sides count rows changed up to this moment
    source_rows      BIGINT NOT NULL,
    warehouse_rows   BIGINT NOT NULL,      -- tombstones included (the source still has soft-deleted rows)
    mismatch_passes  INTEGER NOT NULL,     -- consecutive checks this day differed (0 = matches)
    resent           BOOLEAN NOT NULL,     -- the exporter re-sent this day with these counts
    checked_at       TIMESTAMPTZ NOT NULL
);

-- Lake mode with several workers (ingest/leases.py): which worker owns which partition, until when.
-- Claimed and renewed inside the transactions that land the owner's batches, so a worker whose
-- partition was taken over cannot commit it any more. Empty on a single-file warehouse (one worker).
CREATE TABLE IF NOT EXISTS _meta.leases (
    topic        VARCHAR NOT NULL,
    "partition"  INTEGER NOT NULL,
    owner        VARCHAR,                -- a worker id ([worker] id); NULL = free
    lease_until  TIMESTAMPTZ             -- past this, another worker may take the partition over
);
