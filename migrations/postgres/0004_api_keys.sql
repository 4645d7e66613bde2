-- API keys created by users and admins. The key itself is shown once; only
-- its SHA-256 (hex) is kept.
CREATE TABLE api_keys (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT    NOT NULL,
    username     TEXT    NOT NULL,
    sha256       TEXT    NOT NULL UNIQUE,
    -- Comma-separated permissions the key is narrowed to; NULL: the owner's.
    permissions  TEXT,
    expires_at   BIGINT,
    created_at   BIGINT  NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_by_user ON api_keys (username);
