//! Users in the store: the `users` table (deleting a user also clears its
//! rows in `two_factor`, `recovery_codes`, `pending_logins` and `sso_links`;
//! changing a password bumps the user's credentials version and revokes
//! their other sessions).

use super::changes::record_change;
use super::{begin_write, is_unique_violation, now, unavailable, Store, StoreError};
use crate::directory::{UserRecord, UserStatus};
use crate::identity::UserKind;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub id: i64,
    pub record: UserRecord,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
    /// When the password last changed ([`Store::change_password`]).
    pub credentials_changed_at: Option<i64>,
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
    /// `Enabled` for everyone but users an administrator creates disabled.
    pub status: UserStatus,
}

fn kind_str(k: UserKind) -> &'static str {
    k.as_str()
}

fn status_str(s: UserStatus) -> &'static str {
    s.as_str()
}

/// Which users [`Store::search_users`] answers, and which page of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// Part of the name, e-mail address or display name (any case).
    pub text: Option<String>,
    pub kind: Option<UserKind>,
    pub status: Option<UserStatus>,
    pub role: Option<String>,
    /// Rows to skip, and the most to answer.
    pub offset: i64,
    pub limit: i64,
}

/// A partial change of a user: each `Some` field is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChange {
    pub role: Option<String>,
    pub status: Option<UserStatus>,
    pub kind: Option<UserKind>,
    /// `Some(None)` clears the address.
    pub email: Option<Option<String>>,
    pub name: Option<Option<String>>,
    /// A new password hash: a credentials change (every session ends).
    pub password_hash: Option<String>,
}

/// Keep at least one enabled administrator: a change or deletion that
/// would leave no enabled user with one of `roles` is refused with
/// [`StoreError::LastAdmin`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminGuard {
    /// The roles that administer users. Empty: no guard (an administrator
    /// declared in the config file cannot be locked out).
    pub roles: Vec<String>,
}

impl AdminGuard {
    /// Enabled users with an admin role, counted inside `tx`.
    async fn count(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<i64, StoreError> {
        let placeholders: Vec<String> = (1..=self.roles.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT COUNT(*) AS n FROM users WHERE status = 'enabled' AND role IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for role in &self.roles {
            query = query.bind(role.clone());
        }
        let row = query.fetch_one(&mut **tx).await.map_err(unavailable)?;
        row.try_get::<i64, _>("n").map_err(unavailable)
    }

    /// Refuse when `before` was an enabled admin and none is left.
    async fn check(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        before: &StoredUser,
    ) -> Result<(), StoreError> {
        let was_admin =
            before.record.status == UserStatus::Enabled && self.roles.contains(&before.record.role);
        if self.roles.is_empty() || !was_admin {
            return Ok(());
        }
        if self.count(tx).await? == 0 {
            return Err(StoreError::LastAdmin);
        }
        Ok(())
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
            credentials_version: row.try_get("credentials_version")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_login_at: row.try_get("last_login_at")?,
        credentials_changed_at: row.try_get("credentials_changed_at")?,
    })
}

const USER_COLUMNS: &str = "id, username, email, name, kind, status, role, password_hash, \
                            credentials_version, created_at, updated_at, last_login_at, \
                            credentials_changed_at";

/// Insert `user` through `executor` (the pool, or a transaction that writes
/// more) when `guard` (a SQL condition) holds; `Closed` otherwise,
/// `Conflict` when the name or e-mail address is taken.
pub(super) async fn insert_user_row<'c, E>(
    executor: E,
    user: &NewUser,
    guard: &str,
) -> Result<StoredUser, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let sql = format!(
        "INSERT INTO users (username, email, name, kind, status, role, password_hash, created_at, updated_at) \
         SELECT $1, $2, $3, $4, $8, $5, $6, $7, $7 WHERE {guard} RETURNING {USER_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(user.username.clone())
        .bind(user.email.clone())
        .bind(user.name.clone())
        .bind(kind_str(user.kind))
        .bind(user.role.clone())
        .bind(user.password_hash.clone())
        .bind(now())
        .bind(status_str(user.status))
        .fetch_optional(executor)
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
}

impl Store {
    pub async fn create_user(&self, user: NewUser) -> Result<StoredUser, StoreError> {
        self.insert_user(user, "1 = 1").await
    }

    /// Insert `user` when `guard` (a SQL condition) holds; `Closed` otherwise.
    async fn insert_user(
        &self,
        user: NewUser,
        guard: &'static str,
    ) -> Result<StoredUser, StoreError> {
        self.run(|pool| async move { insert_user_row(&pool, &user, guard).await })
            .await
    }

    pub async fn user(&self, username: &str) -> Result<Option<StoredUser>, StoreError> {
        self.one_user("username = $1", username.to_owned()).await
    }

    /// The user matching `condition` (with `$1` bound to `value`), if any.
    async fn one_user<V>(
        &self,
        condition: &'static str,
        value: V,
    ) -> Result<Option<StoredUser>, StoreError>
    where
        V: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'static,
    {
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

    /// A user by stored id.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<StoredUser>, StoreError> {
        self.one_user("id = $1", id).await
    }

    /// One page of the users matching `query`, by name, and how many match
    /// in all.
    pub async fn search_users(
        &self,
        query: UserQuery,
    ) -> Result<(Vec<StoredUser>, i64), StoreError> {
        self.run(|pool| async move {
            // Every condition is always present; an empty value turns it off.
            let filter = "($1 = '' OR LOWER(username) LIKE $1 ESCAPE '\\' \
                          OR LOWER(COALESCE(email, '')) LIKE $1 ESCAPE '\\' \
                          OR LOWER(COALESCE(name, '')) LIKE $1 ESCAPE '\\') \
                          AND ($2 = '' OR kind = $2) AND ($3 = '' OR status = $3) AND ($4 = '' OR role = $4)";
            let text = query
                .text
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| format!("%{}%", like_escape(&t.to_lowercase())))
                .unwrap_or_default();
            let values = [
                text,
                query.kind.map(kind_str).unwrap_or_default().to_owned(),
                query.status.map(status_str).unwrap_or_default().to_owned(),
                query.role.unwrap_or_default(),
            ];
            let count_sql = format!("SELECT COUNT(*) AS n FROM users WHERE {filter}");
            let page_sql = format!(
                "SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY username LIMIT $5 OFFSET $6"
            );
            let mut count = sqlx::query(&count_sql);
            let mut page = sqlx::query(&page_sql);
            for v in &values {
                count = count.bind(v.clone());
                page = page.bind(v.clone());
            }
            let total: i64 = count
                .fetch_one(&pool)
                .await
                .and_then(|r| r.try_get("n"))
                .map_err(unavailable)?;
            let rows = page
                .bind(query.limit.max(0))
                .bind(query.offset.max(0))
                .fetch_all(&pool)
                .await
                .map_err(unavailable)?;
            let users = rows
                .iter()
                .map(user_from_row)
                .collect::<Result<_, _>>()
                .map_err(unavailable)?;
            Ok((users, total))
        })
        .await
    }

    /// Apply `change` to `username` in one transaction, refused when
    /// `guard` says it would leave no enabled administrator. A new password
    /// bumps the credentials version and revokes every session, as
    /// [`Store::change_password`] does. One `user` change tells every
    /// replica to drop what it cached. Answers the user before and after.
    pub async fn update_user(
        &self,
        username: &str,
        change: UserChange,
        guard: AdminGuard,
    ) -> Result<(StoredUser, StoredUser), StoreError> {
        let username = username.to_owned();
        self.run(|pool| async move {
            let at = now();
            let mut tx = begin_write(&pool).await?;
            let before = user_in(&mut tx, &username).await?;
            let mut sets = Vec::new();
            let mut values: Vec<Option<String>> = Vec::new();
            let mut set = |column: &str, value: Option<String>| {
                values.push(value);
                sets.push(format!("{column} = ${}", values.len() + 2));
            };
            if let Some(role) = change.role {
                set("role", Some(role));
            }
            if let Some(status) = change.status {
                set("status", Some(status_str(status).to_owned()));
            }
            if let Some(kind) = change.kind {
                set("kind", Some(kind_str(kind).to_owned()));
            }
            if let Some(email) = change.email {
                set("email", email);
            }
            if let Some(name) = change.name {
                set("name", name);
            }
            let new_password = change.password_hash.is_some();
            if let Some(hash) = change.password_hash {
                set("password_hash", Some(hash));
                sets.push("credentials_version = credentials_version + 1".into());
                sets.push("credentials_changed_at = $1".into());
            }
            sets.push("updated_at = $1".into());
            let sql = format!(
                "UPDATE users SET {} WHERE username = $2 RETURNING {USER_COLUMNS}",
                sets.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(at).bind(username.clone());
            for v in values {
                query = query.bind(v);
            }
            let row = query.fetch_one(&mut *tx).await.map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("email".into())
                } else {
                    unavailable(e)
                }
            })?;
            let after = user_from_row(&row).map_err(unavailable)?;
            guard.check(&mut tx, &before).await?;
            if new_password {
                sqlx::query("UPDATE sessions SET revoked = 1 WHERE username = $1 AND revoked = 0")
                    .bind(username.clone())
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            }
            record_change(&mut tx, "user", &username).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok((before, after))
        })
        .await
    }

    /// Delete `username` (as [`Store::delete_user`]: with their second
    /// factor, pending sign-ins, single sign-on links, sessions and API
    /// keys), refused when `guard` says no enabled administrator would be
    /// left. Answers the user as they were.
    pub async fn delete_user_guarded(
        &self,
        username: &str,
        guard: AdminGuard,
    ) -> Result<StoredUser, StoreError> {
        let username = username.to_owned();
        self.run(|pool| async move {
            let mut tx = begin_write(&pool).await?;
            let before = user_in(&mut tx, &username).await?;
            delete_rows(&mut tx, &username).await?;
            guard.check(&mut tx, &before).await?;
            record_change(&mut tx, "user", &username).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(before)
        })
        .await
    }

    /// How many enabled users exist (the first one becomes admin).
    pub async fn count_enabled_users(&self) -> Result<i64, StoreError> {
        self.scalar("SELECT COUNT(*) AS n FROM users WHERE status = 'enabled'")
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
            let mut tx = begin_write(&pool).await?;
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
                    delete_rows(&mut tx, &username).await?;
                    record_change(&mut tx, "user", &username).await?;
                    return tx.commit().await.map_err(unavailable);
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

    /// Set a user's password (an administrator's doing): a credentials
    /// change like [`Store::change_password`], ending every session.
    pub async fn set_password_hash(&self, username: &str, hash: &str) -> Result<(), StoreError> {
        self.change_password(username, hash, None).await.map(|_| ())
    }

    /// Change a user's password in one transaction: the new hash, its time,
    /// a bumped credentials version (so every token issued before is
    /// refused), and every live session of the user revoked except `keep`
    /// (a session id hash). One `user` change tells every replica to drop
    /// what it cached of the user (sessions, tokens, Basic passwords).
    /// Answers how many sessions were revoked.
    pub async fn change_password(
        &self,
        username: &str,
        hash: &str,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        let (username, hash) = (username.to_owned(), hash.to_owned());
        let keep = keep.unwrap_or_default().to_owned();
        self.run(|pool| async move {
            let at = now();
            let mut tx = begin_write(&pool).await?;
            let done = sqlx::query(
                "UPDATE users SET password_hash = $1, credentials_version = credentials_version + 1, \
                 credentials_changed_at = $2, updated_at = $2 WHERE username = $3",
            )
            .bind(hash)
            .bind(at)
            .bind(username.clone())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("user `{username}`")));
            }
            let revoked = sqlx::query(
                "UPDATE sessions SET revoked = 1 \
                 WHERE username = $1 AND revoked = 0 AND id_hash <> $2",
            )
            .bind(username.clone())
            .bind(keep)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
            record_change(&mut tx, "user", &username).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(revoked)
        })
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

    /// A user by e-mail address (case-insensitive), for sign-in by e-mail.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<StoredUser>, StoreError> {
        self.one_user("LOWER(email) = LOWER($1)", email.to_owned())
            .await
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
}

/// `username` as stored, read inside `tx`; `NotFound` when there is none.
async fn user_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    username: &str,
) -> Result<StoredUser, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
    let row = sqlx::query(&sql)
        .bind(username.to_owned())
        .fetch_optional(&mut **tx)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| StoreError::NotFound(format!("user `{username}`")))?;
    user_from_row(&row).map_err(unavailable)
}

/// Delete `username` and everything that is theirs alone: second factor,
/// recovery codes, pending sign-ins, single sign-on links, sessions and API
/// keys. `NotFound` when there is no such user.
async fn delete_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    username: &str,
) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM two_factor WHERE username = $1",
        "DELETE FROM recovery_codes WHERE username = $1",
        "DELETE FROM pending_logins WHERE username = $1",
        "DELETE FROM sso_links WHERE username = $1",
        "UPDATE sessions SET revoked = 1 WHERE username = $1",
        "UPDATE api_keys SET revoked = 1 WHERE username = $1",
    ] {
        sqlx::query(sql)
            .bind(username.to_owned())
            .execute(&mut **tx)
            .await
            .map_err(unavailable)?;
    }
    let done = sqlx::query("DELETE FROM users WHERE username = $1")
        .bind(username.to_owned())
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("user `{username}`")));
    }
    Ok(())
}

/// `text` with LIKE's wildcards taken literally (under `ESCAPE '\'`).
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
