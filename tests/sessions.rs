//! Sessions and the sign-in page from the outside: CSRF, fixation, open
//! redirects, logout revocation (also across two PostgreSQL replicas), and
//! sessions surviving a restart on SQLite.

mod common;

use common::*;
use reqwest::blocking::Response;

struct Site {
    g: Gatehouse,
    cli: String,
    _dir: tempfile::TempDir,
}

fn site_on(store_url: &str) -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "server:\n  listen: \"127.0.0.1:{{port}}\"\npublic_url: \"http://127.0.0.1:{{port}}\"\nupstream:\n  url: \"echo:\"\nstore:\n  url: \"{store_url}\"\n"
    );
    let cli = dir.path().join("cli.yaml");
    std::fs::write(&cli, yaml.replace("{port}", "1")).unwrap();
    let cli = cli.display().to_string();
    assert_eq!(
        gatehouse_cmd(
            &["user", "add", "amy", "--password-stdin", "-c", &cli],
            Some("amy-password")
        )
        .0,
        0
    );
    assert_eq!(
        gatehouse_cmd(
            &[
                "user",
                "add",
                "bot",
                "--type",
                "api",
                "--password-stdin",
                "-c",
                &cli
            ],
            Some("bot-password")
        )
        .0,
        0
    );
    (yaml, cli, dir)
}

fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let (yaml, cli, d2) = site_on(&format!("sqlite://{}/s.db", dir.path().display()));
    let g = Gatehouse::start(&yaml);
    std::mem::forget(d2);
    Site { g, cli, _dir: dir }
}

fn set_cookies(r: &Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_value(set: &[String], name: &str) -> Option<String> {
    set.iter().find_map(|c| {
        c.strip_prefix(&format!("{name}="))
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
    })
}

/// GET the login page: (csrf cookie, csrf form token, page).
fn login_form(g: &Gatehouse) -> (String, String, String) {
    let r = client().get(g.url("/_auth/login")).send().unwrap();
    assert_eq!(r.status(), 200);
    let cookie = cookie_value(&set_cookies(&r), "gatehouse_csrf").expect("csrf cookie");
    let page = r.text().unwrap();
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    (cookie, token, page)
}

fn post_login(
    g: &Gatehouse,
    csrf_cookie: &str,
    token: &str,
    user: &str,
    pw: &str,
    rd: &str,
    extra_cookie: &str,
) -> Response {
    client()
        .post(g.url("/_auth/login"))
        .header(
            "cookie",
            format!("gatehouse_csrf={csrf_cookie}{extra_cookie}"),
        )
        .form(&[
            ("csrf", token),
            ("username", user),
            ("password", pw),
            ("rd", rd),
        ])
        .send()
        .unwrap()
}

/// Sign in as amy; returns the session cookie value.
fn sign_in(g: &Gatehouse) -> String {
    let (c, t, _) = login_form(g);
    let r = post_login(g, &c, &t, "amy", "amy-password", "", "");
    assert_eq!(r.status(), 303);
    cookie_value(&set_cookies(&r), "gatehouse_session").expect("session cookie")
}

fn with_session(g: &Gatehouse, path: &str, session: &str) -> Response {
    client()
        .get(g.url(path))
        .header("cookie", format!("theme=dark; gatehouse_session={session}"))
        .send()
        .unwrap()
}

#[test]
fn sign_in_sets_a_session_cookie_that_the_app_never_sees() {
    let s = site();
    let (_, _, page) = login_form(&s.g);
    assert!(
        page.contains("<label for=\"username\"") && page.contains("<label for=\"password\""),
        "accessible labels"
    );
    let (c, t, _) = login_form(&s.g);
    let rd = format!("http://127.0.0.1:{}/dash?x=1", s.g.port);
    let r = post_login(&s.g, &c, &t, "amy", "amy-password", &rd, "");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], rd.as_str());
    let set = set_cookies(&r);
    let line = set
        .iter()
        .find(|c| c.starts_with("gatehouse_session="))
        .unwrap();
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Lax") && line.contains("Path=/"),
        "{line}"
    );
    assert!(
        !line.contains("Secure"),
        "plain-http dev setup: no Secure flag ({line})"
    );
    let id = cookie_value(&set, "gatehouse_session").unwrap();
    assert_eq!(id.len(), 43, "256 random bits, base64url");

    let r = with_session(&s.g, "/dash", &id);
    assert_eq!(r.status(), 200);
    let h = echo_json(&r.text().unwrap())["headers"].clone();
    assert_eq!(h["remote-user"], "amy");
    assert_eq!(h["x-auth-method"], "session");
    assert_eq!(
        h["cookie"], "theme=dark",
        "only the session cookie is removed"
    );
}

#[test]
fn csrf_missing_wrong_or_cross_site_is_403() {
    let s = site();
    let (c, t, _) = login_form(&s.g);
    let form = [("username", "amy"), ("password", "amy-password")];
    let r = client()
        .post(s.g.url("/_auth/login"))
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "no token, no cookie");
    let r = post_login(&s.g, &c, "wrong-token", "amy", "amy-password", "", "");
    assert_eq!(r.status(), 403, "token does not match the cookie");
    let r = client()
        .post(s.g.url("/_auth/login"))
        .header("cookie", format!("gatehouse_csrf={c}"))
        .header("origin", "https://evil.example")
        .form(&[
            ("csrf", t.as_str()),
            ("username", "amy"),
            ("password", "amy-password"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "cross-site post");
    assert!(cookie_value(&set_cookies(&r), "gatehouse_session").is_none());
}

#[test]
fn failed_sign_ins_do_not_reveal_who_exists() {
    let s = site();
    let (c, t, _) = login_form(&s.g);
    let wrong = post_login(&s.g, &c, &t, "amy", "nope", "", "");
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().unwrap();
    let unknown = post_login(&s.g, &c, &t, "nobody", "nope", "", "")
        .text()
        .unwrap();
    let machine = post_login(&s.g, &c, &t, "bot", "bot-password", "", "");
    assert_eq!(machine.status(), 401, "api users do not sign in on pages");
    let machine = machine.text().unwrap();
    let msg = "Invalid username or password.";
    for page in [&wrong, &unknown, &machine] {
        assert!(page.contains(msg), "{page}");
    }
}

#[test]
fn rd_to_another_site_lands_on_public_url() {
    let s = site();
    for rd in ["https://evil.com/", "//evil.com", "javascript:alert(1)"] {
        let (c, t, _) = login_form(&s.g);
        let r = post_login(&s.g, &c, &t, "amy", "amy-password", rd, "");
        assert_eq!(r.status(), 303);
        assert_eq!(
            r.headers()["location"],
            format!("http://127.0.0.1:{}/", s.g.port).as_str(),
            "{rd}"
        );
    }
}

#[test]
fn a_pre_login_session_id_is_never_adopted() {
    let s = site();
    let planted = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (c, t, _) = login_form(&s.g);
    let r = post_login(
        &s.g,
        &c,
        &t,
        "amy",
        "amy-password",
        "",
        &format!("; gatehouse_session={planted}"),
    );
    let issued = cookie_value(&set_cookies(&r), "gatehouse_session").unwrap();
    assert_ne!(issued, planted);
    assert_eq!(with_session(&s.g, "/x", planted).status(), 401);
    assert_eq!(with_session(&s.g, "/x", &issued).status(), 200);
}

fn logout(g: &Gatehouse, session: &str) -> Response {
    let r = client()
        .get(g.url("/_auth/logout"))
        .header("cookie", format!("gatehouse_session={session}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let csrf = cookie_value(&set_cookies(&r), "gatehouse_csrf").unwrap();
    let page = r.text().unwrap();
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    client()
        .post(g.url("/_auth/logout"))
        .header(
            "cookie",
            format!("gatehouse_session={session}; gatehouse_csrf={csrf}"),
        )
        .form(&[("csrf", token.as_str())])
        .send()
        .unwrap()
}

#[test]
fn logout_revokes_the_session() {
    let s = site();
    let id = sign_in(&s.g);
    assert_eq!(with_session(&s.g, "/x", &id).status(), 200);
    // A cross-site page cannot sign the user out: no CSRF token, no logout.
    let forged = client()
        .post(s.g.url("/_auth/logout"))
        .header("cookie", format!("gatehouse_session={id}"))
        .form(&[("csrf", "guess")])
        .send()
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(with_session(&s.g, "/x", &id).status(), 200);
    let r = logout(&s.g, &id);
    assert_eq!(r.status(), 303);
    assert!(set_cookies(&r)
        .iter()
        .any(|c| c.starts_with("gatehouse_session=;") && c.contains("Max-Age=0")));
    assert_eq!(
        with_session(&s.g, "/x", &id).status(),
        401,
        "revoked at once on this replica"
    );
    let r = client()
        .get(s.g.url("/x"))
        .header("accept", "text/html")
        .header("cookie", format!("gatehouse_session={id}"))
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        302,
        "a browser with a dead session goes to the login page"
    );
    // Disabling the user also ends the session. (amy, the first user, is
    // the only administrator: another one first, or she stays enabled.)
    let id = sign_in(&s.g);
    let (code, _, err) = gatehouse_cmd(&["user", "disable", "amy", "-c", &s.cli], None);
    assert_eq!(code, 1);
    assert!(err.contains("no enabled administrator"), "{err}");
    let root = ["user", "add", "root", "--role", "admin", "-c", &s.cli];
    assert_eq!(gatehouse_cmd(&root, None).0, 0);
    let (code, _, err) = gatehouse_cmd(&["user", "disable", "amy", "-c", &s.cli], None);
    assert_eq!(code, 0, "{err}");
    eventually("disabled user's session refused", || {
        with_session(&s.g, "/x", &id).status() == 401
    });
}

#[test]
fn sessions_survive_a_restart_on_sqlite() {
    let s = site();
    let id = sign_in(&s.g);
    s.g.stop();
    let yaml = std::fs::read_to_string(s.g.config_path()).unwrap();
    let store = yaml
        .lines()
        .find(|l| l.trim_start().starts_with("url: \"sqlite"))
        .unwrap()
        .trim()
        .to_owned();
    let g2 = Gatehouse::start(&format!(
        "server:\n  listen: \"127.0.0.1:{{port}}\"\nupstream:\n  url: \"echo:\"\nstore:\n  {store}\n"
    ));
    assert_eq!(with_session(&g2, "/x", &id).status(), 200);
}

#[test]
fn logout_on_one_replica_ends_the_session_on_another() {
    let Some(url) = postgres_database("sessions") else {
        println!(
            "SKIP logout_on_one_replica_ends_the_session_on_another: set GATEHOUSE_TEST_POSTGRES"
        );
        return;
    };
    let (yaml, _cli, _dir) = site_on(&url);
    let a = Gatehouse::start(&yaml);
    let b = Gatehouse::start(&yaml);
    let id = sign_in(&a);
    assert_eq!(
        with_session(&b, "/x", &id).status(),
        200,
        "no sticky sessions needed"
    );
    assert_eq!(logout(&a, &id).status(), 303);
    let took = eventually("replica b refuses the session", || {
        with_session(&b, "/x", &id).status() == 401
    });
    println!("logout on a reached b after {took:?}");
}

#[test]
fn a_cross_site_request_cannot_sign_a_cookie_user_out() {
    let s = site();
    let id = sign_in(&s.g);
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = client()
            .post(s.g.url("/_auth/api/logout"))
            .header("cookie", format!("gatehouse_session={id}"))
            .header(name, value)
            .send()
            .unwrap();
        assert_eq!(r.status(), 403, "{name}: {value}");
        assert_eq!(
            with_session(&s.g, "/x", &id).status(),
            200,
            "still signed in"
        );
    }
    // A write that does not prove where it comes from (neither `Origin` nor
    // `Sec-Fetch-Site: same-origin`) is refused too, as is a sibling site.
    for headers in [
        vec![],
        vec![("sec-fetch-site", "same-site")],
        vec![("sec-fetch-site", "none")],
    ] {
        let mut rb = client()
            .post(s.g.url("/_auth/api/logout"))
            .header("cookie", format!("gatehouse_session={id}"));
        for (k, v) in &headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().unwrap();
        assert_eq!(r.status(), 403, "{headers:?}");
        assert!(r.text().unwrap().contains("csrf_failed"));
        assert_eq!(
            with_session(&s.g, "/x", &id).status(),
            200,
            "still signed in"
        );
    }
    // A browser that omits `Origin` but says same-origin is believed.
    let other = sign_in(&s.g);
    let r = client()
        .post(s.g.url("/_auth/api/logout"))
        .header("cookie", format!("gatehouse_session={other}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(with_session(&s.g, "/x", &other).status(), 401);
    // From our own origin it works, and the session is gone at once.
    let r = client()
        .post(s.g.url("/_auth/api/logout"))
        .header("cookie", format!("gatehouse_session={id}"))
        .header("origin", format!("http://127.0.0.1:{}", s.g.port))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(with_session(&s.g, "/x", &id).status(), 401);
}

/// Account writes with the session cookie (here: minting an API key) need
/// the same positive proof of origin as logout; a bearer token needs none.
#[test]
fn a_cookie_write_to_the_account_needs_proof_of_origin() {
    let s = site();
    let id = sign_in(&s.g);
    let create = |headers: &[(&str, String)]| {
        let mut rb = client()
            .post(s.g.url("/_auth/api/me/api-keys"))
            .header("cookie", format!("gatehouse_session={id}"))
            .header("content-type", "application/json")
            .body(r#"{"name":"from-the-page"}"#);
        for (k, v) in headers {
            rb = rb.header(*k, v);
        }
        rb.send().unwrap()
    };
    for headers in [
        vec![],
        vec![("sec-fetch-site", "same-site".to_owned())],
        vec![("origin", "https://evil.example".to_owned())],
    ] {
        let r = create(&headers);
        assert_eq!(r.status(), 403, "{headers:?}");
        assert!(r.text().unwrap().contains("csrf_failed"), "{headers:?}");
    }
    let r = create(&[("origin", format!("http://127.0.0.1:{}", s.g.port))]);
    assert_eq!(r.status(), 201);
    let r = create(&[("sec-fetch-site", "same-origin".to_owned())]);
    assert_eq!(r.status(), 201);
}
