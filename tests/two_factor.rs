//! TOTP second factors from the outside: enrolment and confirmation over the
//! JSON API, sign-in with a code (API and page), replayed codes, spent
//! recovery codes, expired pending sign-ins, regulation of wrong codes,
//! required roles, Basic refused, machine accounts left alone, secrets
//! encrypted at rest, `user reset-2fa`, and the config errors.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use totp_rs::{Algorithm, Secret, TOTP};

const KEY: &str = "test-only two-factor key, 32+ characters long";

/// A site with amy (role `user`), sam (role `staff`, which requires a second
/// factor) and bot (an `api` user with role `staff`).
struct Site {
    g: Gatehouse,
    cli: PathBuf,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

fn site_with(extra: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let store = format!("sqlite://{}", db.display());
    let yaml = store_yaml(
        &store,
        &format!(
            "roles:\n  user: [\"echo:read\"]\n  staff: [\"echo:read\", \"reports:read\"]\n\
             two_factor:\n  issuer: \"Acme SSO\"\n  encryption_key: \"{KEY}\"\n  required_for_roles: [staff]\n{extra}"
        ),
    );
    let cli = dir.path().join("cli.yaml");
    std::fs::write(
        &cli,
        yaml.replace("{port}", "1").replace("{metrics_port}", "2"),
    )
    .unwrap();
    let c = cli.display().to_string();
    for (name, role, kind) in [
        ("amy", "user", "user"),
        ("sam", "staff", "user"),
        ("bot", "staff", "api"),
    ] {
        let pw = format!("{name}-password");
        let args = [
            "user",
            "add",
            name,
            "--role",
            role,
            "--type",
            kind,
            "--password-stdin",
            "-c",
            &c,
        ];
        let (code, _, err) = gatehouse_cmd(&args, Some(&pw));
        assert_eq!(code, 0, "{err}");
    }
    let g = Gatehouse::start(&yaml);
    Site {
        g,
        cli,
        db,
        _dir: dir,
    }
}

fn site() -> Site {
    // Generous regulation: these tests send many wrong codes on purpose.
    site_with("regulation:\n  max_retries: 100\n")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code an authenticator app with `secret` (base32) shows at `t`.
fn code_at(secret: &str, t: u64) -> String {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes, None, "x".into())
        .unwrap()
        .generate(t)
}

/// A 6-digit code valid at none of the steps around now.
fn wrong_code(secret: &str) -> String {
    let t = now();
    let valid: Vec<String> = [t - 30, t, t + 30, t + 60]
        .iter()
        .map(|&t| code_at(secret, t))
        .collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

fn post_json(g: &Gatehouse, path: &str, auth: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = client()
        .post(g.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn login(g: &Gatehouse, user: &str, password: &str, code: Option<&str>) -> (u16, Value) {
    let mut body = json!({"username": user, "password": password});
    if let Some(c) = code {
        body["two_factor_code"] = json!(c);
    }
    post_json(g, "/_auth/api/login", None, body)
}

fn bearer(g: &Gatehouse, user: &str, password: &str) -> String {
    let (status, body) = login(g, user, password, None);
    assert_eq!(status, 200, "{body}");
    format!("Bearer {}", body["token"].as_str().unwrap())
}

/// Enrol and confirm over the API; answers (secret, recovery codes).
fn enrol(g: &Gatehouse, auth: &str) -> (String, Vec<String>) {
    let (status, e) = post_json(g, "/_auth/api/me/2fa", Some(auth), json!({}));
    assert_eq!(status, 200, "{e}");
    let secret = e["secret"].as_str().unwrap().to_owned();
    let (status, done) = post_json(
        g,
        "/_auth/api/me/2fa/confirm",
        Some(auth),
        json!({"code": code_at(&secret, now())}),
    );
    assert_eq!(status, 200, "{done}");
    let codes = done["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

fn basic(g: &Gatehouse, user: &str, password: &str) -> reqwest::blocking::Response {
    client()
        .get(g.url("/hello"))
        .basic_auth(user, Some(password))
        .send()
        .unwrap()
}

#[test]
fn enrolment_then_sign_in_with_codes_over_the_api() {
    let site = site();
    let g = &site.g;
    let auth = bearer(g, "amy", "amy-password");

    // Enrolment starts: secret, otpauth URL and QR code.
    let (status, e) = post_json(g, "/_auth/api/me/2fa", Some(&auth), json!({}));
    assert_eq!(status, 200, "{e}");
    let secret = e["secret"].as_str().unwrap().to_owned();
    let url = e["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/Acme%20SSO:amy?"), "{url}");
    assert!(url.contains(&format!("secret={secret}")), "{url}");
    assert!(url.contains("issuer=Acme%20SSO"), "{url}");
    assert!(e["qr_svg"].as_str().unwrap().starts_with("<svg"));

    // Not confirmed yet: the password alone still signs in.
    let (status, body) = login(g, "amy", "amy-password", None);
    assert_eq!(
        status, 200,
        "an unconfirmed enrolment must not lock amy out: {body}"
    );
    assert_eq!(body["user"]["two_factor_enabled"], false);

    // A wrong code does not confirm.
    let (status, body) = post_json(
        g,
        "/_auth/api/me/2fa/confirm",
        Some(&auth),
        json!({"code": wrong_code(&secret)}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_code"))
    );
    assert_eq!(login(g, "amy", "amy-password", None).0, 200);

    // The right one does: ten distinct recovery codes.
    let (status, done) = post_json(
        g,
        "/_auth/api/me/2fa/confirm",
        Some(&auth),
        json!({"code": code_at(&secret, now())}),
    );
    assert_eq!(status, 200, "{done}");
    let codes: Vec<String> = done["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);
    let (status, again) = post_json(g, "/_auth/api/me/2fa", Some(&auth), json!({}));
    assert_eq!(
        (status, again["error"].as_str()),
        (409, Some("two_factor_already_enabled"))
    );
    let me: Value = client()
        .get(g.url("/_auth/api/me"))
        .header("authorization", &auth)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["two_factor_enabled"], true);

    // The password alone is no longer enough, and says why.
    let (status, body) = login(g, "amy", "amy-password", None);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("two_factor_required"))
    );
    // Once a code is sent, a wrong password and a wrong code look the same.
    let (s1, wrong_password) = login(g, "amy", "nope", Some(&code_at(&secret, now())));
    let (s2, wrong_code_body) = login(g, "amy", "amy-password", Some(&wrong_code(&secret)));
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong_password, wrong_code_body);
    assert_eq!(wrong_password["error"], "invalid_credentials");

    // One step of drift is accepted; the same code twice is not.
    let next = code_at(&secret, now() + 30);
    let (status, body) = login(g, "amy", "amy-password", Some(&next));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["two_factor_enabled"], true);
    let (status, body) = login(g, "amy", "amy-password", Some(&next));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("code_already_used")),
        "a replayed code must be refused, and say why: {body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("that code was already used"),
        "{body}"
    );
    // With a wrong password the same code says nothing more than a wrong one.
    let (status, body) = login(g, "amy", "nope", Some(&next));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_credentials"))
    );
    assert_eq!(body, wrong_password);

    // `gatehouse user list` shows who has a second factor.
    let cli = site.cli.display().to_string();
    let (code, list, err) = gatehouse_cmd(&["user", "list", "-c", &cli], None);
    assert_eq!(code, 0, "{err}");
    assert!(list.lines().next().unwrap_or("").contains("2FA"), "{list}");
    let row = |name: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {list}"))
            .split_whitespace()
            .nth(4)
            .map(str::to_owned)
    };
    assert_eq!(row("amy").as_deref(), Some("on"), "{list}");
    assert_eq!(row("sam").as_deref(), Some("off"), "{list}");

    // A recovery code works once; typed loosely, another works too.
    let (status, body) = login(g, "amy", "amy-password", Some(&codes[0]));
    assert_eq!(status, 200, "{body}");
    let (status, _) = login(g, "amy", "amy-password", Some(&codes[0]));
    assert_eq!(status, 401, "a recovery code is single-use");
    let loose = codes[1].replace('-', " ").to_uppercase();
    assert_eq!(login(g, "amy", "amy-password", Some(&loose)).0, 200);

    // Basic with the right password is refused, and the 401 says why.
    let r = basic(g, "amy", "amy-password");
    assert_eq!(r.status(), 401);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"], "two_factor_required", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("Basic") && message.contains("API key"),
        "{message}"
    );

    // Turning it off needs proof: a wrong password is refused, the right one works.
    let del = |body: Value| {
        let r = client()
            .delete(g.url("/_auth/api/me/2fa"))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap())
    };
    assert_eq!(del(json!({})).0, 400);
    let (status, body) = del(json!({"password": "wrong"}));
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_credentials"))
    );
    assert_eq!(login(g, "amy", "amy-password", None).0, 401);
    let (status, body) = del(json!({"password": "amy-password"}));
    assert_eq!(
        (status, body["two_factor_enabled"].as_bool()),
        (200, Some(false))
    );
    assert_eq!(login(g, "amy", "amy-password", None).0, 200);
    assert_eq!(basic(g, "amy", "amy-password").status(), 200);
}

#[test]
fn basic_credentials_cached_before_enrolment_stop_working_after_it() {
    let site = site();
    let g = &site.g;
    assert_eq!(basic(g, "amy", "amy-password").status(), 200); // now cached
    let auth = bearer(g, "amy", "amy-password");
    enrol(g, &auth);
    let r = basic(g, "amy", "amy-password");
    assert_eq!(r.status(), 401, "the cached Basic identity must be dropped");
}

/// GET the sign-in page, POST the password: (CSRF cookie, token, response).
fn page_password(
    g: &Gatehouse,
    user: &str,
    password: &str,
    rd: &str,
) -> (String, String, reqwest::blocking::Response) {
    let (csrf_cookie, token, _) = csrf_form(g, "/_auth/login");
    let r = client()
        .post(g.url("/_auth/login"))
        .header("cookie", format!("gatehouse_csrf={csrf_cookie}"))
        .form(&[
            ("csrf", token.as_str()),
            ("username", user),
            ("password", password),
            ("rd", rd),
        ])
        .send()
        .unwrap();
    (csrf_cookie, token, r)
}

fn post_code(
    g: &Gatehouse,
    csrf: (&str, &str),
    pending: &str,
    code: &str,
) -> reqwest::blocking::Response {
    client()
        .post(g.url("/_auth/2fa"))
        .header(
            "cookie",
            format!("gatehouse_csrf={}; gatehouse_2fa={pending}", csrf.0),
        )
        .form(&[("csrf", csrf.1), ("code", code)])
        .send()
        .unwrap()
}

fn location(r: &reqwest::blocking::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn set_cookie_line(r: &reqwest::blocking::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_default()
}

#[test]
fn the_sign_in_page_asks_for_the_code_before_any_session() {
    let site = site();
    let g = &site.g;
    let (secret, _) = enrol(g, &bearer(g, "amy", "amy-password"));

    let (csrf, token, r) = page_password(g, "amy", "amy-password", "/reports/1");
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/_auth/2fa");
    assert!(
        set_cookie_value(&r, "gatehouse_session").is_none(),
        "no session before the code"
    );
    let line = set_cookie_line(&r, "gatehouse_2fa");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/_auth", "Max-Age=300"] {
        assert!(line.contains(attr), "{attr} in {line}");
    }
    let pending = set_cookie_value(&r, "gatehouse_2fa").unwrap();

    // The pending sign-in is not a session.
    let r = client()
        .get(g.url("/hello"))
        .header("cookie", format!("gatehouse_2fa={pending}"))
        .header("accept", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = client()
        .get(g.url("/_auth/2fa"))
        .header("cookie", format!("gatehouse_2fa={pending}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("Authentication code"));
    // Without the pending cookie, the page sends you to sign in.
    let r = client().get(g.url("/_auth/2fa")).send().unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/_auth/login".into())
    );

    // No CSRF token: refused, even with a right code.
    let r = post_code(g, (&csrf, ""), &pending, &code_at(&secret, now()));
    assert_eq!(r.status(), 403);
    // A wrong code: the page again, still no session.
    let r = post_code(g, (&csrf, &token), &pending, &wrong_code(&secret));
    assert_eq!(r.status(), 401);
    assert!(set_cookie_value(&r, "gatehouse_session").is_none());
    assert!(r.text().unwrap().contains("That code is not valid"));

    // The right code: a session, and back to where the user was going.
    let r = post_code(g, (&csrf, &token), &pending, &code_at(&secret, now() + 30));
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("http://{}/reports/1", g.addr()));
    let session = set_cookie_value(&r, "gatehouse_session").expect("a session");
    let echoed = client()
        .get(g.url("/hello"))
        .header("cookie", format!("gatehouse_session={session}"))
        .send()
        .unwrap();
    assert_eq!(echoed.status(), 200);
    assert_eq!(
        echo_json(&echoed.text().unwrap())["headers"]["remote-user"],
        "amy"
    );

    // The pending sign-in made one session; it cannot make another.
    let r = post_code(g, (&csrf, &token), &pending, &code_at(&secret, now() + 30));
    assert_eq!(r.status(), 401);
    assert!(set_cookie_value(&r, "gatehouse_session").is_none());
}

#[test]
fn a_pending_sign_in_expires_and_wrong_codes_count_toward_regulation() {
    let site = site_with("  pending_ttl: 1s\nregulation:\n  max_retries: 3\n");
    let g = &site.g;
    let (secret, codes) = enrol(g, &bearer(g, "amy", "amy-password"));

    // Expired: the right code no longer makes a session.
    let (csrf, token, r) = page_password(g, "amy", "amy-password", "");
    let pending = set_cookie_value(&r, "gatehouse_2fa").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let r = post_code(g, (&csrf, &token), &pending, &code_at(&secret, now()));
    assert_eq!(r.status(), 401);
    assert!(set_cookie_value(&r, "gatehouse_session").is_none());
    assert!(r.text().unwrap().contains("took too long"));

    // Three wrong codes (page and API alike) ban amy; then even the right
    // password and code get 429.
    let (csrf, token, r) = page_password(g, "amy", "amy-password", "");
    let pending = set_cookie_value(&r, "gatehouse_2fa").unwrap();
    assert_eq!(
        post_code(g, (&csrf, &token), &pending, &wrong_code(&secret)).status(),
        401
    );
    assert_eq!(
        login(g, "amy", "amy-password", Some(&wrong_code(&secret))).0,
        401
    );
    assert_eq!(
        login(g, "amy", "amy-password", Some("0000-0000-0000-0000")).0,
        401
    );
    let (status, body) = login(g, "amy", "amy-password", Some(&codes[0]));
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("too_many_attempts"))
    );
}

#[test]
fn a_required_role_enrols_before_it_gets_a_session() {
    let site = site();
    let g = &site.g;

    // sam's role requires a second factor he has not set up.
    let (status, body) = login(g, "sam", "sam-password", None);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("two_factor_enrolment_required"))
    );
    assert_eq!(basic(g, "sam", "sam-password").status(), 401);

    // The sign-in page sends him to enrol, with no session yet.
    let (csrf, token, r) = page_password(g, "sam", "sam-password", "/reports/7");
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/_auth/2fa".into())
    );
    assert!(set_cookie_value(&r, "gatehouse_session").is_none());
    let pending = set_cookie_value(&r, "gatehouse_2fa").unwrap();
    let page = client()
        .get(g.url("/_auth/2fa"))
        .header("cookie", format!("gatehouse_2fa={pending}"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("<svg"), "a QR code");
    let secret = page
        .split("id=\"secret\" class=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the secret on the page")
        .to_owned();
    // Reloading shows the same secret (the app may have scanned it already).
    let again = client()
        .get(g.url("/_auth/2fa"))
        .header("cookie", format!("gatehouse_2fa={pending}"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(again.contains(&secret));

    let r = post_code(g, (&csrf, &token), &pending, &wrong_code(&secret));
    assert_eq!(r.status(), 401);
    assert!(set_cookie_value(&r, "gatehouse_session").is_none());
    let r = post_code(g, (&csrf, &token), &pending, &code_at(&secret, now()));
    assert_eq!(r.status(), 200);
    assert!(set_cookie_value(&r, "gatehouse_session").is_some());
    let page = r.text().unwrap();
    assert_eq!(
        page.matches("<li><code>").count(),
        10,
        "recovery codes shown"
    );
    // (minijinja escapes `/` in attributes as `&#x2f;`.)
    let href = format!("href=\"http://{}/reports/7\"", g.addr()).replace('/', "&#x2f;");
    assert!(page.contains(&href), "{page}");

    // From now on sam signs in with a code, and cannot turn it off.
    assert_eq!(login(g, "sam", "sam-password", None).0, 401);
    let (status, body) = login(
        g,
        "sam",
        "sam-password",
        Some(&code_at(&secret, now() + 30)),
    );
    assert_eq!(status, 200, "{body}");
    let auth = format!("Bearer {}", body["token"].as_str().unwrap());
    let r = client()
        .delete(g.url("/_auth/api/me/2fa"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(json!({"password": "sam-password"}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().unwrap()["error"],
        "two_factor_required_for_role"
    );

    // An administrator resets it (lost phone): enrolment is owed again.
    let cli = site.cli.display().to_string();
    let (code, out, err) = gatehouse_cmd(&["user", "reset-2fa", "sam", "-c", &cli], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("reset"), "{out}");
    let (status, body) = login(g, "sam", "sam-password", None);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("two_factor_enrolment_required"))
    );
    let (code, _, err) = gatehouse_cmd(&["user", "reset-2fa", "amy", "-c", &cli], None);
    assert_eq!(code, 1);
    assert!(err.contains("no second factor"), "{err}");
}

#[test]
fn machine_accounts_never_use_a_second_factor() {
    let site = site();
    let g = &site.g;
    // bot is an `api` user in the staff role: Basic keeps working.
    assert_eq!(basic(g, "bot", "bot-password").status(), 200);
    let (status, body) = login(g, "bot", "bot-password", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_json(
        g,
        "/_auth/api/me/2fa",
        Some(&format!("Bearer {}", body["token"].as_str().unwrap())),
        json!({}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("two_factor_not_allowed"))
    );
}

fn file_contains(path: &Path, needle: &[u8]) -> bool {
    std::fs::read(path)
        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        .unwrap_or(false)
}

#[test]
fn secrets_and_recovery_codes_are_not_stored_in_clear() {
    let site = site();
    let g = &site.g;
    let (secret, codes) = enrol(g, &bearer(g, "amy", "amy-password"));
    let raw = Secret::Encoded(secret.clone()).to_bytes().unwrap();
    let files = [
        site.db.clone(),
        PathBuf::from(format!("{}-wal", site.db.display())),
    ];
    assert!(
        files.iter().any(|f| file_contains(f, b"amy")),
        "the check must look where the rows are"
    );
    for f in &files {
        assert!(
            !file_contains(f, secret.as_bytes()),
            "base32 secret in {f:?}"
        );
        assert!(!file_contains(f, &raw), "raw secret in {f:?}");
        for c in &codes {
            assert!(!file_contains(f, c.as_bytes()), "recovery code in {f:?}");
            assert!(!file_contains(f, c.replace('-', "").as_bytes()));
        }
    }
}

#[test]
fn a_changed_key_fails_closed_and_a_rotation_keeps_everyone_enrolled() {
    let site = site();
    let (secret, codes) = enrol(&site.g, &bearer(&site.g, "amy", "amy-password"));
    site.g.stop();
    let config = std::fs::read_to_string(site.cli.clone())
        .unwrap()
        .replace("127.0.0.1:1", "127.0.0.1:{port}")
        .replace("127.0.0.1:2", "127.0.0.1:{metrics_port}");
    let new_key = "a different key, also 32+ characters long";

    // A new key alone: the code is still required, and cannot be checked.
    let g = Gatehouse::start(&config.replace(KEY, new_key));
    assert_eq!(login(&g, "amy", "amy-password", None).0, 401);
    let (status, body) = login(&g, "amy", "amy-password", Some(&code_at(&secret, now())));
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("store_unavailable"))
    );
    assert_eq!(basic(&g, "amy", "amy-password").status(), 401);
    g.stop();

    // Rotating: the new key plus the previous one; the start re-seals.
    let rotating = config.replace(
        &format!("encryption_key: \"{KEY}\""),
        &format!("encryption_key: \"{new_key}\"\n  previous_encryption_key: \"{KEY}\""),
    );
    assert!(rotating.contains("previous_encryption_key"));
    let g = Gatehouse::start(&rotating);
    assert_eq!(login(&g, "amy", "amy-password", Some(&codes[1])).0, 200);
    g.stop();

    // Then the new key alone opens the secret (re-sealed at that start; the
    // confirming step is spent, so the next code), and recovery codes still work.
    let g = Gatehouse::start(&config.replace(KEY, new_key));
    assert_eq!(
        login(
            &g,
            "amy",
            "amy-password",
            Some(&code_at(&secret, now() + 30))
        )
        .0,
        200
    );
    assert_eq!(login(&g, "amy", "amy-password", Some(&codes[0])).0, 200);
}

#[test]
fn two_factor_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let check = |extra: &str| {
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            format!(
                "public_url: \"https://auth.example.test\"\nupstream:\n  url: \"echo:\"\n{extra}"
            ),
        )
        .unwrap();
        gatehouse_cmd(&["check-config", "-c", &path.display().to_string()], None)
    };
    let (code, _, err) = check("two_factor:\n  encryption_key: \"short\"\n");
    assert_eq!(code, 1);
    assert!(err.contains("two_factor.encryption_key"), "{err}");
    let (code, _, err) = check("two_factor:\n  required_for_roles: [admin]\n");
    assert_eq!(code, 1);
    assert!(err.contains("two_factor.required_for_roles"), "{err}");
    let (code, _, err) = check(&format!(
        "two_factor:\n  encryption_key: \"{KEY}\"\n  required_for_roles: [nobody]\n"
    ));
    assert_eq!(code, 1);
    assert!(err.contains("two_factor.required_for_roles[0]"), "{err}");
    let (code, _, err) = check(&format!(
        "two_factor:\n  encryption_key: \"{KEY}\"\n  previous_encryption_key: \"{KEY}\"\n"
    ));
    assert_eq!(code, 1);
    assert!(err.contains("two_factor.previous_encryption_key"), "{err}");
    let (code, _, err) = check(&format!(
        "two_factor:\n  encryption_key: \"{KEY}\"\n  issuer: \"a:b\"\n"
    ));
    assert_eq!(code, 1);
    assert!(err.contains("two_factor.issuer"), "{err}");
    let key_file = dir.path().join("2fa.key");
    std::fs::write(&key_file, KEY).unwrap();
    let (code, out, err) = check(&format!(
        "two_factor:\n  encryption_key_file: \"{}\"\n  required_for_roles: [admin]\n",
        key_file.display()
    ));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn account_forms_need_a_session_and_their_csrf_token() {
    let site = site();
    let g = &site.g;
    let (csrf, token, r) = page_password(g, "amy", "amy-password", "");
    assert_eq!(r.status(), 303);
    let session = set_cookie_value(&r, "gatehouse_session").unwrap();
    let cookies = format!("gatehouse_csrf={csrf}; gatehouse_session={session}");
    let post = |path: &str, cookie: &str, form: &[(&str, &str)]| {
        client()
            .post(g.url(path))
            .header("cookie", cookie)
            .form(form)
            .send()
            .unwrap()
    };

    // No session: off to sign in. No token, or a cross-site origin: refused.
    let r = client().get(g.url("/_auth/account")).send().unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        location(&r).starts_with("/_auth/login?rd="),
        "{}",
        location(&r)
    );
    for path in [
        "/_auth/account/2fa",
        "/_auth/account/2fa/confirm",
        "/_auth/account/2fa/disable",
    ] {
        assert_eq!(
            post(path, &cookies, &[("csrf", "")]).status(),
            403,
            "{path}"
        );
        let r = client()
            .post(g.url(path))
            .header("cookie", &cookies)
            .header("origin", "https://evil.example")
            .form(&[("csrf", token.as_str())])
            .send()
            .unwrap();
        assert_eq!(r.status(), 403, "{path} from another site");
    }
    let me = |auth: &str| -> Value {
        client()
            .get(g.url("/_auth/api/me"))
            .header("cookie", auth)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(me(&cookies)["two_factor_enabled"], false);

    // With both: the QR code, then on with a code, then off with the password.
    let r = post("/_auth/account/2fa", &cookies, &[("csrf", &token)]);
    assert_eq!(r.status(), 200);
    let page = r.text().unwrap();
    assert!(page.contains("<svg"));
    let secret = page
        .split("id=\"secret\" class=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    let r = post(
        "/_auth/account/2fa/confirm",
        &cookies,
        &[("csrf", &token), ("code", &wrong_code(&secret))],
    );
    assert_eq!(r.status(), 400);
    assert!(
        r.text().unwrap().contains(&secret),
        "the same QR code to try again"
    );
    let r = post(
        "/_auth/account/2fa/confirm",
        &cookies,
        &[("csrf", &token), ("code", &code_at(&secret, now()))],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap().matches("<li><code>").count(), 10);
    assert_eq!(me(&cookies)["two_factor_enabled"], true);
    let r = post(
        "/_auth/account/2fa/disable",
        &cookies,
        &[("csrf", &token), ("password", "wrong")],
    );
    assert_eq!(r.status(), 403);
    assert_eq!(me(&cookies)["two_factor_enabled"], true);
    let r = post(
        "/_auth/account/2fa/disable",
        &cookies,
        &[("csrf", &token), ("code", &code_at(&secret, now() + 30))],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(me(&cookies)["two_factor_enabled"], false);
}

#[test]
fn turning_it_off_is_same_site_only_and_regulated() {
    let site = site_with("regulation:\n  max_retries: 3\n");
    let g = &site.g;
    let (_, _, r) = page_password(g, "amy", "amy-password", "");
    let session = set_cookie_value(&r, "gatehouse_session").expect("a session");
    let auth = bearer(g, "amy", "amy-password");
    let cross_site = |method: reqwest::Method, path: &str, body: Value| {
        client()
            .request(method, g.url(path))
            .header("cookie", format!("gatehouse_session={session}"))
            .header("origin", "https://evil.example")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
    };

    // Another site cannot start an enrolment with the user's cookie…
    let r = cross_site(reqwest::Method::POST, "/_auth/api/me/2fa", json!({}));
    assert_eq!(r.status(), 403);
    let (status, body) = post_json(
        g,
        "/_auth/api/me/2fa/confirm",
        Some(&auth),
        json!({"code": "123456"}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("two_factor_not_started"))
    );
    // …nor turn a second factor off, even with the right password.
    let (secret, _) = enrol(g, &auth);
    let r = cross_site(
        reqwest::Method::DELETE,
        "/_auth/api/me/2fa",
        json!({"password": "amy-password"}),
    );
    assert_eq!(r.status(), 403);
    assert_eq!(login(g, "amy", "amy-password", None).0, 401, "still on");

    // Guessing the password to turn it off counts like any wrong password.
    for _ in 0..3 {
        let r = client()
            .delete(g.url("/_auth/api/me/2fa"))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(json!({"password": "guess"}).to_string())
            .send()
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let (status, _) = login(
        g,
        "amy",
        "amy-password",
        Some(&code_at(&secret, now() + 30)),
    );
    assert_eq!(
        status, 429,
        "three wrong passwords must ban, whichever form sent them"
    );
}
