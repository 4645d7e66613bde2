//! API keys in the store: the `api_keys` table (only the SHA-256 of each
//! key is ever stored).

use super::changes::record_change;
use super::{begin_write, now, unavailable, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

/// An API key as stored (the key itself never is, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApiKey {
    pub id: i64,
    pub name: String,
    pub username: String,
    /// SHA-256 of the key, hex.
    pub sha256: String,
    /// The permissions the key is narrowed to; `None`: its owner's.
    pub permissions: Option<Vec<String>>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub revoked: bool,
}

fn api_key_from_row(r: &AnyRow) -> Result<StoredApiKey, sqlx::Error> {
    let permissions: Option<String> = r.try_get("permissions")?;
    Ok(StoredApiKey {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        username: r.try_get("username")?,
        sha256: r.try_get("sha256")?,
        permissions: permissions.map(|p| {
            p.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        }),
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
        revoked: r.try_get::<i32, _>("revoked")? != 0,
    })
}

const API_KEY_COLUMNS: &str =
    "id, name, username, sha256, permissions, expires_at, created_at, revoked";

impl Store {
    /// Store a new API key (by its hash); answers it with its id.
    pub async fn create_api_key(
        &self,
        name: &str,
        username: &str,
        sha256: &str,
        permissions: Option<&[String]>,
        expires_at: Option<i64>,
    ) -> Result<StoredApiKey, StoreError> {
        let (name, username, sha256) = (name.to_owned(), username.to_owned(), sha256.to_owned());
        let permissions = permissions.map(|p| p.join(","));
        self.run(|pool| async move {
            let sql = format!(
                "INSERT INTO api_keys (name, username, sha256, permissions, expires_at, created_at, revoked) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0) RETURNING {API_KEY_COLUMNS}"
            );
            let row = sqlx::query(&sql)
                .bind(name)
                .bind(username)
                .bind(sha256)
                .bind(permissions)
                .bind(expires_at)
                .bind(now())
                .fetch_one(&pool)
                .await
                .map_err(unavailable)?;
            api_key_from_row(&row).map_err(unavailable)
        })
        .await
    }

    /// The stored key with this SHA-256 (hex), revoked or not.
    pub async fn api_key_by_hash(&self, sha256: &str) -> Result<Option<StoredApiKey>, StoreError> {
        let sha256 = sha256.to_owned();
        self.run(|pool| async move {
            let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE sha256 = $1");
            let row = sqlx::query(&sql)
                .bind(sha256)
                .fetch_optional(&pool)
                .await
                .map_err(unavailable)?;
            row.as_ref()
                .map(api_key_from_row)
                .transpose()
                .map_err(unavailable)
        })
        .await
    }

    /// Live (unrevoked) keys, of one user or of everyone, oldest first.
    pub async fn list_api_keys(
        &self,
        username: Option<&str>,
    ) -> Result<Vec<StoredApiKey>, StoreError> {
        let username = username.map(str::to_owned);
        self.run(|pool| async move {
            let sql = format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE revoked = 0 AND ($1 = '' OR username = $1) ORDER BY id"
            );
            let rows = sqlx::query(&sql)
                .bind(username.unwrap_or_default())
                .fetch_all(&pool)
                .await
                .map_err(unavailable)?;
            rows.iter()
                .map(api_key_from_row)
                .collect::<Result<_, _>>()
                .map_err(unavailable)
        })
        .await
    }

    /// Revoke key `id` (only if it belongs to `owner`, when given), on every
    /// replica; answers the key's hash. `NotFound` when there is no such live key.
    pub async fn revoke_api_key(&self, id: i64, owner: Option<&str>) -> Result<String, StoreError> {
        let owner = owner.map(str::to_owned);
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            let row = sqlx::query(
                "SELECT sha256 FROM api_keys WHERE id = $1 AND revoked = 0 AND ($2 = '' OR username = $2)",
            )
            .bind(id)
            .bind(owner.unwrap_or_default())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
            let Some(row) = row else {
                return Err(StoreError::NotFound(format!("API key {id}")));
            };
            let sha256: String = row.try_get("sha256").map_err(unavailable)?;
            sqlx::query("UPDATE api_keys SET revoked = 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            record_change(&mut tx, "apikey", &sha256).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(sha256)
        })
        .await
    }

    /// Revoke every live key of `username` on every replica; answers the
    /// revoked keys' hashes.
    pub async fn revoke_user_api_keys(&self, username: &str) -> Result<Vec<String>, StoreError> {
        let username = username.to_owned();
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            let rows = sqlx::query(
                "UPDATE api_keys SET revoked = 1 WHERE username = $1 AND revoked = 0 RETURNING sha256",
            )
            .bind(username)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
            let mut hashes = Vec::with_capacity(rows.len());
            for row in &rows {
                let sha256: String = row.try_get("sha256").map_err(unavailable)?;
                record_change(&mut tx, "apikey", &sha256).await?;
                hashes.push(sha256);
            }
            tx.commit().await.map_err(unavailable)?;
            Ok(hashes)
        })
        .await
    }
}
