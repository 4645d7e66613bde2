-- Server-side sessions; the cookie carries a random id, only its SHA-256 is kept.
CREATE TABLE sessions (
    id_hash      TEXT    PRIMARY KEY,
    username     TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_user ON sessions (username);
