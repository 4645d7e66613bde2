//! The gate: request view → reading → credential → identity → decision.
//!
//! The one function every mode calls (inline proxying, forward-auth, and the
//! portal API's "who is asking"), so they can never disagree; [`explain`]
//! is its dry run for `gatehouse explain` and `api/explain`, on the same
//! reading and policy. A request passes only if every reading the app
//! could make of it ([`crate::request`]) passes.

pub mod explain;

use crate::authn::{Authenticator, AuthnError, CacheOutcome};
use crate::credentials::{self, Credential, CredentialError, CredentialSource};
use crate::identity::{AuthMethod, Identity};
use crate::metrics::{DecisionLabel, Metrics, SignInChannel};
use crate::policy::{Access, Policy, Verdict};
use crate::regulation::{Banned, Regulator};
use crate::request::{AlsoRead, ReadError, ReadSettings, RequestReading};
use http::{HeaderMap, Method};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// What the gate needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// Host as received (Host header or absolute-form authority).
    pub host: &'a str,
    /// Path as received: not decoded, no query; `*` for `OPTIONS *`.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    /// The client's address (after trusted proxies), for regulation.
    pub client_ip: Option<IpAddr>,
    /// Headers that will reach the app and so are judged as readings too.
    pub also: AlsoRead,
}

/// A request that may pass.
#[derive(Debug, Clone)]
pub struct Admission {
    /// `None` on a public path without a valid credential.
    pub identity: Option<Arc<Identity>>,
    /// The header whose credential was used (removed before proxying).
    pub consumed: Option<CredentialSource>,
}

/// Why a request may not pass; each maps to one answer in `respond`.
#[derive(Debug, Clone)]
pub enum Denial {
    /// The request could not be read one safe way (400).
    BadPath(ReadError),
    /// Credential headers are malformed (400).
    Malformed(CredentialError),
    /// Nobody known is asking (401 / login redirect).
    Unauthenticated(Unauthenticated),
    /// Known (or not), but not permitted (403): what the rule asks for, and
    /// whom the credential named, as a page may show them.
    Forbidden {
        rule: String,
        access: Access,
        who: Option<String>,
    },
    /// Too many failed sign-ins by this user or address (429).
    TooManyAttempts(Banned),
}

impl Denial {
    /// The status the denial is answered with, and its reason in a word
    /// (for sampled denial logs).
    pub fn status_and_reason(&self) -> (u16, &'static str) {
        match self {
            Denial::BadPath(_) => (400, "bad_path"),
            Denial::Malformed(_) => (400, "malformed_credentials"),
            Denial::Unauthenticated(Unauthenticated::Missing) => (401, "no_credentials"),
            Denial::Unauthenticated(_) => (401, "rejected_credentials"),
            Denial::Forbidden { .. } => (403, "forbidden"),
            Denial::TooManyAttempts(_) => (429, "too_many_attempts"),
        }
    }
}

/// Why nobody is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unauthenticated {
    Missing,
    Unsupported(CredentialError),
    Rejected(AuthnError),
}

pub type GateOutcome = Result<Admission, Denial>;

/// Policy plus authenticator, and the metrics they feed.
pub struct Gate {
    policy: Policy,
    authn: Authenticator,
    metrics: Arc<Metrics>,
    cookie_name: String,
    regulator: Arc<Regulator>,
    reading: ReadSettings,
}

/// Why no identity was established.
#[derive(Debug, Clone)]
pub enum AuthFailure {
    Malformed(CredentialError),
    Unauthenticated(Unauthenticated),
    Banned(Banned),
}

impl From<AuthFailure> for Denial {
    fn from(f: AuthFailure) -> Denial {
        match f {
            AuthFailure::Malformed(e) => Denial::Malformed(e),
            AuthFailure::Unauthenticated(u) => Denial::Unauthenticated(u),
            AuthFailure::Banned(b) => Denial::TooManyAttempts(b),
        }
    }
}

impl Gate {
    pub fn new(
        policy: Policy,
        authn: Authenticator,
        metrics: Arc<Metrics>,
        cookie_name: String,
        regulator: Arc<Regulator>,
        reading: ReadSettings,
    ) -> Self {
        Gate {
            policy,
            authn,
            metrics,
            cookie_name,
            regulator,
            reading,
        }
    }

    /// How this gate reads requests (`paths:`), for `explain`.
    pub fn read_settings(&self) -> ReadSettings {
        self.reading
    }

    pub fn regulator(&self) -> &Regulator {
        &self.regulator
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.authn
    }

    /// Decide one request, recording the decision metrics.
    pub async fn check(&self, view: &RequestView<'_>) -> GateOutcome {
        let started = Instant::now();
        let mut identified = None;
        let outcome = self.evaluate(view, &mut identified).await;
        let label = match &outcome {
            Ok(a) if a.identity.is_none() => DecisionLabel::Public,
            Ok(_) => DecisionLabel::Allow,
            Err(Denial::BadPath(_) | Denial::Malformed(_)) => DecisionLabel::BadRequest,
            Err(Denial::Unauthenticated(_)) => DecisionLabel::Unauthenticated,
            Err(Denial::Forbidden { .. }) => DecisionLabel::Forbidden,
            Err(Denial::TooManyAttempts(_)) => DecisionLabel::Regulated,
        };
        self.metrics
            .request(label, identified, started.elapsed().as_secs_f64());
        outcome
    }

    /// Decide; `identified` learns the credential that identified the
    /// caller, whatever the answer (a forbidden request has one too).
    async fn evaluate(
        &self,
        view: &RequestView<'_>,
        identified: &mut Option<AuthMethod>,
    ) -> GateOutcome {
        let reading = RequestReading::new(
            view.method,
            view.host,
            view.path,
            view.headers,
            view.also,
            self.reading,
        )
        .map_err(Denial::BadPath)?;
        let rules = self.policy.rules_for(&reading);
        let auth = self.identify(view.headers, view.client_ip).await;
        if let Ok(Some((id, _))) = &auth {
            *identified = Some(id.method);
        }
        if rules.all_public() {
            // Public paths still tell the app who is asking, when they can.
            return Ok(match auth {
                Ok(Some((id, source))) => Admission {
                    identity: Some(id),
                    consumed: Some(source),
                },
                _ => Admission {
                    identity: None,
                    consumed: None,
                },
            });
        }
        let found = match auth {
            Ok(found) => found,
            Err(AuthFailure::Unauthenticated(_)) if rules.any_deny() => None,
            Err(failure) => return Err(failure.into()),
        };
        let decision = rules.decide(found.as_ref().map(|(id, _)| id.as_ref()));
        match decision.verdict {
            Verdict::Allow => Ok(Admission {
                consumed: found.as_ref().map(|(_, s)| *s),
                identity: found.map(|(id, _)| id),
            }),
            Verdict::Unauthenticated => Err(Denial::Unauthenticated(Unauthenticated::Missing)),
            Verdict::Forbidden => Err(Denial::Forbidden {
                rule: decision.rule.name(),
                access: decision.rule.access.clone(),
                who: found.as_ref().map(|(id, _)| id.shown_as()),
            }),
        }
    }

    /// Who is asking, whatever the path: try each presented credential in
    /// order; the first that verifies wins. Passwords (Basic) are regulated:
    /// a banned user or address is refused before any verification, and a
    /// wrong password counts against both.
    pub async fn identify(
        &self,
        headers: &HeaderMap,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<(Arc<Identity>, CredentialSource)>, AuthFailure> {
        let presented = match credentials::extract(headers, &self.cookie_name) {
            Ok(p) => p,
            Err(e) if e.is_malformed() => return Err(AuthFailure::Malformed(e)),
            Err(e) => {
                return Err(AuthFailure::Unauthenticated(Unauthenticated::Unsupported(
                    e,
                )))
            }
        };
        let mut first_error = None;
        for cred in &presented {
            if let Credential::Basic(b) = cred {
                self.regulator
                    .check(&b.username, client_ip)
                    .map_err(AuthFailure::Banned)?;
            }
            let basic = matches!(cred, Credential::Basic(_));
            match self.authn.authenticate(cred).await {
                Ok((id, outcome)) => {
                    let hit = outcome == CacheOutcome::Hit;
                    self.metrics.cache(hit);
                    if basic && !hit {
                        self.metrics.sign_in(SignInChannel::Basic, true);
                    }
                    return Ok(Some((id, cred.source())));
                }
                Err(e) => {
                    self.metrics.cache(false);
                    if let (Credential::Basic(b), AuthnError::InvalidCredentials) = (cred, &e) {
                        self.metrics.sign_in(SignInChannel::Basic, false);
                        self.regulator.failed(&b.username, client_ip).await;
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(AuthFailure::Unauthenticated(Unauthenticated::Rejected(e))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::App;
    use crate::authn::password::hash_password;
    use crate::settings::Config;
    use crate::tokens::TokenService;
    use base64::Engine;

    const BOB_PW: &str = "bob-password-1";

    /// A gate from a config like a user's: a public GET root and `/public/**`,
    /// a permission on `/admin/**` and on GET `/reports/**`, `/internal/**`
    /// denied; bob is staff (no admin, no reports).
    fn app() -> Arc<App> {
        app_with(None)
    }

    fn app_with(store: Option<crate::store::Store>) -> Arc<App> {
        let yaml = format!(
            r#"
public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://127.0.0.1:9"
roles:
  staff: ["posts:read"]
rules:
  - path: /
    methods: [GET]
    policy: public
  - path: /public/**
    policy: public
  - path: /internal/**
    policy: deny
  - path: /admin/**
    permission: "admin:access"
  - path: /reports/**
    methods: [GET]
    permission: "reports:read"
users:
  - username: bob
    password_hash: "{}"
    role: staff
regulation:
  max_retries: 2
"#,
            hash_password(BOB_PW).unwrap()
        );
        let config = Config::from_yaml(&yaml, std::iter::empty()).unwrap();
        let tokens = Arc::new(TokenService::new(&config.tokens, vec![]));
        let metrics = Arc::new(crate::metrics::Metrics::new().unwrap());
        App::new(config, metrics, None, store, tokens, None).unwrap()
    }

    fn basic(user: &str, pw: &str) -> (&'static str, String) {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        ("authorization", format!("Basic {b}"))
    }

    async fn check(app: &App, method: &str, path: &str, headers: &[(&str, String)]) -> GateOutcome {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let method: Method = method.parse().unwrap();
        let view = RequestView {
            method: &method,
            host: "app.example.com",
            path,
            headers: &h,
            client_ip: Some(IpAddr::from([192, 0, 2, 1])),
            also: AlsoRead::default(),
        };
        app.live().gate.check(&view).await
    }

    fn who(outcome: &GateOutcome) -> Option<&str> {
        outcome
            .as_ref()
            .ok()
            .and_then(|a| a.identity.as_deref())
            .map(|i| i.subject.as_str())
    }

    #[tokio::test]
    async fn every_reading_must_pass() {
        let app = app();
        let bob = [basic("bob", BOB_PW)];
        // HEAD meets the GET rule; `;x` cannot hide `/admin`.
        for (method, path) in [("HEAD", "/reports/q3"), ("GET", "/admin;x/y")] {
            let out = check(&app, method, path, &bob).await;
            assert!(
                matches!(out, Err(Denial::Forbidden { .. })),
                "{method} {path}: {out:?}"
            );
        }
        let out = check(&app, "GET", "/public/..;/admin/x", &[]).await;
        assert!(matches!(out, Err(Denial::BadPath(_))), "{out:?}");
        // The public root is public for GET and HEAD, not for POST.
        for method in ["GET", "HEAD"] {
            assert!(check(&app, method, "/", &[]).await.is_ok(), "{method}");
        }
        let out = check(&app, "POST", "/", &[]).await;
        assert!(matches!(out, Err(Denial::Unauthenticated(_))), "{out:?}");
    }

    #[tokio::test]
    async fn public_paths_name_who_they_can_and_ignore_bad_credentials() {
        let app = app();
        let out = check(&app, "GET", "/public/a", &[basic("bob", BOB_PW)]).await;
        assert_eq!(who(&out), Some("bob"));
        let out = check(&app, "GET", "/public/a", &[basic("bob", "wrong-password")]).await;
        let admission = out.expect("a wrong password on a public path still passes");
        assert!(admission.identity.is_none() && admission.consumed.is_none());
    }

    #[tokio::test]
    async fn deny_is_403_for_everyone_even_with_a_wrong_password() {
        let app = app();
        for headers in [
            vec![],
            vec![basic("bob", "wrong")],
            vec![basic("bob", BOB_PW)],
        ] {
            let out = check(&app, "GET", "/internal/x", &headers).await;
            assert!(matches!(out, Err(Denial::Forbidden { .. })), "{out:?}");
        }
    }

    #[tokio::test]
    async fn the_first_credential_that_verifies_wins() {
        let app = app();
        // A session cookie is tried first; unknown, it does not stop Basic.
        let headers = [
            ("cookie", "gatehouse_session=not-a-session".to_owned()),
            basic("bob", BOB_PW),
        ];
        let out = check(&app, "GET", "/anything", &headers).await;
        assert_eq!(who(&out), Some("bob"));
        let consumed = out.unwrap().consumed;
        assert_eq!(consumed, Some(CredentialSource::Authorization));
        // Nothing verifies: the first error is the answer.
        let headers = [
            basic("bob", "wrong"),
            ("x-api-key", "gh_unknown".to_owned()),
        ];
        let out = check(&app, "GET", "/anything", &headers).await;
        assert!(
            matches!(
                out,
                Err(Denial::Unauthenticated(Unauthenticated::Rejected(
                    AuthnError::InvalidCredentials
                )))
            ),
            "{out:?}"
        );
        // A malformed header is a 400 before anything is tried.
        let out = check(
            &app,
            "GET",
            "/anything",
            &[("authorization", "Basic !!!".into())],
        )
        .await;
        assert!(matches!(out, Err(Denial::Malformed(_))), "{out:?}");
    }

    #[tokio::test]
    async fn wrong_passwords_lead_to_a_ban_that_refuses_even_the_right_one() {
        // Counts and bans live in the store.
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("g.db").display());
        let store = crate::store::Store::open(&url).await.unwrap();
        let app = app_with(Some(store));
        for _ in 0..2 {
            let out = check(&app, "GET", "/anything", &[basic("bob", "wrong")]).await;
            assert!(matches!(out, Err(Denial::Unauthenticated(_))), "{out:?}");
        }
        let out = check(&app, "GET", "/anything", &[basic("bob", BOB_PW)]).await;
        assert!(matches!(out, Err(Denial::TooManyAttempts(_))), "{out:?}");
    }
}
