-- Saved views: a named page address (its query string) that someone wants to come back to or share.
-- `owner` stays empty until access control exists; names are unique per owner (an empty owner is one owner).
CREATE TABLE saved_views (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL CHECK (length(trim(name)) > 0),
    owner       TEXT,
    page        TEXT    NOT NULL,
    params      TEXT    NOT NULL DEFAULT '',
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

-- One name per owner, whatever the letter case: "환불 Top 20" and "환불 top 20" would confuse a list.
CREATE UNIQUE INDEX saved_views_owner_name ON saved_views (ifnull(owner, ''), lower(name));

CREATE INDEX saved_views_page ON saved_views (page, updated_at);
