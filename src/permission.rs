//! Permissions (`resource:action`, `resource:*`, `*`) and sets of them.

use std::fmt;

/// One permission as written in a role or rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Permission {
    /// `*`: everything.
    All,
    /// `resource:*`: every action on one resource.
    AnyAction { resource: String },
    /// `resource:action`.
    Exact { resource: String, action: String },
}

/// Why a permission string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid permission `{0}`: expected `resource:action`, `resource:*` or `*` (letters, digits, `_`, `-`, `.`)")]
pub struct InvalidPermission(pub String);

fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl std::str::FromStr for Permission {
    type Err = InvalidPermission;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "*" {
            return Ok(Permission::All);
        }
        let err = || InvalidPermission(s.to_owned());
        let (resource, action) = s.split_once(':').ok_or_else(err)?;
        if !valid_part(resource) {
            return Err(err());
        }
        if action == "*" {
            return Ok(Permission::AnyAction {
                resource: resource.to_owned(),
            });
        }
        if !valid_part(action) {
            return Err(err());
        }
        Ok(Permission::Exact {
            resource: resource.to_owned(),
            action: action.to_owned(),
        })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::All => f.write_str("*"),
            Permission::AnyAction { resource } => write!(f, "{resource}:*"),
            Permission::Exact { resource, action } => write!(f, "{resource}:{action}"),
        }
    }
}

impl Permission {
    /// Does holding `self` grant `wanted`?
    pub fn grants(&self, wanted: &Permission) -> bool {
        match (self, wanted) {
            (Permission::All, _) => true,
            (_, Permission::All) => false,
            (Permission::AnyAction { resource: r }, Permission::AnyAction { resource: w })
            | (Permission::AnyAction { resource: r }, Permission::Exact { resource: w, .. }) => {
                r == w
            }
            (Permission::Exact { .. }, Permission::AnyAction { .. }) => false,
            (
                Permission::Exact {
                    resource: r,
                    action: a,
                },
                Permission::Exact {
                    resource: wr,
                    action: wa,
                },
            ) => r == wr && a == wa,
        }
    }
}

/// The permissions an identity holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet(Vec<Permission>);

impl PermissionSet {
    pub fn new(perms: Vec<Permission>) -> Self {
        PermissionSet(perms)
    }

    pub fn allows(&self, wanted: &Permission) -> bool {
        self.0.iter().any(|p| p.grants(wanted))
    }

    /// Does this set grant everything `other` does (so whoever holds this
    /// set may hand `other` out)?
    pub fn covers(&self, other: &PermissionSet) -> bool {
        other.iter().all(|p| self.allows(p))
    }

    /// Those of `requested` this set grants (a key narrowed to its owner's rights).
    pub fn narrow(&self, requested: &[Permission]) -> PermissionSet {
        PermissionSet(
            requested
                .iter()
                .filter(|p| self.allows(p))
                .cloned()
                .collect(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Comma-separated, as sent in `Remote-Permissions`.
    pub fn to_header_string(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Permission {
        s.parse().unwrap()
    }

    #[test]
    fn grants_table() {
        let cases = [
            ("*", "posts:read", true),
            ("*", "*", true),
            ("posts:*", "posts:read", true),
            ("posts:*", "posts:*", true),
            ("posts:*", "users:read", false),
            ("posts:read", "posts:read", true),
            ("posts:read", "posts:write", false),
            ("posts:read", "posts:*", false),
            ("posts:read", "*", false),
            ("posts:*", "*", false),
        ];
        for (held, wanted, expect) in cases {
            assert_eq!(p(held).grants(&p(wanted)), expect, "{held} grants {wanted}");
        }
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in [
            "",
            "posts",
            ":read",
            "posts:",
            "a b:c",
            "*:read",
            "posts:read:x",
            "po$ts:read",
        ] {
            assert!(bad.parse::<Permission>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn narrow_keeps_only_granted() {
        let owner = PermissionSet::new(vec![p("posts:*")]);
        let n = owner.narrow(&[p("posts:read"), p("users:read"), p("*")]);
        assert_eq!(n, PermissionSet::new(vec![p("posts:read")]));
    }
}
