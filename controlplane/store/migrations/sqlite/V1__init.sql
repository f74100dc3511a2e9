-- Rampart store schema, version 1 (SQLite).
--
-- Kept parallel to ../postgres/V1__init.sql: same tables, columns and meaning; only the types
-- differ (STRICT tables; booleans are INTEGER 0/1; BLOB for BYTEA). Times are Unix
-- milliseconds. Enum columns are checked when read, not here. AUTOINCREMENT keeps ids from
-- being reused after a delete, as PostgreSQL's identity columns do.

CREATE TABLE meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
) STRICT;
INSERT INTO meta (id, generation) VALUES (1, 0);

CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    role          TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    -- Exactly one of the two: an Argon2 PHC string (humans) or a 32-byte keyed digest.
    password_hash TEXT,
    secret_digest BLOB,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE acl_rules (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_kind TEXT NOT NULL,
    subject_user TEXT REFERENCES accounts (name) ON DELETE CASCADE,
    subject_role TEXT,
    topic        TEXT NOT NULL,
    access       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX acl_rules_subject_user ON acl_rules (subject_user);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id       TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL,
    digest       BLOB NOT NULL,
    -- Plain text, not a foreign key: keys outlive the account that created them.
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

CREATE TABLE devices (
    guid              TEXT PRIMARY KEY NOT NULL,
    hostname          TEXT,
    friendly_name     TEXT,
    tenant_id         TEXT NOT NULL,
    dns_suffix        TEXT,
    mps_username      TEXT NOT NULL,
    mps_digest        BLOB,
    amt_password      BLOB,
    device_info       TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    connected         INTEGER NOT NULL DEFAULT 0,
    node              TEXT,
    last_connected    INTEGER,
    last_seen         INTEGER,
    last_disconnected INTEGER
) STRICT;
CREATE INDEX devices_hostname ON devices (hostname);
CREATE INDEX devices_friendly_name ON devices (friendly_name);
CREATE INDEX devices_tenant_id ON devices (tenant_id);

-- A device's tags, in the order given (pos), without duplicates.
CREATE TABLE device_tags (
    guid TEXT NOT NULL REFERENCES devices (guid) ON DELETE CASCADE,
    pos  INTEGER NOT NULL,
    tag  TEXT NOT NULL,
    PRIMARY KEY (guid, tag)
) STRICT;
CREATE INDEX device_tags_tag ON device_tags (tag);

CREATE TABLE sessions (
    token_digest BLOB PRIMARY KEY NOT NULL,
    csrf_digest  BLOB NOT NULL,
    account      TEXT NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_account ON sessions (account);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time    INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    source  TEXT,
    action  TEXT NOT NULL,
    object  TEXT,
    outcome TEXT NOT NULL,
    detail  TEXT
) STRICT;
CREATE INDEX audit_actor ON audit (actor);
CREATE INDEX audit_action ON audit (action);
CREATE INDEX audit_time ON audit (time);
