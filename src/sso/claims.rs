//! What a provider's claims say about a person, read the way the provider's
//! settings ask: the user name, the groups, the role they map to, and
//! whether the person may sign in here at all. Pure functions.

use super::ProviderSettings;
use serde_json::{Map, Value};

/// The claims of one sign-in (ID token, completed from userinfo).
#[derive(Debug, Clone, Default)]
pub struct Claims(pub Map<String, Value>);

/// Why a person may not sign in through this provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    #[error("not a member of a group allowed to sign in")]
    Group,
    #[error("the e-mail address is not verified, or not in a domain allowed to sign in")]
    EmailDomain,
    #[error("the provider gave no usable user name")]
    NoUserName,
}

impl Claims {
    fn text(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    pub fn subject(&self) -> Option<&str> {
        self.text("sub")
    }

    /// The e-mail address, whether or not it is verified.
    pub fn email(&self) -> Option<&str> {
        self.text("email")
    }

    /// `email_verified: true` (some providers send the string `"true"`).
    pub fn email_verified(&self) -> bool {
        match self.0.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }

    /// The e-mail address, only when the provider vouches for it.
    pub fn verified_email(&self) -> Option<&str> {
        self.email().filter(|_| self.email_verified())
    }

    pub fn name(&self) -> Option<&str> {
        self.text("name")
    }

    /// Does the set lack a claim these settings read?
    pub fn lacks_any(&self, p: &ProviderSettings) -> bool {
        [p.username_claim.as_str(), p.groups_claim.as_str(), "email"]
            .iter()
            .any(|c| !self.0.contains_key(*c))
    }

    /// Add the claims of `other` this set lacks (userinfo completing the ID
    /// token; the ID token's own claims win).
    pub fn complete_from(&mut self, other: Claims) {
        for (k, v) in other.0 {
            self.0.entry(k).or_insert(v);
        }
    }

    /// The groups claim as a list: an array of strings, or one string of
    /// names separated by commas or spaces. In claim order.
    pub fn groups(&self, claim: &str) -> Vec<String> {
        match self.0.get(claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => s
                .split([',', ' '])
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The local user name: `username_claim`, else the e-mail, else `sub`;
    /// the first that is a valid name (`valid` is the account rule).
    pub fn username(&self, p: &ProviderSettings, valid: impl Fn(&str) -> bool) -> Option<String> {
        [p.username_claim.as_str(), "email", "sub"]
            .iter()
            .filter_map(|c| self.text(c))
            .find(|v| valid(v))
            .map(str::to_owned)
    }
}

/// The role a person gets: the first of their groups (in claim order) that
/// `role_map` maps, else `default_role`.
pub fn role_for(p: &ProviderSettings, groups: &[String]) -> String {
    groups
        .iter()
        .find_map(|g| p.role_map.get(g))
        .unwrap_or(&p.default_role)
        .clone()
}

/// `allowed_groups` and `allowed_email_domains`, checked at every sign-in.
pub fn check_allowed(
    p: &ProviderSettings,
    claims: &Claims,
    groups: &[String],
) -> Result<(), NotAllowed> {
    if !p.allowed_groups.is_empty() && !groups.iter().any(|g| p.allowed_groups.contains(g)) {
        return Err(NotAllowed::Group);
    }
    if !p.allowed_email_domains.is_empty() {
        let domain = claims
            .verified_email()
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| d.to_ascii_lowercase());
        let allowed = domain.is_some_and(|d| p.allowed_email_domains.contains(&d));
        if !allowed {
            return Err(NotAllowed::EmailDomain);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> ProviderSettings {
        let mut p = ProviderSettings::for_tests("corp");
        p.role_map.insert("admins".into(), "admin".into());
        p.role_map.insert("devs".into(), "editor".into());
        p
    }

    fn claims(v: Value) -> Claims {
        match v {
            Value::Object(m) => Claims(m),
            _ => Claims::default(),
        }
    }

    #[test]
    fn the_first_group_that_maps_wins_else_the_default_role() {
        let p = settings();
        let g = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(role_for(&p, &g(&["devs", "admins"])), "editor");
        assert_eq!(role_for(&p, &g(&["x", "admins", "devs"])), "admin");
        assert_eq!(role_for(&p, &g(&["x"])), "user");
        assert_eq!(role_for(&p, &[]), "user");
    }

    #[test]
    fn groups_come_as_a_list_or_a_string() {
        let c = claims(json!({"groups": ["a", 3, "b"], "roles": "x, y z"}));
        assert_eq!(c.groups("groups"), ["a", "b"]);
        assert_eq!(c.groups("roles"), ["x", "y", "z"]);
        assert!(c.groups("missing").is_empty());
    }

    #[test]
    fn the_user_name_falls_back_to_email_then_sub() {
        let p = settings();
        let valid = |s: &str| !s.contains(' ');
        let c = claims(json!({"sub": "s1", "email": "a@x.test", "preferred_username": "alice"}));
        assert_eq!(c.username(&p, valid).as_deref(), Some("alice"));
        let c = claims(json!({"sub": "s1", "email": "a@x.test", "preferred_username": "Alice E"}));
        assert_eq!(c.username(&p, valid).as_deref(), Some("a@x.test"));
        let c = claims(json!({"sub": "s1"}));
        assert_eq!(c.username(&p, valid).as_deref(), Some("s1"));
        assert_eq!(claims(json!({"sub": "a b"})).username(&p, valid), None);
    }

    #[test]
    fn groups_and_domains_are_enforced_and_domains_need_a_verified_email() {
        let mut p = settings();
        p.allowed_groups = vec!["staff".into()];
        let c = claims(json!({"email": "a@corp.test", "email_verified": true}));
        assert_eq!(
            check_allowed(&p, &c, &["devs".into()]),
            Err(NotAllowed::Group)
        );
        assert_eq!(
            check_allowed(&p, &c, &["devs".into(), "staff".into()]),
            Ok(())
        );
        p.allowed_groups.clear();
        p.allowed_email_domains = vec!["corp.test".into()];
        assert_eq!(check_allowed(&p, &c, &[]), Ok(()));
        let upper = claims(json!({"email": "a@CORP.test", "email_verified": "true"}));
        assert_eq!(check_allowed(&p, &upper, &[]), Ok(()));
        let unverified = claims(json!({"email": "a@corp.test", "email_verified": false}));
        assert_eq!(
            check_allowed(&p, &unverified, &[]),
            Err(NotAllowed::EmailDomain)
        );
        let other = claims(json!({"email": "a@corp.test.evil", "email_verified": true}));
        assert_eq!(check_allowed(&p, &other, &[]), Err(NotAllowed::EmailDomain));
    }
}
