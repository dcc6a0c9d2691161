-- Signet schema v1 (SQLite). Times are Unix nanoseconds (UTC).
CREATE TABLE keys (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    algorithm       TEXT NOT NULL,
    backend         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('active', 'disabled')),
    created_at      INTEGER NOT NULL,
    current_version INTEGER NOT NULL
);

-- `handle` is the backend's reference to the private key: for the software backend an
-- AES-256-GCM sealed PKCS#8 blob, never plaintext.
CREATE TABLE key_versions (
    key_id     TEXT NOT NULL REFERENCES keys(id),
    version    INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    handle     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, version)
);

-- Only a hash of each token's secret is stored.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER,
    created_by  TEXT NOT NULL
);

-- Append-only: the application never updates or deletes rows.
CREATE TABLE audit_log (
    idx      INTEGER PRIMARY KEY,
    time     INTEGER NOT NULL,
    action   TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    key_name TEXT,
    entry    TEXT NOT NULL
);
CREATE INDEX audit_log_key ON audit_log (key_name, idx);
CREATE INDEX audit_log_actor ON audit_log (actor_id, idx);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
