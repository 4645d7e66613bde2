//! Single sign-on in the store: `sso_links` (an identity at a provider,
//! linked to a local user, always by provider, issuer and subject, never by
//! e-mail address or name) and `sso_pending` (a sign-in sent to a provider
//! and not back yet, kept by the hash of its `state`).
//!
//! A pending sign-in is taken with one `DELETE … RETURNING`, so of two
//! replicas racing with the same `state` only one gets it back. Where an SSO
//! session came from lives with the session (`sessions`).

use super::users::{insert_user_row, NewUser, StoredUser};
use super::{begin_write, is_unique_violation, now, unavailable, Store, StoreError};
use sqlx::Row;

/// A sign-in sent to a provider, not back yet (the `state` itself is never
/// stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoPending {
    pub state_hash: String,
    /// The provider's id in the config.
    pub provider: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier to redeem the code with.
    pub pkce_verifier: String,
    /// Where to go once signed in (already validated).
    pub return_to: String,
    pub expires_at: i64,
}

/// An identity at a provider: the provider's id in the config, the ID
/// token's `iss` and its `sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoIdentity {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
}

impl SsoIdentity {
    fn conflict(&self) -> StoreError {
        StoreError::Conflict(format!(
            "link of `{}` at `{}` ({})",
            self.subject, self.provider, self.issuer
        ))
    }
}

/// Link `id` to `username` through `executor` (the pool, or the
/// transaction that also creates the user); `Conflict` when it is linked.
async fn insert_link<'c, E>(executor: E, id: &SsoIdentity, username: &str) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let t = now();
    sqlx::query(
        "INSERT INTO sso_links (provider, issuer, subject, username, created_at, last_login_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(id.provider.clone())
    .bind(id.issuer.clone())
    .bind(id.subject.clone())
    .bind(username.to_owned())
    .bind(t)
    .execute(executor)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            id.conflict()
        } else {
            unavailable(e)
        }
    })?;
    Ok(())
}

impl Store {
    /// Remember a sign-in sent to a provider.
    pub async fn create_sso_pending(&self, p: SsoPending) -> Result<(), StoreError> {
        self.run(|pool| async move {
            sqlx::query(
                "INSERT INTO sso_pending (state_hash, provider, nonce, pkce_verifier, return_to, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(p.state_hash)
            .bind(p.provider)
            .bind(p.nonce)
            .bind(p.pkce_verifier)
            .bind(p.return_to)
            .bind(p.expires_at)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    /// Take (delete and return) the pending sign-in for this state hash, if
    /// it exists and has not expired at `now`. Single use: whoever takes it
    /// second (this replica or another) gets `None`; an expired one is
    /// deleted as well.
    pub async fn take_sso_pending(
        &self,
        state_hash: &str,
        now: i64,
    ) -> Result<Option<SsoPending>, StoreError> {
        let state_hash = state_hash.to_owned();
        self.run(|pool| async move {
            let row = sqlx::query(
                "DELETE FROM sso_pending WHERE state_hash = $1 \
                 RETURNING state_hash, provider, nonce, pkce_verifier, return_to, expires_at",
            )
            .bind(state_hash)
            .fetch_optional(&pool)
            .await
            .map_err(unavailable)?;
            let pending = row
                .map(|r| -> Result<_, sqlx::Error> {
                    Ok(SsoPending {
                        state_hash: r.try_get("state_hash")?,
                        provider: r.try_get("provider")?,
                        nonce: r.try_get("nonce")?,
                        pkce_verifier: r.try_get("pkce_verifier")?,
                        return_to: r.try_get("return_to")?,
                        expires_at: r.try_get("expires_at")?,
                    })
                })
                .transpose()
                .map_err(unavailable)?;
            Ok(pending.filter(|p| now < p.expires_at))
        })
        .await
    }

    /// The local user name linked to this identity.
    pub async fn sso_linked_user(&self, id: &SsoIdentity) -> Result<Option<String>, StoreError> {
        let id = id.clone();
        self.run(|pool| async move {
            let row = sqlx::query(
                "SELECT username FROM sso_links \
                 WHERE provider = $1 AND issuer = $2 AND subject = $3",
            )
            .bind(id.provider)
            .bind(id.issuer)
            .bind(id.subject)
            .fetch_optional(&pool)
            .await
            .map_err(unavailable)?;
            row.map(|r| r.try_get::<String, _>("username"))
                .transpose()
                .map_err(unavailable)
        })
        .await
    }

    /// Link an identity to an existing local user (stored or from the
    /// config), as its sign-in now: `Conflict` when it is linked already.
    pub async fn link_sso(&self, id: &SsoIdentity, username: &str) -> Result<(), StoreError> {
        let (id, username) = (id.clone(), username.to_owned());
        self.run(|pool| async move { insert_link(&pool, &id, &username).await })
            .await
    }

    /// Create a user (as [`Store::create_user`] does) and link the identity
    /// to it, in one transaction: when the name (or e-mail address, or the
    /// identity) is taken, nothing is written and `Conflict` is returned.
    pub async fn create_sso_user(
        &self,
        user: NewUser,
        id: &SsoIdentity,
    ) -> Result<StoredUser, StoreError> {
        let id = id.clone();
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            let created = insert_user_row(&mut *tx, &user, "1 = 1").await?;
            insert_link(&mut *tx, &id, &created.record.username).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(created)
        })
        .await
    }

    /// Record an SSO sign-in on the link (`last_login_at`); `NotFound` when
    /// the identity is not linked.
    pub async fn touch_sso_link(&self, id: &SsoIdentity, at: i64) -> Result<(), StoreError> {
        let id = id.clone();
        self.run(|pool| async move {
            let done = sqlx::query(
                "UPDATE sso_links SET last_login_at = $1 \
                 WHERE provider = $2 AND issuer = $3 AND subject = $4",
            )
            .bind(at)
            .bind(id.provider.clone())
            .bind(id.issuer.clone())
            .bind(id.subject.clone())
            .execute(&pool)
            .await
            .map_err(unavailable)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!(
                    "link of `{}` at `{}` ({})",
                    id.subject, id.provider, id.issuer
                )));
            }
            Ok(())
        })
        .await
    }
}
