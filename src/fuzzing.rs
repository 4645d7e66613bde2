//! Properties the fuzz targets in `fuzz/` check, shared with the short runs
//! in the test suite: no input makes a parser panic, and the gate is never
//! more lenient than an app's reading of the same request-target.

use crate::credentials;
use crate::forward_auth::{describe, Flavor};
use crate::identity::{AuthMethod, Identity, UserKind};
use crate::permission::PermissionSet;
use crate::policy::{decide, Access, AccessRule, PathCase, Policy, Target, Verdict};
use crate::request::reference::{rfc3986, tomcat};
use crate::request::{request_path, AlsoRead, ReadSettings, RequestReading, Semicolons};
use crate::settings::Config;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::sync::OnceLock;

struct Fixture {
    policy: Policy,
    nobody: Identity,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rule = |i, path: &str, methods: Option<Vec<Method>>, access| {
            AccessRule::new(
                Some(i),
                Some(vec![path.into()]),
                methods,
                None,
                access,
                PathCase::Sensitive,
            )
            .unwrap_or_else(|e| panic!("fixture rule {path}: {e}"))
        };
        let perm = |p: &str| Access::Permission(p.parse().unwrap_or_else(|_| panic!("{p}")));
        let policy = Policy::new(
            vec![
                rule(0, "/", Some(vec![Method::GET]), Access::Public),
                rule(1, "/public/**", None, Access::Public),
                rule(2, "/static/*.css", None, Access::Public),
                rule(3, "/admin/**", None, perm("admin:access")),
                rule(4, "/users/*", None, perm("users:manage")),
                rule(
                    5,
                    "/reports/**",
                    Some(vec![Method::GET]),
                    perm("reports:read"),
                ),
            ],
            Access::Authenticated,
        );
        let nobody = Identity::new(
            "bob".into(),
            None,
            None,
            UserKind::User,
            None,
            PermissionSet::new(Vec::new()),
            AuthMethod::Basic,
            None,
        );
        Fixture { policy, nobody }
    })
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::OPTIONS,
    Method::DELETE,
];

/// `data[0]` picks a method, the rest is a request-target. If the gate
/// allows it (anonymously, or for a user without permissions), the paths an
/// RFC 3986 server and a servlet container route on must be allowed too.
pub fn read_request(data: &[u8]) -> Result<(), String> {
    let Some((&pick, target)) = data.split_first() else {
        return Ok(());
    };
    let method = &METHODS[pick as usize % METHODS.len()];
    let Ok(path) = request_path(method, target) else {
        return Ok(());
    };
    let headers = HeaderMap::new();
    let settings = ReadSettings {
        semicolons: Semicolons::JudgeBoth,
    };
    let Ok(reading) = RequestReading::new(
        method,
        "app.example.com",
        path,
        &headers,
        AlsoRead::default(),
        settings,
    ) else {
        return Ok(());
    };
    let f = fixture();
    let rules = f.policy.rules_for(&reading);
    for identity in [None, Some(&f.nobody)] {
        if rules.decide(identity).verdict != Verdict::Allow {
            continue;
        }
        let app_paths = [("rfc3986", rfc3986(path)), ("tomcat", tomcat(path))];
        for (reader, app_path) in app_paths {
            let Some(app_path) = app_path else { continue };
            for m in [method, &Method::GET]
                .iter()
                .take(if *method == Method::HEAD { 2 } else { 1 })
            {
                let t = Target {
                    method: m,
                    host: "app.example.com",
                    path: &app_path,
                };
                let d = decide(f.policy.matching(&t), identity);
                if d.verdict != Verdict::Allow {
                    return Err(format!(
                        "{method} {path:?}: the gate allows {} but {reader} reads {m} {app_path:?}, which {} forbids",
                        identity.map_or("anyone", |_| "a user without permissions"),
                        d.rule.name()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Split fuzz input into at most `n` header values (on `\n`).
fn values(data: &[u8], n: usize) -> Vec<Option<HeaderValue>> {
    data.splitn(n, |b| *b == b'\n')
        .map(|v| HeaderValue::from_bytes(v).ok())
        .collect()
}

fn headers_from(data: &[u8], names: &[&'static str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in names.iter().zip(values(data, names.len())) {
        if let Some(v) = value {
            headers.append(HeaderName::from_static(name), v);
        }
    }
    headers
}

/// Credential parsing (Authorization, X-API-Key, Cookie) never panics.
pub fn credentials(data: &[u8]) {
    let headers = headers_from(
        data,
        &["authorization", "x-api-key", "cookie", "authorization"],
    );
    let _ = credentials::extract(&headers, "gatehouse_session");
    let _ = credentials::cookie_values(&headers, "gatehouse_session").count();
}

/// Forward-auth descriptions never panic, and what they describe is read
/// like any other request.
pub fn forward_auth(data: &[u8]) {
    let headers = headers_from(
        data,
        &[
            "x-forwarded-method",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-forwarded-uri",
            "x-original-url",
            "x-original-method",
            "x-http-method-override",
            "x-rewrite-url",
        ],
    );
    for flavor in [Flavor::Forwarded, Flavor::Nginx] {
        if let Ok(d) = describe(flavor, &headers, "https") {
            let also = AlsoRead {
                method_overrides: true,
                rewrite_headers: &crate::request::REWRITE_HEADERS,
            };
            let _ = RequestReading::new(
                &d.method,
                &d.host,
                d.path_and_query.path(),
                &headers,
                also,
                ReadSettings::default(),
            );
            let _ = d.url();
        }
    }
}

/// The config loader never panics. Inputs that would resolve a host name or
/// read a file are skipped: they would make the fuzzer measure DNS and disks.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("upstream") || text.contains("_file") || text.contains("listen") {
        return;
    }
    let _ = Config::from_yaml(text, std::iter::empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Pieces attackers build paths from.
    const TOKENS: &[&str] = &[
        "/", "/", "/", "admin", "public", "users", "reports", "static", "a", "x.css", ";", ";x=1",
        ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "%3b", "%3B", "%25", "%252e", "%00", "\\",
        "//", "?", "#", "*", "%c0%ae", "%ff", "é", "%C3%A9", "http://h", ":", "@",
    ];

    fn random_target(rng: &mut impl Rng) -> Vec<u8> {
        let mut t = vec![rng.gen::<u8>()];
        if rng.gen_bool(0.9) {
            t.push(b'/');
        }
        for _ in 0..rng.gen_range(1..10) {
            t.extend_from_slice(TOKENS[rng.gen_range(0..TOKENS.len())].as_bytes());
        }
        t
    }

    /// The short run CI keeps: 200,000 generated request-targets (the long
    /// runs are `scripts/fuzz`).
    #[test]
    fn the_gate_is_never_more_lenient_than_an_app() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x6a7e);
        let mut allowed = 0;
        for _ in 0..200_000 {
            let t = random_target(&mut rng);
            if let Err(e) = read_request(&t) {
                panic!("{e} (input {t:?})");
            }
            allowed += usize::from(
                request_path(&Method::GET, &t[1..]).is_ok_and(|p| p.starts_with("/public")),
            );
            credentials(&t);
            forward_auth(&t);
        }
        assert!(
            allowed > 1000,
            "the generator must reach public paths ({allowed})"
        );
    }

    #[test]
    fn the_property_catches_a_lenient_gate() {
        // Had the gate read `/public/..;/admin` as public, the servlet
        // reading would have caught it.
        let f = fixture();
        let t = Target {
            method: &Method::GET,
            host: "app.example.com",
            path: &tomcat("/public/..;/admin/x").unwrap_or_default(),
        };
        assert_eq!(
            decide(f.policy.matching(&t), None).verdict,
            Verdict::Unauthenticated
        );
    }
}
