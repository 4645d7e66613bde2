//! Tokens from the outside: `api/login` → JWT, the token opening the app,
//! `api/me`, `api/logout` revoking it (also across two PostgreSQL
//! replicas), the JWKS, key rotation, every classic JWT attack refused, and
//! trusted external issuers verified against a JWKS served over HTTP.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Create users `amy` (role user, with an e-mail) and `boss` (admin) in the store.
fn add_users(store_url: &str, dir: &std::path::Path) {
    for (name, role, pw) in [
        ("boss", "admin", "boss-password"),
        ("amy", "user", "amy-password"),
    ] {
        let email = format!("{name}@example.com");
        add_store_user(
            store_url,
            dir,
            name,
            pw,
            &["--role", role, "--email", &email],
        );
    }
}

struct Site {
    g: Gatehouse,
    dir: tempfile::TempDir,
}

fn site(extra: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    add_users(&url, dir.path());
    let g = Gatehouse::start(&store_yaml(&url, extra));
    Site { g, dir }
}

fn api_login(g: &Gatehouse, body: Value) -> (u16, Value) {
    let r = client()
        .post(g.url("/_auth/api/login"))
        .json(&body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn token_of(g: &Gatehouse, user: &str, pw: &str) -> String {
    let (status, body) = api_login(g, json!({"username": user, "password": pw}));
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

fn get_with_bearer(g: &Gatehouse, path: &str, token: &str) -> reqwest::blocking::Response {
    client().get(g.url(path)).bearer_auth(token).send().unwrap()
}

fn claims_of(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let claims = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&claims).unwrap(),
    )
}

#[test]
fn api_login_issues_a_token_that_opens_the_app() {
    let s = site("");
    let (status, body) = api_login(&s.g, json!({"username": "amy", "password": "amy-password"}));
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_eq!(body["user"]["username"], "amy");
    assert_eq!(body["user"]["role"], "user");
    assert_eq!(body["user"]["type"], "user");
    assert!(body["user"]["id"].as_i64().is_some());
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));

    let (header, claims) = claims_of(token);
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    let issuer = format!("http://127.0.0.1:{}", s.g.port);
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["aud"], issuer.as_str());
    assert_eq!(claims["sub"], "amy");
    assert_eq!(claims["role"], "user");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 32));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 24 * 3600, "24 h by default");

    let r = get_with_bearer(&s.g, "/app?x=1", token);
    assert_eq!(r.status(), 200);
    let echo = echo_json(&r.text().unwrap());
    assert_eq!(echo["headers"]["remote-user"], "amy");
    assert_eq!(echo["headers"]["x-auth-method"], "jwt");
    assert_eq!(echo["headers"]["remote-email"], "amy@example.com");
    assert!(
        echo["headers"].get("authorization").is_none(),
        "token not passed upstream"
    );

    let me: Value = get_with_bearer(&s.g, "/_auth/api/me", token)
        .json()
        .unwrap();
    assert_eq!(me["username"], "amy");
    assert_eq!(me["auth_method"], "jwt");
    assert_eq!(me["two_factor_enabled"], false);
    assert!(me["permissions"].is_array());
    assert_eq!(me["id"], body["user"]["id"]);

    // E-mail works as the login name too.
    let (status, by_mail) = api_login(
        &s.g,
        json!({"email": "AMY@example.com", "password": "amy-password"}),
    );
    assert_eq!(status, 200, "{by_mail}");
    assert_eq!(by_mail["user"]["username"], "amy");
}

#[test]
fn api_login_refuses_without_telling_which_part_was_wrong() {
    let s = site("");
    let (s1, wrong_pw) = api_login(&s.g, json!({"username": "amy", "password": "nope"}));
    let (s2, no_user) = api_login(&s.g, json!({"username": "zed", "password": "nope"}));
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong_pw["error"], "invalid_credentials");
    assert_eq!(wrong_pw, no_user, "same answer for unknown users");

    let r = client()
        .post(s.g.url("/_auth/api/login"))
        .header("content-type", "text/plain")
        .body("username=amy")
        .send()
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = client()
        .post(s.g.url("/_auth/api/login"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_request");
    let (status, body) = api_login(&s.g, json!({"username": "amy"}));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // api/me without a credential is a 401 with a challenge.
    let r = client().get(s.g.url("/_auth/api/me")).send().unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
}

#[test]
fn the_jwks_verifies_issued_tokens() {
    let s = site("");
    let token = token_of(&s.g, "amy", "amy-password");
    let jwks: jsonwebtoken::jwk::JwkSet = client()
        .get(s.g.url("/_auth/.well-known/jwks.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let (header, _) = claims_of(&token);
    let jwk = jwks
        .find(header["kid"].as_str().unwrap())
        .expect("kid published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    v.set_audience(&[format!("http://127.0.0.1:{}", s.g.port)]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &v).expect("verifies with the JWKS");
    assert_eq!(data.claims["sub"], "amy");
    // No private material is published.
    let raw: Value = client()
        .get(s.g.url("/_auth/.well-known/jwks.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(raw["keys"][0].get("d").is_none());
}

#[test]
fn logout_revokes_the_token_and_a_restart_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    add_users(&url, dir.path());
    // A fixed issuer: the restarted process listens on another port.
    let yaml = store_yaml(&url, "tokens:\n  issuer: https://auth.test\n");
    let g = Gatehouse::start(&yaml);
    let kept = token_of(&g, "amy", "amy-password");
    let ended = token_of(&g, "amy", "amy-password");
    assert_eq!(
        get_with_bearer(&g, "/x", &ended).status(),
        200,
        "cached now"
    );
    let r = client()
        .post(g.url("/_auth/api/logout"))
        .bearer_auth(&ended)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = get_with_bearer(&g, "/x", &ended);
    assert_eq!(r.status(), 401, "revoked at once, cache included");
    assert_eq!(r.json::<Value>().unwrap()["error"], "token_revoked");
    assert_eq!(get_with_bearer(&g, "/x", &kept).status(), 200);
    // The generated signing key lives in the SQLite file: tokens survive a restart.
    g.stop();
    let g2 = Gatehouse::start(&yaml);
    assert_eq!(get_with_bearer(&g2, "/x", &kept).status(), 200);
    assert_eq!(get_with_bearer(&g2, "/x", &ended).status(), 401);
}

#[test]
fn a_disabled_user_loses_their_token_at_once() {
    let s = site("");
    let token = token_of(&s.g, "amy", "amy-password");
    assert_eq!(get_with_bearer(&s.g, "/x", &token).status(), 200);
    let cli = s.dir.path().join("cli.yaml");
    let (code, _, err) = gatehouse_cmd(
        &["user", "disable", "amy", "-c", cli.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{err}");
    eventually("the disabled user's token is refused", || {
        get_with_bearer(&s.g, "/x", &token).status() == 401
    });
}

#[test]
fn logout_on_one_postgres_replica_is_seen_by_the_other() {
    let Some(url) = postgres_or_skip("tokens") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    add_users(&url, dir.path());
    // Replicas behind one load balancer share one issuer (here, in tests,
    // they listen on different ports, so it is set explicitly).
    let yaml = store_yaml(&url, "tokens:\n  issuer: https://auth.test\n");
    let a = Gatehouse::start(&yaml);
    let b = Gatehouse::start(&yaml);
    let token = token_of(&a, "amy", "amy-password");
    // Both replicas share the generated key: b accepts a's token.
    assert_eq!(get_with_bearer(&b, "/x", &token).status(), 200);
    let r = client()
        .post(a.url("/_auth/api/logout"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let took = eventually("replica b refuses the revoked token", || {
        get_with_bearer(&b, "/x", &token).status() == 401
    });
    println!("a logout on a reached b after {took:?}");
}

/// A key pair written as files, for configuring `tokens.keys`.
fn key_file(dir: &std::path::Path, name: &str) -> (String, Vec<u8>) {
    let (code, pem, err) = gatehouse_cmd(&["signing-key", "generate"], None);
    assert_eq!(code, 0, "{err}");
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, &pem).unwrap();
    (path.display().to_string(), pem.into_bytes())
}

fn sign(pem: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_pem(pem).unwrap()).unwrap()
}

#[test]
fn keys_rotate_without_logging_anyone_out() {
    let keys = tempfile::tempdir().unwrap();
    let (old_path, _) = key_file(keys.path(), "old");
    let (new_path, _) = key_file(keys.path(), "new");
    let before = format!("tokens:\n  issuer: https://auth.test\n  keys:\n    - kid: old\n      private_key_file: {old_path}\n");
    let s = site(&before);
    let old_token = token_of(&s.g, "amy", "amy-password");
    assert_eq!(claims_of(&old_token).0["kid"], "old");
    s.g.stop();
    // The new key signs; the old one still verifies.
    let after = format!(
        "tokens:\n  issuer: https://auth.test\n  keys:\n    - kid: new\n      private_key_file: {new_path}\n    - kid: old\n      private_key_file: {old_path}\n"
    );
    let url = format!("sqlite://{}/t.db", s.dir.path().display());
    let g = Gatehouse::start(&store_yaml(&url, &after));
    assert_eq!(get_with_bearer(&g, "/x", &old_token).status(), 200);
    let new_token = token_of(&g, "amy", "amy-password");
    assert_eq!(claims_of(&new_token).0["kid"], "new");
    let jwks: Value = client()
        .get(g.url("/_auth/.well-known/jwks.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
}

#[test]
fn every_classic_jwt_attack_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let (path, pem) = key_file(keys.path(), "k1");
    let (_, other_pem) = key_file(keys.path(), "stranger");
    let s = site(&format!(
        "tokens:\n  keys:\n    - kid: k1\n      private_key_file: {path}\n"
    ));
    let g = &s.g;
    let iss = format!("http://127.0.0.1:{}", g.port);
    let now = gatehouse::store::unix_now();
    let good = json!({"iss": iss, "aud": iss, "sub": "amy", "role": "user",
        "iat": now, "nbf": now, "exp": now + 600, "jti": "jti-good-0123456789abcdef"});
    // The control: a token we forge with the real key is accepted.
    let control = sign(&pem, Some("k1"), &good);
    assert_eq!(get_with_bearer(g, "/x", &control).status(), 200);

    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c["jti"] = json!(format!("jti-{}", rand_suffix()));
        c
    };
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let public_jwk: Value = client()
        .get(g.url("/_auth/.well-known/jwks.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let x = public_jwk["keys"][0]["x"].as_str().unwrap().to_owned();
    let hs256_with = |secret: &[u8]| {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        jsonwebtoken::encode(&h, &with(json!({})), &EncodingKey::from_secret(secret)).unwrap()
    };
    let parts: Vec<&str> = control.split('.').collect();
    let mut attacks: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&with(json!({})))
            ),
        ),
        (
            "alg none with the original signature",
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "none", "kid": "k1"})),
                parts[1],
                parts[2]
            ),
        ),
        (
            "HS256 keyed with the public key (raw x)",
            hs256_with(x.as_bytes()),
        ),
        (
            "HS256 keyed with the public key (bytes)",
            hs256_with(&URL_SAFE_NO_PAD.decode(&x).unwrap()),
        ),
        (
            "expired",
            sign(
                &pem,
                Some("k1"),
                &with(json!({"exp": now - 60, "iat": now - 700, "nbf": now - 700})),
            ),
        ),
        (
            "not yet valid",
            sign(&pem, Some("k1"), &with(json!({"nbf": now + 300}))),
        ),
        (
            "wrong issuer",
            sign(
                &pem,
                Some("k1"),
                &with(json!({"iss": "https://evil.example"})),
            ),
        ),
        (
            "wrong audience",
            sign(&pem, Some("k1"), &with(json!({"aud": "another-app"}))),
        ),
        ("no exp", {
            let mut c = with(json!({}));
            c.as_object_mut().unwrap().remove("exp");
            sign(&pem, Some("k1"), &c)
        }),
        (
            "unknown kid",
            sign(&other_pem, Some("k9"), &with(json!({}))),
        ),
        (
            "real kid, stranger's key",
            sign(&other_pem, Some("k1"), &with(json!({}))),
        ),
        ("no kid", sign(&pem, None, &with(json!({})))),
        (
            "tampered payload (role and subject swapped, signature kept)",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&with(json!({"sub": "boss", "role": "admin"}))),
                parts[2]
            ),
        ),
        (
            "truncated signature",
            format!("{}.{}.{}", parts[0], parts[1], &parts[2][..20]),
        ),
        ("garbage", "not.a.jwt".into()),
        (
            "unknown user",
            sign(&pem, Some("k1"), &with(json!({"sub": "ghost"}))),
        ),
    ];
    // Revoked: a real token, logged out.
    let revoked = token_of(g, "amy", "amy-password");
    let r = client()
        .post(g.url("/_auth/api/logout"))
        .bearer_auth(&revoked)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    attacks.push(("revoked jti", revoked));

    let mut accepted = Vec::new();
    for (name, token) in &attacks {
        let r = get_with_bearer(g, "/x", token);
        let status = r.status().as_u16();
        if status != 401 {
            accepted.push(format!("{name}: {status}"));
            continue;
        }
        assert!(r.headers().contains_key("www-authenticate"), "{name}");
        let body: Value = r.json().unwrap();
        assert!(body["error"].as_str().is_some(), "{name}: {body}");
    }
    assert!(accepted.is_empty(), "attacks not refused: {accepted:?}");
    // The control still works: the refusals were about the attacks.
    assert_eq!(get_with_bearer(g, "/x", &control).status(), 200);
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: AtomicUsize = AtomicUsize::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{t}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A tiny HTTP server answering every GET with `body`, counting requests.
struct JwksServer {
    port: u16,
    hits: Arc<AtomicUsize>,
    body: Arc<Mutex<String>>,
}

impl JwksServer {
    fn start(body: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(Mutex::new(body));
        let (h, b) = (hits.clone(), body.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let body = b.lock().unwrap().clone();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        JwksServer { port, hits, body }
    }
}

/// An ES256 key pair: (encoding key, public JWK with `kid`).
fn es256_key(kid: &str) -> (EncodingKey, Value) {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
    let point = secret.public_key().to_encoded_point(false);
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())});
    (EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(), jwk)
}

#[test]
fn trusted_issuer_tokens_are_verified_against_their_jwks() {
    let (key1, jwk1) = es256_key("idp-1");
    let (key2, jwk2) = es256_key("idp-2");
    let idp = JwksServer::start(json!({"keys": [jwk1]}).to_string());
    let issuer = "https://idp.example.test";
    let s = site(&format!(
        "roles:\n  viewer: [\"docs:read\"]\ntrusted_issuers:\n  - issuer: {issuer}\n    jwks_url: http://127.0.0.1:{}/jwks\n    audience: my-app\n    algorithms: [ES256]\n    username_claim: preferred_username\n    roles_claim: groups\n    role_map:\n      readers: viewer\nrules:\n  - path: /docs/**\n    permission: docs:read\n",
        idp.port
    ));
    let g = &s.g;
    let now = gatehouse::store::unix_now();
    let claims = |extra: Value| {
        let mut c = json!({"iss": issuer, "aud": "my-app", "sub": "u-123",
            "preferred_username": "carol", "email": "carol@idp.test",
            "groups": ["staff", "readers"], "iat": now, "exp": now + 600});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let es = |key: &EncodingKey, kid: &str, c: &Value| {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, c, key).unwrap()
    };
    let good = es(&key1, "idp-1", &claims(json!({})));
    let r = get_with_bearer(g, "/docs/a", &good);
    assert_eq!(r.status(), 200, "{:?}", r.text());
    let echo = echo_json(&r.text().unwrap());
    assert_eq!(echo["headers"]["remote-user"], "carol");
    assert_eq!(
        echo["headers"]["remote-groups"], "viewer",
        "mapped from `readers`"
    );
    assert_eq!(echo["headers"]["x-auth-method"], "jwt");
    let me: Value = get_with_bearer(g, "/_auth/api/me", &good).json().unwrap();
    assert_eq!(
        (me["username"].as_str(), me["id"].is_null()),
        (Some("carol"), true)
    );

    for (name, token) in [
        (
            "wrong audience",
            es(&key1, "idp-1", &claims(json!({"aud": "other-app"}))),
        ),
        (
            "expired",
            es(&key1, "idp-1", &claims(json!({"exp": now - 60}))),
        ),
        (
            "not yet valid",
            es(&key1, "idp-1", &claims(json!({"nbf": now + 600}))),
        ),
        (
            "stranger's key under a known kid",
            es(&key2, "idp-1", &claims(json!({}))),
        ),
        ("alg outside the pinned list", {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("idp-1".into());
            jsonwebtoken::encode(&h, &claims(json!({})), &EncodingKey::from_secret(b"x")).unwrap()
        }),
        (
            "unconfigured issuer",
            es(
                &key1,
                "idp-1",
                &claims(json!({"iss": "https://other.test"})),
            ),
        ),
    ] {
        assert_eq!(
            get_with_bearer(g, "/docs/a", &token).status(),
            401,
            "{name}"
        );
    }

    // A rotated-in key: unknown kid → one refetch, then accepted.
    let before = idp.hits.load(Ordering::SeqCst);
    *idp.body.lock().unwrap() = json!({"keys": [jwk1, jwk2]}).to_string();
    let rotated = es(&key2, "idp-2", &claims(json!({})));
    assert_eq!(get_with_bearer(g, "/docs/a", &rotated).status(), 200);
    assert_eq!(idp.hits.load(Ordering::SeqCst), before + 1);
    // Made-up kids cannot make Gatehouse hammer the issuer: at most one
    // fetch a minute, and that one was just spent.
    for i in 0..5 {
        let made_up = es(&key2, &format!("nope-{i}"), &claims(json!({})));
        assert_eq!(get_with_bearer(g, "/docs/a", &made_up).status(), 401);
    }
    assert_eq!(idp.hits.load(Ordering::SeqCst), before + 1);
}

#[test]
fn a_trusted_issuer_without_audience_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.yaml");
    std::fs::write(
        &path,
        "upstream:\n  url: \"echo:\"\ntrusted_issuers:\n  - issuer: https://idp.test\n    algorithms: [HS256]\n",
    )
    .unwrap();
    let (code, _, err) = gatehouse_cmd(&["check-config", "-c", path.to_str().unwrap()], None);
    assert_eq!(code, 1);
    assert!(err.contains("trusted_issuers[0].audience"), "{err}");
    assert!(err.contains("trusted_issuers[0].algorithms[0]"), "{err}");
}

#[test]
fn stored_api_keys_from_the_cli_and_the_api() {
    let s = site("roles:\n  editor: [\"posts:*\"]\n");
    let cli = s.dir.path().join("cli.yaml");
    let cli = cli.to_str().unwrap();
    // CLI: created for amy, printed once, works, listed without the key, revoked.
    let (code, key, err) = gatehouse_cmd(
        &[
            "apikey", "create", "--user", "amy", "--name", "ci", "-c", cli,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let key = key.trim().to_owned();
    assert!(key.starts_with("gh_"));
    let r = client()
        .get(s.g.url("/x"))
        .header("x-api-key", &key)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo = echo_json(&r.text().unwrap());
    assert_eq!(echo["headers"]["remote-user"], "amy");
    assert_eq!(echo["headers"]["x-auth-method"], "api_key");
    let (_, list, _) = gatehouse_cmd(&["apikey", "list", "-c", cli], None);
    assert!(
        list.contains("ci") && list.contains("amy") && !list.contains(&key),
        "{list}"
    );
    let id = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let (code, _, err) = gatehouse_cmd(&["apikey", "revoke", &id, "-c", cli], None);
    assert_eq!(code, 0, "{err}");
    eventually("the revoked key is refused", || {
        client()
            .get(s.g.url("/x"))
            .header("x-api-key", &key)
            .send()
            .unwrap()
            .status()
            == 401
    });

    // API: a signed-in user makes a key narrowed to some of their permissions.
    let token = token_of(&s.g, "boss", "boss-password");
    let r = client()
        .post(s.g.url("/_auth/api/me/api-keys"))
        .bearer_auth(&token)
        .json(&json!({"name": "deploy", "permissions": ["posts:read"], "expires_in": "30d"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().unwrap();
    let api_key = created["key"].as_str().unwrap().to_owned();
    let r = client()
        .get(s.g.url("/x"))
        .bearer_auth(&api_key)
        .send()
        .unwrap();
    let echo = echo_json(&r.text().unwrap());
    assert_eq!(
        echo["headers"]["remote-permissions"], "posts:read",
        "narrowed"
    );
    let listed: Value = client()
        .get(s.g.url("/_auth/api/me/api-keys"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(listed["api_keys"][0]["name"], "deploy");
    assert!(
        listed["api_keys"][0].get("key").is_none(),
        "shown once only"
    );
    // A key cannot mint keys; amy cannot delete boss's key; amy cannot grant
    // what she lacks.
    let r = client()
        .post(s.g.url("/_auth/api/me/api-keys"))
        .header("x-api-key", &api_key)
        .json(&json!({"name": "child"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let amy = token_of(&s.g, "amy", "amy-password");
    let id = created["id"].as_i64().unwrap();
    let r = client()
        .delete(s.g.url(&format!("/_auth/api/me/api-keys/{id}")))
        .bearer_auth(&amy)
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client()
        .post(s.g.url("/_auth/api/me/api-keys"))
        .bearer_auth(&amy)
        .json(&json!({"permissions": ["posts:write"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"], "permission_not_allowed");
    // A bad name or an unparseable permission is the request's fault.
    for bad in [json!({"name": "my key"}), json!({"permissions": ["posts"]})] {
        let r = client()
            .post(s.g.url("/_auth/api/me/api-keys"))
            .bearer_auth(&amy)
            .json(&bad)
            .send()
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().unwrap();
        assert_eq!(body["error"], "invalid_request", "{bad}");
    }
    // The CLI holds key names to the same rule.
    let (code, _, err) = gatehouse_cmd(
        &[
            "apikey", "create", "--user", "amy", "--name", "my key", "-c", cli,
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("API key's name"), "{err}");
    // The owner revokes it: refused at once.
    let r = client()
        .delete(s.g.url(&format!("/_auth/api/me/api-keys/{id}")))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        client()
            .get(s.g.url("/x"))
            .bearer_auth(&api_key)
            .send()
            .unwrap()
            .status(),
        401
    );
}
