-- Subscriptions (a report sent by e-mail on a schedule) and data alerts (a mail when a condition
-- becomes true, one when it clears), with the delivery log that makes "one mail per slot" hold
-- across restarts (dashboard/subscriptions/sender.py, docs/subscriptions.md).
--
-- A target is (kind, ref, params): kind 'report' with ref = the report's file name (sql/<ref>.sql);
-- kind 'view' (a saved view) uses the same three columns. params is JSON: parameter name → token
-- as the report page writes it in its URL ("last_week", "2026-11-01..2026-11-30", "card"), so a
-- relative token is resolved on the day the mail goes out.

CREATE TABLE subscriptions (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL DEFAULT 'report' CHECK (kind IN ('report', 'view')),
    ref           TEXT NOT NULL,
    params        TEXT NOT NULL DEFAULT '{}',
    frequency     TEXT NOT NULL CHECK (frequency IN ('daily', 'business_days', 'weekly', 'monthly')),
    weekday       INTEGER CHECK (weekday BETWEEN 0 AND 6),      -- weekly: 0 = Monday
    month_day     INTEGER CHECK (month_day BETWEEN 1 AND 31),   -- monthly: 31 = the month's last day
    at_time       TEXT NOT NULL,                                -- HH:MM, Asia/Seoul
    recipients    TEXT NOT NULL,                                -- JSON list of addresses
    format        TEXT NOT NULL DEFAULT 'xlsx' CHECK (format IN ('xlsx', 'csv')),
    skip_empty    INTEGER NOT NULL DEFAULT 1,
    lang          TEXT NOT NULL DEFAULT 'ko' CHECK (lang IN ('ko', 'en')),
    paused        INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,                                -- ISO, with offset; slots before it are never sent
    updated_at    TEXT NOT NULL
);

-- One row per (subscription, slot): the key that makes a second mail for the same slot impossible.
-- slot is the scheduled time (ISO, Asia/Seoul) or 'now:<time>' for "send now".
-- state: due (claimed, not tried) → sending (an attempt started; after a crash it is re-sent with the
-- same Message-ID) → sent | skipped (empty result, skip_empty) | failed (permanent); missed = an older
-- slot that passed while the scheduler was down (only the latest missed slot is sent, marked late).
CREATE TABLE deliveries (
    subscription_id INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    slot            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('due', 'sending', 'sent', 'skipped', 'failed', 'missed')),
    late            INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    resent          INTEGER NOT NULL DEFAULT 0,                 -- an attempt after a crash mid-send
    next_attempt_at TEXT,
    claimed_at      TEXT NOT NULL,
    finished_at     TEXT,
    rows            INTEGER,
    bytes           INTEGER,
    linked          INTEGER NOT NULL DEFAULT 0,                 -- attachment too big: a link was sent instead
    message_id      TEXT NOT NULL,
    error           TEXT,
    PRIMARY KEY (subscription_id, slot)
);
CREATE INDEX deliveries_open ON deliveries (state) WHERE state IN ('due', 'sending');

CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL DEFAULT 'report' CHECK (kind IN ('report', 'view')),
    ref           TEXT NOT NULL,
    params        TEXT NOT NULL DEFAULT '{}',
    measure       TEXT,                                         -- a numeric result column (summed); NULL for no_rows
    condition     TEXT NOT NULL CHECK (condition IN ('above', 'below', 'no_rows')),
    threshold     REAL,                                         -- above / below
    hours         REAL,                                         -- no_rows: the window that must hold no rows
    time_column   TEXT,                                         -- no_rows: the result column with the rows' time
    recipients    TEXT NOT NULL,
    lang          TEXT NOT NULL DEFAULT 'ko' CHECK (lang IN ('ko', 'en')),
    check_minutes REAL NOT NULL DEFAULT 60,                     -- checked at least this often, and after each new batch
    paused        INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Where each alert stands: a mail is due only when `active` changes.
CREATE TABLE alert_state (
    alert_id        INTEGER PRIMARY KEY REFERENCES alerts(id) ON DELETE CASCADE,
    active          INTEGER NOT NULL DEFAULT 0,
    value           REAL,
    checked_at      TEXT,
    data_version    TEXT,
    transitions     INTEGER NOT NULL DEFAULT 0
);

-- One row per change of state (fired / cleared), delivered like a subscription's slot.
CREATE TABLE alert_events (
    alert_id        INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    change          TEXT NOT NULL CHECK (change IN ('fired', 'cleared')),
    value           REAL,
    at              TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('due', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    resent          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    finished_at     TEXT,
    message_id      TEXT NOT NULL,
    error           TEXT,
    PRIMARY KEY (alert_id, seq)
);
