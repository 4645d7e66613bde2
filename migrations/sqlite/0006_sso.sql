-- Where a session came from when it was started through an identity provider
-- (all NULL for password sign-ins): the provider's id in the config, the ID
-- token's `sub` and `sid` (for back-channel logout) and the raw ID token
-- (the id_token_hint of RP-initiated logout).
ALTER TABLE sessions ADD COLUMN sso_provider TEXT;
ALTER TABLE sessions ADD COLUMN sso_subject TEXT;
ALTER TABLE sessions ADD COLUMN sso_sid TEXT;
ALTER TABLE sessions ADD COLUMN id_token TEXT;
CREATE INDEX sessions_by_sso_subject ON sessions (sso_provider, sso_subject);
CREATE INDEX sessions_by_sso_sid ON sessions (sso_provider, sso_sid);

-- An identity at a provider, linked to a local user. Never keyed by e-mail or name.
CREATE TABLE sso_links (
    provider      TEXT    NOT NULL,
    issuer        TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    username      TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER,
    PRIMARY KEY (provider, issuer, subject)
);
CREATE INDEX sso_links_by_user ON sso_links (username);

-- A sign-in sent to a provider, not back yet: single use, short-lived.
-- Keyed by the SHA-256 of `state`.
CREATE TABLE sso_pending (
    state_hash    TEXT    PRIMARY KEY,
    provider      TEXT    NOT NULL,
    nonce         TEXT    NOT NULL,
    pkce_verifier TEXT    NOT NULL,
    return_to     TEXT    NOT NULL,
    expires_at    INTEGER NOT NULL
);
