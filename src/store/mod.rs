//! The store: users, sessions, revoked tokens, signing keys, sign-in
//! failures, API keys, second factors, single sign-on and the mail outbox,
//! in SQLite or PostgreSQL.
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
//!
//! One file per table (or group of tables), each with its own `impl Store`
//! block and its record types: `users`, `sessions`, `tokens` (revoked tokens
//! and signing keys), `regulation` (sign-in failures and bans), `api_keys`,
//! `changes`, `two_factor`, `sso` (identities linked to users, sign-ins
//! sent to a provider), `outbox` (mail waiting to be sent) and `audit`
//! (the audit trail). This file
//! keeps the pool, its runtime, the migrations and the errors; `diagnose` says
//! in one line why a database cannot be opened.

mod account_tokens;
mod api_keys;
mod audit;
mod changes;
mod diagnose;
mod outbox;
mod regulation;
mod sessions;
mod sso;
mod tokens;
mod two_factor;
mod users;

pub use account_tokens::{AccountToken, TokenPurpose};
pub use api_keys::StoredApiKey;
pub use audit::{AuditQuery, AuditRecord};
pub use changes::Change;
pub use outbox::{ClaimedMail, OutboxEntry, OutgoingMail};
pub use sessions::{SessionRecord, SessionSso};
pub use sso::{SsoIdentity, SsoPending};
pub use two_factor::{PendingLogin, PendingPurpose, StoredSecondFactor};
pub use users::{AdminGuard, NewUser, StoredUser, UserChange, UserQuery};

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Row};
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
    /// The database could not be opened; one line naming it and the cause.
    #[error("{0}")]
    CannotOpen(String),
    #[error("this would leave no enabled administrator")]
    LastAdmin,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    runtime: Option<tokio::runtime::Handle>,
    /// Woken after mail is enqueued here (see `outbox`).
    outbox: std::sync::Arc<tokio::sync::Notify>,
    /// Observes each operation's time, when metrics are kept.
    latency: Option<prometheus::Histogram>,
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

/// How long opening the store waits for the database to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings every connection gets before use (SQLite: WAL, a busy timeout,
/// foreign keys).
async fn prepare(conn: &mut AnyConnection, backend: Backend) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA busy_timeout = 5000",
            "PRAGMA foreign_keys = ON",
        ] {
            sqlx::query(pragma).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Begin a transaction that writes. On SQLite it is `BEGIN IMMEDIATE`: it
/// takes the write lock at once (waiting up to `busy_timeout` for it), where
/// a deferred transaction that reads and then writes fails at once with
/// `SQLITE_BUSY` when another connection committed in between (the audit
/// writer, another replica, the CLI).
async fn begin_write(pool: &AnyPool) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
    let sqlite = pool.connect_options().database_url.scheme() == "sqlite";
    let tx = if sqlite {
        pool.begin_with("BEGIN IMMEDIATE").await
    } else {
        pool.begin().await
    };
    tx.map_err(unavailable)
}

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
        let target = diagnose::Target::of(&url);
        if let diagnose::Target::Sqlite { path } = &target {
            diagnose::check_sqlite_file(path).map_err(StoreError::CannotOpen)?;
        }
        let cannot_open = |e: sqlx::Error| StoreError::CannotOpen(diagnose::describe(&target, &e));
        // One connection first: a broken database fails here, at once and in
        // words, instead of in a pool that retries (and logs) until timeout.
        let mut probe = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect(&url))
            .await
            .map_err(|_| cannot_open(sqlx::Error::PoolTimedOut))?
            .map_err(cannot_open)?;
        prepare(&mut probe, backend).await.map_err(cannot_open)?;
        let _ = probe.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(CONNECT_TIMEOUT)
            .after_connect(move |conn, _| Box::pin(prepare(conn, backend)))
            .connect(&url)
            .await
            .map_err(cannot_open)?;
        let migrated = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await,
        };
        migrated.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => cannot_open(inner),
            other => cannot_open(sqlx::Error::Migrate(Box::new(other))),
        })?;
        Ok(Store {
            pool,
            backend,
            runtime: None,
            outbox: Default::default(),
            latency: None,
        })
    }

    /// Run every query on `runtime` from now on.
    pub fn on_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Observe each operation's time in `latency` from now on.
    pub fn timed_by(mut self, latency: prometheus::Histogram) -> Self {
        self.latency = Some(latency);
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
        let started = std::time::Instant::now();
        let fut = op(self.pool.clone());
        let result = match &self.runtime {
            Some(rt) => rt
                .spawn(fut)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?,
            None => fut.await,
        };
        if let Some(latency) = &self.latency {
            latency.observe(started.elapsed().as_secs_f64());
        }
        result
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

    /// Delete what can no longer matter: expired sessions, revoked tokens
    /// and pending sign-ins, bans that ended, failures and changes older
    /// than `before`, mail sent more than a week before `now`.
    pub async fn purge(&self, now: i64, before: i64) -> Result<(), StoreError> {
        self.run(|pool| async move {
            for (sql, t) in [
                ("DELETE FROM sessions WHERE expires_at < $1", now),
                ("DELETE FROM revoked_tokens WHERE expires_at < $1", now),
                ("DELETE FROM bans WHERE until < $1", now),
                ("DELETE FROM pending_logins WHERE expires_at < $1", now),
                ("DELETE FROM sso_pending WHERE expires_at < $1", now),
                // Mailed links a day past their expiry (used or not).
                (
                    "DELETE FROM account_tokens WHERE expires_at < $1",
                    now - 86_400,
                ),
                ("DELETE FROM login_failures WHERE at < $1", before),
                ("DELETE FROM changes WHERE at < $1", before),
                (
                    "DELETE FROM outbox WHERE sent_at < $1",
                    now - outbox::KEEP_SENT_SECS,
                ),
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
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::CannotOpen(diagnose::cannot_create_folder(dir, &e)))?;
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
