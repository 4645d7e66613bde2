//! Regulation and the setup page from the outside: failed sign-ins on the
//! page, the API and Basic all count; a banned user gets 429 with
//! Retry-After even with the right password, and costs no argon2 work;
//! two replicas on one PostgreSQL share the count. The setup page creates
//! the first administrator and closes.

mod common;

use base64::Engine;
use common::*;
use serde_json::{json, Value};

const STRICT: &str = "regulation:\n  max_retries: 3\n  find_time: 5m\n  ban_time: 10m\n";

fn add_user(store_url: &str, dir: &std::path::Path, name: &str, pw: &str) {
    add_store_user(store_url, dir, name, pw, &[]);
}

fn api_login(g: &Gatehouse, user: &str, pw: &str) -> reqwest::blocking::Response {
    client()
        .post(g.url("/_auth/api/login"))
        .json(&json!({"username": user, "password": pw}))
        .send()
        .unwrap()
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

fn argon2_runs(g: &Gatehouse) -> u64 {
    g.metrics()
        .lines()
        .find_map(|l| l.strip_prefix("gatehouse_password_verifications_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_banned_user_gets_429_even_with_the_right_password() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/r.db", dir.path().display());
    add_user(&url, dir.path(), "amy", "amy-password");
    add_user(&url, dir.path(), "ben", "ben-password");
    let g = Gatehouse::start(&store_yaml(&url, STRICT));

    // Failures through three doors: the API, Basic, the API again.
    assert_eq!(api_login(&g, "amy", "wrong-1").status(), 401);
    let r = client()
        .get(g.url("/app"))
        .header("authorization", basic("amy", "wrong-2"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(api_login(&g, "amy", "wrong-3").status(), 401);

    let runs_before = argon2_runs(&g);
    let r = api_login(&g, "amy", "amy-password");
    assert_eq!(
        r.status(),
        429,
        "the right password is refused while banned"
    );
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 600, "Retry-After {retry}");
    assert_eq!(r.json::<Value>().unwrap()["error"], "too_many_attempts");
    let r = client()
        .get(g.url("/app"))
        .header("authorization", basic("amy", "amy-password"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        argon2_runs(&g),
        runs_before,
        "a banned user costs no argon2 work"
    );

    // A browser gets a 429 page on the sign-in form.
    let (csrf_cookie, token, _) = csrf_form(&g, "/_auth/login");
    let r = client()
        .post(g.url("/_auth/login"))
        .header("cookie", format!("gatehouse_csrf={csrf_cookie}"))
        .form(&[
            ("csrf", token.as_str()),
            ("username", "amy"),
            ("password", "amy-password"),
            ("rd", ""),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let page = r.text().unwrap();
    assert!(
        page.contains("Too many failed sign-in attempts. Try again in 10 minutes."),
        "{page}"
    );

    // Others are unaffected.
    assert_eq!(api_login(&g, "ben", "ben-password").status(), 200);
    // The metric says why.
    assert!(g.metrics().contains("decision=\"regulated\""));
}

#[test]
fn unknown_users_are_regulated_like_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/r.db", dir.path().display());
    add_user(&url, dir.path(), "amy", "amy-password");
    let g = Gatehouse::start(&store_yaml(&url, STRICT));
    let mut statuses = Vec::new();
    for user in ["amy", "nobody"] {
        for _ in 0..4 {
            statuses.push(api_login(&g, user, "wrong").status().as_u16());
        }
    }
    // Same pattern for both: no way to tell which name exists.
    assert_eq!(statuses, vec![401, 401, 401, 429, 401, 401, 401, 429]);
}

#[test]
fn success_clears_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/r.db", dir.path().display());
    add_user(&url, dir.path(), "amy", "amy-password");
    let g = Gatehouse::start(&store_yaml(&url, STRICT));
    for _ in 0..2 {
        assert_eq!(api_login(&g, "amy", "typo").status(), 401);
    }
    assert_eq!(api_login(&g, "amy", "amy-password").status(), 200);
    for _ in 0..2 {
        assert_eq!(api_login(&g, "amy", "typo").status(), 401);
    }
    assert_eq!(api_login(&g, "amy", "amy-password").status(), 200);
}

#[test]
fn replicas_on_one_postgres_share_the_count() {
    let Some(url) = postgres_or_skip("regulation") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    add_user(&url, dir.path(), "amy", "amy-password");
    let a = Gatehouse::start(&store_yaml(&url, STRICT));
    let b = Gatehouse::start(&store_yaml(&url, STRICT));
    assert_eq!(api_login(&a, "amy", "wrong").status(), 401);
    assert_eq!(api_login(&b, "amy", "wrong").status(), 401);
    assert_eq!(api_login(&a, "amy", "wrong").status(), 401);
    // Three failures across two replicas: banned on both.
    assert_eq!(api_login(&a, "amy", "amy-password").status(), 429);
    eventually("replica b learns the ban", || {
        api_login(&b, "amy", "amy-password").status() == 429
    });
}

#[test]
fn the_setup_page_creates_the_first_admin_then_closes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/r.db", dir.path().display());
    let g = Gatehouse::start(&store_yaml(&url, ""));
    let login = client()
        .get(g.url("/_auth/login"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        login.contains("_auth/setup\""),
        "the sign-in page points to setup"
    );

    let (csrf_cookie, token, html) = csrf_form(&g, "/_auth/setup");
    assert!(html.contains("<label for=\"password_confirm\""));
    let post = |fields: &[(&str, &str)], with_cookie: bool| {
        let mut req = client().post(g.url("/_auth/setup")).form(fields);
        if with_cookie {
            req = req.header("cookie", format!("gatehouse_csrf={csrf_cookie}"));
        }
        req.send().unwrap()
    };
    let good = [
        ("csrf", token.as_str()),
        ("username", "root"),
        ("email", "root@example.com"),
        ("password", "a long password"),
        ("password_confirm", "a long password"),
    ];
    assert_eq!(post(&good, false).status(), 403, "no CSRF cookie");
    let mut short = good;
    short[3] = ("password", "short");
    short[4] = ("password_confirm", "short");
    assert_eq!(post(&short, true).status(), 400);
    let mut differ = good;
    differ[4] = ("password_confirm", "another long one");
    assert_eq!(post(&differ, true).status(), 400);

    let r = post(&good, true);
    assert_eq!(r.status(), 303);
    let session = set_cookie_value(&r, "gatehouse_session").expect("signed in right away");
    let me: Value = client()
        .get(g.url("/_auth/api/me"))
        .header("cookie", format!("gatehouse_session={session}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("root"), Some("admin"))
    );
    assert_eq!(me["auth_method"], "session");

    // Closed now, for reading and for writing.
    assert_eq!(
        client().get(g.url("/_auth/setup")).send().unwrap().status(),
        403
    );
    let mut second = good;
    second[1] = ("username", "intruder");
    assert_eq!(post(&second, true).status(), 403);
    assert_eq!(api_login(&g, "intruder", "a long password").status(), 401);
    let login = client()
        .get(g.url("/_auth/login"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!login.contains("_auth/setup\""));
}
