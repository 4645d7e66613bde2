//! The error pages from the outside: each says in plain words what happened
//! and offers the way out (who is signed in and how to switch on a 403, when
//! to try again on a 429, a retry link on a 502, a sign-in link where setup
//! is closed, a page rather than JSON for a browser anywhere under the
//! prefix), branded with `portal.logo_url` and `portal.accent_color`, with a
//! favicon. API clients keep their JSON codes.

mod common;

use base64::Engine;
use common::*;
use std::sync::OnceLock;

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const ACCENT: &str = "#0a7d5a";

/// One server for the file: its upstream is a port nobody listens on.
fn server() -> &'static Gatehouse {
    static SERVER: OnceLock<Gatehouse> = OnceLock::new();
    SERVER.get_or_init(|| {
        let hash = hash_password("alice's password");
        let dead = free_port();
        Gatehouse::start(&format!(
            r#"server:
  listen: "127.0.0.1:{{port}}"
  metrics_listen: "127.0.0.1:{{metrics_port}}"
public_url: "http://127.0.0.1:{{port}}"
upstream:
  url: "http://127.0.0.1:{dead}"
portal:
  title: "Acme"
  logo_url: "/static/acme.svg"
  accent_color: "{ACCENT}"
regulation:
  max_retries: 2
  ban_time: 15m
roles:
  viewer: ["app:read"]
rules:
  - path: /closed/**
    policy: deny
  - path: /admin/**
    permission: "admin:access"
users:
  - username: alice
    name: "Alice Example"
    password_hash: "{hash}"
    role: viewer
"#
        ))
    })
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

fn alice() -> String {
    basic("alice", "alice's password")
}

/// GET `path` with these headers.
fn get(path: &str, headers: &[(&str, &str)]) -> reqwest::blocking::Response {
    let mut req = client().get(server().url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

/// `html` with the entities the templates write (`/` and `'` too) read back.
fn decoded(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// A page's status, and its HTML [`decoded`]. Fails unless it is HTML.
fn page(r: reqwest::blocking::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/html"), "{status} {kind}");
    (status, decoded(&r.text().unwrap()))
}

/// The page a browser signed in as alice (with Basic) gets at `path`.
fn alices_page(path: &str) -> (u16, String) {
    page(get(path, &[("accept", HTML), ("authorization", &alice())]))
}

/// The `href` of the link labelled `label`, if the page has one.
fn link(html: &str, label: &str) -> Option<String> {
    let end = html.find(&format!("\">{label}</a>"))?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    Some(html[start..end].to_owned())
}

/// The page's main sentence.
fn lead(html: &str) -> &str {
    html.split("<p class=\"lead\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no lead sentence in:\n{html}"))
}

fn starts_with_capital(s: &str) -> bool {
    s.chars().next().is_some_and(char::is_uppercase)
}

fn json(r: reqwest::blocking::Response) -> serde_json::Value {
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().unwrap()
}

#[test]
fn forbidden_page_says_who_is_signed_in_and_how_to_switch() {
    let g = server();
    let (status, html) = alices_page("/admin/report?x=1");
    assert_eq!(status, 403);
    assert!(
        html.contains("<h1>You don't have access to this page</h1>"),
        "{html}"
    );
    assert!(
        html.contains("Signed in as <strong>Alice Example (alice)</strong>."),
        "{html}"
    );
    assert!(starts_with_capital(lead(&html)), "{html}");
    assert!(
        !lead(&html).contains("admin:access"),
        "no code words up front"
    );
    assert!(html.contains("Permission needed: admin:access"), "{html}");
    let rd = format!("http://127.0.0.1:{}/admin/report%3Fx%3D1", g.port);
    assert_eq!(
        link(&html, "Sign in as someone else").as_deref(),
        Some(format!("{}?rd={rd}", g.url("/_auth/logout")).as_str()),
        "{html}"
    );
    assert_eq!(
        link(&html, "Sign out").as_deref(),
        Some(g.url("/_auth/logout").as_str())
    );
    assert_eq!(
        link(&html, "Go to the home page").as_deref(),
        Some(g.url("/").as_str())
    );

    // API clients: the same code, a sentence for people.
    let body = json(get("/admin/report", &[("authorization", &alice())]));
    assert_eq!(body["error"], "forbidden");
    let message = body["message"].as_str().unwrap();
    assert!(starts_with_capital(message), "{message}");
    assert!(message.contains("admin:access"), "{message}");
}

#[test]
fn a_closed_page_says_so_without_offering_to_switch() {
    let (status, html) = alices_page("/closed/x");
    assert_eq!(status, 403);
    assert!(html.contains("<h1>This page is closed</h1>"), "{html}");
    assert!(link(&html, "Sign in as someone else").is_none(), "{html}");
    assert!(link(&html, "Go to the home page").is_some(), "{html}");
}

#[test]
fn ban_page_says_when_to_try_again_in_minutes() {
    for attempt in 0..2 {
        let r = get(
            "/app",
            &[(
                "authorization",
                &basic("mallory", &format!("wrong-{attempt}")),
            )],
        );
        assert_eq!(r.status(), 401);
    }
    let r = get(
        "/app",
        &[
            ("accept", HTML),
            ("authorization", &basic("mallory", "wrong-again")),
        ],
    );
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((800..=900).contains(&retry), "{retry}");
    let (status, html) = page(r);
    assert_eq!(status, 429);
    assert!(
        html.contains("<h1>Too many failed sign-in attempts</h1>"),
        "{html}"
    );
    assert!(lead(&html).contains("Try again in 15 minutes."), "{html}");
    assert!(!html.contains("seconds"), "{html}");
    assert!(link(&html, "Reset your password").is_some(), "{html}");

    let r = get("/app", &[("authorization", &basic("mallory", "wrong"))]);
    assert!(r.headers().contains_key("retry-after"));
    let body = json(r);
    assert_eq!(body["error"], "too_many_attempts");
    assert_eq!(
        body["message"],
        "Too many failed sign-in attempts. Try again in 15 minutes."
    );
}

#[test]
fn upstream_down_page_offers_to_try_again() {
    let g = server();
    let (status, html) = alices_page("/app/page?x=1");
    assert_eq!(status, 502);
    assert!(
        lead(&html).starts_with("The application behind this page isn't answering."),
        "{html}"
    );
    assert_eq!(
        link(&html, "Try again").as_deref(),
        Some(g.url("/app/page?x=1").as_str()),
        "{html}"
    );
    let body = json(get("/app/page", &[("authorization", &alice())]));
    assert_eq!(body["error"], "upstream_unavailable");
}

#[test]
fn unreadable_address_page_is_in_plain_words() {
    let resp = raw_request(
        server().addr(),
        &format!("GET /a/%2e%2e/b HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {HTML}\r\nConnection: close\r\n\r\n"),
    )
    .unwrap();
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(
        resp.to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{resp}"
    );
    let html = decoded(&resp);
    let sentence = lead(&html);
    assert!(starts_with_capital(sentence), "{sentence}");
    assert!(
        sentence.contains("“..”") && !sentence.contains('`'),
        "{sentence}"
    );
    assert!(link(&html, "Go to the home page").is_some(), "{html}");
    // Programs keep the code.
    let resp = raw_request(
        server().addr(),
        "GET /a/%2e%2e/b HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(resp.contains("\"error\":\"invalid_path\""), "{resp}");
}

#[test]
fn a_browser_gets_a_page_for_every_error_under_the_prefix() {
    let g = server();
    let (status, html) = page(get("/_auth/no-such-page", &[("accept", HTML)]));
    assert_eq!(status, 404);
    assert!(html.contains("<h1>Page not found</h1>"), "{html}");
    assert_eq!(
        link(&html, "Sign in").as_deref(),
        Some(g.url("/_auth/login").as_str())
    );
    // An API endpoint a browser opens: a page, and no password prompt.
    let r = get("/_auth/api/me", &[("accept", HTML)]);
    assert!(!r.headers().contains_key("www-authenticate"));
    let (status, html) = page(r);
    assert_eq!(status, 401);
    assert!(link(&html, "Sign in").is_some(), "{html}");
    // A wrong method.
    let r = client()
        .delete(g.url("/_auth/login"))
        .header("accept", HTML)
        .send()
        .unwrap();
    assert_eq!(page(r).0, 405);

    // Programs keep the JSON.
    let r = get("/_auth/no-such-page", &[]);
    assert_eq!(r.status(), 404);
    assert_eq!(json(r)["error"], "not_found");
    let r = get(
        "/_auth/api/me",
        &[("accept", HTML), ("x-requested-with", "XMLHttpRequest")],
    );
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(json(r)["error"], "unauthorized");
}

#[test]
fn setup_closed_page_links_to_sign_in() {
    let (status, html) = page(get("/_auth/setup", &[("accept", HTML)]));
    assert_eq!(status, 403);
    assert!(html.contains("<h1>Setup is already done</h1>"), "{html}");
    assert_eq!(
        link(&html, "Sign in").as_deref(),
        Some("/_auth/login"),
        "{html}"
    );
}

#[test]
fn sign_in_as_someone_else_comes_back_to_the_page() {
    let g = server();
    let rd = g.url("/admin/report");
    let (cookie, token, html) = csrf_form(g, &format!("/_auth/logout?rd={rd}"));
    let html = decoded(&html);
    assert!(
        html.contains(&format!("name=\"rd\" value=\"{rd}\"")),
        "{html}"
    );
    let r = client()
        .post(g.url("/_auth/logout"))
        .header("cookie", format!("gatehouse_csrf={cookie}"))
        .form(&[("csrf", token.as_str()), ("rd", rd.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    assert_eq!(
        to,
        format!(
            "/_auth/login?rd={}",
            rd.replace(':', "%3A").replace('/', "%2F")
        )
    );
    // Somewhere not allowed: plain sign-in.
    let (cookie, token, _) = csrf_form(g, "/_auth/logout");
    let r = client()
        .post(g.url("/_auth/logout"))
        .header("cookie", format!("gatehouse_csrf={cookie}"))
        .form(&[("csrf", token.as_str()), ("rd", "https://evil.example/")])
        .send()
        .unwrap();
    assert_eq!(r.headers()["location"], "/_auth/login");
}

#[test]
fn favicon_is_served_and_every_page_links_it() {
    let g = server();
    let r = get("/_auth/favicon.svg", &[]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("public"));
    let svg = r.text().unwrap();
    assert!(svg.starts_with("<svg") && svg.contains(ACCENT), "{svg}");
    let icon = format!(
        "<link rel=\"icon\" type=\"image/svg+xml\" href=\"{}\">",
        g.url("/_auth/favicon.svg")
    );
    let (_, login) = page(get("/_auth/login", &[("accept", HTML)]));
    assert!(login.contains(&icon), "{login}");
    let (_, forbidden) = alices_page("/admin/x");
    assert!(forbidden.contains(&icon), "{forbidden}");
}

#[test]
fn logo_and_accent_brand_every_page() {
    for (path, auth) in [("/_auth/login", None), ("/admin/x", Some(alice()))] {
        let mut headers = vec![("accept", HTML)];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let (_, html) = page(get(path, &headers));
        assert!(
            html.contains("<img class=\"logo\" src=\"/static/acme.svg\" alt=\"\">"),
            "{path}: {html}"
        );
        assert!(
            html.contains(&format!("--accent:{ACCENT};--on-accent:#ffffff")),
            "{path}: {html}"
        );
    }
}

#[test]
fn the_sign_in_page_leaves_programs_to_the_docs() {
    let (status, html) = page(get("/_auth/login", &[("accept", HTML)]));
    assert_eq!(status, 200);
    assert!(!html.contains("Authorization: Basic"), "{html}");
    assert!(!html.contains("Programs can send"), "{html}");
}

#[test]
fn check_config_refuses_a_logo_or_colour_that_could_inject() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.yaml");
    for (key, value) in [
        ("logo_url", "javascript:alert(1)"),
        ("logo_url", "http://cdn.example.com/logo.png"),
        ("logo_url", "//evil.example/logo.png"),
        ("accent_color", "red"),
        ("accent_color", "#fff;}body{display:none"),
    ] {
        std::fs::write(
            &path,
            format!(
                "public_url: \"https://app.example.com\"\nupstream:\n  url: \"echo:\"\nportal:\n  {key}: \"{value}\"\n"
            ),
        )
        .unwrap();
        let (code, out, err) =
            gatehouse_cmd(&["check-config", "-c", &path.display().to_string()], None);
        assert_eq!(code, 1, "{key}: {value} was accepted: {out}{err}");
        assert!(err.contains(&format!("portal.{key}")), "{err}");
    }
    std::fs::write(
        &path,
        "public_url: \"https://app.example.com\"\nupstream:\n  url: \"echo:\"\nportal:\n  logo_url: \"https://cdn.example.com/logo.svg\"\n  accent_color: \"#C0FFEE\"\n",
    )
    .unwrap();
    let (code, out, err) =
        gatehouse_cmd(&["check-config", "-c", &path.display().to_string()], None);
    assert_eq!(code, 0, "{out}{err}");
}

/// Error pages carry links that act (sign out, sign in as someone else,
/// try again): no other site may frame them to trick a click. Each way a
/// page is made says so: the proxy path, the portal's error layer, a page.
#[test]
fn error_pages_may_not_be_framed() {
    for (what, r) in [
        (
            "403 on the proxy path",
            get(
                "/admin/report",
                &[("accept", HTML), ("authorization", &alice())],
            ),
        ),
        (
            "502 on the proxy path",
            get("/app", &[("accept", HTML), ("authorization", &alice())]),
        ),
        (
            "404 under the prefix",
            get("/_auth/nope", &[("accept", HTML)]),
        ),
        ("setup closed", get("/_auth/setup", &[("accept", HTML)])),
    ] {
        assert_eq!(
            r.headers()
                .get("x-frame-options")
                .map(|v| v.to_str().unwrap()),
            Some("DENY"),
            "{what}"
        );
    }
}
