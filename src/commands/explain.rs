//! `gatehouse explain`: how a request is read, which rules its readings
//! match, and what the server would answer — printed from the one
//! [`Explainer`] that `api/explain` answers from too, for anonymous or for a
//! user of the config file or the store.

use crate::gate::explain::{Explainer, Explanation, Outcome, Question};
use crate::request::AlsoRead;
use crate::settings::Config;
use crate::store::Store;
use crate::upstream::headers::MethodOverride;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::process::ExitCode;

/// `--header 'Name: value'` lines as a header map.
fn headers(lines: &[String]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for line in lines {
        let bad = || format!("--header `{line}` is not `Name: value`");
        let (name, value) = line.split_once(':').ok_or_else(bad)?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
        map.append(name, value);
    }
    Ok(map)
}

pub fn run(
    config: &Config,
    method: &str,
    url: &str,
    user: Option<&str>,
    header_lines: &[String],
) -> ExitCode {
    let headers = match headers(header_lines) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(2);
        }
    };
    let ask = |store: Option<Store>| {
        let headers = &headers;
        async move {
            let explainer = Explainer {
                policy: &config.policy,
                reading: config.paths,
                also: AlsoRead {
                    method_overrides: config.headers.method_override == MethodOverride::Judge,
                    rewrite_headers: &[],
                },
                directory: &config.directory,
                store: store.as_ref(),
                public_host: config.public_url.host_str().unwrap_or_default(),
                portal_prefix: &config.portal.prefix,
            };
            let question = Question {
                method,
                url,
                user,
                headers,
            };
            match explainer.explain(&question).await {
                Ok(e) => {
                    print(&e);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gatehouse: {e}");
                    ExitCode::from(2)
                }
            }
        }
    };
    // Only a user the config file does not declare needs the store.
    if user.is_some_and(|u| config.directory.user(u.trim()).is_none()) {
        return super::with_store(config, |store| ask(Some(store)));
    }
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(ask(None)),
        Err(e) => {
            eprintln!("gatehouse: {e}");
            ExitCode::from(1)
        }
    }
}

fn print(e: &Explanation) {
    let method = &e.method;
    let host = &e.host;
    match &e.path {
        Some(path) => println!("request:  {method} host={host} path={path}"),
        None => println!("request:  {method} host={host} (the target cannot be read)"),
    }
    if !e.also_read.is_empty() {
        println!("also read as: {} (each must pass)", e.also_read.join(", "));
    }
    for rule in &e.rules {
        println!(
            "rule:     {} ({}) requires {}",
            rule.name, rule.pattern, rule.requires
        );
    }
    match &e.user {
        Some(u) => {
            let source = if u.declared { "config file" } else { "stored" };
            if u.enabled {
                let permissions = if u.permissions.is_empty() {
                    "none".to_owned()
                } else {
                    u.permissions.join(",")
                };
                println!(
                    "identity: {} (role {}; permissions {permissions}; {source})",
                    u.username, u.role
                );
            } else {
                println!(
                    "identity: {} (disabled: their credentials are refused; {source})",
                    u.username
                );
            }
        }
        None => println!("identity: anonymous"),
    }
    let verdict = match (e.outcome, e.status) {
        (Outcome::Allow, _) if e.reason == "portal" => "portal".to_owned(),
        (Outcome::Allow, _) => "allow (proxied to the upstream)".to_owned(),
        (Outcome::Deny, 400) => format!("bad request (400): {}", e.reason),
        (Outcome::Deny, 401) => {
            "unauthenticated (401, or a login redirect for browsers)".to_owned()
        }
        (Outcome::Deny, 403) => "forbidden (403)".to_owned(),
        (Outcome::Deny, status) => format!("deny ({status})"),
    };
    println!("decision: {verdict}: {}", e.message);
    println!("answer:   {} {}", e.status, e.reason);
}
