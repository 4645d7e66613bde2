-- Revoked Gatehouse tokens (by jti), kept until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        TEXT    PRIMARY KEY,
    expires_at BIGINT  NOT NULL
);

-- Token signing keys generated when the config names none (shared by replicas).
CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY,
    private_key TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- Failed sign-ins, per subject (`user:NAME` or `ip:ADDR`), for regulation.
CREATE TABLE login_failures (
    id      BIGSERIAL PRIMARY KEY,
    subject TEXT    NOT NULL,
    at      BIGINT  NOT NULL
);
CREATE INDEX login_failures_by_subject ON login_failures (subject, at);

-- Subjects refused until a time, after too many failures.
CREATE TABLE bans (
    subject TEXT    PRIMARY KEY,
    until   BIGINT  NOT NULL
);
