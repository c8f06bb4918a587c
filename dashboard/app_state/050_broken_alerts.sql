-- An alert that can no longer be checked — its saved view was deleted, its report file removed, or its
-- owner's role lost access — mails its recipients once ('broken', with the reason), instead of going
-- quiet while the scheduler's log repeats the failure. alert_state.broken holds the reason until a check
-- succeeds again. SQLite cannot change a CHECK constraint in place, so alert_events is rebuilt.
ALTER TABLE alert_state ADD COLUMN broken TEXT;

CREATE TABLE alert_events_new (
    alert_id        INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    change          TEXT NOT NULL CHECK (change IN ('fired', 'cleared', 'broken')),
    value           REAL,
    at              TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('due', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    resent          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    finished_at     TEXT,
    message_id      TEXT NOT NULL,
    error           TEXT,
    reason          TEXT,  -- for 'broken': view_missing | report_missing | no_access
    PRIMARY KEY (alert_id, seq)
);
INSERT INTO alert_events_new (alert_id, seq, change, value, at, state, attempts, resent, next_attempt_at, finished_at,
                              message_id, error)
SELECT alert_id, seq, change, value, at, state, attempts, resent, next_attempt_at, finished_at, message_id, error
FROM alert_events;
DROP TABLE alert_events;
ALTER TABLE alert_events_new RENAME TO alert_events;
