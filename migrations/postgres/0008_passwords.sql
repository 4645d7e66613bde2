-- Password changes: when a user's password last changed (NULL: not since
-- this column came), and a counter bumped with every change. Gatehouse's
-- tokens carry the counter they were issued under; one issued under an
-- older value is refused, on every replica.
ALTER TABLE users ADD COLUMN credentials_changed_at BIGINT;
ALTER TABLE users ADD COLUMN credentials_version BIGINT NOT NULL DEFAULT 0;
