-- Signet schema v2 (SQLite): the audit log becomes a Merkle transparency log.
-- `entry` holds the exact bytes of each leaf (canonical JSON); `leaf_hash` is
-- SHA-256(0x00 || entry) (RFC 9162 §2.1.1), kept so the tree loads without rehashing.
ALTER TABLE audit_log ADD COLUMN leaf_hash BLOB;
ALTER TABLE audit_log ADD COLUMN digest TEXT;
-- No index on `digest`: digests are random, so such an index dirties a different page per
-- entry inside every durable commit (measured: ~60 µs per entry, the log's largest cost).
-- Searching by digest scans; `time` grows with `idx`, so its index is cheap.
CREATE INDEX audit_log_time ON audit_log (time, idx);

-- One signed checkpoint per commit (C2SP tlog-checkpoint in a signed note).
CREATE TABLE log_checkpoints (
    size       INTEGER PRIMARY KEY,
    root       BLOB NOT NULL,
    note       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TRIGGER log_checkpoints_no_update BEFORE UPDATE ON log_checkpoints
BEGIN SELECT RAISE(ABORT, 'log_checkpoints is append-only'); END;
CREATE TRIGGER log_checkpoints_no_delete BEFORE DELETE ON log_checkpoints
BEGIN SELECT RAISE(ABORT, 'log_checkpoints is append-only'); END;
