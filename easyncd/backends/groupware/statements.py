"""The SQL text of the groupware backend, shared by SQLite and PostgreSQL
(``?`` placeholders; the PostgreSQL engine converts them)."""
from __future__ import annotations

COLLECTION_COLUMNS = (
    "collection_id, username, kind, display_name, is_default, synced, revision,"
    " min_revision, last_item_id"
)
ITEM_COLUMNS = "item_id, uid, data, revision"

# -- users and collections ---------------------------------------------------------

SELECT_USER = "SELECT 1 FROM gw_users WHERE username = ?"
INSERT_USER = "INSERT INTO gw_users (username) VALUES (?) ON CONFLICT (username) DO NOTHING"
#: Serialises the collection-level writes of one user (name checks).
LOCK_USER = "UPDATE gw_users SET username = username WHERE username = ?"
NEXT_COLLECTION_ID = (
    "UPDATE gw_counters SET value = value + 1 WHERE name = 'collection_id' RETURNING value"
)
INSERT_COLLECTION = (
    "INSERT INTO gw_collections (collection_id, username, kind, display_name, is_default,"
    " synced) VALUES (?, ?, ?, ?, ?, ?)"
)
SELECT_LIVE_COLLECTIONS = (
    f"SELECT {COLLECTION_COLUMNS} FROM gw_collections WHERE username = ? AND NOT deleted"
    " ORDER BY kind, collection_id"
)
SELECT_LIVE_COLLECTIONS_OF_KIND = (
    f"SELECT {COLLECTION_COLUMNS} FROM gw_collections WHERE username = ? AND kind = ?"
    " AND NOT deleted ORDER BY collection_id"
)
SELECT_LIVE_COLLECTION = (
    f"SELECT {COLLECTION_COLUMNS} FROM gw_collections"
    " WHERE collection_id = ? AND username = ? AND NOT deleted"
)
#: Lock a live collection row until commit (a no-op update) and read it.
LOCK_COLLECTION = (
    "UPDATE gw_collections SET revision = revision"
    " WHERE collection_id = ? AND username = ? AND NOT deleted"
    f" RETURNING {COLLECTION_COLUMNS}"
)
SELECT_NAME_TAKEN = (
    "SELECT collection_id FROM gw_collections WHERE username = ? AND kind = ?"
    " AND display_name = ? AND NOT deleted"
)
RENAME_COLLECTION = "UPDATE gw_collections SET display_name = ? WHERE collection_id = ?"
SET_SYNCED = "UPDATE gw_collections SET synced = ? WHERE collection_id = ?"
MARK_COLLECTION_DELETED = "UPDATE gw_collections SET deleted = ? WHERE collection_id = ?"
SET_COUNTERS = (
    "UPDATE gw_collections SET revision = ?, last_item_id = ? WHERE collection_id = ?"
)
SELECT_REVISION = (
    "SELECT revision, min_revision FROM gw_collections"
    " WHERE collection_id = ? AND username = ? AND NOT deleted"
)


def select_revisions(count: int) -> str:
    """The revisions of ``count`` live collections of one user."""
    marks = ", ".join("?" * count)
    return (
        "SELECT collection_id, revision FROM gw_collections WHERE username = ?"
        f" AND NOT deleted AND collection_id IN ({marks})"
    )


# -- items ----------------------------------------------------------------------------

SELECT_ITEM_IDS = "SELECT item_id FROM gw_items WHERE collection_id = ? ORDER BY item_id"
SELECT_ITEM = f"SELECT {ITEM_COLUMNS} FROM gw_items WHERE collection_id = ? AND item_id = ?"
INSERT_ITEM = (
    "INSERT INTO gw_items (collection_id, item_id, uid, data, revision)"
    " VALUES (?, ?, ?, ?, ?)"
)
UPDATE_ITEM = (
    "UPDATE gw_items SET uid = ?, data = ?, revision = ? WHERE collection_id = ?"
    " AND item_id = ?"
)
DELETE_ITEM = "DELETE FROM gw_items WHERE collection_id = ? AND item_id = ?"
DELETE_COLLECTION_ITEMS = "DELETE FROM gw_items WHERE collection_id = ?"
COUNT_ITEMS = "SELECT COUNT(*) FROM gw_items WHERE collection_id = ?"


def select_items(count: int) -> str:
    """Items of one collection by ``count`` ids."""
    marks = ", ".join("?" * count)
    return f"SELECT {ITEM_COLUMNS} FROM gw_items WHERE collection_id = ? AND item_id IN ({marks})"


def insert_items(count: int) -> str:
    """Insert ``count`` items in one statement."""
    rows = ", ".join(["(?, ?, ?, ?, ?)"] * count)
    return f"INSERT INTO gw_items (collection_id, item_id, uid, data, revision) VALUES {rows}"


def insert_history_rows(count: int) -> str:
    """Insert ``count`` history rows in one statement."""
    rows = ", ".join(["(?, ?, ?, ?, ?)"] * count)
    return (
        "INSERT INTO gw_history (collection_id, revision, item_id, action, written_at)"
        f" VALUES {rows}"
    )


# -- history ------------------------------------------------------------------------------

INSERT_HISTORY = insert_history_rows(1)
#: One 'delete' row per live item, at revisions base+1, base+2, ... (by item id).
INSERT_DELETES_FOR_ALL_ITEMS = (
    "INSERT INTO gw_history (collection_id, revision, item_id, action, written_at)"
    " SELECT collection_id, ? + ROW_NUMBER() OVER (ORDER BY item_id), item_id, 'delete', ?"
    " FROM gw_items WHERE collection_id = ?"
)
#: The history of (since, until]: uses the primary key (collection_id, revision).
SELECT_HISTORY = (
    "SELECT revision, item_id, action FROM gw_history WHERE collection_id = ?"
    " AND revision > ? AND revision <= ? ORDER BY revision"
)
DELETE_COLLECTION_HISTORY = "DELETE FROM gw_history WHERE collection_id = ?"
SELECT_TRIM_POINTS = (
    "SELECT collection_id, MAX(revision) FROM gw_history WHERE written_at < ?"
    " GROUP BY collection_id"
)
DELETE_HISTORY_UP_TO = "DELETE FROM gw_history WHERE collection_id = ? AND revision <= ?"
RAISE_MIN_REVISION = (
    "UPDATE gw_collections SET min_revision = ? WHERE collection_id = ? AND min_revision < ?"
)
