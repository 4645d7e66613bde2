//! Single sign-on against a hostile OpenID provider: a fake provider written
//! here (discovery, keys, token endpoint, userinfo on a plain TCP listener)
//! hands the real binary ID tokens and logout tokens forged every way a
//! provider, or someone in its place, could: wrong nonce, audience, issuer,
//! expiry, `alg: none`, HMAC with the client secret, another key under the
//! published `kid`, a foreign `azp`, error answers and garbage from the token
//! endpoint. Each must be refused with the right status and no session; the
//! control cases prove the same harness signs in and logs out when all is
//! right, so a suite that refused everything would fail.
//!
//! Every case runs and prints PASS or FAIL; the test fails at the end with
//! the list of failed cases.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CLIENT_ID: &str = "gatehouse";
const CLIENT_SECRET: &str = "s3cret-s3cret";
const KID: &str = "k1";
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A fresh P-256 key: the signing key (PKCS#8) and its public JWK.
fn p256_key(kid: &str) -> (EncodingKey, Value) {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let der = secret.to_pkcs8_der().unwrap();
    let point = secret.public_key().to_encoded_point(false);
    let jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": B64.encode(point.x().unwrap()),
        "y": B64.encode(point.y().unwrap()),
        "kid": kid,
        "alg": "ES256",
        "use": "sig",
    });
    (EncodingKey::from_ec_der(der.as_bytes()), jwk)
}

/// An ES256 JWT with `kid` in its header.
fn es256(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// An HS256 JWT keyed with `secret`.
fn hs256(secret: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// An unsigned JWT (`alg: none`, empty signature).
fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(claims.to_string())
    )
}

/// One HTTP answer of the fake.
#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    /// A token endpoint's success answer carrying `id_token`.
    fn tokens(id_token: &str) -> Reply {
        Reply::json(
            200,
            json!({
                "access_token": "at-evil",
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }),
        )
    }
}

struct Shared {
    discovery: String,
    jwks: String,
    userinfo: String,
    /// What the token endpoint answers next (taken: each reply serves once).
    next_token_reply: Mutex<Option<Reply>>,
    /// Bodies of the token requests received, in order.
    token_requests: Mutex<Vec<String>>,
}

/// The hostile provider on 127.0.0.1.
struct FakeProvider {
    issuer: String,
    /// The key the JWKS publishes (kid `k1`).
    key: EncodingKey,
    /// A key nobody published.
    other_key: EncodingKey,
    shared: Arc<Shared>,
}

impl FakeProvider {
    fn start() -> FakeProvider {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (key, jwk) = p256_key(KID);
        let (other_key, _) = p256_key(KID);
        let discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "end_session_endpoint": format!("{issuer}/session/end"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile"],
            "code_challenge_methods_supported": ["S256"],
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
        });
        let shared = Arc::new(Shared {
            discovery: discovery.to_string(),
            jwks: json!({ "keys": [jwk] }).to_string(),
            userinfo: json!({
                "sub": "evil-alice",
                "preferred_username": "alice",
                "email": "alice@evil.test",
                "email_verified": true,
                "groups": ["devs"],
            })
            .to_string(),
            next_token_reply: Mutex::new(None),
            token_requests: Mutex::new(Vec::new()),
        });
        let for_server = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let shared = for_server.clone();
                std::thread::spawn(move || serve(conn, &shared));
            }
        });
        FakeProvider {
            issuer,
            key,
            other_key,
            shared,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// What the token endpoint answers to the next exchange.
    fn stage(&self, reply: Reply) {
        *self.shared.next_token_reply.lock().unwrap() = Some(reply);
    }

    fn last_token_request(&self) -> Option<String> {
        self.shared.token_requests.lock().unwrap().last().cloned()
    }

    /// Claims of a correct ID token for `nonce`.
    fn good_claims(&self, nonce: &str) -> Value {
        let t = now();
        json!({
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "evil-alice",
            "exp": t + 300,
            "iat": t,
            "auth_time": t,
            "nonce": nonce,
            "sid": "S1",
            "preferred_username": "alice",
            "email": "alice@evil.test",
            "email_verified": true,
            "groups": ["devs"],
        })
    }

    /// `claims` signed with the published key.
    fn sign(&self, claims: &Value) -> String {
        es256(&self.key, KID, claims)
    }

    /// Claims of a correct logout token for session `sid`.
    fn logout_claims(&self, sid: &str) -> Value {
        let t = now();
        json!({
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": t,
            "exp": t + 120,
            "jti": format!("jti-{}", rand::random::<u64>()),
            "sid": sid,
            "events": { LOGOUT_EVENT: {} },
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request per connection: read it, answer it, close.
fn serve(mut s: TcpStream, shared: &Shared) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    let mut first = head.lines().next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("");
    let path = first.next().unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    let json = |body: &str| Reply {
        status: 200,
        content_type: "application/json",
        body: body.to_owned(),
    };
    let reply = match (method, path) {
        ("GET", "/.well-known/openid-configuration") => json(&shared.discovery),
        ("GET", "/jwks") => json(&shared.jwks),
        ("GET", "/userinfo") => json(&shared.userinfo),
        ("POST", "/token") => {
            shared.token_requests.lock().unwrap().push(body);
            shared
                .next_token_reply
                .lock()
                .unwrap()
                .take()
                .unwrap_or_else(|| {
                    Reply::json(
                        500,
                        json!({"error": "server_error", "note": "nothing staged"}),
                    )
                })
        }
        _ => Reply::json(404, json!({"error": "not_found"})),
    };
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Whatever",
    };
    let out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{}",
        reply.status,
        reply.content_type,
        reply.body.len(),
        reply.body
    );
    let _ = s.write_all(out.as_bytes());
    let _ = s.flush();
}

/// Gatehouse with the fake as its only provider, on a fresh SQLite store.
fn start_gatehouse(fake: &FakeProvider, dir: &std::path::Path) -> Gatehouse {
    let store = format!("sqlite://{}", dir.join("attacks.db").display());
    let mut yaml = store_yaml(&store, "");
    yaml.push_str(&format!(
        "oidc:\n  providers:\n    - id: evil\n      display_name: Evil\n      issuer: \"{}\"\n      client_id: {CLIENT_ID}\n      client_secret: {CLIENT_SECRET}\n      scopes: [openid, email, profile]\n",
        fake.issuer
    ));
    Gatehouse::start_on(free_port(), &yaml, &[])
}

/// A sign-in sent to the fake provider: what the authorize redirect carried.
struct Started {
    state: String,
    nonce: String,
    challenge: String,
    binding: String,
    rd: String,
}

/// What the callback answered.
struct Outcome {
    status: u16,
    location: Option<String>,
    session: Option<String>,
    body: String,
}

impl Outcome {
    fn describe(&self) -> String {
        let body: String = self.body.chars().take(300).collect();
        format!(
            "status {}, location {:?}, session cookie {:?}, body {body:?}",
            self.status, self.location, self.session
        )
    }
}

/// `GET /_auth/oidc/evil/authorize`: the binding cookie and the parameters
/// sent to the provider.
fn authorize(g: &Gatehouse, fake: &FakeProvider) -> Result<Started, String> {
    let rd = g.url("/after-sso");
    let r = client()
        .get(g.url(&format!("/_auth/oidc/evil/authorize?rd={rd}")))
        .send()
        .map_err(|e| format!("authorize: {e}"))?;
    if r.status() != 302 {
        return Err(format!(
            "authorize answered {} instead of 302: {}",
            r.status(),
            r.text().unwrap_or_default()
        ));
    }
    let binding = set_cookie_value(&r, "gatehouse_session_sso")
        .ok_or("authorize set no gatehouse_session_sso cookie")?;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    if !location.starts_with(&fake.url("/authorize?")) {
        return Err(format!("authorize sent the browser to {location}"));
    }
    let url = reqwest::Url::parse(&location).unwrap();
    let param = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| format!("`{k}` missing from {location}"))
    };
    let expected = [
        ("response_type", "code".to_owned()),
        ("client_id", CLIENT_ID.to_owned()),
        ("redirect_uri", g.url("/_auth/oidc/callback")),
        ("code_challenge_method", "S256".to_owned()),
    ];
    for (k, v) in expected {
        if param(k)? != v {
            return Err(format!("`{k}` is not {v} in {location}"));
        }
    }
    Ok(Started {
        state: param("state")?,
        nonce: param("nonce")?,
        challenge: param("code_challenge")?,
        binding,
        rd,
    })
}

/// The browser comes back to `/_auth/oidc/callback?{query}` with its binding.
fn callback(g: &Gatehouse, s: &Started, query: &str) -> Outcome {
    let r = client()
        .get(g.url(&format!("/_auth/oidc/callback?{query}")))
        .header("cookie", format!("gatehouse_session_sso={}", s.binding))
        .header("accept", "text/html")
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let session = set_cookie_value(&r, "gatehouse_session").filter(|v| !v.is_empty());
    let body = r.text().unwrap_or_default();
    Outcome {
        status,
        location,
        session,
        body,
    }
}

/// The usual way back: `state` and a fresh `code`.
fn come_back(g: &Gatehouse, s: &Started) -> Outcome {
    let code = format!("code-{}", rand::random::<u64>());
    callback(g, s, &format!("state={}&code={code}", s.state))
}

fn me(g: &Gatehouse, session: &str) -> reqwest::blocking::Response {
    client()
        .get(g.url("/_auth/api/me"))
        .header("cookie", format!("gatehouse_session={session}"))
        .send()
        .unwrap()
}

/// A sign-in where the token endpoint answers `craft(started)`; it must be
/// refused with `expected` and must not set a session cookie.
fn refused(
    g: &Gatehouse,
    fake: &FakeProvider,
    expected: u16,
    craft: impl FnOnce(&Started) -> Reply,
) -> Result<(), String> {
    let s = authorize(g, fake)?;
    fake.stage(craft(&s));
    let o = come_back(g, &s);
    if o.status != expected || o.session.is_some() {
        return Err(format!(
            "expected {expected} and no session; got {}",
            o.describe()
        ));
    }
    Ok(())
}

/// The control sign-in: a correct ID token gives a session for alice.
fn sign_in(g: &Gatehouse, fake: &FakeProvider) -> Result<String, String> {
    let s = authorize(g, fake)?;
    fake.stage(Reply::tokens(&fake.sign(&fake.good_claims(&s.nonce))));
    let o = come_back(g, &s);
    let session = match (&o.status, &o.session) {
        (303, Some(session)) => session.clone(),
        _ => return Err(format!("expected 303 with a session; got {}", o.describe())),
    };
    if o.location.as_deref() != Some(s.rd.as_str()) {
        return Err(format!(
            "expected to return to {}; got {}",
            s.rd,
            o.describe()
        ));
    }
    // The exchange carried the code verifier of the challenge sent out.
    let request = fake.last_token_request().unwrap_or_default();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(request.as_bytes())
        .into_owned()
        .collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let verifier = field("code_verifier").ok_or(format!("no code_verifier in {request}"))?;
    let challenge = {
        use sha2::Digest;
        B64.encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    if challenge != s.challenge || field("grant_type") != Some("authorization_code") {
        return Err(format!(
            "the token request does not match the PKCE challenge {}: {request}",
            s.challenge
        ));
    }
    let r = me(g, &session);
    if r.status() != 200 {
        return Err(format!("/_auth/api/me answered {}", r.status()));
    }
    let body: Value = r.json().map_err(|e| e.to_string())?;
    if body["username"] != "alice" {
        return Err(format!("/_auth/api/me is not alice: {body}"));
    }
    Ok(session)
}

/// Runs cases, prints each outcome, fails at the end with every failure.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
}

impl Report {
    fn case(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => println!("PASS {name}"),
            Err(why) => {
                println!("FAIL {name}: {why}");
                self.failures.push(format!("{name}: {why}"));
            }
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} case(s) failed:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

#[test]
fn forged_id_tokens_and_token_endpoint_failures_are_refused() {
    let fake = FakeProvider::start();
    let dir = tempfile::tempdir().unwrap();
    let g = start_gatehouse(&fake, dir.path());
    let mut report = Report::default();

    report.case("01 control: a correct ID token signs in", {
        sign_in(&g, &fake).map(|_| ())
    });

    report.case(
        "02 wrong nonce",
        refused(&g, &fake, 401, |s| {
            let mut c = fake.good_claims(&s.nonce);
            c["nonce"] = json!("not-the-nonce-sent");
            Reply::tokens(&fake.sign(&c))
        }),
    );
    report.case(
        "02b no nonce",
        refused(&g, &fake, 401, |s| {
            let mut c = fake.good_claims(&s.nonce);
            c.as_object_mut().unwrap().remove("nonce");
            Reply::tokens(&fake.sign(&c))
        }),
    );
    report.case(
        "03 wrong audience",
        refused(&g, &fake, 401, |s| {
            let mut c = fake.good_claims(&s.nonce);
            c["aud"] = json!("someone-else");
            Reply::tokens(&fake.sign(&c))
        }),
    );
    report.case(
        "04 wrong issuer",
        refused(&g, &fake, 401, |s| {
            let mut c = fake.good_claims(&s.nonce);
            c["iss"] = json!("https://evil.example");
            Reply::tokens(&fake.sign(&c))
        }),
    );
    report.case(
        "05 expired an hour ago",
        refused(&g, &fake, 401, |s| {
            let mut c = fake.good_claims(&s.nonce);
            c["iat"] = json!(now() - 7200);
            c["exp"] = json!(now() - 3600);
            Reply::tokens(&fake.sign(&c))
        }),
    );
    report.case(
        "06 alg none",
        refused(&g, &fake, 401, |s| {
            Reply::tokens(&unsigned(&fake.good_claims(&s.nonce)))
        }),
    );
    report.case(
        "07 HS256 keyed with the client secret",
        refused(&g, &fake, 401, |s| {
            Reply::tokens(&hs256(CLIENT_SECRET, &fake.good_claims(&s.nonce)))
        }),
    );
    report.case(
        "08 another key under the published kid",
        refused(&g, &fake, 401, |s| {
            Reply::tokens(&es256(&fake.other_key, KID, &fake.good_claims(&s.nonce)))
        }),
    );
    report.case(
        "08b payload swapped under a valid signature",
        refused(&g, &fake, 401, |s| {
            let signed = fake.sign(&fake.good_claims("some-other-nonce"));
            let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
            parts[1] = B64.encode(fake.good_claims(&s.nonce).to_string());
            Reply::tokens(&parts.join("."))
        }),
    );
    report.case(
        "09 two audiences, azp someone else",
        refused(&g, &fake, 401, |s| {
            let mut c = fake.good_claims(&s.nonce);
            c["aud"] = json!([CLIENT_ID, "other"]);
            c["azp"] = json!("other");
            Reply::tokens(&fake.sign(&c))
        }),
    );
    report.case(
        "09b no ID token in the token response",
        refused(&g, &fake, 401, |_| {
            Reply::json(
                200,
                json!({"access_token": "at", "token_type": "Bearer", "expires_in": 300}),
            )
        }),
    );
    report.case(
        "10 token endpoint: 400 invalid_grant",
        refused(&g, &fake, 401, |_| {
            Reply::json(400, json!({"error": "invalid_grant"}))
        }),
    );
    report.case(
        "11 token endpoint: 500 with garbage",
        refused(&g, &fake, 502, |_| Reply {
            status: 500,
            content_type: "text/html",
            body: "<html>upstream exploded</html>".into(),
        }),
    );
    report.case(
        "11b token endpoint: 200 with garbage",
        refused(&g, &fake, 502, |_| Reply {
            status: 200,
            content_type: "application/json",
            body: "{not json at all".into(),
        }),
    );
    report.case("12 callback with error=access_denied", {
        authorize(&g, &fake).and_then(|s| {
            let o = callback(&g, &s, &format!("state={}&error=access_denied", s.state));
            if o.status == 403 && o.session.is_none() {
                Ok(())
            } else {
                Err(format!("expected 403 and no session; got {}", o.describe()))
            }
        })
    });

    report.case("12b control again: still signs in after the attacks", {
        sign_in(&g, &fake).map(|_| ())
    });
    report.finish();
}

/// POST a logout token to the back-channel endpoint.
fn backchannel(g: &Gatehouse, token: &str) -> u16 {
    client()
        .post(g.url("/_auth/oidc/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn forged_backchannel_logout_tokens_are_refused() {
    let fake = FakeProvider::start();
    let dir = tempfile::tempdir().unwrap();
    let g = start_gatehouse(&fake, dir.path());
    let session = sign_in(&g, &fake).expect("the control sign-in (sid S1)");
    let mut report = Report::default();

    let mut refuse = |name: &str, token: String| {
        let status = backchannel(&g, &token);
        let alive = me(&g, &session).status().as_u16();
        let result = match (status, alive) {
            (400, 200) => Ok(()),
            _ => Err(format!(
                "expected 400 with the session alive; got {status}, /_auth/api/me {alive}"
            )),
        };
        report.case(name, result);
    };
    refuse("13 logout token with a nonce", {
        let mut c = fake.logout_claims("S1");
        c["nonce"] = json!("n");
        fake.sign(&c)
    });
    refuse("14 logout token without events", {
        let mut c = fake.logout_claims("S1");
        c.as_object_mut().unwrap().remove("events");
        fake.sign(&c)
    });
    refuse("14b logout token with another event", {
        let mut c = fake.logout_claims("S1");
        c["events"] = json!({"http://schemas.openid.net/event/something-else": {}});
        fake.sign(&c)
    });
    refuse("15 logout token for another audience", {
        let mut c = fake.logout_claims("S1");
        c["aud"] = json!("someone-else");
        fake.sign(&c)
    });
    refuse(
        "16 logout token signed with another key",
        es256(&fake.other_key, KID, &fake.logout_claims("S1")),
    );
    refuse(
        "17 logout token with alg none",
        unsigned(&fake.logout_claims("S1")),
    );
    refuse(
        "17b logout token HS256 keyed with the client secret",
        hs256(CLIENT_SECRET, &fake.logout_claims("S1")),
    );
    refuse("17c logout token expired an hour ago", {
        let mut c = fake.logout_claims("S1");
        c["iat"] = json!(now() - 7200);
        c["exp"] = json!(now() - 3600);
        fake.sign(&c)
    });

    // Control: a valid logout token for sid S1 ends the session.
    let status = backchannel(&g, &fake.sign(&fake.logout_claims("S1")));
    report.case(
        "18 control: a valid logout token is accepted",
        match status {
            200 => Ok(()),
            _ => Err(format!("expected 200; got {status}")),
        },
    );
    if status == 200 {
        let took = eventually("the back-channel logout ends the session", || {
            me(&g, &session).status() == 401
        });
        println!("PASS 18 … and /_auth/api/me answers 401 after {took:?}");
    }
    report.finish();
}
