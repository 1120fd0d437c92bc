"""The SQL text of the state store, shared by the SQLite and PostgreSQL engines.

Statements are written once with ``?`` placeholders (SQLite's qmark style);
:func:`to_format_style` turns them into psycopg2's ``%s`` style.  Only the few
statements that differ between the engines are kept per dialect.
"""
from __future__ import annotations

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

#: Key of the PostgreSQL advisory lock that serialises concurrent migrations.
MIGRATION_LOCK_KEY = 0x6561_7379_6E63  # "easync"


def to_format_style(statement: str) -> str:
    """Turn a ``?``-placeholder statement into psycopg2's ``%s`` style.

    Literal ``%`` signs are doubled; ``?`` inside single-quoted literals is
    left alone.
    """
    out: list[str] = []
    in_literal = False
    for char in statement:
        if char == "'":
            in_literal = not in_literal
            out.append(char)
        elif char == "%":
            out.append("%%")
        elif char == "?" and not in_literal:
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


def for_dialect(statement: str, dialect: str) -> str:
    """``statement`` in the placeholder style of ``dialect``."""
    if dialect == POSTGRESQL:
        return to_format_style(statement)
    return statement


# -- schema and migration --------------------------------------------------------

TABLE_EXISTS = {
    SQLITE: "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
    POSTGRESQL: (
        "SELECT 1 FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_name = ?"
    ),
}
MIGRATION_LOCK = {
    POSTGRESQL: "SELECT pg_advisory_xact_lock(?)",
}
SELECT_SCHEMA_VERSION = "SELECT version FROM schema_version"
INSERT_SCHEMA_VERSION = "INSERT INTO schema_version (version) VALUES (?)"
UPDATE_SCHEMA_VERSION = "UPDATE schema_version SET version = ?"

# -- devices and accounts --------------------------------------------------------

DEVICE_COLUMNS = "device_id, device_type, user_agent, first_seen, last_seen, info, trace"
ACCOUNT_COLUMNS = (
    "device_id, username, policy_key, pending_policy_key, provisioned_at,"
    " wipe_state, wipe_kind, wipe_requested_at, wipe_acknowledged_at,"
    " first_seen, last_seen, last_command, protocol_version"
)

SELECT_DEVICE = f"SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = ?"
SELECT_ALL_DEVICES = f"SELECT {DEVICE_COLUMNS} FROM devices ORDER BY device_id"
SELECT_USER_DEVICES = (
    f"SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id IN"
    " (SELECT device_id FROM accounts WHERE username = ?) ORDER BY device_id"
)
SELECT_DEVICE_ACCOUNTS = (
    f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE device_id = ? ORDER BY username"
)
SELECT_ALL_ACCOUNTS = f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY device_id, username"
SELECT_USER_DEVICE_ACCOUNTS = (
    f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE device_id IN"
    " (SELECT device_id FROM accounts WHERE username = ?) ORDER BY device_id, username"
)
SELECT_ACCOUNT = (
    f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE device_id = ? AND username = ?"
)
UPSERT_DEVICE = (
    "INSERT INTO devices (device_id, device_type, user_agent, first_seen, last_seen)"
    " VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (device_id) DO UPDATE SET device_type = excluded.device_type,"
    " user_agent = COALESCE(excluded.user_agent, devices.user_agent),"
    " last_seen = excluded.last_seen"
)
INSERT_ACCOUNT = (
    "INSERT INTO accounts (device_id, username, first_seen, last_seen) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (device_id, username) DO UPDATE SET last_seen = excluded.last_seen"
)
RECORD_ACCOUNT_REQUEST = (
    "UPDATE accounts SET last_seen = ?, last_command = ?, protocol_version = ?"
    " WHERE device_id = ? AND username = ?"
)
TOUCH_DEVICE = "UPDATE devices SET last_seen = ? WHERE device_id = ?"
DELETE_DEVICE = "DELETE FROM devices WHERE device_id = ?"
DELETE_ACCOUNT = "DELETE FROM accounts WHERE device_id = ? AND username = ?"
UPDATE_DEVICE_INFO = "UPDATE devices SET info = ? WHERE device_id = ?"
UPDATE_DEVICE_TRACE = "UPDATE devices SET trace = ? WHERE device_id = ?"

# -- provisioning ------------------------------------------------------------------

SET_PENDING_POLICY_KEY = (
    "UPDATE accounts SET pending_policy_key = ? WHERE device_id = ? AND username = ?"
)
CONFIRM_POLICY_KEY = (
    "UPDATE accounts SET policy_key = ?, pending_policy_key = NULL, provisioned_at = ?"
    " WHERE device_id = ? AND username = ? AND pending_policy_key = ?"
)
CLEAR_DEVICE_POLICY_KEYS = (
    "UPDATE accounts SET policy_key = NULL, pending_policy_key = NULL,"
    " provisioned_at = NULL WHERE device_id = ?"
)
CLEAR_ACCOUNT_POLICY_KEY = (
    "UPDATE accounts SET policy_key = NULL, pending_policy_key = NULL,"
    " provisioned_at = NULL WHERE device_id = ? AND username = ?"
)

# -- remote wipe -------------------------------------------------------------------

WIPE_DEVICE_ACCOUNTS = (
    "UPDATE accounts SET wipe_state = ?, wipe_kind = ?, wipe_requested_at = ?,"
    " wipe_acknowledged_at = NULL WHERE device_id = ?"
)
WIPE_ONE_ACCOUNT = (
    "UPDATE accounts SET wipe_state = ?, wipe_kind = ?, wipe_requested_at = ?,"
    " wipe_acknowledged_at = NULL WHERE device_id = ? AND username = ?"
)
CANCEL_WIPES = (
    "UPDATE accounts SET wipe_state = ?, wipe_kind = NULL, wipe_requested_at = NULL"
    " WHERE device_id = ? AND wipe_state = ?"
)
ACKNOWLEDGE_DEVICE_WIPE = (
    "UPDATE accounts SET wipe_state = ?, wipe_acknowledged_at = ?"
    " WHERE device_id = ? AND wipe_state = ? AND wipe_kind = ?"
)
ACKNOWLEDGE_ACCOUNT_WIPE = (
    "UPDATE accounts SET wipe_state = ?, wipe_acknowledged_at = ?"
    " WHERE device_id = ? AND username = ? AND wipe_state = ?"
)

# -- folders -----------------------------------------------------------------------

FOLDER_COLUMNS = (
    "username, server_id, parent_id, display_name, folder_type, backend_id,"
    " created_rev, changed_rev, deleted_rev"
)
SELECT_COUNTER = "SELECT revision, last_server_id FROM folder_counters WHERE username = ?"
CREATE_COUNTER = (
    "INSERT INTO folder_counters (username, revision, last_server_id) VALUES (?, 0, 0)"
    " ON CONFLICT (username) DO NOTHING"
)
#: Raise the revision (and lock the user's counter row until commit).
BUMP_REVISION = (
    "UPDATE folder_counters SET revision = revision + 1 WHERE username = ?"
    " RETURNING revision"
)
NEXT_SERVER_ID = (
    "UPDATE folder_counters SET last_server_id = last_server_id + 1 WHERE username = ?"
    " RETURNING last_server_id"
)
SELECT_LIVE_FOLDERS = (
    f"SELECT {FOLDER_COLUMNS} FROM folders WHERE username = ? AND deleted_rev IS NULL"
)
SELECT_LIVE_FOLDER = (
    f"SELECT {FOLDER_COLUMNS} FROM folders"
    " WHERE username = ? AND server_id = ? AND deleted_rev IS NULL"
)
SELECT_LIVE_CHILDREN = (
    "SELECT server_id FROM folders"
    " WHERE username = ? AND parent_id = ? AND deleted_rev IS NULL"
)
SELECT_LIVE_SIBLING = (
    "SELECT server_id FROM folders WHERE username = ? AND parent_id = ?"
    " AND display_name = ? AND deleted_rev IS NULL"
)
INSERT_FOLDER = (
    f"INSERT INTO folders ({FOLDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)"
)
UPDATE_FOLDER = (
    "UPDATE folders SET display_name = ?, parent_id = ?, backend_id = ?, changed_rev = ?"
    " WHERE username = ? AND server_id = ?"
)
MARK_FOLDER_DELETED = (
    "UPDATE folders SET deleted_rev = ? WHERE username = ? AND server_id = ?"
    " AND deleted_rev IS NULL"
)
#: Folders touched in (since, until]: the caller sorts them into added,
#: changed and deleted.
SELECT_FOLDERS_TOUCHED = (
    f"SELECT {FOLDER_COLUMNS} FROM folders WHERE username = ?"
    " AND ((created_rev > ? AND created_rev <= ?)"
    " OR (changed_rev > ? AND changed_rev <= ?)"
    " OR (deleted_rev > ? AND deleted_rev <= ?))"
)

# -- sync states -------------------------------------------------------------------

SELECT_SYNC_STATE = (
    "SELECT sync_key, state, previous_key, previous_state FROM sync_states"
    " WHERE device_id = ? AND username = ? AND collection_id = ?"
)
ACCOUNT_EXISTS = "SELECT 1 FROM accounts WHERE device_id = ? AND username = ?"
REPLACE_SYNC_STATE = (
    "INSERT INTO sync_states (device_id, username, collection_id, sync_key, state,"
    " previous_key, previous_state) VALUES (?, ?, ?, ?, ?, NULL, NULL)"
    " ON CONFLICT (device_id, username, collection_id) DO UPDATE SET"
    " sync_key = excluded.sync_key, state = excluded.state,"
    " previous_key = NULL, previous_state = NULL"
)
ADVANCE_SYNC_STATE = (
    "UPDATE sync_states SET previous_key = sync_key, previous_state = state,"
    " sync_key = ?, state = ?"
    " WHERE device_id = ? AND username = ? AND collection_id = ? AND sync_key = ?"
)
DELETE_SYNC_STATES = "DELETE FROM sync_states WHERE device_id = ? AND username = ?"

# -- mail follow-up flags ------------------------------------------------------------

SELECT_MAIL_FLAGS = (
    "SELECT uid, data FROM mail_flags WHERE username = ? AND mailbox = ?"
    " AND uidvalidity = ? AND uid >= ? AND uid <= ?"
)
UPSERT_MAIL_FLAG = (
    "INSERT INTO mail_flags (username, mailbox, uidvalidity, uid, data) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (username, mailbox, uidvalidity, uid) DO UPDATE SET data = excluded.data"
)
DELETE_MAIL_FLAG = (
    "DELETE FROM mail_flags WHERE username = ? AND mailbox = ? AND uidvalidity = ? AND uid = ?"
)
DELETE_MAILBOX_FLAGS = "DELETE FROM mail_flags WHERE username = ? AND mailbox = ?"
DELETE_MAILBOX_FLAGS_EXCEPT = (
    "DELETE FROM mail_flags WHERE username = ? AND mailbox = ? AND uidvalidity <> ?"
)
