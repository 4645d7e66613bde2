//! `gatehouse explain`: how a request is read, which rules its readings
//! match, and what is decided — through the same [`RequestReading`] and
//! policy as the gate.

use crate::identity::AuthMethod;
use crate::policy::Verdict;
use crate::request::{classify_target, AlsoRead, RequestReading, TargetForm};
use crate::settings::Config;
use std::process::ExitCode;

pub fn run(config: &Config, method: &str, url: &str, user: Option<&str>) -> ExitCode {
    let Ok(method) = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
        eprintln!("gatehouse: `{method}` is not an HTTP method");
        return ExitCode::from(2);
    };
    let public_host = config.public_url.host_str().unwrap_or_default();
    let (host, path) = match classify_target(url.as_bytes()) {
        Ok(TargetForm::Origin { path, .. }) => (public_host, path),
        Ok(TargetForm::Absolute {
            authority, path, ..
        }) => (authority, path),
        Ok(TargetForm::Asterisk) => (public_host, "*"),
        Err(_) => {
            eprintln!("gatehouse: `{url}` is not an http(s) URL or a path starting with `/`");
            return ExitCode::from(2);
        }
    };
    let headers = http::HeaderMap::new();
    let reading = match RequestReading::new(
        &method,
        host,
        path,
        &headers,
        AlsoRead::default(),
        config.paths,
    ) {
        Ok(r) => r,
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
    let rules = config.policy.rules_for(&reading);
    let decision = rules.decide(identity.as_ref());
    let host = &reading.host;
    println!("request:  {method} host={host} path={}", reading.path());
    if reading.is_ambiguous() {
        let others: Vec<String> = reading
            .pairs()
            .skip(1)
            .map(|(m, p)| format!("{m} {p}"))
            .collect();
        println!("also read as: {} (each must pass)", others.join(", "));
    }
    for rule in rules.iter() {
        println!(
            "rule:     {} ({}) requires {}",
            rule.name(),
            rule.description,
            rule.access
        );
    }
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
        Verdict::Forbidden => format!(
            "forbidden (403): {} requires {}",
            decision.rule.name(),
            decision.rule.access
        ),
    };
    println!("decision: {verdict}");
    ExitCode::SUCCESS
}
