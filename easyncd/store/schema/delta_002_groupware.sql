-- easyncd state store, schema version 2: the built-in groupware backend
-- (contacts, calendars, tasks, notes stored as vCard / iCalendar text) with a
-- per-collection history table.  Portable: SQLite and PostgreSQL.

-- Counters shared by the whole installation (collection ids are never reused).
CREATE TABLE gw_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

INSERT INTO gw_counters (name, value) VALUES ('collection_id', 0);

-- One row per user the backend has seen: the default collections of every
-- kind are created exactly once, when the row is inserted.
CREATE TABLE gw_users (
    username TEXT PRIMARY KEY
);

-- revision: the collection's history revision (0: nothing ever happened),
-- raised by one per item change.  min_revision: history is kept for
-- revisions above it.  last_item_id: item ids are never reused in a collection.
-- Deleted collections stay as rows (deleted TRUE) so that ids are not reused.
CREATE TABLE gw_collections (
    collection_id BIGINT PRIMARY KEY,
    username TEXT NOT NULL,
    kind TEXT NOT NULL,
    display_name TEXT NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    synced BOOLEAN NOT NULL DEFAULT TRUE,
    revision BIGINT NOT NULL DEFAULT 0,
    min_revision BIGINT NOT NULL DEFAULT 0,
    last_item_id BIGINT NOT NULL DEFAULT 0,
    deleted BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX gw_collections_user ON gw_collections (username, kind);

CREATE UNIQUE INDEX gw_collections_live_name
    ON gw_collections (username, kind, display_name) WHERE NOT deleted;

-- Live items only: a deleted item leaves its trace in gw_history.
CREATE TABLE gw_items (
    collection_id BIGINT NOT NULL REFERENCES gw_collections (collection_id),
    item_id BIGINT NOT NULL,
    uid TEXT,
    data TEXT NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (collection_id, item_id)
);

CREATE INDEX gw_items_uid ON gw_items (collection_id, uid);

-- One row per revision of a collection: which item, what happened
-- ('add', 'change', 'delete'), when (POSIX time, for trimming).
CREATE TABLE gw_history (
    collection_id BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    action TEXT NOT NULL,
    written_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (collection_id, revision)
);

CREATE INDEX gw_history_written_at ON gw_history (written_at);
