//! Sessions in the store: the `sessions` table (only the hash of each
//! session id is ever stored), including where an SSO session came from, so
//! a provider's back-channel logout can revoke it.

use super::changes::record_change;
use super::{begin_write, now, unavailable, Store, StoreError};
use sqlx::any::AnyRow;
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
    /// The client's address when the session started.
    pub ip: Option<String>,
    /// The client's `User-Agent` when the session started.
    pub user_agent: Option<String>,
    /// Where the session came from, for a sign-in through an identity
    /// provider.
    pub sso: Option<SessionSso>,
}

/// Where an SSO session came from (None for password sign-ins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSso {
    /// The provider's id in the config, e.g. `corp`.
    pub provider: String,
    /// The ID token's `sub`.
    pub subject: String,
    /// The ID token's `sid`, if any (for back-channel logout).
    pub sid: Option<String>,
    /// The raw ID token, kept for RP-initiated logout's `id_token_hint`.
    pub id_token: String,
}

const SESSION_COLUMNS: &str = "id_hash, username, created_at, last_seen_at, expires_at, revoked, \
                               ip, user_agent, sso_provider, sso_subject, sso_sid, id_token";

fn session_from_row(r: &AnyRow) -> Result<SessionRecord, sqlx::Error> {
    let provider: Option<String> = r.try_get("sso_provider")?;
    let subject: Option<String> = r.try_get("sso_subject")?;
    let id_token: Option<String> = r.try_get("id_token")?;
    let sso = match (provider, subject, id_token) {
        (None, None, None) => None,
        (Some(provider), Some(subject), Some(id_token)) => Some(SessionSso {
            provider,
            subject,
            sid: r.try_get("sso_sid")?,
            id_token,
        }),
        _ => {
            return Err(sqlx::Error::Decode(
                "a session with an incomplete SSO origin".into(),
            ))
        }
    };
    Ok(SessionRecord {
        id_hash: r.try_get("id_hash")?,
        username: r.try_get("username")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked: r.try_get::<i32, _>("revoked")? != 0,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        sso,
    })
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
            let sso = record.sso;
            sqlx::query(
                "INSERT INTO sessions (id_hash, username, created_at, last_seen_at, expires_at, revoked, \
                 ip, user_agent, sso_provider, sso_subject, sso_sid, id_token) \
                 VALUES ($1, $2, $3, $4, $5, 0, $10, $11, $6, $7, $8, $9)",
            )
            .bind(record.id_hash)
            .bind(record.username)
            .bind(record.created_at)
            .bind(record.last_seen_at)
            .bind(record.expires_at)
            .bind(sso.as_ref().map(|s| s.provider.clone()))
            .bind(sso.as_ref().map(|s| s.subject.clone()))
            .bind(sso.as_ref().and_then(|s| s.sid.clone()))
            .bind(sso.map(|s| s.id_token))
            .bind(record.ip)
            .bind(record.user_agent)
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
            let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1");
            let row = sqlx::query(&sql)
                .bind(id_hash)
                .fetch_optional(&pool)
                .await
                .map_err(unavailable)?;
            row.as_ref()
                .map(session_from_row)
                .transpose()
                .map_err(unavailable)
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
            let mut tx = begin_write(&pool).await?;
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

    /// `username`'s sessions that are neither revoked nor past their
    /// absolute expiry at `now`, newest first. (Whether one is idle too long
    /// depends on the configured timeout: see [`SessionRecord::is_live`].)
    pub async fn user_sessions(
        &self,
        username: &str,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let username = username.to_owned();
        self.run(|pool| async move {
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM sessions \
                 WHERE username = $1 AND revoked = 0 AND expires_at > $2 \
                 ORDER BY created_at DESC, id_hash"
            );
            let rows = sqlx::query(&sql)
                .bind(username)
                .bind(now)
                .fetch_all(&pool)
                .await
                .map_err(unavailable)?;
            rows.iter()
                .map(session_from_row)
                .collect::<Result<_, _>>()
                .map_err(unavailable)
        })
        .await
    }

    /// Revoke `username`'s unrevoked sessions: all of them, or only
    /// `only` (an id hash), in either case never `keep`. Records a
    /// `session` change per revoked session in the same transaction, so
    /// every replica's cache drops them. Answers how many were revoked.
    pub async fn revoke_user_sessions(
        &self,
        username: &str,
        only: Option<&str>,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        let username = username.to_owned();
        let only = only.unwrap_or_default().to_owned();
        let keep = keep.unwrap_or_default().to_owned();
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            let rows = sqlx::query(
                "UPDATE sessions SET revoked = 1 \
                 WHERE username = $1 AND revoked = 0 AND ($2 = '' OR id_hash = $2) AND id_hash <> $3 \
                 RETURNING id_hash",
            )
            .bind(username)
            .bind(only)
            .bind(keep)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
            for row in &rows {
                let id_hash: String = row.try_get("id_hash").map_err(unavailable)?;
                record_change(&mut tx, "session", &id_hash).await?;
            }
            tx.commit().await.map_err(unavailable)?;
            Ok(rows.len() as u64)
        })
        .await
    }

    /// Revoke the live sessions that came from `provider` for `subject`
    /// and/or `sid` (when both are given, both must match; when neither is,
    /// nothing is revoked). Records a `session` change per revoked session
    /// (as [`Store::revoke_session`] does, so every replica's cache drops
    /// them) in the same transaction. Returns how many were revoked.
    pub async fn revoke_sso_sessions(
        &self,
        provider: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<u64, StoreError> {
        if subject.is_none() && sid.is_none() {
            return Ok(0);
        }
        let provider = provider.to_owned();
        let (subject, sid) = (subject.map(str::to_owned), sid.map(str::to_owned));
        self.run(|pool| async move {
            // Only the given conditions, each with its own placeholder.
            let mut sql = "UPDATE sessions SET revoked = 1 \
                           WHERE sso_provider = $1 AND revoked = 0 AND expires_at > $2"
                .to_owned();
            let mut values = Vec::new();
            for (column, value) in [("sso_subject", subject), ("sso_sid", sid)] {
                if let Some(value) = value {
                    values.push(value);
                    sql.push_str(&format!(" AND {column} = ${}", values.len() + 2));
                }
            }
            sql.push_str(" RETURNING id_hash");
            let mut tx = begin_write(&pool).await?;
            let mut query = sqlx::query(&sql).bind(provider).bind(now());
            for value in values {
                query = query.bind(value);
            }
            let rows = query.fetch_all(&mut *tx).await.map_err(unavailable)?;
            for row in &rows {
                let id_hash: String = row.try_get("id_hash").map_err(unavailable)?;
                record_change(&mut tx, "session", &id_hash).await?;
            }
            tx.commit().await.map_err(unavailable)?;
            Ok(rows.len() as u64)
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
            ip: None,
            user_agent: None,
            sso: None,
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
