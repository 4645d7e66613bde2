//! `gatehouse explain`: which rule matches a request, and what is decided.

use crate::config::Config;
use crate::identity::AuthMethod;
use crate::policy::{decide, normalize_path, Target, Verdict};
use crate::proxy::host_without_port;
use std::process::ExitCode;

pub fn run(config: &Config, method: &str, url: &str, user: Option<&str>) -> ExitCode {
    let Ok(method) = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
        eprintln!("gatehouse: `{method}` is not an HTTP method");
        return ExitCode::from(2);
    };
    let parsed = url::Url::parse(url).or_else(|_| config.public_url.join(url));
    let Ok(parsed) = parsed else {
        eprintln!("gatehouse: `{url}` is not a URL or path");
        return ExitCode::from(2);
    };
    let host = host_without_port(parsed.host_str().unwrap_or_default()).into_owned();
    let path = match normalize_path(parsed.path()) {
        Ok(p) => p.into_owned(),
        Err(e) => {
            println!("decision: bad request (400): {e}");
            return ExitCode::SUCCESS;
        }
    };
    let identity = match user {
        None => None,
        Some(name) => match config.directory.user(name) {
            Some(u) => Some(config.directory.identity_of(u, AuthMethod::Basic)),
            None => {
                eprintln!("gatehouse: no user `{name}` in the configuration");
                return ExitCode::from(2);
            }
        },
    };
    let target = Target {
        method: &method,
        host: &host,
        path: &path,
    };
    let rule = config.policy.matching(&target);
    let decision = decide(rule, identity.as_ref());
    println!("request:  {method} host={host} path={path}");
    println!(
        "rule:     {} ({}) requires {}",
        rule.name(),
        rule.description,
        rule.access
    );
    match &identity {
        Some(id) => println!(
            "identity: {} (role {}; permissions {})",
            id.subject,
            id.role.as_deref().unwrap_or("-"),
            if id.permissions.is_empty() {
                "none".into()
            } else {
                id.permissions.to_header_string()
            }
        ),
        None => println!("identity: anonymous"),
    }
    let verdict = match decision.verdict {
        Verdict::Allow => "allow (proxied to the upstream)".to_owned(),
        Verdict::Unauthenticated => {
            "unauthenticated (401, or a login redirect for browsers)".to_owned()
        }
        Verdict::Forbidden => format!("forbidden (403): requires {}", rule.access),
    };
    println!("decision: {verdict}");
    ExitCode::SUCCESS
}
