//! Access policy: rules compiled from the config, and the pure decision.
//!
//! [`Policy::matching`] finds the first rule for a request target (or the
//! default); [`Policy::rules_for`] does so for every reading of a request
//! ([`RequestReading`]), and [`MatchedRules::decide`] turns those rules and
//! an optional identity into the strictest [`Decision`]: a request passes
//! only if every reading the app could make of it passes. Nothing here does
//! I/O, so inline proxying, forward-auth and `gatehouse explain` all get the
//! same answer.

use crate::identity::Identity;
use crate::permission::Permission;
use crate::request::RequestReading;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use http::Method;
use std::fmt;

/// What a rule requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone; identity headers are still set when a valid credential is sent.
    Public,
    /// Any authenticated identity.
    Authenticated,
    /// An identity holding this permission.
    Permission(Permission),
    /// Nobody.
    Deny,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Access::Public => f.write_str("public"),
            Access::Authenticated => f.write_str("authenticated"),
            Access::Permission(p) => write!(f, "permission {p}"),
            Access::Deny => f.write_str("deny"),
        }
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct AccessRule {
    /// Position in `rules`, `None` for the default.
    pub index: Option<usize>,
    /// Human description (`GET,HEAD /api/**`), for logs and `explain`.
    pub description: String,
    methods: Option<Vec<Method>>,
    hosts: Option<GlobSet>,
    paths: Option<GlobSet>,
    pub access: Access,
}

/// Why a glob was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid pattern `{pattern}`: {reason}")]
pub struct InvalidPattern {
    pub pattern: String,
    pub reason: String,
}

/// How path patterns compare (`paths.case_insensitive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathCase {
    /// `/Admin` is not `/admin` (most apps).
    #[default]
    Sensitive,
    /// `/Admin` is `/admin` (IIS, ASP.NET, case-insensitive routers).
    Insensitive,
}

fn glob_set(patterns: &[String], paths: bool, case: PathCase) -> Result<GlobSet, InvalidPattern> {
    let mut b = GlobSetBuilder::new();
    for pat in patterns {
        let bad = |reason: String| InvalidPattern {
            pattern: pat.clone(),
            reason,
        };
        if paths && !pat.starts_with('/') {
            return Err(bad("a path pattern starts with `/`".into()));
        }
        let mut variants = vec![pat.as_str()];
        if paths {
            if let Some(base) = pat.strip_suffix("/**") {
                variants.push(if base.is_empty() { "/" } else { base });
            }
        }
        for v in variants {
            let glob = GlobBuilder::new(v)
                .literal_separator(paths)
                .case_insensitive(!paths || case == PathCase::Insensitive)
                .build()
                .map_err(|e| bad(e.kind().to_string()))?;
            b.add(glob);
        }
    }
    b.build().map_err(|e| InvalidPattern {
        pattern: patterns.join(","),
        reason: e.to_string(),
    })
}

impl AccessRule {
    /// Compile a rule. `paths`/`hosts`/`methods` of `None` match everything.
    pub fn new(
        index: Option<usize>,
        paths: Option<Vec<String>>,
        methods: Option<Vec<Method>>,
        hosts: Option<Vec<String>>,
        access: Access,
        case: PathCase,
    ) -> Result<Self, InvalidPattern> {
        let mut description = String::new();
        if let Some(m) = &methods {
            let names: Vec<&str> = m.iter().map(Method::as_str).collect();
            description.push_str(&names.join(","));
            description.push(' ');
        }
        if let Some(h) = &hosts {
            description.push_str(&h.join(","));
        }
        description.push_str(&paths.as_ref().map_or("/**".into(), |p| p.join(",")));
        // HEAD is GET without the body (RFC 9110 §9.3.2), and frameworks run
        // the GET handler for it: a rule for GET covers HEAD too.
        let methods = methods.map(|mut m| {
            if m.contains(&Method::GET) && !m.contains(&Method::HEAD) {
                m.push(Method::HEAD);
            }
            m
        });
        Ok(AccessRule {
            index,
            description,
            paths: paths
                .as_deref()
                .map(|p| glob_set(p, true, case))
                .transpose()?,
            hosts: hosts
                .as_deref()
                .map(|h| glob_set(h, false, case))
                .transpose()?,
            methods,
            access,
        })
    }

    fn matches(&self, target: &Target<'_>) -> bool {
        if let Some(methods) = &self.methods {
            if !methods.iter().any(|m| m == target.method) {
                return false;
            }
        }
        if let Some(hosts) = &self.hosts {
            if !hosts.is_match(target.host) {
                return false;
            }
        }
        match &self.paths {
            Some(paths) => paths.is_match(target.path),
            None => true,
        }
    }

    /// `rules[3]` or `default`.
    pub fn name(&self) -> String {
        match self.index {
            Some(i) => format!("rules[{i}]"),
            None => "default".into(),
        }
    }
}

/// What a request is for, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub method: &'a Method,
    /// Host without port, lowercase.
    pub host: &'a str,
    /// A reading of the path (see [`crate::request::path`]), no query.
    pub path: &'a str,
}

/// Compiled rules plus the default.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<AccessRule>,
    default: AccessRule,
}

impl Policy {
    pub fn new(rules: Vec<AccessRule>, default: Access) -> Self {
        let default = AccessRule {
            index: None,
            description: "no rule matched".into(),
            methods: None,
            hosts: None,
            paths: None,
            access: default,
        };
        Policy { rules, default }
    }

    /// The first rule matching `target`, or the default.
    pub fn matching(&self, target: &Target<'_>) -> &AccessRule {
        self.rules
            .iter()
            .find(|r| r.matches(target))
            .unwrap_or(&self.default)
    }

    /// The rules every reading of a request matches, the canonical
    /// reading's first, each once.
    pub fn rules_for<'p>(&'p self, reading: &RequestReading<'_>) -> MatchedRules<'p> {
        let target = |(method, path)| Target {
            method,
            host: &reading.host,
            path,
        };
        let mut pairs = reading.pairs();
        let first = pairs
            .next()
            .map_or(&self.default, |p| self.matching(&target(p)));
        let mut more: Vec<&'p AccessRule> = Vec::new();
        for pair in pairs {
            let rule = self.matching(&target(pair));
            if !std::ptr::eq(rule, first) && !more.iter().any(|r| std::ptr::eq(*r, rule)) {
                more.push(rule);
            }
        }
        MatchedRules { first, more }
    }

    /// `decide(self.matching(target), identity)`.
    pub fn evaluate<'p>(
        &'p self,
        target: &Target<'_>,
        identity: Option<&Identity>,
    ) -> Decision<'p> {
        decide(self.matching(target), identity)
    }
}

/// The outcome for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through.
    Allow,
    /// Who is asking is unknown (401 / login redirect).
    Unauthenticated,
    /// Known, but may not (403).
    Forbidden,
}

/// A verdict and the rule that produced it.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'p> {
    pub verdict: Verdict,
    pub rule: &'p AccessRule,
}

/// The rules a request's readings matched; the canonical reading's first.
#[derive(Debug, Clone)]
pub struct MatchedRules<'p> {
    first: &'p AccessRule,
    more: Vec<&'p AccessRule>,
}

impl<'p> MatchedRules<'p> {
    /// Each distinct rule, the canonical reading's first.
    pub fn iter(&self) -> impl Iterator<Item = &'p AccessRule> + '_ {
        std::iter::once(self.first).chain(self.more.iter().copied())
    }

    /// Every reading is public: no credential is needed.
    pub fn all_public(&self) -> bool {
        self.iter().all(|r| r.access == Access::Public)
    }

    /// Some reading is denied to everyone, whoever is asking.
    pub fn any_deny(&self) -> bool {
        self.iter().any(|r| r.access == Access::Deny)
    }

    /// The strictest decision over every reading: forbidden by any rule,
    /// else unauthenticated by any, else allowed (by the canonical rule).
    pub fn decide(&self, identity: Option<&Identity>) -> Decision<'p> {
        let decisions = || self.iter().map(|r| decide(r, identity));
        decisions()
            .find(|d| d.verdict == Verdict::Forbidden)
            .or_else(|| decisions().find(|d| d.verdict == Verdict::Unauthenticated))
            .unwrap_or_else(|| decide(self.first, identity))
    }
}

/// The pure decision: a matched rule and who is asking.
pub fn decide<'p>(rule: &'p AccessRule, identity: Option<&Identity>) -> Decision<'p> {
    let verdict = match (&rule.access, identity) {
        (Access::Public, _) => Verdict::Allow,
        (Access::Deny, _) => Verdict::Forbidden,
        (_, None) => Verdict::Unauthenticated,
        (Access::Authenticated, Some(_)) => Verdict::Allow,
        (Access::Permission(p), Some(id)) if id.permissions.allows(p) => Verdict::Allow,
        (Access::Permission(_), Some(_)) => Verdict::Forbidden,
    };
    Decision { verdict, rule }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{AuthMethod, Identity, UserKind};
    use crate::permission::PermissionSet;

    fn rule(i: usize, path: &str, methods: &[&str], access: Access) -> AccessRule {
        let methods = if methods.is_empty() {
            None
        } else {
            Some(methods.iter().map(|m| m.parse().unwrap()).collect())
        };
        AccessRule::new(
            Some(i),
            Some(vec![path.into()]),
            methods,
            None,
            access,
            PathCase::Sensitive,
        )
        .unwrap()
    }

    fn who(perms: &[&str]) -> Identity {
        Identity::new(
            "u".into(),
            None,
            None,
            UserKind::User,
            Some("r".into()),
            PermissionSet::new(perms.iter().map(|p| p.parse().unwrap()).collect()),
            AuthMethod::Basic,
            None,
        )
    }

    fn policy(default: Access) -> Policy {
        Policy::new(
            vec![
                rule(0, "/public/**", &[], Access::Public),
                rule(
                    1,
                    "/api/posts/*",
                    &["GET", "HEAD"],
                    Access::Permission("posts:read".parse().unwrap()),
                ),
                rule(
                    2,
                    "/api/posts/*",
                    &["POST"],
                    Access::Permission("posts:write".parse().unwrap()),
                ),
                rule(3, "/blocked/**", &[], Access::Deny),
                rule(4, "/files/*.txt", &[], Access::Authenticated),
                rule(
                    5,
                    "/reports/**",
                    &["GET"],
                    Access::Permission("reports:read".parse().unwrap()),
                ),
            ],
            default,
        )
    }

    #[test]
    fn decision_table() {
        use Verdict::*;
        let reader = who(&["posts:read"]);
        let writer = who(&["posts:*"]);
        let admin = who(&["*"]);
        let nobody = who(&[]);
        let cases: Vec<(&str, &str, Option<&Identity>, Verdict, &str)> = vec![
            ("GET", "/public", None, Allow, "rules[0]"),
            ("GET", "/public/x/y", None, Allow, "rules[0]"),
            ("GET", "/publicity", None, Unauthenticated, "default"),
            ("GET", "/api/posts/1", None, Unauthenticated, "rules[1]"),
            ("GET", "/api/posts/1", Some(&reader), Allow, "rules[1]"),
            (
                "GET",
                "/api/posts/1/comments",
                Some(&admin),
                Allow,
                "default",
            ),
            ("POST", "/api/posts/1", Some(&reader), Forbidden, "rules[2]"),
            ("POST", "/api/posts/1", Some(&writer), Allow, "rules[2]"),
            ("DELETE", "/api/posts/1", Some(&nobody), Allow, "default"),
            ("GET", "/blocked/x", Some(&admin), Forbidden, "rules[3]"),
            ("GET", "/blocked/x", None, Forbidden, "rules[3]"),
            ("GET", "/files/a.txt", Some(&nobody), Allow, "rules[4]"),
            ("GET", "/files/sub/a.txt", Some(&nobody), Allow, "default"),
            ("GET", "/anything", Some(&nobody), Allow, "default"),
            // A rule for GET covers HEAD as well.
            ("HEAD", "/reports/q3", Some(&nobody), Forbidden, "rules[5]"),
            ("HEAD", "/reports/q3", Some(&reader), Forbidden, "rules[5]"),
            ("HEAD", "/reports/q3", Some(&admin), Allow, "rules[5]"),
            ("POST", "/reports/q3", Some(&nobody), Allow, "default"),
        ];
        let p = policy(Access::Authenticated);
        for (m, path, id, want, rule_name) in cases {
            let method: Method = m.parse().unwrap();
            let t = Target {
                method: &method,
                host: "app.example.com",
                path,
            };
            let d = p.evaluate(&t, id);
            assert_eq!(
                (d.verdict, d.rule.name()),
                (want, rule_name.to_string()),
                "{m} {path}"
            );
        }
    }

    #[test]
    fn default_deny_forbids_unmatched() {
        let p = policy(Access::Deny);
        let m = Method::GET;
        let t = Target {
            method: &m,
            host: "h",
            path: "/elsewhere",
        };
        assert_eq!(
            p.evaluate(&t, Some(&who(&["*"]))).verdict,
            Verdict::Forbidden
        );
        let t = Target {
            method: &m,
            host: "h",
            path: "/public/a",
        };
        assert_eq!(p.evaluate(&t, None).verdict, Verdict::Allow);
    }

    #[test]
    fn host_patterns_match_case_insensitively() {
        let r = AccessRule::new(
            Some(0),
            None,
            None,
            Some(vec!["*.example.com".into()]),
            Access::Public,
            PathCase::Sensitive,
        )
        .unwrap();
        let p = Policy::new(vec![r], Access::Authenticated);
        let m = Method::GET;
        for (host, want) in [
            ("a.example.com", Verdict::Allow),
            ("A.Example.COM", Verdict::Allow),
            ("example.org", Verdict::Unauthenticated),
        ] {
            let t = Target {
                method: &m,
                host,
                path: "/",
            };
            assert_eq!(p.evaluate(&t, None).verdict, want, "{host}");
        }
    }

    #[test]
    fn relative_path_pattern_is_refused() {
        assert!(AccessRule::new(
            Some(0),
            Some(vec!["api/**".into()]),
            None,
            None,
            Access::Public,
            PathCase::Sensitive,
        )
        .is_err());
    }
}
