//! Passwords from the outside: `api/me/password` (other sessions, every
//! token and cached Basic passwords end; a wrong old password is regulated
//! like a sign-in; accounts without a password set one; the rule; read-only
//! config users), also across two PostgreSQL replicas; the account page's
//! password and API-key forms; `api/session` (Basic → session cookie); and
//! `passwords.min_length` in check-config and the CLI.

mod common;

use common::*;
use reqwest::blocking::Response;
use serde_json::{json, Value};

const AMY_PW: &str = "amy-password";

struct Site {
    g: Gatehouse,
    url: String,
    _dir: tempfile::TempDir,
}

/// A store with `amy` (role user) and `boss` (admin), and Gatehouse on it.
fn site_on(url: String, dir: tempfile::TempDir, extra: &str) -> Site {
    add_store_user(&url, dir.path(), "amy", AMY_PW, &["--role", "user"]);
    add_store_user(
        &url,
        dir.path(),
        "boss",
        "boss-password",
        &["--role", "admin"],
    );
    let g = Gatehouse::start(&store_yaml(&url, extra));
    Site { g, url, _dir: dir }
}

fn site(extra: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/p.db", dir.path().display());
    site_on(url, dir, extra)
}

fn origin(g: &Gatehouse) -> String {
    format!("http://127.0.0.1:{}", g.port)
}

/// Sign in on the page; the session cookie's value.
fn page_sign_in(g: &Gatehouse, user: &str, pw: &str) -> Option<String> {
    let (csrf_cookie, token, _) = csrf_form(g, "/_auth/login");
    let r = client()
        .post(g.url("/_auth/login"))
        .header("cookie", format!("gatehouse_csrf={csrf_cookie}"))
        .form(&[
            ("csrf", token.as_str()),
            ("username", user),
            ("password", pw),
            ("rd", ""),
        ])
        .send()
        .unwrap();
    set_cookie_value(&r, "gatehouse_session")
}

fn token_of(g: &Gatehouse, user: &str, pw: &str) -> String {
    let r = client()
        .post(g.url("/_auth/api/login"))
        .json(&json!({"username": user, "password": pw}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn with_session(g: &Gatehouse, path: &str, session: &str) -> Response {
    client()
        .get(g.url(path))
        .header("cookie", format!("gatehouse_session={session}"))
        .send()
        .unwrap()
}

fn with_bearer(g: &Gatehouse, path: &str, token: &str) -> Response {
    client().get(g.url(path)).bearer_auth(token).send().unwrap()
}

fn with_basic(g: &Gatehouse, path: &str, user: &str, pw: &str) -> Response {
    client()
        .get(g.url(path))
        .basic_auth(user, Some(pw))
        .send()
        .unwrap()
}

/// How `api/me/password` is called: by session cookie (from our own
/// origin), bearer token, or Basic.
enum As<'a> {
    Session(&'a str),
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

fn change(g: &Gatehouse, caller: As<'_>, body: Value) -> (u16, Value) {
    let rb = client().post(g.url("/_auth/api/me/password")).json(&body);
    let rb = match caller {
        As::Session(id) => rb
            .header("cookie", format!("gatehouse_session={id}"))
            .header("origin", origin(g)),
        As::Bearer(t) => rb.bearer_auth(t),
        As::Basic(u, p) => rb.basic_auth(u, Some(p)),
    };
    let r = rb.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn a_password_change_ends_other_sessions_old_tokens_and_the_old_basic_password() {
    let s = site("");
    let g = &s.g;
    let current = page_sign_in(g, "amy", AMY_PW).unwrap();
    let other = page_sign_in(g, "amy", AMY_PW).unwrap();
    let old_token = token_of(g, "amy", AMY_PW);
    // Every credential works, and is cached, before the change.
    for _ in 0..2 {
        assert_eq!(with_session(g, "/x", &current).status(), 200);
        assert_eq!(with_session(g, "/x", &other).status(), 200);
        assert_eq!(with_bearer(g, "/x", &old_token).status(), 200);
        assert_eq!(with_basic(g, "/x", "amy", AMY_PW).status(), 200);
    }
    let boss_session = page_sign_in(g, "boss", "boss-password").unwrap();

    let (status, body) = change(
        g,
        As::Session(&current),
        json!({"old_password": AMY_PW, "new_password": "amy-new-password"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "password_changed");

    assert_eq!(
        with_session(g, "/x", &current).status(),
        200,
        "the session that changed it stays"
    );
    assert_eq!(with_session(g, "/x", &other).status(), 401);
    let r = with_bearer(g, "/x", &old_token);
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().unwrap()["error"], "token_revoked");
    assert_eq!(with_basic(g, "/x", "amy", AMY_PW).status(), 401);
    assert_eq!(with_basic(g, "/x", "amy", "amy-new-password").status(), 200);
    let new_token = token_of(g, "amy", "amy-new-password");
    assert_eq!(with_bearer(g, "/x", &new_token).status(), 200);
    assert!(page_sign_in(g, "amy", AMY_PW).is_none());
    assert!(page_sign_in(g, "amy", "amy-new-password").is_some());
    assert_eq!(
        with_session(g, "/x", &boss_session).status(),
        200,
        "other users keep their sessions"
    );

    // A token can change the password too; it ends with the change itself.
    let (status, body) = change(
        g,
        As::Bearer(&new_token),
        json!({"old_password": "amy-new-password", "new_password": "amy-third-password"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(with_bearer(g, "/x", &new_token).status(), 401);
    assert_eq!(
        with_session(g, "/x", &current).status(),
        401,
        "a change by token keeps no session"
    );
}

#[test]
fn what_a_password_change_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/p.db", dir.path().display());
    let hash = hash_password("gitops-password");
    let extra = format!(
        "regulation:\n  max_retries: 3\n  find_time: 5m\n  ban_time: 10m\nusers:\n  - username: gitops\n    password_hash: \"{hash}\"\n"
    );
    let s = site_on(url, dir, &extra);
    let g = &s.g;
    let token = token_of(g, "amy", AMY_PW);

    // The rule, named in the message.
    let (status, body) = change(
        g,
        As::Bearer(&token),
        json!({"old_password": AMY_PW, "new_password": "short"}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("weak_password"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("at least 8 characters"),
        "{body}"
    );
    let long = "a".repeat(1025);
    let (status, body) = change(
        g,
        As::Bearer(&token),
        json!({"old_password": AMY_PW, "new_password": long}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("weak_password"))
    );
    // An account with a password must send it; a body must be JSON.
    let (status, body) = change(
        g,
        As::Bearer(&token),
        json!({"new_password": "long enough"}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let r = client()
        .post(g.url("/_auth/api/me/password"))
        .bearer_auth(&token)
        .body("old_password=x")
        .send()
        .unwrap();
    assert_eq!(r.status(), 415);
    // A cookie-authenticated change must prove it comes from our pages.
    let session = page_sign_in(g, "amy", AMY_PW).unwrap();
    let r = client()
        .post(g.url("/_auth/api/me/password"))
        .header("cookie", format!("gatehouse_session={session}"))
        .json(&json!({"old_password": AMY_PW, "new_password": "long enough"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().unwrap()["error"], "csrf_failed");

    // Config-file users are read-only here.
    let (status, body) = change(
        g,
        As::Basic("gitops", "gitops-password"),
        json!({"old_password": "gitops-password", "new_password": "a new password"}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("read_only_user"))
    );

    // A wrong old password counts like a failed sign-in: three, then a ban
    // that refuses even the right one.
    for i in 0..3 {
        let (status, body) = change(
            g,
            As::Bearer(&token),
            json!({"old_password": format!("wrong-{i}"), "new_password": "a new password"}),
        );
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_credentials")),
            "attempt {i}"
        );
    }
    let r = client()
        .post(g.url("/_auth/api/me/password"))
        .bearer_auth(&token)
        .json(&json!({"old_password": AMY_PW, "new_password": "a new password"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.json::<Value>().unwrap()["error"], "too_many_attempts");
    // The ban is the sign-in's: the password page refuses amy too.
    assert!(page_sign_in(g, "amy", AMY_PW).is_none());
    // Nothing changed.
    assert_eq!(with_bearer(g, "/x", &token).status(), 200);
}

#[test]
fn an_account_without_a_password_sets_one_without_the_old() {
    let s = site("");
    let g = &s.g;
    // An account single sign-on created: no password, a session.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let session = rt.block_on(async {
        let store = gatehouse::store::Store::open(&s.url).await.unwrap();
        let user = gatehouse::accounts::users::NewAccount::new("sso-sam", None)
            .unwrap()
            .without_password();
        store.create_user(user).await.unwrap();
        let settings = gatehouse::session::SessionSettings {
            cookie_name: "gatehouse_session".into(),
            idle_timeout: std::time::Duration::from_secs(3600),
            lifetime: std::time::Duration::from_secs(3600),
            domain: None,
            secure: false,
        };
        gatehouse::session::start(&store, &settings, "sso-sam", &Default::default())
            .await
            .unwrap()
    });
    assert_eq!(with_session(g, "/x", &session).status(), 200);
    let page = with_session(g, "/_auth/account", &session).text().unwrap();
    assert!(page.contains("Set password"), "{page}");
    assert!(!page.contains("name=\"old_password\""), "{page}");

    let (status, body) = change(
        g,
        As::Session(&session),
        json!({"new_password": "sam-password"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(with_basic(g, "/x", "sso-sam", "sam-password").status(), 200);
    assert_eq!(with_session(g, "/x", &session).status(), 200);
    // From now on the old one is needed.
    let (status, _) = change(
        g,
        As::Session(&session),
        json!({"new_password": "sam-password-2"}),
    );
    assert_eq!(status, 400);
    let page = with_session(g, "/_auth/account", &session).text().unwrap();
    assert!(page.contains("name=\"old_password\""), "{page}");
}

/// GET the account page with a session: (CSRF cookie, the form's token, page).
fn account_form(g: &Gatehouse, session: &str) -> (String, String, String) {
    let r = with_session(g, "/_auth/account", session);
    assert_eq!(r.status(), 200);
    let csrf = set_cookie_value(&r, "gatehouse_csrf").expect("a CSRF cookie");
    let page = r.text().unwrap();
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_owned();
    (csrf, token, page)
}

fn post_account(
    g: &Gatehouse,
    path: &str,
    session: &str,
    csrf: &str,
    form: &[(&str, &str)],
) -> Response {
    client()
        .post(g.url(path))
        .header(
            "cookie",
            format!("gatehouse_session={session}; gatehouse_csrf={csrf}"),
        )
        .form(form)
        .send()
        .unwrap()
}

#[test]
fn the_account_page_changes_the_password_and_manages_api_keys() {
    let s = site("roles:\n  user: [\"echo:read\", \"echo:write\"]\n");
    let g = &s.g;
    let session = page_sign_in(g, "amy", AMY_PW).unwrap();
    let other = page_sign_in(g, "amy", AMY_PW).unwrap();
    let (csrf, token, page) = account_form(g, &session);
    for field in ["old_password", "new_password", "new_password_confirm"] {
        assert!(
            page.contains(&format!("name=\"{field}\"")),
            "{field}: {page}"
        );
    }
    assert!(page.contains("at least 8 characters"), "{page}");
    assert!(page.contains("id=\"api-keys\""), "{page}");

    // Without the CSRF token: refused, nothing changed.
    let r = post_account(
        g,
        "/_auth/account/password",
        &session,
        &csrf,
        &[
            ("old_password", AMY_PW),
            ("new_password", "amy-new-password"),
            ("new_password_confirm", "amy-new-password"),
        ],
    );
    assert_eq!(r.status(), 403);
    let form = |old: &'static str, new: &'static str, again: &'static str| {
        [
            ("csrf", token.clone()),
            ("old_password", old.to_owned()),
            ("new_password", new.to_owned()),
            ("new_password_confirm", again.to_owned()),
        ]
    };
    let send = |f: [(&str, String); 4]| {
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_account(g, "/_auth/account/password", &session, &csrf, &f)
    };
    let r = send(form(AMY_PW, "amy-new-password", "amy-other-password"));
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("differ"));
    let r = send(form(AMY_PW, "short", "short"));
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("at least 8 characters"));
    let r = send(form(
        "not-amys-password",
        "amy-new-password",
        "amy-new-password",
    ));
    assert_eq!(r.status(), 401);
    assert!(r.text().unwrap().contains("current password is not right"));

    let r = send(form(AMY_PW, "amy-new-password", "amy-new-password"));
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("Your password is changed"));
    assert_eq!(with_session(g, "/x", &session).status(), 200);
    assert_eq!(with_session(g, "/x", &other).status(), 401);
    assert!(page_sign_in(g, "amy", AMY_PW).is_none());
    assert!(page_sign_in(g, "amy", "amy-new-password").is_some());

    // API keys: created with a name, permissions and a lifetime, shown once.
    let r = post_account(
        g,
        "/_auth/account/api-keys",
        &session,
        &csrf,
        &[
            ("csrf", &token),
            ("name", "ci"),
            ("permissions", "echo:read, echo:write"),
            ("expires_in", "30d"),
        ],
    );
    let status = r.status();
    let page = r.text().unwrap();
    assert_eq!(status, 201, "{page}");
    let key = page
        .split("id=\"new-api-key\" class=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new key on the page")
        .to_owned();
    assert!(key.starts_with("gh_"), "{key}");
    assert!(page.contains("echo:read echo:write"), "{page}");
    let with_key = |key: &str| {
        client()
            .get(g.url("/x"))
            .header("x-api-key", key)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(with_key(&key), 200);
    let (_, _, page) = account_form(g, &session);
    assert!(!page.contains(&key), "the key is shown once");
    let id = page
        .split("name=\"id\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a revoke button")
        .to_owned();
    // Only permissions amy holds; a lifetime that reads as one.
    for (permissions, expires, status) in [("admin:*", "", 403), ("echo:read", "soon", 400)] {
        let r = post_account(
            g,
            "/_auth/account/api-keys",
            &session,
            &csrf,
            &[
                ("csrf", &token),
                ("name", "more"),
                ("permissions", permissions),
                ("expires_in", expires),
            ],
        );
        assert_eq!(r.status(), status, "{permissions} {expires}");
    }
    let r = post_account(
        g,
        "/_auth/account/api-keys/revoke",
        &session,
        &csrf,
        &[("csrf", &token), ("id", &id)],
    );
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("Key revoked"));
    assert_eq!(with_key(&key), 401);
    let r = post_account(
        g,
        "/_auth/account/api-keys/revoke",
        &session,
        &csrf,
        &[("csrf", &token), ("id", &id)],
    );
    assert_eq!(r.status(), 404);
}

fn api_session(g: &Gatehouse, user: &str, pw: &str) -> Response {
    client()
        .post(g.url("/_auth/api/session"))
        .basic_auth(user, Some(pw))
        .send()
        .unwrap()
}

#[test]
fn basic_credentials_buy_a_session_cookie() {
    let key = "k".repeat(32);
    let s = site(&format!(
        "two_factor:\n  encryption_key: \"{key}\"\n  required_for_roles: [admin]\n"
    ));
    let g = &s.g;
    let r = api_session(g, "amy", AMY_PW);
    assert_eq!(r.status(), 200);
    let line = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("gatehouse_session="))
        .expect("a session cookie")
        .to_owned();
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Lax"),
        "{line}"
    );
    let session = set_cookie_value(&r, "gatehouse_session").unwrap();
    let body: Value = r.json().unwrap();
    assert_eq!(body["username"], "amy");
    assert_eq!(body["auth_method"], "session");
    assert_eq!(body["type"], "user");
    assert!(body["id"].as_i64().is_some() && body["permissions"].is_array());

    let r = with_session(g, "/x", &session);
    assert_eq!(r.status(), 200);
    let echo = echo_json(&r.text().unwrap());
    assert_eq!(echo["headers"]["remote-user"], "amy");
    assert_eq!(echo["headers"]["x-auth-method"], "session");
    let me: Value = with_session(g, "/_auth/api/me", &session).json().unwrap();
    assert_eq!(me["auth_method"], "session");

    // api/logout with that cookie ends it.
    let r = client()
        .post(g.url("/_auth/api/logout"))
        .header("cookie", format!("gatehouse_session={session}"))
        .header("origin", origin(g))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["status"], "logged_out");
    assert_eq!(with_session(g, "/x", &session).status(), 401);

    // Wrong, missing, or a password that is not enough.
    let r = api_session(g, "amy", "wrong");
    assert_eq!(r.status(), 401);
    assert!(set_cookie_value(&r, "gatehouse_session").is_none());
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_credentials");
    let r = client().post(g.url("/_auth/api/session")).send().unwrap();
    assert_eq!(r.status(), 401);
    let r = api_session(g, "boss", "boss-password");
    assert_eq!(r.status(), 401);
    assert!(set_cookie_value(&r, "gatehouse_session").is_none());
    assert_eq!(r.json::<Value>().unwrap()["error"], "two_factor_required");
}

#[test]
fn api_session_failures_are_regulated() {
    let s = site("regulation:\n  max_retries: 2\n  find_time: 5m\n  ban_time: 10m\n");
    let g = &s.g;
    assert_eq!(api_session(g, "amy", "wrong-1").status(), 401);
    assert_eq!(api_session(g, "amy", "wrong-2").status(), 401);
    let r = api_session(g, "amy", AMY_PW);
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[test]
fn a_password_change_on_one_postgres_replica_ends_old_tokens_on_the_other() {
    let Some(url) = postgres_or_skip("passwords") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Replicas behind one load balancer share one issuer (here they listen
    // on different ports, so it is set explicitly).
    let shared = "tokens:\n  issuer: https://auth.test\n";
    let s = site_on(url.clone(), dir, shared);
    let a = &s.g;
    let b = Gatehouse::start(&store_yaml(&url, shared));
    let token = token_of(a, "amy", AMY_PW);
    assert_eq!(with_bearer(&b, "/x", &token).status(), 200);
    assert_eq!(with_basic(&b, "/x", "amy", AMY_PW).status(), 200);
    let (status, body) = change(
        a,
        As::Basic("amy", AMY_PW),
        json!({"old_password": AMY_PW, "new_password": "amy-new-password"}),
    );
    assert_eq!(status, 200, "{body}");
    let took = eventually("replica b refuses the old token", || {
        with_bearer(&b, "/x", &token).status() == 401
    });
    println!("a password change on a reached b after {took:?}");
    assert_eq!(with_basic(&b, "/x", "amy", AMY_PW).status(), 401);
    assert_eq!(
        with_basic(&b, "/x", "amy", "amy-new-password").status(),
        200
    );
}

#[test]
fn min_length_is_checked_and_used_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/p.db", dir.path().display());
    let write = |name: &str, extra: &str| {
        let path = dir.path().join(name);
        let yaml = store_yaml(&url, extra)
            .replace("{port}", "1")
            .replace("{metrics_port}", "2");
        std::fs::write(&path, yaml).unwrap();
        path.display().to_string()
    };
    let bad = write(
        "bad.yaml",
        "passwords:\n  min_length: 3\n  reset_ttl: 10s\n",
    );
    let (code, _, err) = gatehouse_cmd(&["check-config", "-c", &bad], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("passwords.min_length (line 10)"), "{err}");
    assert!(err.contains("between 8 and 1024"), "{err}");
    assert!(err.contains("passwords.reset_ttl (line 11)"), "{err}");
    let ok = write("ok.yaml", "passwords:\n  min_length: 12\n  reset_ttl: 2h\n");
    let (code, out, err) = gatehouse_cmd(&["check-config", "-c", &ok], None);
    assert_eq!(code, 0, "{out}{err}");

    let add = |name: &str, pw: &str| {
        gatehouse_cmd(
            &["user", "add", name, "--password-stdin", "-c", &ok],
            Some(pw),
        )
    };
    let (code, _, err) = add("amy", "eleven-char");
    assert_eq!(code, 1);
    assert!(err.contains("at least 12 characters"), "{err}");
    let (code, _, err) = add("amy", "twelve-chars");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = gatehouse_cmd(
        &["user", "set-password", "amy", "-c", &ok],
        Some("eleven-char"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("at least 12 characters"), "{err}");

    // The server holds new passwords to the same rule, and names it.
    let g = Gatehouse::start(&store_yaml(&url, "passwords:\n  min_length: 12\n"));
    let (status, body) = change(
        &g,
        As::Basic("amy", "twelve-chars"),
        json!({"old_password": "twelve-chars", "new_password": "eleven-char"}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("weak_password"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("at least 12 characters"),
        "{body}"
    );
}
