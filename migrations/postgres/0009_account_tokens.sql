-- Single-use links mailed to people: an invitation, an activation (with the
-- registration it completes: name, e-mail, password hash, role) or a password
-- reset. Only the SHA-256 of the link's 256-bit token is kept; `id` is a
-- short public handle (invitations are listed and revoked by it).
CREATE TABLE account_tokens (
    token_hash    TEXT    PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    purpose       TEXT    NOT NULL CHECK (purpose IN ('invitation', 'activation', 'reset')),
    username      TEXT,
    email         TEXT,
    role          TEXT,
    password_hash TEXT,
    created_by    TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
CREATE INDEX account_tokens_by_email ON account_tokens (email);
CREATE INDEX account_tokens_by_username ON account_tokens (username);
