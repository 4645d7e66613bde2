//! The store: users, sessions, revoked tokens, signing keys, sign-in
//! failures, API keys and second factors, in SQLite or PostgreSQL.
//!
//! One implementation over sqlx's `Any` driver serves both backends; only the
//! migrations differ (`migrations/sqlite`, `migrations/postgres`), and one
//! conformance suite (`tests/store.rs`) runs against both. Every mutation also
//! appends to a `changes` table that each replica polls, so caches everywhere
//! drop a disabled user or a changed role within a second, with no sticky
//! load balancer and no missed notifications after a reconnect.
//!
//! Queries run on a runtime of the store's own when one is given (the server
//! does this), so Pingora's per-worker runtimes never own database sockets.

mod two_factor;

pub use two_factor::{PendingLogin, PendingPurpose, StoredSecondFactor};

use crate::directory::{UserRecord, UserStatus};
use crate::identity::UserKind;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which database is behind the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("`{0}` already exists")]
    Conflict(String),
    #[error("no such {0}")]
    NotFound(String),
    #[error("unsupported store URL `{0}` (use sqlite://PATH or postgres://…)")]
    BadUrl(String),
    #[error("setup is closed: an enabled user exists")]
    Closed,
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub id: i64,
    pub record: UserRecord,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

/// What `create_user` needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub kind: UserKind,
    pub role: String,
    pub password_hash: Option<String>,
}

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

/// One change other replicas must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: i64,
    /// `user` (the subject is a username).
    pub kind: String,
    pub subject: String,
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    runtime: Option<tokio::runtime::Handle>,
}

/// Seconds since the Unix epoch, as the store records time.
pub fn unix_now() -> i64 {
    now()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn kind_str(k: UserKind) -> &'static str {
    k.as_str()
}

fn status_str(s: UserStatus) -> &'static str {
    match s {
        UserStatus::Enabled => "enabled",
        UserStatus::Disabled => "disabled",
    }
}

fn user_from_row(row: &AnyRow) -> Result<StoredUser, sqlx::Error> {
    let kind = match row.try_get::<String, _>("kind")?.as_str() {
        "api" => UserKind::Api,
        _ => UserKind::User,
    };
    let status = match row.try_get::<String, _>("status")?.as_str() {
        "enabled" => UserStatus::Enabled,
        _ => UserStatus::Disabled,
    };
    Ok(StoredUser {
        id: row.try_get("id")?,
        record: UserRecord {
            username: row.try_get("username")?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            kind,
            status,
            role: row.try_get("role")?,
            password_hash: row.try_get("password_hash")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_login_at: row.try_get("last_login_at")?,
    })
}

const USER_COLUMNS: &str = "id, username, email, name, kind, status, role, password_hash, created_at, updated_at, last_login_at";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

impl Store {
    /// Open (creating a SQLite file and its folder when needed) and migrate.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl(url.to_owned()));
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(unavailable)?;
        let migrated = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await,
        };
        migrated.map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        Ok(Store {
            pool,
            backend,
            runtime: None,
        })
    }

    /// Run every query on `runtime` from now on.
    pub fn on_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(AnyPool) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let fut = op(self.pool.clone());
        match &self.runtime {
            Some(rt) => rt
                .spawn(fut)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?,
            None => fut.await,
        }
    }

    /// Is the database answering?
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|pool| async move {
            sqlx::query("SELECT 1")
                .execute(&pool)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    pub async fn create_user(&self, user: NewUser) -> Result<StoredUser, StoreError> {
        self.insert_user(user, "1 = 1").await
    }

    /// Insert `user` when `guard` (a SQL condition) holds; `Closed` otherwise.
    async fn insert_user(
        &self,
        user: NewUser,
        guard: &'static str,
    ) -> Result<StoredUser, StoreError> {
        self.run(|pool| async move {
            let t = now();
            let sql = format!(
                "INSERT INTO users (username, email, name, kind, status, role, password_hash, created_at, updated_at) \
                 SELECT $1, $2, $3, $4, 'enabled', $5, $6, $7, $7 WHERE {guard} RETURNING {USER_COLUMNS}"
            );
            let row = sqlx::query(&sql)
                .bind(user.username.clone())
                .bind(user.email.clone())
                .bind(user.name.clone())
                .bind(kind_str(user.kind))
                .bind(user.role.clone())
                .bind(user.password_hash.clone())
                .bind(t)
                .fetch_optional(&pool)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict(user.username.clone())
                    } else {
                        unavailable(e)
                    }
                })?;
            match row {
                Some(row) => user_from_row(&row).map_err(unavailable),
                None => Err(StoreError::Closed),
            }
        })
        .await
    }

    pub async fn user(&self, username: &str) -> Result<Option<StoredUser>, StoreError> {
        self.one_user("username = $1", username).await
    }

    /// The user matching `condition` (with `$1` bound to `value`), if any.
    async fn one_user(
        &self,
        condition: &'static str,
        value: &str,
    ) -> Result<Option<StoredUser>, StoreError> {
        let value = value.to_owned();
        self.run(|pool| async move {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
            let row = sqlx::query(&sql)
                .bind(value)
                .fetch_optional(&pool)
                .await
                .map_err(unavailable)?;
            row.as_ref()
                .map(user_from_row)
                .transpose()
                .map_err(unavailable)
        })
        .await
    }

    pub async fn list_users(&self) -> Result<Vec<StoredUser>, StoreError> {
        self.run(|pool| async move {
            let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
            let rows = sqlx::query(&sql)
                .fetch_all(&pool)
                .await
                .map_err(unavailable)?;
            rows.iter()
                .map(user_from_row)
                .collect::<Result<_, _>>()
                .map_err(unavailable)
        })
        .await
    }

    /// How many enabled users exist (the first one becomes admin).
    pub async fn count_enabled_users(&self) -> Result<i64, StoreError> {
        self.scalar("SELECT COUNT(*) AS n FROM users WHERE status = 'enabled'")
            .await
    }

    /// A query answering one integer in a column named `n`.
    async fn scalar(&self, sql: &'static str) -> Result<i64, StoreError> {
        self.run(|pool| async move {
            let row = sqlx::query(sql)
                .fetch_one(&pool)
                .await
                .map_err(unavailable)?;
            row.try_get::<i64, _>("n").map_err(unavailable)
        })
        .await
    }

    /// Set one column of a user (`Some(value)`) or delete the user (`None`),
    /// recording the change for other replicas in the same transaction.
    async fn mutate_user(
        &self,
        username: &str,
        set: Option<(&'static str, String)>,
    ) -> Result<(), StoreError> {
        let username = username.to_owned();
        self.run(|pool| async move {
            let mut tx = pool.begin().await.map_err(unavailable)?;
            let done = match set {
                Some((column, value)) => {
                    let sql = format!(
                        "UPDATE users SET {column} = $1, updated_at = $2 WHERE username = $3"
                    );
                    sqlx::query(&sql)
                        .bind(value)
                        .bind(now())
                        .bind(username.clone())
                        .execute(&mut *tx)
                        .await
                }
                None => {
                    for sql in [
                        "DELETE FROM two_factor WHERE username = $1",
                        "DELETE FROM recovery_codes WHERE username = $1",
                        "DELETE FROM pending_logins WHERE username = $1",
                    ] {
                        sqlx::query(sql)
                            .bind(username.clone())
                            .execute(&mut *tx)
                            .await
                            .map_err(unavailable)?;
                    }
                    sqlx::query("DELETE FROM users WHERE username = $1")
                        .bind(username.clone())
                        .execute(&mut *tx)
                        .await
                }
            }
            .map_err(unavailable)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("user `{username}`")));
            }
            record_change(&mut tx, "user", &username).await?;
            tx.commit().await.map_err(unavailable)
        })
        .await
    }

    pub async fn set_role(&self, username: &str, role: &str) -> Result<(), StoreError> {
        self.mutate_user(username, Some(("role", role.to_owned())))
            .await
    }

    pub async fn set_status(&self, username: &str, status: UserStatus) -> Result<(), StoreError> {
        self.mutate_user(username, Some(("status", status_str(status).to_owned())))
            .await
    }

    pub async fn set_password_hash(&self, username: &str, hash: &str) -> Result<(), StoreError> {
        self.mutate_user(username, Some(("password_hash", hash.to_owned())))
            .await
    }

    pub async fn delete_user(&self, username: &str) -> Result<(), StoreError> {
        self.mutate_user(username, None).await
    }

    /// Remember when a user last signed in.
    pub async fn record_login(&self, username: &str, at: i64) -> Result<(), StoreError> {
        let username = username.to_owned();
        self.run(|pool| async move {
            sqlx::query("UPDATE users SET last_login_at = $1 WHERE username = $2")
                .bind(at)
                .bind(username)
                .execute(&pool)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

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

    /// A user by e-mail address (case-insensitive), for sign-in by e-mail.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<StoredUser>, StoreError> {
        self.one_user("LOWER(email) = LOWER($1)", email).await
    }

    /// Create `user` as an admin only while no enabled user exists (the
    /// setup page); `Closed` once anyone else got there first.
    pub async fn create_first_user(&self, user: NewUser) -> Result<StoredUser, StoreError> {
        self.insert_user(
            user,
            "NOT EXISTS (SELECT 1 FROM users WHERE status = 'enabled')",
        )
        .await
    }

    /// Revoke a Gatehouse token everywhere (API logout). Kept until it
    /// would have expired anyway.
    pub async fn revoke_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        let jti = jti.to_owned();
        self.run(|pool| async move {
            let mut tx = pool.begin().await.map_err(unavailable)?;
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
            let mut tx = pool.begin().await.map_err(unavailable)?;
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
            let mut tx = pool.begin().await.map_err(unavailable)?;
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

    /// Delete what can no longer matter: expired sessions and revoked
    /// tokens, bans that ended, failures and changes older than `before`.
    pub async fn purge(&self, now: i64, before: i64) -> Result<(), StoreError> {
        self.run(|pool| async move {
            for (sql, t) in [
                ("DELETE FROM sessions WHERE expires_at < $1", now),
                ("DELETE FROM revoked_tokens WHERE expires_at < $1", now),
                ("DELETE FROM bans WHERE until < $1", now),
                ("DELETE FROM pending_logins WHERE expires_at < $1", now),
                ("DELETE FROM login_failures WHERE at < $1", before),
                ("DELETE FROM changes WHERE at < $1", before),
            ] {
                sqlx::query(sql)
                    .bind(t)
                    .execute(&pool)
                    .await
                    .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }

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
            let mut tx = pool.begin().await.map_err(unavailable)?;
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

async fn record_change(
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

/// `sqlite://data/gatehouse.db` → a URL sqlx opens read-write-create, with
/// the folder made first.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::BadUrl(url.to_owned()))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err(StoreError::BadUrl(url.to_owned()));
    }
    if path != ":memory:" {
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
    }
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
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
