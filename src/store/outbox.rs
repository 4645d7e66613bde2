//! Mail waiting to be sent: the `outbox` table.
//!
//! Every mail is written here, in the same transaction as the token its link
//! carries ([`enqueue_mail_in`]), so a link is never stored without its mail
//! nor mailed without being stored. A sender claims one due mail at a time
//! with a single `UPDATE … RETURNING` that sets a lease (`claimed_until`): on
//! PostgreSQL the row is picked `FOR UPDATE SKIP LOCKED`, on SQLite the
//! statement holds the write lock, so two replicas never claim the same mail.
//! The store keeps the plain text of a mail only; `mail` renders and sends it.

use super::{begin_write, now, unavailable, Backend, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::sync::Arc;

/// A mail to write to the outbox: rendered, addressed, plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The recipient, an address or `Name <address>`.
    pub to: String,
    pub subject: String,
    pub text: String,
    /// The HTML alternative, when there is one.
    pub html: Option<String>,
}

/// A mail claimed for sending: nobody else claims it until the lease ends
/// or it is marked sent or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMail {
    pub id: i64,
    pub mail: OutgoingMail,
    /// Failed tries so far.
    pub attempts: i64,
    /// Why the last try failed.
    pub last_error: Option<String>,
}

/// One outbox row, as stored (for tests and inspection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub mail: OutgoingMail,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub claimed_until: Option<i64>,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

/// How long sent mail is kept before `purge` drops it.
pub(super) const KEEP_SENT_SECS: i64 = 7 * 24 * 3600;

/// Write `mail` to the outbox inside `tx`, due at once; the new row's id.
/// Whoever commits `tx` should then call [`Store::wake_outbox`].
pub(crate) async fn enqueue_mail_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    mail: &OutgoingMail,
) -> Result<i64, StoreError> {
    let t = now();
    let row = sqlx::query(
        "INSERT INTO outbox (recipient, subject, body_text, body_html, created_at, attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $5) RETURNING id",
    )
    .bind(mail.to.clone())
    .bind(mail.subject.clone())
    .bind(mail.text.clone())
    .bind(mail.html.clone())
    .bind(t)
    .fetch_one(&mut **tx)
    .await
    .map_err(unavailable)?;
    row.try_get::<i64, _>("id").map_err(unavailable)
}

fn outgoing(r: &AnyRow) -> Result<OutgoingMail, sqlx::Error> {
    Ok(OutgoingMail {
        to: r.try_get("recipient")?,
        subject: r.try_get("subject")?,
        text: r.try_get("body_text")?,
        html: r.try_get("body_html")?,
    })
}

const RETURNED: &str = "id, recipient, subject, body_text, body_html, attempts, last_error";

impl Store {
    /// Write `mail` to the outbox on its own, due at once, and wake this
    /// process's sender; the new row's id.
    pub async fn enqueue_mail(&self, mail: &OutgoingMail) -> Result<i64, StoreError> {
        let mail = mail.clone();
        let id = self
            .run(|pool| async move {
                let mut tx = begin_write(&pool).await?;
                let id = enqueue_mail_in(&mut tx, &mail).await?;
                tx.commit().await.map_err(unavailable)?;
                Ok(id)
            })
            .await?;
        self.wake_outbox();
        Ok(id)
    }

    /// Tell this process's sender that mail is waiting (after committing a
    /// transaction that used [`enqueue_mail_in`]). Senders of other processes
    /// find it at their next poll.
    pub fn wake_outbox(&self) {
        self.outbox.notify_one();
    }

    /// What [`Store::wake_outbox`] notifies (the sender waits on it).
    pub fn outbox_wakeups(&self) -> Arc<tokio::sync::Notify> {
        self.outbox.clone()
    }

    /// Claim one mail that is due at `now` (not sent, `next_attempt_at` passed,
    /// not leased) for `lease` seconds, oldest due first. Of two callers,
    /// here or on another replica, only one gets a given mail.
    pub async fn claim_mail(
        &self,
        now: i64,
        lease: i64,
    ) -> Result<Option<ClaimedMail>, StoreError> {
        let pick = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET claimed_until = $1 WHERE id = (\
               SELECT id FROM outbox \
               WHERE sent_at IS NULL AND next_attempt_at <= $2 \
                 AND (claimed_until IS NULL OR claimed_until <= $2) \
               ORDER BY next_attempt_at, id LIMIT 1 {pick}) \
             RETURNING {RETURNED}"
        );
        self.run(|pool| async move {
            let row = sqlx::query(&sql)
                .bind(now + lease)
                .bind(now)
                .fetch_optional(&pool)
                .await
                .map_err(unavailable)?;
            row.map(|r| -> Result<ClaimedMail, sqlx::Error> {
                Ok(ClaimedMail {
                    id: r.try_get("id")?,
                    mail: outgoing(&r)?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .transpose()
            .map_err(unavailable)
        })
        .await
    }

    /// The mail was delivered: it is never claimed again.
    pub async fn mark_mail_sent(&self, id: i64) -> Result<(), StoreError> {
        self.run(|pool| async move {
            sqlx::query("UPDATE outbox SET sent_at = $1, claimed_until = NULL WHERE id = $2")
                .bind(now())
                .bind(id)
                .execute(&pool)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    /// A try failed with `error`: count it, and make the mail due again at
    /// `next_attempt_at`.
    pub async fn mark_mail_failed(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let error = error.to_owned();
        self.run(|pool| async move {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, \
                 claimed_until = NULL, last_error = $2 WHERE id = $3",
            )
            .bind(next_attempt_at)
            .bind(error)
            .bind(id)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    /// One outbox row, sent or not.
    pub async fn outbox_entry(&self, id: i64) -> Result<Option<OutboxEntry>, StoreError> {
        self.run(|pool| async move {
            let row = sqlx::query(
                "SELECT id, recipient, subject, body_text, body_html, created_at, attempts, \
                 next_attempt_at, claimed_until, sent_at, last_error FROM outbox WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&pool)
            .await
            .map_err(unavailable)?;
            row.map(|r| -> Result<OutboxEntry, sqlx::Error> {
                Ok(OutboxEntry {
                    id: r.try_get("id")?,
                    mail: outgoing(&r)?,
                    created_at: r.try_get("created_at")?,
                    attempts: r.try_get("attempts")?,
                    next_attempt_at: r.try_get("next_attempt_at")?,
                    claimed_until: r.try_get("claimed_until")?,
                    sent_at: r.try_get("sent_at")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .transpose()
            .map_err(unavailable)
        })
        .await
    }

    /// How many mails wait to be sent.
    pub async fn unsent_mail_count(&self) -> Result<i64, StoreError> {
        self.scalar("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")
            .await
    }
}
