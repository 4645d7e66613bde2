//! Mailed single-use links in the store: the `account_tokens` table.
//!
//! An invitation, an activation (holding the registration it completes) or a
//! password reset. Only the SHA-256 of the link's token is stored. A token is
//! written in the same transaction as the mail that carries it (through the
//! outbox), and used with one `UPDATE … RETURNING`, so of two replicas only
//! one gets it.

use super::outbox::{enqueue_mail_in, OutgoingMail};
use super::users::{insert_user_row, NewUser, StoredUser};
use super::{begin_write, is_unique_violation, unavailable, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

/// What a mailed link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Register even while registration is closed, with a preset role.
    Invitation,
    /// Complete a registration (invite mode) by proving the address.
    Activation,
    /// Set a new password.
    Reset,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Invitation => "invitation",
            TokenPurpose::Activation => "activation",
            TokenPurpose::Reset => "reset",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "invitation" => Some(TokenPurpose::Invitation),
            "activation" => Some(TokenPurpose::Activation),
            "reset" => Some(TokenPurpose::Reset),
            _ => None,
        }
    }
}

/// A mailed link as stored (its token only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountToken {
    pub token_hash: String,
    /// A short public handle (invitations are listed and revoked by it).
    pub id: String,
    pub purpose: TokenPurpose,
    pub username: Option<String>,
    pub email: Option<String>,
    pub role: Option<String>,
    /// A registration waiting for activation keeps its password hash here.
    pub password_hash: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

const COLUMNS: &str = "token_hash, id, purpose, username, email, role, password_hash, created_by, created_at, expires_at, used_at";

fn from_row(r: &AnyRow) -> Result<AccountToken, sqlx::Error> {
    let purpose: String = r.try_get("purpose")?;
    Ok(AccountToken {
        token_hash: r.try_get("token_hash")?,
        id: r.try_get("id")?,
        purpose: TokenPurpose::parse(&purpose)
            .ok_or_else(|| sqlx::Error::Decode(format!("token purpose `{purpose}`").into()))?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        role: r.try_get("role")?,
        password_hash: r.try_get("password_hash")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
    })
}

async fn use_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    token_hash: &str,
    purpose: TokenPurpose,
    now: i64,
) -> Result<Option<AccountToken>, StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE account_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
         RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(token_hash.to_owned())
    .bind(purpose.as_str())
    .fetch_optional(&mut **tx)
    .await
    .map_err(unavailable)?;
    row.as_ref().map(from_row).transpose().map_err(unavailable)
}

/// Write `token` in `tx`; `Conflict` when its hash or id exists.
async fn insert_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    token: &AccountToken,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO account_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(token.token_hash.clone())
    .bind(token.id.clone())
    .bind(token.purpose.as_str())
    .bind(token.username.clone())
    .bind(token.email.clone())
    .bind(token.role.clone())
    .bind(token.password_hash.clone())
    .bind(token.created_by.clone())
    .bind(token.created_at)
    .bind(token.expires_at)
    .bind(token.used_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("token {}", token.id))
        } else {
            unavailable(e)
        }
    })?;
    Ok(())
}

impl Store {
    /// Store a token and, in the same transaction, the mail carrying its link.
    pub async fn create_account_token(
        &self,
        token: AccountToken,
        mail: Option<OutgoingMail>,
    ) -> Result<(), StoreError> {
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            insert_in(&mut tx, &token).await?;
            if let Some(mail) = &mail {
                enqueue_mail_in(&mut tx, mail).await?;
            }
            tx.commit().await.map_err(unavailable)
        })
        .await
    }

    /// A usable token (unused, unexpired at `now`) with `purpose`, without
    /// using it (a page showing the form the link leads to).
    pub async fn account_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: i64,
    ) -> Result<Option<AccountToken>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.run(|pool| async move {
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM account_tokens \
                 WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3"
            ))
            .bind(token_hash)
            .bind(purpose.as_str())
            .bind(now)
            .fetch_optional(&pool)
            .await
            .map_err(unavailable)?;
            row.as_ref().map(from_row).transpose().map_err(unavailable)
        })
        .await
    }

    /// Use a token once: it must have `purpose` and be unused and unexpired
    /// at `now`. A second use (here or on another replica) gets `None`.
    pub async fn use_account_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: i64,
    ) -> Result<Option<AccountToken>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            let token = use_in(&mut tx, &token_hash, purpose, now).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(token)
        })
        .await
    }

    /// Use a token and create the user it admits, in one transaction: when
    /// the name or e-mail is taken, nothing changes (the token stays usable)
    /// and `Conflict` is answered. `None`: no such usable token.
    pub async fn create_user_with_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        user: NewUser,
        now: i64,
    ) -> Result<Option<StoredUser>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            if use_in(&mut tx, &token_hash, purpose, now).await?.is_none() {
                return Ok(None);
            }
            let created = insert_user_row(&mut *tx, &user, "1 = 1").await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(Some(created))
        })
        .await
    }

    /// Is a registration waiting for activation under this name or e-mail?
    pub async fn registration_pending(
        &self,
        username: &str,
        email: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (username, email) = (username.to_owned(), email.to_lowercase());
        self.run(|pool| async move {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM account_tokens \
                 WHERE purpose = 'activation' AND used_at IS NULL AND expires_at > $1 \
                 AND (username = $2 OR LOWER(email) = $3)",
            )
            .bind(now)
            .bind(username)
            .bind(email)
            .fetch_one(&pool)
            .await
            .map_err(unavailable)?;
            let n: i64 = row.try_get("n").map_err(unavailable)?;
            Ok(n > 0)
        })
        .await
    }

    /// The newest usable activation for `email` (to mail its link again).
    pub async fn pending_activation(
        &self,
        email: &str,
        now: i64,
    ) -> Result<Option<AccountToken>, StoreError> {
        let email = email.to_lowercase();
        self.run(|pool| async move {
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM account_tokens \
                 WHERE purpose = 'activation' AND used_at IS NULL AND expires_at > $1 \
                 AND LOWER(email) = $2 ORDER BY created_at DESC LIMIT 1"
            ))
            .bind(now)
            .bind(email)
            .fetch_optional(&pool)
            .await
            .map_err(unavailable)?;
            row.as_ref().map(from_row).transpose().map_err(unavailable)
        })
        .await
    }

    /// Replace a token by a new one (a resent link: the old link stops
    /// working), with the new link's mail, in one transaction.
    pub async fn replace_account_token(
        &self,
        old_hash: &str,
        new: AccountToken,
        mail: OutgoingMail,
    ) -> Result<(), StoreError> {
        let old_hash = old_hash.to_owned();
        let now = new.created_at;
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            sqlx::query("UPDATE account_tokens SET used_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(old_hash)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            insert_in(&mut tx, &new).await?;
            enqueue_mail_in(&mut tx, &mail).await?;
            tx.commit().await.map_err(unavailable)
        })
        .await
    }

    /// Open invitations (unused, unexpired at `now`), newest first.
    pub async fn invitations(&self, now: i64) -> Result<Vec<AccountToken>, StoreError> {
        self.run(|pool| async move {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM account_tokens \
                 WHERE purpose = 'invitation' AND used_at IS NULL AND expires_at > $1 \
                 ORDER BY created_at DESC"
            ))
            .bind(now)
            .fetch_all(&pool)
            .await
            .map_err(unavailable)?;
            rows.iter()
                .map(from_row)
                .collect::<Result<_, _>>()
                .map_err(unavailable)
        })
        .await
    }

    /// Revoke an open invitation by its public id; `false` when there is none.
    pub async fn revoke_invitation(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.run(|pool| async move {
            let done = sqlx::query(
                "UPDATE account_tokens SET used_at = $1 \
                 WHERE id = $2 AND purpose = 'invitation' AND used_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }
}
