CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT   NOT NULL UNIQUE,
    email         TEXT   UNIQUE,
    name          TEXT,
    kind          TEXT   NOT NULL CHECK (kind IN ('user', 'api')),
    status        TEXT   NOT NULL CHECK (status IN ('enabled', 'disabled')),
    role          TEXT   NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_login_at BIGINT
);

-- Every change that must reach other replicas' caches: polled by each replica.
CREATE TABLE changes (
    id      BIGSERIAL PRIMARY KEY,
    kind    TEXT   NOT NULL,
    subject TEXT   NOT NULL,
    at      BIGINT NOT NULL
);
