CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    UNIQUE,
    name          TEXT,
    kind          TEXT    NOT NULL CHECK (kind IN ('user', 'api')),
    status        TEXT    NOT NULL CHECK (status IN ('enabled', 'disabled')),
    role          TEXT    NOT NULL,
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_login_at INTEGER
);

-- Every change that must reach other replicas' caches: polled by each replica.
CREATE TABLE changes (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    at      INTEGER NOT NULL
);
