//! Second factors in the store: the encrypted TOTP secret of each user, its
//! single-use recovery codes, and the pending sign-ins that still owe a code.
//!
//! Every "use once" rule is one conditional `UPDATE` (a time step newer than
//! the last accepted, a recovery code not yet used), so two replicas racing
//! with the same code cannot both accept it.

use super::changes::record_change;
use super::{begin_write, now, unavailable, Store, StoreError};
use sqlx::Row;

/// A user's second factor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecondFactor {
    /// The encrypted secret (see `two_factor::SecretCipher`).
    pub secret: String,
    /// Confirmed with a code: from then on it is required at sign-in.
    pub confirmed: bool,
}

/// What a pending sign-in still owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingPurpose {
    /// A code from the enrolled authenticator (or a recovery code).
    Verify,
    /// Enrolment first: the user's role requires a second factor.
    Enrol,
}

impl PendingPurpose {
    fn as_str(self) -> &'static str {
        match self {
            PendingPurpose::Verify => "verify",
            PendingPurpose::Enrol => "enrol",
        }
    }
}

/// A password accepted, a second factor owed (the id itself is never
/// stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    pub id_hash: String,
    pub username: String,
    pub purpose: PendingPurpose,
    /// Where to go once signed in (already validated).
    pub return_to: String,
    pub expires_at: i64,
}

impl Store {
    /// The user's second factor, confirmed or not.
    pub async fn second_factor(
        &self,
        username: &str,
    ) -> Result<Option<StoredSecondFactor>, StoreError> {
        let username = username.to_owned();
        self.run(|pool| async move {
            let row = sqlx::query("SELECT secret, confirmed FROM two_factor WHERE username = $1")
                .bind(username)
                .fetch_optional(&pool)
                .await
                .map_err(unavailable)?;
            row.map(|r| -> Result<_, sqlx::Error> {
                Ok(StoredSecondFactor {
                    secret: r.try_get("secret")?,
                    confirmed: r.try_get::<i32, _>("confirmed")? != 0,
                })
            })
            .transpose()
            .map_err(unavailable)
        })
        .await
    }

    /// Start (or restart) an enrolment with a new encrypted secret.
    /// `Conflict` when a confirmed second factor exists already.
    pub async fn begin_second_factor(
        &self,
        username: &str,
        secret: &str,
    ) -> Result<(), StoreError> {
        let (username, secret) = (username.to_owned(), secret.to_owned());
        self.run(|pool| async move {
            let done = sqlx::query(
                "INSERT INTO two_factor (username, secret, confirmed, last_step, created_at) \
                 VALUES ($1, $2, 0, 0, $3) \
                 ON CONFLICT (username) DO UPDATE SET secret = excluded.secret, \
                 last_step = 0, created_at = excluded.created_at \
                 WHERE two_factor.confirmed = 0",
            )
            .bind(username.clone())
            .bind(secret)
            .bind(now())
            .execute(&pool)
            .await
            .map_err(unavailable)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "second factor of `{username}`"
                )));
            }
            Ok(())
        })
        .await
    }

    /// Confirm an enrolment with the code of time step `step`, replacing any
    /// recovery codes by `code_hashes`, on every replica. `NotFound` when no
    /// unconfirmed enrolment takes that step (already confirmed, or replayed).
    pub async fn confirm_second_factor(
        &self,
        username: &str,
        step: i64,
        code_hashes: Vec<String>,
    ) -> Result<(), StoreError> {
        let username = username.to_owned();
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            let done = sqlx::query(
                "UPDATE two_factor SET confirmed = 1, last_step = $2 \
                 WHERE username = $1 AND confirmed = 0 AND last_step < $2",
            )
            .bind(username.clone())
            .bind(step)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("enrolment of `{username}`")));
            }
            sqlx::query("DELETE FROM recovery_codes WHERE username = $1")
                .bind(username.clone())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            for hash in code_hashes {
                sqlx::query("INSERT INTO recovery_codes (username, code_hash) VALUES ($1, $2)")
                    .bind(username.clone())
                    .bind(hash)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            }
            record_change(&mut tx, "user", &username).await?;
            tx.commit().await.map_err(unavailable)
        })
        .await
    }

    /// Every stored secret, by user name (to re-seal them after a key change).
    pub async fn sealed_second_factors(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.run(|pool| async move {
            let rows = sqlx::query("SELECT username, secret FROM two_factor ORDER BY username")
                .fetch_all(&pool)
                .await
                .map_err(unavailable)?;
            rows.iter()
                .map(|r| Ok((r.try_get("username")?, r.try_get("secret")?)))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(unavailable)
        })
        .await
    }

    /// Replace the sealed secret `old` by `new` (the same secret under the
    /// current key); false when the row changed meanwhile.
    pub async fn reseal_second_factor(
        &self,
        username: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let (username, old, new) = (username.to_owned(), old.to_owned(), new.to_owned());
        self.run(|pool| async move {
            let done = sqlx::query(
                "UPDATE two_factor SET secret = $3 WHERE username = $1 AND secret = $2",
            )
            .bind(username)
            .bind(old)
            .bind(new)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    /// Accept time step `step` for a confirmed second factor, once: false
    /// when it (or a newer one) was accepted before.
    pub async fn use_time_step(&self, username: &str, step: i64) -> Result<bool, StoreError> {
        let username = username.to_owned();
        self.run(|pool| async move {
            let done = sqlx::query(
                "UPDATE two_factor SET last_step = $2 \
                 WHERE username = $1 AND confirmed = 1 AND last_step < $2",
            )
            .bind(username)
            .bind(step)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    /// Spend a recovery code (by its hash): false when unknown or spent.
    pub async fn use_recovery_code(&self, username: &str, hash: &str) -> Result<bool, StoreError> {
        let (username, hash) = (username.to_owned(), hash.to_owned());
        self.run(|pool| async move {
            let done = sqlx::query(
                "UPDATE recovery_codes SET used_at = $3 \
                 WHERE username = $1 AND code_hash = $2 AND used_at IS NULL",
            )
            .bind(username)
            .bind(hash)
            .bind(now())
            .execute(&pool)
            .await
            .map_err(unavailable)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    /// How many recovery codes are left unused.
    pub async fn recovery_codes_left(&self, username: &str) -> Result<i64, StoreError> {
        let username = username.to_owned();
        self.run(|pool| async move {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM recovery_codes WHERE username = $1 AND used_at IS NULL",
            )
            .bind(username)
            .fetch_one(&pool)
            .await
            .map_err(unavailable)?;
            row.try_get::<i64, _>("n").map_err(unavailable)
        })
        .await
    }

    /// Remove the user's second factor and recovery codes, on every
    /// replica. `NotFound` when there was none.
    pub async fn delete_second_factor(&self, username: &str) -> Result<(), StoreError> {
        let username = username.to_owned();
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            let done = sqlx::query("DELETE FROM two_factor WHERE username = $1")
                .bind(username.clone())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            sqlx::query("DELETE FROM recovery_codes WHERE username = $1")
                .bind(username.clone())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!(
                    "second factor of `{username}`"
                )));
            }
            record_change(&mut tx, "user", &username).await?;
            tx.commit().await.map_err(unavailable)
        })
        .await
    }

    /// Remember a sign-in that still owes a second factor.
    pub async fn create_pending_login(&self, pending: PendingLogin) -> Result<(), StoreError> {
        self.run(|pool| async move {
            sqlx::query(
                "INSERT INTO pending_logins (id_hash, username, purpose, return_to, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(pending.id_hash)
            .bind(pending.username)
            .bind(pending.purpose.as_str())
            .bind(pending.return_to)
            .bind(pending.expires_at)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    /// The pending sign-in with this id hash, if it has not expired.
    pub async fn pending_login(&self, id_hash: &str) -> Result<Option<PendingLogin>, StoreError> {
        let id_hash = id_hash.to_owned();
        self.run(|pool| async move {
            let row = sqlx::query(
                "SELECT id_hash, username, purpose, return_to, expires_at FROM pending_logins \
                 WHERE id_hash = $1 AND expires_at > $2",
            )
            .bind(id_hash)
            .bind(now())
            .fetch_optional(&pool)
            .await
            .map_err(unavailable)?;
            row.map(|r| -> Result<_, sqlx::Error> {
                let purpose = match r.try_get::<String, _>("purpose")?.as_str() {
                    "enrol" => PendingPurpose::Enrol,
                    _ => PendingPurpose::Verify,
                };
                Ok(PendingLogin {
                    id_hash: r.try_get("id_hash")?,
                    username: r.try_get("username")?,
                    purpose,
                    return_to: r.try_get("return_to")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .transpose()
            .map_err(unavailable)
        })
        .await
    }

    /// End a pending sign-in (used, or abandoned): false when it was gone
    /// already, so two tabs cannot both turn one into a session.
    pub async fn finish_pending_login(&self, id_hash: &str) -> Result<bool, StoreError> {
        let id_hash = id_hash.to_owned();
        self.run(|pool| async move {
            let done = sqlx::query("DELETE FROM pending_logins WHERE id_hash = $1")
                .bind(id_hash)
                .execute(&pool)
                .await
                .map_err(unavailable)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }
}
