//! Users in the store: the `users` table (deleting a user also clears its
//! rows in `two_factor`, `recovery_codes`, `pending_logins` and `sso_links`;
//! changing a password bumps the user's credentials version and revokes
//! their other sessions).

use super::changes::record_change;
use super::{is_unique_violation, now, unavailable, Store, StoreError};
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
         SELECT $1, $2, $3, $4, 'enabled', $5, $6, $7, $7 WHERE {guard} RETURNING {USER_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(user.username.clone())
        .bind(user.email.clone())
        .bind(user.name.clone())
        .bind(kind_str(user.kind))
        .bind(user.role.clone())
        .bind(user.password_hash.clone())
        .bind(now())
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
                        "DELETE FROM sso_links WHERE username = $1",
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
            let mut tx = pool.begin().await.map_err(unavailable)?;
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
}
