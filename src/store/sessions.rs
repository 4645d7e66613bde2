//! Sessions in the store: the `sessions` table (only the hash of each
//! session id is ever stored).

use super::changes::record_change;
use super::{unavailable, Store, StoreError};
use sqlx::Row;

/// A session as stored (the id itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub username: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
}

impl SessionRecord {
    /// Is the session usable at `now` with the given idle timeout (seconds)?
    pub fn is_live(&self, now: i64, idle_timeout: i64) -> bool {
        !self.revoked && now < self.expires_at && now < self.last_seen_at + idle_timeout
    }
}

impl Store {
    /// Store a new session.
    pub async fn create_session(&self, record: SessionRecord) -> Result<(), StoreError> {
        self.run(|pool| async move {
            sqlx::query(
                "INSERT INTO sessions (id_hash, username, created_at, last_seen_at, expires_at, revoked) \
                 VALUES ($1, $2, $3, $4, $5, 0)",
            )
            .bind(record.id_hash)
            .bind(record.username)
            .bind(record.created_at)
            .bind(record.last_seen_at)
            .bind(record.expires_at)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let id_hash = id_hash.to_owned();
        self.run(|pool| async move {
            let row = sqlx::query(
                "SELECT id_hash, username, created_at, last_seen_at, expires_at, revoked FROM sessions WHERE id_hash = $1",
            )
            .bind(id_hash)
            .fetch_optional(&pool)
            .await
            .map_err(unavailable)?;
            row.map(|r| {
                Ok(SessionRecord {
                    id_hash: r.try_get("id_hash")?,
                    username: r.try_get("username")?,
                    created_at: r.try_get("created_at")?,
                    last_seen_at: r.try_get("last_seen_at")?,
                    expires_at: r.try_get("expires_at")?,
                    revoked: r.try_get::<i32, _>("revoked")? != 0,
                })
            })
            .transpose()
            .map_err(|e: sqlx::Error| unavailable(e))
        })
        .await
    }

    /// Record activity (idle expiry counts from here).
    pub async fn touch_session(&self, id_hash: &str, at: i64) -> Result<(), StoreError> {
        let id_hash = id_hash.to_owned();
        self.run(|pool| async move {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
                .bind(at)
                .bind(id_hash)
                .execute(&pool)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    /// Revoke a session everywhere (logout).
    pub async fn revoke_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let id_hash = id_hash.to_owned();
        self.run(|pool| async move {
            let mut tx = pool.begin().await.map_err(unavailable)?;
            sqlx::query("UPDATE sessions SET revoked = 1 WHERE id_hash = $1")
                .bind(id_hash.clone())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            record_change(&mut tx, "session", &id_hash).await?;
            tx.commit().await.map_err(unavailable)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::SessionRecord;

    #[test]
    fn session_liveness_with_a_test_clock() {
        let s = |last_seen, revoked| SessionRecord {
            id_hash: "h".into(),
            username: "u".into(),
            created_at: 1_000,
            last_seen_at: last_seen,
            expires_at: 1_000 + 43_200,
            revoked,
        };
        let idle = 3_600;
        let cases = [
            (s(1_000, false), 1_000, true),
            (s(1_000, false), 4_599, true),
            (s(1_000, false), 4_600, false),   // idle timeout
            (s(43_000, false), 44_199, true),  // active, before the absolute end
            (s(44_000, false), 44_200, false), // absolute lifetime, however active
            (s(1_000, true), 1_001, false),    // revoked
        ];
        for (rec, now, live) in cases {
            assert_eq!(
                rec.is_live(now, idle),
                live,
                "now={now} last_seen={}",
                rec.last_seen_at
            );
        }
    }
}
