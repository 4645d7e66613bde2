//! Tokens in the store: the `revoked_tokens` table (API logout) and the
//! `signing_keys` table (the generated keys tokens are signed with).

use super::changes::record_change;
use super::{begin_write, now, unavailable, Store, StoreError};
use sqlx::Row;

impl Store {
    /// Revoke a Gatehouse token everywhere (API logout). Kept until it
    /// would have expired anyway.
    pub async fn revoke_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        let jti = jti.to_owned();
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            sqlx::query(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
            )
            .bind(jti.clone())
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            record_change(&mut tx, "token", &jti).await?;
            tx.commit().await.map_err(unavailable)
        })
        .await
    }

    pub async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let jti = jti.to_owned();
        self.run(|pool| async move {
            let row = sqlx::query("SELECT 1 AS n FROM revoked_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&pool)
                .await
                .map_err(unavailable)?;
            Ok(row.is_some())
        })
        .await
    }

    /// The generated signing keys, oldest first: `(kid, PKCS#8 PEM)`.
    pub async fn signing_keys(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.run(|pool| async move {
            let rows =
                sqlx::query("SELECT kid, private_key FROM signing_keys ORDER BY created_at, kid")
                    .fetch_all(&pool)
                    .await
                    .map_err(unavailable)?;
            rows.iter()
                .map(|r| Ok((r.try_get("kid")?, r.try_get("private_key")?)))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(unavailable)
        })
        .await
    }

    /// Store a generated signing key unless one exists already (replicas
    /// starting together all end up using the oldest).
    pub async fn add_first_signing_key(&self, kid: &str, pem: &str) -> Result<(), StoreError> {
        let (kid, pem) = (kid.to_owned(), pem.to_owned());
        self.run(|pool| async move {
            sqlx::query(
                "INSERT INTO signing_keys (kid, private_key, created_at) \
                 SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM signing_keys)",
            )
            .bind(kid)
            .bind(pem)
            .bind(now())
            .execute(&pool)
            .await
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }
}
