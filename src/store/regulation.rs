//! Sign-in regulation in the store: the `login_failures` and `bans` tables.

use super::changes::record_change;
use super::{begin_write, unavailable, Store, StoreError};
use sqlx::Row;

impl Store {
    /// Record a failed sign-in of `subject`; answers how many it had since
    /// `since` (this one included).
    pub async fn record_failure(
        &self,
        subject: &str,
        at: i64,
        since: i64,
    ) -> Result<i64, StoreError> {
        let subject = subject.to_owned();
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            sqlx::query("INSERT INTO login_failures (subject, at) VALUES ($1, $2)")
                .bind(subject.clone())
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM login_failures WHERE subject = $1 AND at > $2",
            )
            .bind(subject)
            .bind(since)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
            let n = row.try_get::<i64, _>("n").map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            Ok(n)
        })
        .await
    }

    /// Forget the failures of `subject` (after a successful sign-in).
    pub async fn clear_failures(&self, subject: &str) -> Result<(), StoreError> {
        let subject = subject.to_owned();
        self.run(|pool| async move {
            sqlx::query("DELETE FROM login_failures WHERE subject = $1")
                .bind(subject)
                .execute(&pool)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    /// Refuse `subject` until `until`, and tell every replica.
    pub async fn ban(&self, subject: &str, until: i64) -> Result<(), StoreError> {
        let subject = subject.to_owned();
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            sqlx::query(
                "INSERT INTO bans (subject, until) VALUES ($1, $2) \
                 ON CONFLICT (subject) DO UPDATE SET until = excluded.until",
            )
            .bind(subject.clone())
            .bind(until)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            record_change(&mut tx, "ban", &subject).await?;
            tx.commit().await.map_err(unavailable)
        })
        .await
    }

    /// Bans still running at `now`: `(subject, until)`.
    pub async fn active_bans(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.run(|pool| async move {
            let rows = sqlx::query("SELECT subject, until FROM bans WHERE until > $1")
                .bind(now)
                .fetch_all(&pool)
                .await
                .map_err(unavailable)?;
            rows.iter()
                .map(|r| Ok((r.try_get("subject")?, r.try_get("until")?)))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(unavailable)
        })
        .await
    }
}
