-- easyncd state store, schema version 1 (portable: SQLite and PostgreSQL).
-- Later versions add numbered delta files (delta_002_<what>.sql ...); a file
-- named <stem>.sqlite.sql or <stem>.postgresql.sql replaces <stem>.sql for
-- that engine only.

CREATE TABLE schema_version (
    version INTEGER NOT NULL
);

CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    device_type TEXT NOT NULL,
    user_agent TEXT,
    first_seen DOUBLE PRECISION,
    last_seen DOUBLE PRECISION,
    info TEXT NOT NULL DEFAULT '{}',
    trace BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE accounts (
    device_id TEXT NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    username TEXT NOT NULL,
    policy_key BIGINT,
    pending_policy_key BIGINT,
    provisioned_at DOUBLE PRECISION,
    wipe_state TEXT NOT NULL DEFAULT 'none',
    wipe_kind TEXT,
    wipe_requested_at DOUBLE PRECISION,
    wipe_acknowledged_at DOUBLE PRECISION,
    first_seen DOUBLE PRECISION,
    last_seen DOUBLE PRECISION,
    last_command TEXT,
    protocol_version TEXT,
    PRIMARY KEY (device_id, username)
);

CREATE INDEX accounts_username ON accounts (username);

-- One row per user who ever had a folder: the hierarchy revision and the
-- last server id handed out (server ids are never reused).
CREATE TABLE folder_counters (
    username TEXT PRIMARY KEY,
    revision BIGINT NOT NULL DEFAULT 0,
    last_server_id BIGINT NOT NULL DEFAULT 0
);

-- Deleted folders stay (deleted_rev set) so that changes between any two
-- revisions can be computed from the revision columns.
CREATE TABLE folders (
    username TEXT NOT NULL,
    server_id TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    folder_type INTEGER NOT NULL,
    backend_id TEXT NOT NULL,
    created_rev BIGINT NOT NULL,
    changed_rev BIGINT NOT NULL,
    deleted_rev BIGINT,
    PRIMARY KEY (username, server_id)
);

CREATE UNIQUE INDEX folders_live_name
    ON folders (username, parent_id, display_name) WHERE deleted_rev IS NULL;

CREATE TABLE sync_states (
    device_id TEXT NOT NULL,
    username TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    sync_key BIGINT NOT NULL,
    state TEXT NOT NULL,
    previous_key BIGINT,
    previous_state TEXT,
    PRIMARY KEY (device_id, username, collection_id),
    FOREIGN KEY (device_id, username)
        REFERENCES accounts (device_id, username) ON DELETE CASCADE
);
