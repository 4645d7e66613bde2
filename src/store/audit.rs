//! The audit trail in the store: the `audit_events` table, appended to in
//! batches by the audit writer and read newest first.

use super::{begin_write, unavailable, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

/// One security event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Assigned by the store (0 before).
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who did it (a user name, `cli`), if anyone is known.
    pub actor: Option<String>,
    /// What happened, e.g. `sign_in`, `user.update`.
    pub action: String,
    /// Whom or what it was done to, if not the actor.
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// A JSON object: the reason, the change (before → after)…
    pub details: String,
}

/// Which events [`Store::audit_events`] answers, and which page of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Events with this user as actor or target.
    pub user: Option<String>,
    pub action: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
    pub offset: i64,
    pub limit: i64,
}

fn audit_from_row(r: &AnyRow) -> Result<AuditRecord, sqlx::Error> {
    Ok(AuditRecord {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        outcome: r.try_get("outcome")?,
        details: r.try_get("details")?,
    })
}

impl Store {
    /// Append `events` in one transaction.
    pub async fn append_audit_events(&self, events: Vec<AuditRecord>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            for e in events {
                sqlx::query(
                    "INSERT INTO audit_events (at, actor, action, target, ip, user_agent, outcome, details) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(e.at)
                .bind(e.actor)
                .bind(e.action)
                .bind(e.target)
                .bind(e.ip)
                .bind(e.user_agent)
                .bind(e.outcome)
                .bind(e.details)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
            tx.commit().await.map_err(unavailable)
        })
        .await
    }

    /// One page of the events matching `query`, newest first, and how many
    /// match in all.
    pub async fn audit_events(
        &self,
        query: AuditQuery,
    ) -> Result<(Vec<AuditRecord>, i64), StoreError> {
        self.run(|pool| async move {
            let filter = "($1 = '' OR actor = $1 OR target = $1) AND ($2 = '' OR action = $2) \
                          AND at >= $3 AND at < $4";
            let values = (
                query.user.unwrap_or_default(),
                query.action.unwrap_or_default(),
                query.since.unwrap_or(i64::MIN),
                query.until.unwrap_or(i64::MAX),
            );
            let total: i64 = sqlx::query(&format!(
                "SELECT COUNT(*) AS n FROM audit_events WHERE {filter}"
            ))
            .bind(values.0.clone())
            .bind(values.1.clone())
            .bind(values.2)
            .bind(values.3)
            .fetch_one(&pool)
            .await
            .and_then(|r| r.try_get("n"))
            .map_err(unavailable)?;
            let rows = sqlx::query(&format!(
                "SELECT id, at, actor, action, target, ip, user_agent, outcome, details \
                 FROM audit_events WHERE {filter} ORDER BY id DESC LIMIT $5 OFFSET $6"
            ))
            .bind(values.0)
            .bind(values.1)
            .bind(values.2)
            .bind(values.3)
            .bind(query.limit.max(0))
            .bind(query.offset.max(0))
            .fetch_all(&pool)
            .await
            .map_err(unavailable)?;
            let events = rows
                .iter()
                .map(audit_from_row)
                .collect::<Result<_, _>>()
                .map_err(unavailable)?;
            Ok((events, total))
        })
        .await
    }

    /// Delete events older than `before` (unix seconds); answers how many.
    pub async fn prune_audit_events(&self, before: i64) -> Result<u64, StoreError> {
        self.run(|pool| async move {
            let done = sqlx::query("DELETE FROM audit_events WHERE at < $1")
                .bind(before)
                .execute(&pool)
                .await
                .map_err(unavailable)?;
            Ok(done.rows_affected())
        })
        .await
    }
}
