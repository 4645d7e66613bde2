//! Administration: who may read and change other people's accounts
//! ([`authorize`], one pure function for the API, the pages and their
//! tests), which roles count as administrators for the rule that one
//! enabled administrator always remains ([`admin_guard`]), and the
//! administrator's operations on users ([`Admin`]), shared by the JSON API,
//! the admin pages and `gatehouse user`.
//!
//! Users declared in the config file are listed and read like stored ones,
//! marked read-only; changing or deleting one is refused. Their sessions,
//! second factor and API keys live in the store, so those can be managed.
//! Each change answers the [`AuditEvent`] that tells it (actor, target,
//! before → after) for the caller to record with where the request came
//! from; dropping cached identities is the caller's job too (the change
//! feed tells every other replica).

use crate::accounts::users::{hash_new_password, AccountError, NewAccount, PasswordPolicy};
use crate::audit::{action, AuditEvent, Outcome};
use crate::directory::{Directory, UserRecord, UserStatus};
use crate::identity::{Identity, UserKind};
use crate::permission::{Permission, PermissionSet};
use crate::store::{
    AdminGuard, SessionRecord, Store, StoreError, StoredApiKey, StoredUser, UserChange, UserQuery,
};

/// What an administration endpoint needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminNeed {
    /// List and read users, their sessions and keys: `users:get`.
    ReadUsers,
    /// Create, change, delete users; end their sessions; reset their
    /// second factor; revoke their keys: `users:manage`.
    ManageUsers,
    /// Read the audit trail: `audit:get`.
    ReadAudit,
    /// Ask how the policy answers a request (`api/explain`): `policy:explain`.
    ExplainPolicy,
}

impl AdminNeed {
    /// The permission this need stands for.
    pub fn permission(self) -> Permission {
        let (resource, action) = match self {
            AdminNeed::ReadUsers => ("users", "get"),
            AdminNeed::ManageUsers => ("users", "manage"),
            AdminNeed::ReadAudit => ("audit", "get"),
            AdminNeed::ExplainPolicy => ("policy", "explain"),
        };
        Permission::Exact {
            resource: resource.to_owned(),
            action: action.to_owned(),
        }
    }
}

/// Why a caller may not do what they asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminRefusal {
    #[error("this needs the permission `{0}`")]
    Lacks(String),
}

/// May `caller` do what `need` stands for? Their permissions decide,
/// however they signed in (a session, a token, an API key with the
/// permission).
pub fn authorize(caller: &Identity, need: AdminNeed) -> Result<(), AdminRefusal> {
    let wanted = need.permission();
    if caller.permissions.allows(&wanted) {
        Ok(())
    } else {
        Err(AdminRefusal::Lacks(wanted.to_string()))
    }
}

/// The guard that keeps one enabled administrator (a user whose role
/// grants `users:manage`) in the store: none when the config file declares
/// an enabled administrator, who cannot be changed and so always remains.
pub fn admin_guard(directory: &Directory) -> AdminGuard {
    let manage = AdminNeed::ManageUsers.permission();
    let roles: Vec<String> = directory
        .roles
        .iter()
        .filter(|(_, perms)| perms.allows(&manage))
        .map(|(name, _)| name.clone())
        .collect();
    let config_admin = directory
        .users
        .values()
        .any(|u| u.status == UserStatus::Enabled && roles.contains(&u.role));
    if config_admin {
        AdminGuard::default()
    } else {
        AdminGuard { roles }
    }
}

/// Is the setup page open, letting anyone who reaches it create an
/// administrator? Only while nobody enabled exists, in the config file or
/// in the store.
pub async fn setup_is_open(directory: &Directory, store: &Store) -> Result<bool, StoreError> {
    if directory
        .users
        .values()
        .any(|u| u.status == UserStatus::Enabled)
    {
        return Ok(false);
    }
    Ok(store.count_enabled_users().await? == 0)
}

/// Would disabling or deleting `username` leave nobody enabled, and so
/// open the setup page to anyone?
pub async fn is_last_enabled_user(
    directory: &Directory,
    store: &Store,
    username: &str,
) -> Result<bool, StoreError> {
    if directory
        .users
        .values()
        .any(|u| u.status == UserStatus::Enabled)
    {
        return Ok(false);
    }
    match store.user(username).await? {
        Some(u) if u.record.status == UserStatus::Enabled => {
            Ok(store.count_enabled_users().await? == 1)
        }
        _ => Ok(false),
    }
}

/// Why an administrator's operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("no such user")]
    NotFound,
    #[error("this user is declared in the config file (read-only): change it there")]
    ReadOnly,
    #[error("{message}")]
    Invalid {
        /// The field at fault, as the API names it.
        field: &'static str,
        message: String,
    },
    #[error("that user name or e-mail address is taken")]
    Taken,
    #[error("this would leave no enabled administrator")]
    LastAdmin,
    #[error("this user has no second factor")]
    NoSecondFactor,
    #[error("no such API key")]
    NoSuchKey,
    #[error("the role `{0}` has permissions you do not hold, so you may not manage its users or hand it out")]
    Outranked(String),
    #[error("the store does not answer: {0}")]
    Unavailable(String),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => AdminError::NotFound,
            StoreError::Conflict(_) => AdminError::Taken,
            StoreError::LastAdmin => AdminError::LastAdmin,
            e => AdminError::Unavailable(e.to_string()),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field,
        message: message.into(),
    }
}

impl AccountError {
    /// The field of a new or changed user this error is about.
    fn field(&self) -> &'static str {
        match self {
            AccountError::InvalidName => "username",
            AccountError::InvalidEmail => "email",
            _ => "password",
        }
    }
}

impl From<AccountError> for AdminError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Hash(m) => AdminError::Unavailable(m),
            e => invalid(e.field(), e.to_string()),
        }
    }
}

/// A user as an administrator sees one: stored, or declared in the config
/// file (`read_only`, no stored id or times).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedUser {
    pub id: Option<i64>,
    pub record: UserRecord,
    pub read_only: bool,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub last_login_at: Option<i64>,
}

impl ManagedUser {
    fn stored(u: StoredUser) -> Self {
        ManagedUser {
            id: Some(u.id),
            record: u.record,
            read_only: false,
            created_at: Some(u.created_at),
            updated_at: Some(u.updated_at),
            last_login_at: u.last_login_at,
        }
    }

    fn declared(record: &UserRecord) -> Self {
        ManagedUser {
            id: None,
            record: record.clone(),
            read_only: true,
            created_at: None,
            updated_at: None,
            last_login_at: None,
        }
    }

    pub fn username(&self) -> &str {
        &self.record.username
    }

    /// The facts an audit event shows of the user (never the password).
    fn facts(&self) -> serde_json::Value {
        let r = &self.record;
        serde_json::json!({
            "username": r.username, "email": r.email, "name": r.name,
            "type": r.kind.as_str(), "role": r.role, "status": r.status.as_str(),
        })
    }
}

/// Which users to list: text in the name, address or display name; type,
/// status, role; a page (from 1) of `per_page`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFilter {
    pub text: Option<String>,
    pub kind: Option<UserKind>,
    pub status: Option<UserStatus>,
    pub role: Option<String>,
    pub page: i64,
    pub per_page: i64,
}

impl Default for UserFilter {
    /// Everyone, first page.
    fn default() -> Self {
        UserFilter {
            text: None,
            kind: None,
            status: None,
            role: None,
            page: 1,
            per_page: Self::DEFAULT_PER_PAGE,
        }
    }
}

impl UserFilter {
    pub const DEFAULT_PER_PAGE: i64 = 50;
    pub const MAX_PER_PAGE: i64 = 200;

    /// From the query's text values (each optional, empty as absent).
    pub fn parse(
        text: Option<&str>,
        kind: Option<&str>,
        status: Option<&str>,
        role: Option<&str>,
        page: Option<&str>,
        per_page: Option<&str>,
    ) -> Result<UserFilter, AdminError> {
        let kind = match given(kind) {
            None => None,
            Some(k) => Some(
                UserKind::parse(k).ok_or_else(|| invalid("type", "`type` is `user` or `api`"))?,
            ),
        };
        let status = match given(status) {
            None => None,
            Some(v) => Some(
                UserStatus::parse(v)
                    .ok_or_else(|| invalid("status", "`status` is `enabled` or `disabled`"))?,
            ),
        };
        let number = |field: &'static str, v: Option<&str>, default: i64, max: i64| match given(v) {
            None => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(invalid(
                    field,
                    format!("`{field}` is a whole number from 1 to {max}"),
                )),
            },
        };
        Ok(UserFilter {
            text: given(text).map(str::to_owned),
            kind,
            status,
            role: given(role).map(str::to_owned),
            page: number("page", page, 1, 1_000_000)?,
            per_page: number(
                "per_page",
                per_page,
                Self::DEFAULT_PER_PAGE,
                Self::MAX_PER_PAGE,
            )?,
        })
    }

    fn matches(&self, r: &UserRecord) -> bool {
        let text = self.text.as_deref().map(str::to_lowercase);
        let has = |v: Option<&str>, t: &str| v.is_some_and(|v| v.to_lowercase().contains(t));
        text.as_deref().is_none_or(|t| {
            has(Some(&r.username), t) || has(r.email.as_deref(), t) || has(r.name.as_deref(), t)
        }) && self.kind.is_none_or(|k| k == r.kind)
            && self.status.is_none_or(|s| s == r.status)
            && self.role.as_deref().is_none_or(|role| role == r.role)
    }
}

/// A query value, trimmed; none when absent or empty.
fn given(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

/// What an administrator sends to create a user (text as received).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewUserInput {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// `user` (default) or `api`.
    pub kind: Option<String>,
    /// Default `user`.
    pub role: Option<String>,
    /// `enabled` (default) or `disabled`.
    pub status: Option<String>,
    /// None: no password sign-in until one is set (by reset, or here).
    pub password: Option<String>,
}

/// A partial change: each `Some` field is set (`Some(None)` clears the
/// address or display name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub role: Option<String>,
    pub status: Option<String>,
    pub kind: Option<String>,
    pub email: Option<Option<String>>,
    pub name: Option<Option<String>>,
    pub password: Option<String>,
}

/// An administrator at work: the store, the configuration's users and
/// roles, the password rule, who acts (a user name, or `cli`), and how far
/// their own permissions reach.
pub struct Admin<'a> {
    pub store: &'a Store,
    pub directory: &'a Directory,
    pub passwords: &'a PasswordPolicy,
    pub actor: &'a str,
    /// The actor's permissions: they change only users whose role these
    /// cover, and hand out only such roles (so `users:manage` alone cannot
    /// set an administrator's password, or make anyone an administrator).
    /// `None`: no limit (the CLI, which holds the store itself).
    pub reach: Option<&'a PermissionSet>,
}

impl Admin<'_> {
    /// Refuse a role the actor's permissions do not cover.
    fn within_reach(&self, role: &str) -> Result<(), AdminError> {
        match self.reach {
            Some(reach) if !reach.covers(&self.directory.roles.permissions(role)) => {
                Err(AdminError::Outranked(role.to_owned()))
            }
            _ => Ok(()),
        }
    }

    /// A user the actor may change (see [`Admin::reach`]).
    async fn find_in_reach(&self, id: &str) -> Result<ManagedUser, AdminError> {
        let user = self.find(id).await?;
        self.within_reach(&user.record.role)?;
        Ok(user)
    }

    /// A user by stored id (all digits) or name, stored or declared.
    pub async fn find(&self, id: &str) -> Result<ManagedUser, AdminError> {
        if let Ok(n) = id.parse::<i64>() {
            if let Some(u) = self.store.user_by_id(n).await? {
                return Ok(ManagedUser::stored(u));
            }
        }
        if let Some(r) = self.directory.user(id) {
            return Ok(ManagedUser::declared(r));
        }
        match self.store.user(id).await? {
            Some(u) => Ok(ManagedUser::stored(u)),
            None => Err(AdminError::NotFound),
        }
    }

    /// A stored user the actor may change, or why not (`ReadOnly` for a
    /// declared one).
    async fn find_stored(&self, id: &str) -> Result<ManagedUser, AdminError> {
        let user = self.find_in_reach(id).await?;
        if user.read_only {
            return Err(AdminError::ReadOnly);
        }
        Ok(user)
    }

    /// One page of the users `filter` matches (declared ones first, then
    /// stored ones, each by name), and how many match in all.
    pub async fn list(&self, filter: &UserFilter) -> Result<(Vec<ManagedUser>, i64), AdminError> {
        let declared: Vec<ManagedUser> = self
            .directory
            .users
            .values()
            .filter(|r| filter.matches(r))
            .map(ManagedUser::declared)
            .collect();
        let offset = (filter.page - 1).saturating_mul(filter.per_page);
        let n_declared = declared.len() as i64;
        let mut page: Vec<ManagedUser> = declared
            .into_iter()
            .skip(offset.min(n_declared) as usize)
            .take(filter.per_page as usize)
            .collect();
        let query = UserQuery {
            text: filter.text.clone(),
            kind: filter.kind,
            status: filter.status,
            role: filter.role.clone(),
            offset: (offset - n_declared).max(0),
            limit: filter.per_page - page.len() as i64,
        };
        let (stored, n_stored) = self.store.search_users(query).await?;
        page.extend(stored.into_iter().map(ManagedUser::stored));
        Ok((page, n_declared + n_stored))
    }

    fn role(&self, role: &str) -> Result<String, AdminError> {
        let role = role.trim();
        if self.directory.roles.contains(role) {
            Ok(role.to_owned())
        } else {
            Err(invalid(
                "role",
                format!("no role `{role}` is defined under `roles`"),
            ))
        }
    }

    fn kind(kind: &str) -> Result<UserKind, AdminError> {
        UserKind::parse(kind.trim()).ok_or_else(|| invalid("type", "`type` is `user` or `api`"))
    }

    fn status(status: &str) -> Result<UserStatus, AdminError> {
        UserStatus::parse(status.trim())
            .ok_or_else(|| invalid("status", "`status` is `enabled` or `disabled`"))
    }

    /// Check and hash a password off the async threads (Argon2 is slow).
    async fn hash(&self, password: String) -> Result<String, AdminError> {
        let policy = self.passwords.clone();
        tokio::task::spawn_blocking(move || hash_new_password(&policy, &password))
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?
            .map_err(AdminError::from)
    }

    fn event(&self, action: &'static str, target: &str) -> AuditEvent {
        AuditEvent::new(action, Outcome::Success)
            .actor(self.actor)
            .target(target)
    }

    /// Create a user.
    pub async fn create(
        &self,
        input: NewUserInput,
    ) -> Result<(ManagedUser, AuditEvent), AdminError> {
        let name = input
            .name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        let role = self.role(input.role.as_deref().unwrap_or("user"))?;
        self.within_reach(&role)?;
        let mut account = NewAccount::new(&input.username, input.email.as_deref())?
            .display_name(name)
            .role(role);
        if let Some(kind) = input.kind.as_deref() {
            account = account.kind(Self::kind(kind)?);
        }
        if let Some(status) = input.status.as_deref() {
            account = account.status(Self::status(status)?);
        }
        if self.directory.user(account.username()).is_some() {
            return Err(AdminError::Taken);
        }
        let new = match input.password {
            Some(password) => {
                crate::accounts::users::check_password(self.passwords, &password)?;
                let hash = self.hash(password).await?;
                let mut new = account.without_password();
                new.password_hash = Some(hash);
                new
            }
            None => account.without_password(),
        };
        let user = ManagedUser::stored(self.store.create_user(new).await?);
        let event = self
            .event(action::USER_CREATE, user.username())
            .detail("after", user.facts());
        Ok((user, event))
    }

    /// Change a stored user. A new password ends every session of theirs;
    /// becoming a machine (`api`) drops their second factor.
    pub async fn update(
        &self,
        id: &str,
        patch: UserPatch,
    ) -> Result<(ManagedUser, AuditEvent), AdminError> {
        let target = self.find_stored(id).await?;
        let email = match patch.email {
            Some(Some(e)) if !e.trim().is_empty() => {
                let e = e.trim().to_owned();
                crate::accounts::users::check_email(&e)?;
                Some(Some(e))
            }
            Some(_) => Some(None),
            None => None,
        };
        let name = patch
            .name
            .map(|n| n.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()));
        let password_hash = match patch.password {
            Some(p) => {
                crate::accounts::users::check_password(self.passwords, &p)?;
                Some(self.hash(p).await?)
            }
            None => None,
        };
        let change = UserChange {
            role: match patch.role.as_deref().map(|r| self.role(r)).transpose()? {
                Some(role) => {
                    self.within_reach(&role)?;
                    Some(role)
                }
                None => None,
            },
            status: patch.status.as_deref().map(Self::status).transpose()?,
            kind: patch.kind.as_deref().map(Self::kind).transpose()?,
            email,
            name,
            password_hash,
        };
        let new_password = change.password_hash.is_some();
        let guard = admin_guard(self.directory);
        let (before, after) = self
            .store
            .update_user(target.username(), change, guard)
            .await?;
        if before.record.kind == UserKind::User && after.record.kind == UserKind::Api {
            match self.store.delete_second_factor(target.username()).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (before, after) = (ManagedUser::stored(before), ManagedUser::stored(after));
        let (mut was, mut is) = (serde_json::Map::new(), serde_json::Map::new());
        if let (serde_json::Value::Object(b), serde_json::Value::Object(a)) =
            (before.facts(), after.facts())
        {
            for (key, value) in a {
                if b.get(&key) != Some(&value) {
                    was.insert(key.clone(), b.get(&key).cloned().unwrap_or_default());
                    is.insert(key, value);
                }
            }
        }
        if new_password {
            was.insert("password".into(), "…".into());
            is.insert("password".into(), "changed".into());
        }
        let event = self
            .event(action::USER_UPDATE, after.username())
            .detail("before", was)
            .detail("after", is);
        Ok((after, event))
    }

    /// Delete a stored user, with their sessions and keys.
    pub async fn delete(&self, id: &str) -> Result<(ManagedUser, AuditEvent), AdminError> {
        let target = self.find_stored(id).await?;
        let guard = admin_guard(self.directory);
        let gone = ManagedUser::stored(
            self.store
                .delete_user_guarded(target.username(), guard)
                .await?,
        );
        let event = self
            .event(action::USER_DELETE, gone.username())
            .detail("before", gone.facts());
        Ok((gone, event))
    }

    /// The user's sessions still usable at `now` (given the idle timeout,
    /// seconds), newest first.
    pub async fn sessions(
        &self,
        id: &str,
        now: i64,
        idle_timeout: i64,
    ) -> Result<(ManagedUser, Vec<SessionRecord>), AdminError> {
        let user = self.find(id).await?;
        let sessions = self.store.user_sessions(user.username(), now).await?;
        let live = sessions
            .into_iter()
            .filter(|s| s.is_live(now, idle_timeout))
            .collect();
        Ok((user, live))
    }

    /// End every session of the user, on every replica. Answers how many.
    pub async fn sign_out(&self, id: &str) -> Result<(ManagedUser, u64, AuditEvent), AdminError> {
        let user = self.find_in_reach(id).await?;
        let n = self
            .store
            .revoke_user_sessions(user.username(), None, None)
            .await?;
        let event = self
            .event(action::SESSIONS_REVOKE, user.username())
            .detail("revoked", n);
        Ok((user, n, event))
    }

    /// Remove the user's second factor (a lost device).
    pub async fn reset_two_factor(
        &self,
        id: &str,
    ) -> Result<(ManagedUser, AuditEvent), AdminError> {
        let user = self.find_in_reach(id).await?;
        match self.store.delete_second_factor(user.username()).await {
            Ok(()) => {}
            Err(StoreError::NotFound(_)) => return Err(AdminError::NoSecondFactor),
            Err(e) => return Err(e.into()),
        }
        let event = self.event(action::TWO_FACTOR_RESET, user.username());
        Ok((user, event))
    }

    /// The user's live API keys.
    pub async fn api_keys(&self, id: &str) -> Result<(ManagedUser, Vec<StoredApiKey>), AdminError> {
        let user = self.find(id).await?;
        let keys = self.store.list_api_keys(Some(user.username())).await?;
        Ok((user, keys))
    }

    /// Revoke one key of the user (`only`), or all of them. Answers the
    /// user and the revoked keys' hashes (for the caller's cache).
    pub async fn revoke_api_keys(
        &self,
        id: &str,
        only: Option<i64>,
    ) -> Result<(ManagedUser, Vec<String>, AuditEvent), AdminError> {
        let user = self.find_in_reach(id).await?;
        let hashes = match only {
            Some(key) => match self.store.revoke_api_key(key, Some(user.username())).await {
                Ok(hash) => vec![hash],
                Err(StoreError::NotFound(_)) => return Err(AdminError::NoSuchKey),
                Err(e) => return Err(e.into()),
            },
            None => self.store.revoke_user_api_keys(user.username()).await?,
        };
        let mut event = self
            .event(action::API_KEY_REVOKE, user.username())
            .detail("revoked", hashes.len());
        if let Some(key) = only {
            event = event.detail("key_id", key);
        }
        Ok((user, hashes, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{Roles, UserRecord};
    use crate::identity::{AuthMethod, UserKind};
    use crate::permission::PermissionSet;
    use std::collections::BTreeMap;

    fn caller(perms: &[&str], method: AuthMethod) -> Identity {
        let perms = perms.iter().map(|p| p.parse().unwrap()).collect();
        Identity::new(
            "someone".into(),
            None,
            None,
            UserKind::User,
            None,
            PermissionSet::new(perms),
            method,
            None,
        )
    }

    #[test]
    fn each_need_asks_for_its_own_permission() {
        use AdminNeed::*;
        let session = AuthMethod::Session;
        // (caller's permissions, need, allowed)
        let cases: &[(&[&str], AdminNeed, bool)] = &[
            (&[], ReadUsers, false),
            (&[], ManageUsers, false),
            (&[], ReadAudit, false),
            (&["app:read"], ReadUsers, false),
            (&["users:get"], ReadUsers, true),
            (&["users:get"], ManageUsers, false),
            (&["users:get"], ReadAudit, false),
            (&["users:manage"], ManageUsers, true),
            (&["users:manage"], ReadUsers, false),
            (&["users:*"], ReadUsers, true),
            (&["users:*"], ManageUsers, true),
            (&["users:*"], ReadAudit, false),
            (&["audit:get"], ReadAudit, true),
            (&["audit:get"], ReadUsers, false),
            (&["*"], ReadUsers, true),
            (&["*"], ManageUsers, true),
            (&["*"], ReadAudit, true),
            (&[], ExplainPolicy, false),
            (&["users:*", "audit:get"], ExplainPolicy, false),
            (&["policy:explain"], ExplainPolicy, true),
            (&["policy:explain"], ReadUsers, false),
            (&["policy:*"], ExplainPolicy, true),
            (&["*"], ExplainPolicy, true),
        ];
        for (perms, need, allowed) in cases {
            let got = authorize(&caller(perms, session), *need);
            assert_eq!(got.is_ok(), *allowed, "{perms:?} {need:?}");
        }
        // However the caller signed in: an API key with the permission may.
        for method in [AuthMethod::ApiKey, AuthMethod::Jwt, AuthMethod::Basic] {
            assert!(authorize(&caller(&["users:manage"], method), AdminNeed::ManageUsers).is_ok());
        }
        assert_eq!(
            authorize(&caller(&["users:get"], session), AdminNeed::ManageUsers),
            Err(AdminRefusal::Lacks("users:manage".into()))
        );
    }

    fn directory(users: &[(&str, &str, UserStatus)]) -> Directory {
        let perms =
            |ps: &[&str]| PermissionSet::new(ps.iter().map(|p| p.parse().unwrap()).collect());
        let mut roles = BTreeMap::new();
        roles.insert("admin".to_owned(), perms(&["*"]));
        roles.insert("ops".to_owned(), perms(&["users:*"]));
        roles.insert("viewer".to_owned(), perms(&["users:get"]));
        roles.insert("user".to_owned(), perms(&[]));
        let users = users
            .iter()
            .map(|(name, role, status)| {
                let record = UserRecord {
                    username: (*name).into(),
                    email: None,
                    name: None,
                    kind: UserKind::User,
                    status: *status,
                    role: (*role).into(),
                    password_hash: None,
                    credentials_version: 0,
                };
                ((*name).to_owned(), record)
            })
            .collect();
        Directory {
            users,
            api_keys: Vec::new(),
            roles: Roles::new(roles),
        }
    }

    #[test]
    fn administrators_are_the_roles_that_manage_users() {
        let guard = admin_guard(&directory(&[("carol", "viewer", UserStatus::Enabled)]));
        assert_eq!(guard.roles, vec!["admin".to_owned(), "ops".to_owned()]);
        let disabled = directory(&[("root", "admin", UserStatus::Disabled)]);
        assert_eq!(
            admin_guard(&disabled).roles.len(),
            2,
            "a disabled one does not count"
        );
        let declared = directory(&[("root", "admin", UserStatus::Enabled)]);
        assert!(
            admin_guard(&declared).roles.is_empty(),
            "an enabled admin in the config file always remains"
        );
    }
}
