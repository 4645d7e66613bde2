-- TOTP second factors, by user name (stored and config-file users alike).
-- The secret is encrypted (XChaCha20-Poly1305, key from two_factor.encryption_key);
-- it only counts once confirmed. last_step is the newest time step accepted,
-- so a code is never accepted twice.
CREATE TABLE two_factor (
    username   TEXT    PRIMARY KEY,
    secret     TEXT    NOT NULL,
    confirmed  INTEGER NOT NULL DEFAULT 0,
    last_step  INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

-- Single-use recovery codes, kept as keyed hashes.
CREATE TABLE recovery_codes (
    username  TEXT    NOT NULL,
    code_hash TEXT    NOT NULL,
    used_at   INTEGER,
    PRIMARY KEY (username, code_hash)
);

-- A password accepted, a second factor still owed: not a session yet.
CREATE TABLE pending_logins (
    id_hash    TEXT    PRIMARY KEY,
    username   TEXT    NOT NULL,
    purpose    TEXT    NOT NULL CHECK (purpose IN ('verify', 'enrol')),
    return_to  TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
