//! Why a request gets its answer: the one dry run behind `gatehouse explain`
//! and `GET {prefix}/api/explain`. It reads the request as the proxy does
//! (target form, portal paths, [`RequestReading`] with its readings and
//! override headers), finds the rules every reading matches and decides as
//! [`Gate`](super::Gate) does, for anonymous or for a user found in the
//! config file or in the store, with their role's permissions from the
//! configured roles. Nothing is verified or counted: no password, no
//! regulation, no metrics.

use crate::directory::{Directory, UserRecord, UserStatus};
use crate::identity::{AuthMethod, Identity};
use crate::policy::{Access, Policy, Verdict};
use crate::request::{
    classify_target, AlsoRead, ReadError, ReadSettings, RequestReading, TargetError, TargetForm,
};
use crate::store::Store;
use http::{HeaderMap, Method};

/// What the request is judged against: the live policy and directory, the
/// store of users, and how the proxy reads requests.
#[derive(Clone, Copy)]
pub struct Explainer<'a> {
    pub policy: &'a Policy,
    pub reading: ReadSettings,
    /// Which headers reach the app and so are judged as readings (method
    /// overrides with `headers.method_override: judge`).
    pub also: AlsoRead,
    pub directory: &'a Directory,
    /// Stored users; `None` when only config-file users can be named.
    pub store: Option<&'a Store>,
    /// The host of `public_url`, for a URL given as a path.
    pub public_host: &'a str,
    /// The portal prefix (`/_auth`): the portal answers those paths itself.
    pub portal_prefix: &'a str,
}

/// The request to explain.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// Any case (`head` is HEAD).
    pub method: &'a str,
    /// A path (`/a?b`) or an http(s) URL, as a client would send it.
    pub url: &'a str,
    /// Decide as this user (config file or store); anonymous when `None`.
    pub user: Option<&'a str>,
    /// Headers sent with it (method overrides are judged when `also` says so).
    pub headers: &'a HeaderMap,
}

/// Why nothing could be explained (not an answer of the server's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    #[error("`{0}` is not an HTTP method")]
    Method(String),
    #[error("no user `{0}` in the configuration or the store")]
    NoSuchUser(String),
    #[error("the store does not answer: {0}")]
    Unavailable(String),
}

/// Allowed or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed to the upstream (whose answer it is), or answered by the portal.
    Allow,
    /// Answered by Gatehouse with `status`.
    Deny,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
        }
    }
}

/// A rule one of the request's readings matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    /// `rules[3]` or `default`.
    pub name: String,
    /// Its methods and patterns (`GET,HEAD /api/**`).
    pub pattern: String,
    /// What it requires (`permission posts:write`, `public`, …).
    pub requires: String,
}

/// The user the request was judged as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asker {
    pub username: String,
    pub role: String,
    /// The role's permissions (empty when disabled: they count for nothing).
    pub permissions: Vec<String>,
    pub enabled: bool,
    /// Declared in the config file (else stored).
    pub declared: bool,
}

/// What the server would answer, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The method as sent (upper case).
    pub method: String,
    /// The host as read (lower case, no port).
    pub host: String,
    /// The canonical path as read; `None` when it cannot be read.
    pub path: Option<String>,
    /// Every further (method, path) reading, `GET /a`; each must pass.
    pub also_read: Vec<String>,
    /// The rules the readings matched, the canonical reading's first.
    pub rules: Vec<RuleMatch>,
    /// The rule that decided; `None` for an unreadable request or a portal path.
    pub rule: Option<RuleMatch>,
    pub outcome: Outcome,
    /// The status the server answers with (200: passed to the upstream, or
    /// to the portal, which then answers for itself).
    pub status: u16,
    /// A word for why: `public`, `allowed` or `portal` when allowed, else
    /// the `error` code of the server's answer (`unauthorized`,
    /// `account_disabled`, `forbidden`, `invalid_path`, …).
    pub reason: String,
    /// The same in a sentence.
    pub message: String,
    pub user: Option<Asker>,
    /// The permissions the matched rules require, each once.
    pub permissions_needed: Vec<String>,
}

impl Explainer<'_> {
    /// Explain `q` as the proxy would answer it.
    pub async fn explain(&self, q: &Question<'_>) -> Result<Explanation, ExplainError> {
        let method = Method::from_bytes(q.method.trim().to_ascii_uppercase().as_bytes())
            .ok()
            .filter(|_| !q.method.trim().is_empty())
            .ok_or_else(|| ExplainError::Method(q.method.to_owned()))?;
        let user = match q.user.map(str::trim).filter(|u| !u.is_empty()) {
            Some(name) => Some(self.find_user(name).await?),
            None => None,
        };
        let asker = user.as_ref().map(|(u, declared)| self.asker(u, *declared));
        let mut out = Explanation {
            method: method.to_string(),
            host: crate::request::canonical_host(self.public_host).into_owned(),
            path: None,
            also_read: Vec::new(),
            rules: Vec::new(),
            rule: None,
            outcome: Outcome::Deny,
            status: 400,
            reason: String::new(),
            message: String::new(),
            user: asker,
            permissions_needed: Vec::new(),
        };
        let (host, path) = match target(&method, q.url, self.public_host) {
            Ok(found) => found,
            Err(e) => {
                let e = ReadError::Target(e);
                out.reason = e.code().to_owned();
                out.message = e.to_string();
                return Ok(out);
            }
        };
        out.host = crate::request::canonical_host(host).into_owned();
        if is_portal_path(self.portal_prefix, path) {
            out.path = Some(path.to_owned());
            out.outcome = Outcome::Allow;
            out.status = 200;
            out.reason = "portal".into();
            out.message = format!(
                "answered by Gatehouse's own portal ({}), whose endpoints check their own permissions; no rule applies",
                self.portal_prefix
            );
            return Ok(out);
        }
        let reading =
            match RequestReading::new(&method, host, path, q.headers, self.also, self.reading) {
                Ok(r) => r,
                Err(e) => {
                    out.reason = e.code().to_owned();
                    out.message = e.to_string();
                    return Ok(out);
                }
            };
        out.path = Some(reading.path().to_owned());
        out.also_read = reading
            .pairs()
            .skip(1)
            .map(|(m, p)| format!("{m} {p}"))
            .collect();
        let rules = self.policy.rules_for(&reading);
        let described = |r: &crate::policy::AccessRule| RuleMatch {
            name: r.name(),
            pattern: r.description.clone(),
            requires: r.access.to_string(),
        };
        out.rules = rules.iter().map(described).collect();
        for rule in rules.iter() {
            if let Access::Permission(p) = &rule.access {
                let p = p.to_string();
                if !out.permissions_needed.contains(&p) {
                    out.permissions_needed.push(p);
                }
            }
        }
        // A disabled user's credentials are refused: the gate then judges
        // the request as it judges nobody's.
        let identity: Option<Identity> = user
            .as_ref()
            .filter(|(u, _)| u.status == UserStatus::Enabled)
            .map(|(u, _)| self.directory.identity_of(u, AuthMethod::Session));
        let disabled = user.is_some() && identity.is_none();
        let decision = rules.decide(identity.as_ref());
        out.rule = Some(described(decision.rule));
        let name = decision.rule.name();
        let access = &decision.rule.access;
        (out.outcome, out.status, out.reason, out.message) = match decision.verdict {
            Verdict::Allow if rules.all_public() => (
                Outcome::Allow,
                200,
                "public".into(),
                format!("{name} is public: passed to the upstream, with or without credentials"),
            ),
            Verdict::Allow => (
                Outcome::Allow,
                200,
                "allowed".into(),
                format!("{name} requires {access}, which is held: passed to the upstream"),
            ),
            Verdict::Unauthenticated if disabled => (
                Outcome::Deny,
                401,
                "account_disabled".into(),
                format!(
                    "the user is disabled, so their credentials are refused, and {name} requires {access}"
                ),
            ),
            Verdict::Unauthenticated => (
                Outcome::Deny,
                401,
                "unauthorized".into(),
                format!(
                    "{name} requires {access} and nobody is signed in (401, or a sign-in redirect for a browser)"
                ),
            ),
            Verdict::Forbidden if *access == Access::Deny => (
                Outcome::Deny,
                403,
                "forbidden".into(),
                format!("{name} denies everyone"),
            ),
            Verdict::Forbidden => (
                Outcome::Deny,
                403,
                "forbidden".into(),
                format!("{name} requires {access}, which the user lacks"),
            ),
        };
        Ok(out)
    }

    /// A user of the config file, else of the store; `true` when declared.
    async fn find_user(&self, name: &str) -> Result<(UserRecord, bool), ExplainError> {
        if let Some(u) = self.directory.user(name) {
            return Ok((u.clone(), true));
        }
        let Some(store) = self.store else {
            return Err(ExplainError::NoSuchUser(name.to_owned()));
        };
        match store.user(name).await {
            Ok(Some(u)) => Ok((u.record, false)),
            Ok(None) => Err(ExplainError::NoSuchUser(name.to_owned())),
            Err(e) => Err(ExplainError::Unavailable(e.to_string())),
        }
    }

    fn asker(&self, user: &UserRecord, declared: bool) -> Asker {
        let enabled = user.status == UserStatus::Enabled;
        let permissions = if enabled {
            self.directory
                .roles
                .permissions(&user.role)
                .iter()
                .map(|p| p.to_string())
                .collect()
        } else {
            Vec::new()
        };
        Asker {
            username: user.username.clone(),
            role: user.role.clone(),
            permissions,
            enabled,
            declared,
        }
    }
}

/// The host and raw path of `url`, as the proxy takes them from a request
/// line: a path is sent to `public_host`; `*` answers only OPTIONS.
fn target<'u>(
    method: &Method,
    url: &'u str,
    public_host: &'u str,
) -> Result<(&'u str, &'u str), TargetError> {
    match classify_target(url.trim().as_bytes())? {
        TargetForm::Origin { path, .. } => Ok((public_host, path)),
        TargetForm::Absolute {
            authority, path, ..
        } => Ok((authority, path)),
        TargetForm::Asterisk if *method == Method::OPTIONS => Ok((public_host, "*")),
        TargetForm::Asterisk => Err(TargetError::Asterisk),
    }
}

/// Does the portal answer `path` (the raw path, as the proxy decides)?
fn is_portal_path(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Roles;
    use crate::identity::UserKind;
    use crate::permission::PermissionSet;
    use crate::policy::{AccessRule, PathCase};
    use std::collections::BTreeMap;

    fn policy() -> Policy {
        let rule = |i, path: &str, methods: Option<Vec<Method>>, access| {
            AccessRule::new(
                Some(i),
                Some(vec![path.into()]),
                methods,
                None,
                access,
                PathCase::Sensitive,
            )
            .unwrap()
        };
        Policy::new(
            vec![
                rule(0, "/public/**", None, Access::Public),
                rule(
                    1,
                    "/admin/**",
                    None,
                    Access::Permission("admin:access".parse().unwrap()),
                ),
                rule(
                    2,
                    "/reports/**",
                    Some(vec![Method::GET]),
                    Access::Permission("reports:read".parse().unwrap()),
                ),
            ],
            Access::Authenticated,
        )
    }

    fn directory() -> Directory {
        let mut roles = BTreeMap::new();
        roles.insert(
            "staff".to_owned(),
            PermissionSet::new(vec!["posts:read".parse().unwrap()]),
        );
        let bob = UserRecord {
            username: "bob".into(),
            email: None,
            name: None,
            kind: UserKind::User,
            status: UserStatus::Enabled,
            role: "staff".into(),
            password_hash: None,
            credentials_version: 0,
        };
        let mut off = bob.clone();
        off.username = "off".into();
        off.status = UserStatus::Disabled;
        Directory {
            users: [("bob".to_owned(), bob), ("off".to_owned(), off)].into(),
            api_keys: Vec::new(),
            roles: Roles::new(roles),
        }
    }

    async fn explain(method: &str, url: &str, user: Option<&str>) -> Explanation {
        let (policy, directory, headers) = (policy(), directory(), HeaderMap::new());
        let e = Explainer {
            policy: &policy,
            reading: ReadSettings::default(),
            also: AlsoRead::default(),
            directory: &directory,
            store: None,
            public_host: "App.example.com",
            portal_prefix: "/_auth",
        };
        let q = Question {
            method,
            url,
            user,
            headers: &headers,
        };
        e.explain(&q).await.unwrap()
    }

    fn said(e: &Explanation) -> (Outcome, u16, &str, Option<&str>) {
        let rule = e.rule.as_ref().map(|r| r.name.as_str());
        (e.outcome, e.status, e.reason.as_str(), rule)
    }

    #[tokio::test]
    async fn answers_as_the_gate_does() {
        use Outcome::*;
        let cases = [
            (
                "GET",
                "/public/../admin/x",
                None,
                (Deny, 400, "invalid_path", None),
            ),
            (
                "GET",
                "admin/x",
                None,
                (Deny, 400, "invalid_request_target", None),
            ),
            (
                "GET",
                "*",
                None,
                (Deny, 400, "invalid_request_target", None),
            ),
            (
                "GET",
                "/public/a",
                None,
                (Allow, 200, "public", Some("rules[0]")),
            ),
            (
                "GET",
                "/admin/x",
                None,
                (Deny, 401, "unauthorized", Some("rules[1]")),
            ),
            (
                "GET",
                "/admin;x/y",
                Some("bob"),
                (Deny, 403, "forbidden", Some("rules[1]")),
            ),
            (
                "head",
                "/reports/q3",
                Some("bob"),
                (Deny, 403, "forbidden", Some("rules[2]")),
            ),
            (
                "POST",
                "/reports/q3",
                Some("bob"),
                (Allow, 200, "allowed", Some("default")),
            ),
            (
                "GET",
                "/x",
                Some("off"),
                (Deny, 401, "account_disabled", Some("default")),
            ),
            (
                "GET",
                "/_auth/api/users",
                None,
                (Allow, 200, "portal", None),
            ),
        ];
        for (method, url, user, want) in cases {
            let got = explain(method, url, user).await;
            assert_eq!(said(&got), want, "{method} {url} {user:?}: {got:?}");
        }
    }

    #[tokio::test]
    async fn head_is_judged_as_get_and_names_what_is_needed() {
        let e = explain("HEAD", "http://Reports.Example.com:80/reports/q3", None).await;
        assert_eq!(e.host, "reports.example.com");
        assert_eq!(e.path.as_deref(), Some("/reports/q3"));
        assert_eq!(e.also_read, ["GET /reports/q3"]);
        assert_eq!(e.permissions_needed, ["reports:read"]);
        let e = explain("GET", "/admin/x", Some("bob")).await;
        let bob = e.user.unwrap();
        assert_eq!(
            (bob.role.as_str(), bob.permissions),
            ("staff", vec!["posts:read".to_owned()])
        );
    }

    #[tokio::test]
    async fn unknown_users_and_methods_are_errors() {
        let (policy, directory, headers) = (policy(), directory(), HeaderMap::new());
        let e = Explainer {
            policy: &policy,
            reading: ReadSettings::default(),
            also: AlsoRead::default(),
            directory: &directory,
            store: None,
            public_host: "h",
            portal_prefix: "/_auth",
        };
        let q = |method, user| Question {
            method,
            url: "/",
            user,
            headers: &headers,
        };
        assert_eq!(
            e.explain(&q("GET", Some("ghost"))).await,
            Err(ExplainError::NoSuchUser("ghost".into()))
        );
        assert_eq!(
            e.explain(&q("G T", None)).await,
            Err(ExplainError::Method("G T".into()))
        );
    }
}
