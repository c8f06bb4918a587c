-- The audit trail: who did what in the app, one row per action (dashboard/audit.py, docs/access.md "Audit trail").
-- Written by the app as the action happens (a download is recorded before its file is served) and
-- never updated or deleted by the app; the admin page (pages/admin.py) lists it.
--
-- NO CUSTOMER PERSONAL DATA. A row holds only what the person asked for — the page, the table or
-- report, the filters as the screen wrote them, the file format, the parameters — and, for a
-- download, how many rows the file had. Never the rows themselves, never a value read from them.
-- (A filter someone typed, e.g. a card number on the Lookup page, is what they asked for and is
-- kept, exactly as the screen showed it.)
--
-- at:     ISO 8601 with offset, Asia/Seoul ("2026-11-29T16:03:12+09:00"); sorts as text.
-- who:    the signed-in e-mail, or 'anonymous' when the app runs open.
-- role:   the role the person had at that moment (NULL in open mode).
-- action: sign_in, download, saved_view_save / _rename / _update / _delete,
--         subscription_create / _update / _pause / _resume / _delete / _send_now,
--         alert_create / _update / _pause / _resume / _delete.
-- target: what it was about: the table / report / file name, the saved view's name, "subscription #7".
-- detail: JSON object (page, filters, format, params, ...), or NULL.
-- rows:   downloads: the rows in the file; NULL otherwise.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    who     TEXT NOT NULL CHECK (length(who) > 0),
    role    TEXT,
    action  TEXT NOT NULL CHECK (length(action) > 0),
    target  TEXT NOT NULL DEFAULT '',
    detail  TEXT CHECK (detail IS NULL OR json_valid(detail)),
    rows    INTEGER CHECK (rows IS NULL OR rows >= 0)
);

CREATE INDEX audit_at ON audit (at, id);
CREATE INDEX audit_who ON audit (who, at);
CREATE INDEX audit_action ON audit (action, at);
