-- Signet schema v3 (SQLite): certificates, internal CAs, CRL numbers and time-stamp serials.
-- Times are Unix nanoseconds (UTC), as everywhere else. A validity bound beyond what that holds
-- (before 1677 or after 2262-04-11, e.g. RFC 5280's 99991231235959Z "no expiration") is stored
-- clamped to the nearest representable instant.

-- What a key signs (KeyUsage::as_str): existing keys sign clients' digests.
ALTER TABLE keys ADD COLUMN usage TEXT NOT NULL DEFAULT 'signing'
    CHECK (usage IN ('signing', 'certificate_authority', 'timestamping'));
-- The key's KeyPolicy as a JSON object; `{}` is the default policy.
ALTER TABLE keys ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';

-- A certificate attached to one key version. `serial` is lowercase hex, subject and issuer are
-- RFC 4514 strings. `der` is the certificate; `chain` its issuers, nearest first, each as a
-- 4-byte big-endian length followed by that many bytes of DER (empty when there are none).
-- (issuer, serial) is unique: RFC 5280 §4.1.2.2 forbids an issuer reusing a serial.
-- `ca` names the internal CA that issued it; no foreign key, since a CA's own certificates
-- are stored before the CA is.
CREATE TABLE certificates (
    id                TEXT PRIMARY KEY,
    key_id            TEXT NOT NULL REFERENCES keys(id),
    key_version       INTEGER NOT NULL,
    kind              TEXT NOT NULL
        CHECK (kind IN ('root_ca', 'issuing_ca', 'code_signing', 'timestamping', 'imported')),
    serial            TEXT NOT NULL,
    subject           TEXT NOT NULL,
    issuer            TEXT NOT NULL,
    ca                TEXT,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    der               BLOB NOT NULL,
    chain             BLOB NOT NULL,
    created_at        INTEGER NOT NULL,
    revoked_at        INTEGER,
    revocation_reason TEXT
        CHECK (revocation_reason IN ('unspecified', 'key_compromise', 'ca_compromise',
            'affiliation_changed', 'superseded', 'cessation_of_operation')),
    -- Revoked means both a time and a reason.
    CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL)),
    UNIQUE (issuer, serial),
    FOREIGN KEY (key_id, key_version) REFERENCES key_versions (key_id, version)
);
CREATE INDEX certificates_key ON certificates (key_id, created_at);

-- An internal CA. Keys by name, certificates by id.
CREATE TABLE cas (
    name                TEXT PRIMARY KEY,
    root_key            TEXT NOT NULL,
    issuing_key         TEXT NOT NULL,
    root_certificate    TEXT NOT NULL,
    issuing_certificate TEXT NOT NULL,
    created_at          INTEGER NOT NULL
);

-- The last CRL number each CA used (RFC 5280 §5.2.3); a CA without a row has used none.
CREATE TABLE crl_numbers (
    ca   TEXT PRIMARY KEY,
    last INTEGER NOT NULL CHECK (last > 0)
);

-- Every time-stamp token serial ever issued, so none repeats (RFC 3161 §2.4.2).
CREATE TABLE timestamp_serials (
    serial    TEXT PRIMARY KEY,
    issued_at INTEGER NOT NULL
);
