//! The principals Gatehouse knows: users, API keys and roles.
//!
//! Today these come from the config file (read-only, for GitOps); the stored
//! users of later issues join them behind the same types.

use crate::identity::{AuthMethod, Identity, UserKind};
use crate::permission::{Permission, PermissionSet};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// `status` of a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Enabled,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Enabled => "enabled",
            UserStatus::Disabled => "disabled",
        }
    }

    /// `enabled` or `disabled`.
    pub fn parse(s: &str) -> Option<UserStatus> {
        match s {
            "enabled" => Some(UserStatus::Enabled),
            "disabled" => Some(UserStatus::Disabled),
            _ => None,
        }
    }
}

/// A user as configured or stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub kind: UserKind,
    pub status: UserStatus,
    pub role: String,
    /// argon2id PHC string; `None` means password login is impossible.
    pub password_hash: Option<String>,
    /// Bumped by every password change of a stored user (always 0 for
    /// config-file users): Gatehouse's tokens carry the value they were
    /// issued under, and one issued under an older value is refused.
    pub credentials_version: i64,
}

/// An API key as configured: only its SHA-256 is known.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub name: String,
    pub sha256: [u8; 32],
    /// The user the key acts as.
    pub owner: Option<String>,
    /// The key's own permissions (narrowed to the owner's when bound).
    pub permissions: Option<Vec<Permission>>,
    pub expires_at: Option<SystemTime>,
}

/// Role name → permissions.
#[derive(Debug, Clone, Default)]
pub struct Roles(BTreeMap<String, PermissionSet>);

impl Roles {
    pub fn new(map: BTreeMap<String, PermissionSet>) -> Self {
        Roles(map)
    }

    pub fn permissions(&self, role: &str) -> PermissionSet {
        self.0.get(role).cloned().unwrap_or_default()
    }

    pub fn contains(&self, role: &str) -> bool {
        self.0.contains_key(role)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &PermissionSet)> {
        self.0.iter()
    }
}

/// Users, keys and roles, looked up by the authenticator and by `explain`.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub users: BTreeMap<String, UserRecord>,
    pub api_keys: Vec<ApiKeyRecord>,
    pub roles: Roles,
}

impl Directory {
    pub fn user(&self, username: &str) -> Option<&UserRecord> {
        self.users.get(username)
    }

    /// The identity `user` has when it authenticates by `method`.
    pub fn identity_of(&self, user: &UserRecord, method: AuthMethod) -> Identity {
        Identity::new(
            user.username.clone(),
            user.email.clone(),
            user.name.clone(),
            user.kind,
            Some(user.role.clone()),
            self.roles.permissions(&user.role),
            method,
            None,
        )
    }
}
