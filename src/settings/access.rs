//! Who may do what: roles, access rules and how paths are compared, and the
//! users and API keys declared in the file.

use crate::accounts::users::valid_name;
use crate::config::raw;
use crate::config::Checker;
use crate::directory::{ApiKeyRecord, Roles, UserRecord, UserStatus};
use crate::identity::UserKind;
use crate::permission::{Permission, PermissionSet};
use crate::policy::{Access, AccessRule, PathCase, Policy};
use crate::request::{ReadSettings, Semicolons};
use http::Method;
use std::collections::{BTreeMap, HashSet};

pub(super) fn paths(raw: raw::RawPaths) -> (ReadSettings, PathCase) {
    let semicolons = match raw.allow_semicolons {
        Some(false) => Semicolons::Refuse,
        _ => Semicolons::JudgeBoth,
    };
    let case = match raw.case_insensitive {
        Some(true) => PathCase::Insensitive,
        _ => PathCase::Sensitive,
    };
    (ReadSettings { semicolons }, case)
}

fn permission_list(c: &mut Checker, path: &str, list: &[String]) -> Vec<Permission> {
    let mut out = Vec::new();
    for (i, p) in list.iter().enumerate() {
        match p.parse::<Permission>() {
            Ok(perm) => out.push(perm),
            Err(e) => c.err(&format!("{path}[{i}]"), e.to_string()),
        }
    }
    out
}

pub(super) fn roles(c: &mut Checker, raw: BTreeMap<String, Vec<String>>) -> Roles {
    let mut map = BTreeMap::new();
    map.insert(
        "admin".to_owned(),
        PermissionSet::new(vec![Permission::All]),
    );
    map.insert("user".to_owned(), PermissionSet::default());
    for (name, perms) in raw {
        if !valid_name(&name) {
            c.err(
                &format!("roles.{name}"),
                "role names use letters, digits, `_`, `-`, `.`",
            );
        }
        let list = permission_list(c, &format!("roles.{name}"), &perms);
        map.insert(name, PermissionSet::new(list));
    }
    Roles::new(map)
}

pub(super) fn rules(c: &mut Checker, raw: raw::RawRules, case: PathCase) -> Option<Policy> {
    let default = match raw.default.as_deref() {
        None | Some("authenticated") => Access::Authenticated,
        Some("deny") => Access::Deny,
        Some(other) => {
            c.err(
                "rules.default",
                format!("`{other}` must be `authenticated` or `deny`"),
            );
            Access::Authenticated
        }
    };
    let mut compiled = Vec::new();
    for (i, r) in raw.rules.into_iter().enumerate() {
        let at = |k: &str| format!("rules[{i}].{k}");
        let access = match (r.policy.as_deref(), r.permission.as_deref()) {
            (Some(_), Some(_)) => {
                c.err(
                    &format!("rules[{i}]"),
                    "set `policy` or `permission`, not both",
                );
                continue;
            }
            (None, None) => {
                c.err(
                    &format!("rules[{i}]"),
                    "needs `policy` (public, authenticated, deny) or `permission`",
                );
                continue;
            }
            (Some("public"), None) => Access::Public,
            (Some("authenticated"), None) => Access::Authenticated,
            (Some("deny"), None) => Access::Deny,
            (Some(other), None) => {
                c.err(
                    &at("policy"),
                    format!("`{other}` must be `public`, `authenticated` or `deny`"),
                );
                continue;
            }
            (None, Some(p)) => match p.parse() {
                Ok(perm) => Access::Permission(perm),
                Err(e) => {
                    c.err(&at("permission"), e.to_string());
                    continue;
                }
            },
        };
        let methods = match r.methods {
            None => None,
            Some(list) => {
                let mut out = Vec::new();
                for (j, m) in list.iter().enumerate() {
                    let upper = m.to_ascii_uppercase();
                    match Method::from_bytes(upper.as_bytes()) {
                        Ok(method) if !upper.is_empty() => out.push(method),
                        _ => c.err(
                            &format!("rules[{i}].methods[{j}]"),
                            format!("`{m}` is not an HTTP method"),
                        ),
                    }
                }
                Some(out)
            }
        };
        let paths = r.path.map(raw::OneOrMany::into_vec);
        match AccessRule::new(Some(i), paths, methods, r.hosts, access, case) {
            Ok(rule) => compiled.push(rule),
            Err(e) => c.err(&format!("rules[{i}]"), e.to_string()),
        }
    }
    Some(Policy::new(compiled, default))
}

pub(super) fn users(
    c: &mut Checker,
    raw: Vec<raw::RawUser>,
    roles: &Roles,
) -> BTreeMap<String, UserRecord> {
    let mut out = BTreeMap::new();
    for (i, u) in raw.into_iter().enumerate() {
        let at = |k: &str| format!("users[{i}].{k}");
        if !valid_name(&u.username) {
            c.err(
                &at("username"),
                format!(
                    "`{}` must be 1-128 letters, digits, `_`, `-`, `.`, `@`",
                    u.username
                ),
            );
        }
        if out.contains_key(&u.username) {
            c.err(
                &at("username"),
                format!("`{}` is declared twice", u.username),
            );
        }
        let kind = match u.kind.as_deref() {
            None | Some("user") => UserKind::User,
            Some("api") => UserKind::Api,
            Some(o) => {
                c.err(&at("type"), format!("`{o}` must be `user` or `api`"));
                UserKind::User
            }
        };
        let status = match u.status.as_deref() {
            None | Some("enabled") => UserStatus::Enabled,
            Some("disabled") => UserStatus::Disabled,
            Some(o) => {
                c.err(
                    &at("status"),
                    format!("`{o}` must be `enabled` or `disabled`"),
                );
                UserStatus::Disabled
            }
        };
        let role = u.role.unwrap_or_else(|| "user".into());
        if !roles.contains(&role) {
            c.err(
                &at("role"),
                format!("role `{role}` is not defined under `roles`"),
            );
        }
        if let Some(h) = &u.password_hash {
            if let Err(e) = crate::authn::password::check_phc(h) {
                c.err(&at("password_hash"), e);
            }
        }
        if let Some(e) = &u.email {
            if !e.contains('@') || e.chars().any(char::is_whitespace) {
                c.err(&at("email"), format!("`{e}` is not an email address"));
            }
        }
        out.insert(
            u.username.clone(),
            UserRecord {
                username: u.username,
                email: u.email,
                name: u.name,
                kind,
                status,
                role,
                password_hash: u.password_hash,
                credentials_version: 0,
            },
        );
    }
    out
}

pub(super) fn api_keys(
    c: &mut Checker,
    raw: Vec<raw::RawApiKey>,
    users: &BTreeMap<String, UserRecord>,
) -> Vec<ApiKeyRecord> {
    let mut out: Vec<ApiKeyRecord> = Vec::new();
    let mut names = HashSet::new();
    for (i, k) in raw.into_iter().enumerate() {
        let at = |f: &str| format!("api_keys[{i}].{f}");
        if !valid_name(&k.name) || !names.insert(k.name.clone()) {
            c.err(
                &at("name"),
                format!(
                    "`{}` must be a unique name of letters, digits, `_-.@`",
                    k.name
                ),
            );
        }
        let sha256 = k
            .hash
            .strip_prefix("sha256:")
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        let Some(sha256) = sha256 else {
            c.err(
                &at("hash"),
                "must be `sha256:` followed by 64 hex digits (see `gatehouse apikey generate`)",
            );
            continue;
        };
        if out.iter().any(|o| o.sha256 == sha256) {
            c.err(&at("hash"), "the same key is declared twice");
        }
        if let Some(u) = &k.user {
            if !users.contains_key(u) {
                c.err(
                    &at("user"),
                    format!("user `{u}` is not declared under `users`"),
                );
            }
        }
        let permissions = k
            .permissions
            .as_ref()
            .map(|p| permission_list(c, &at("permissions"), p));
        if k.user.is_none() && permissions.is_none() {
            c.err(
                &format!("api_keys[{i}]"),
                "bind the key to a `user` or give it `permissions`",
            );
        }
        let expires_at =
            k.expires
                .as_deref()
                .and_then(|e| match humantime::parse_rfc3339_weak(e) {
                    Ok(t) => Some(t),
                    Err(_) => {
                        c.err(
                            &at("expires"),
                            format!("`{e}` is not an RFC 3339 time like `2027-01-31T00:00:00Z`"),
                        );
                        None
                    }
                });
        out.push(ApiKeyRecord {
            name: k.name,
            sha256,
            owner: k.user,
            permissions,
            expires_at,
        });
    }
    out
}
