//! Administration: who may read and change other people's accounts
//! ([`authorize`], one pure function for the API, the pages and their
//! tests), and which roles count as administrators for the rule that one
//! enabled administrator always remains ([`admin_guard`]).

use crate::directory::{Directory, UserStatus};
use crate::identity::Identity;
use crate::permission::Permission;
use crate::store::AdminGuard;

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
}

impl AdminNeed {
    /// The permission this need stands for.
    pub fn permission(self) -> Permission {
        let (resource, action) = match self {
            AdminNeed::ReadUsers => ("users", "get"),
            AdminNeed::ManageUsers => ("users", "manage"),
            AdminNeed::ReadAudit => ("audit", "get"),
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
