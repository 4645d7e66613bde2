-- Where a session was started from, shown to its owner and to admins.
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
-- The audit trail: one row per security event (sign-ins, sign-outs, second
-- factor, passwords, API keys, registration, admin actions). Appended only;
-- housekeeping deletes rows older than `audit.retention`.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor      TEXT,
    action     TEXT NOT NULL,
    target     TEXT,
    ip         TEXT,
    user_agent TEXT,
    outcome    TEXT NOT NULL,
    details    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_by_time ON audit_events (at);
CREATE INDEX audit_events_by_actor ON audit_events (actor, at);
CREATE INDEX audit_events_by_target ON audit_events (target, at);
