//! The [`Sender`]: each replica's task that empties the outbox.
//!
//! It claims one due mail at a time (a lease, so no other replica takes it
//! meanwhile), sends it over SMTP and marks it sent; a failed try is counted
//! and the mail is due again after [`backoff`]. It looks every two seconds,
//! and at once when this process enqueues mail ([`Store::wake_outbox`]).
//! Each failure is logged once at `warn`, with its cause; the same cause on
//! the next tries of that mail only at `debug`.

use super::smtp::{self, Transport};
use super::{MailError, SmtpSettings};
use crate::store::{unix_now, ClaimedMail, Store};
use lettre::AsyncTransport;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often the outbox is read when nothing wakes the sender.
const POLL: Duration = Duration::from_secs(2);

/// How long a claimed mail stays out of other senders' reach: well past
/// the SMTP timeout, so only a sender that died gives its mail away.
const LEASE_SECS: i64 = 120;

/// Seconds until the next try of a mail that failed `attempts` times:
/// 2, 4, 8, 16, 32, then every 60.
pub fn backoff(attempts: i64) -> i64 {
    (1_i64 << attempts.clamp(1, 6)).min(60)
}

/// Delivers the outbox through one SMTP server.
pub struct Sender {
    store: Store,
    settings: SmtpSettings,
    transport: Transport,
    wake: Arc<Notify>,
}

impl Sender {
    pub fn new(store: Store, settings: &SmtpSettings) -> Result<Sender, MailError> {
        Ok(Sender {
            transport: smtp::transport(settings)?,
            settings: settings.clone(),
            wake: store.outbox_wakeups(),
            store,
        })
    }

    /// Deliver mail until the process ends.
    pub async fn run(self) {
        let mut store_failing = false;
        loop {
            loop {
                match self.store.claim_mail(unix_now(), LEASE_SECS).await {
                    Ok(claimed) => {
                        if store_failing {
                            tracing::info!("the outbox can be read again");
                            store_failing = false;
                        }
                        let Some(mail) = claimed else { break };
                        self.deliver(mail).await;
                    }
                    Err(e) => {
                        if !store_failing {
                            tracing::warn!(error = %e, "cannot read the mail outbox");
                            store_failing = true;
                        }
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Send one claimed mail; mark it sent, or failed with its next try.
    async fn deliver(&self, claimed: ClaimedMail) {
        let mail = &claimed.mail;
        let sent = match smtp::message(
            &self.settings.from,
            &mail.to,
            &mail.subject,
            &mail.text,
            mail.html.as_deref(),
        ) {
            Ok(message) => self
                .transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| smtp::describe(&e, &self.settings)),
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(()) => {
                if claimed.attempts > 0 {
                    tracing::info!(
                        mail = claimed.id,
                        failed_tries = claimed.attempts,
                        "mail sent after earlier failures"
                    );
                }
                if let Err(e) = self.store.mark_mail_sent(claimed.id).await {
                    tracing::warn!(mail = claimed.id, error = %e, "mail sent but not marked so; it may be sent again");
                }
            }
            Err(cause) => {
                let attempts = claimed.attempts + 1;
                let retry_in = backoff(attempts);
                if claimed.last_error.as_deref() == Some(cause.as_str()) {
                    tracing::debug!(mail = claimed.id, attempts, retry_in, cause = %cause, "mail not sent, again");
                } else {
                    tracing::warn!(mail = claimed.id, attempts, retry_in, cause = %cause, "mail not sent; trying again later");
                }
                let next = unix_now() + retry_in;
                if let Err(e) = self.store.mark_mail_failed(claimed.id, next, &cause).await {
                    tracing::warn!(mail = claimed.id, error = %e, "a failed mail cannot be marked so; it is tried again when its lease ends");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let waits: Vec<i64> = (1..=8).map(backoff).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(0), 2);
        assert_eq!(backoff(1000), 60);
    }
}
