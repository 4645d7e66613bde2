-- Mail waiting to be sent, written in the same transaction as whatever it
-- carries (a reset or activation link). A replica claims a due row by setting
-- `claimed_until` (a lease), sends it, then sets `sent_at`; a failed try sets
-- `next_attempt_at` further out. Sent rows are purged after a week.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body_text       TEXT    NOT NULL,
    body_html       TEXT,
    created_at      BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    claimed_until   BIGINT,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (sent_at, next_attempt_at);
