//! Changes in the store: the `changes` table, appended to by every mutation
//! (in the mutation's own transaction) and polled by every replica.

use super::{now, unavailable, Store, StoreError};
use sqlx::Row;

/// One change other replicas must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: i64,
    /// `user` (the subject is a username).
    pub kind: String,
    pub subject: String,
}

impl Store {
    /// The newest change id (where a replica starts following).
    pub async fn last_change_id(&self) -> Result<i64, StoreError> {
        self.scalar("SELECT COALESCE(MAX(id), 0) AS n FROM changes")
            .await
    }

    /// Changes after `after`, oldest first.
    pub async fn changes_since(&self, after: i64) -> Result<Vec<Change>, StoreError> {
        self.run(|pool| async move {
            let rows = sqlx::query(
                "SELECT id, kind, subject FROM changes WHERE id > $1 ORDER BY id LIMIT 1000",
            )
            .bind(after)
            .fetch_all(&pool)
            .await
            .map_err(unavailable)?;
            rows.iter()
                .map(|r| {
                    Ok(Change {
                        id: r.try_get("id")?,
                        kind: r.try_get("kind")?,
                        subject: r.try_get("subject")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(unavailable)
        })
        .await
    }
}

pub(super) async fn record_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kind: &str,
    subject: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO changes (kind, subject, at) VALUES ($1, $2, $3)")
        .bind(kind.to_owned())
        .bind(subject.to_owned())
        .bind(now())
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    Ok(())
}
