//! Inline mode from the outside: credentials, decisions, answers per client
//! kind, identity headers, and bad input — against the real binary in front
//! of the built-in echo app.

mod common;

use base64::Engine;
use common::*;
use reqwest::blocking::Response;
use std::io::Write;
use std::net::TcpStream;
use std::sync::OnceLock;

const ALICE_PW: &str = "alice-password-1";
const BOB_PW: &str = "bob-password-1";
const KEY_ADMIN: &str = "gh_adminKeyForTests0123456789abcdefABCDEF";
const KEY_READER: &str = "gh_readerKeyForTests0123456789abcdefABCDE";
const KEY_EXPIRED: &str = "gh_expiredKeyForTests0123456789abcdefABCD";
const KEY_DISABLED_OWNER: &str = "gh_disabledOwnerKey0123456789abcdefABCDE";

fn server() -> &'static Gatehouse {
    static SERVER: OnceLock<Gatehouse> = OnceLock::new();
    SERVER.get_or_init(|| {
        let alice = hash_password(ALICE_PW);
        let bob = hash_password(BOB_PW);
        let yaml = format!(
            r#"
server:
  listen: "127.0.0.1:{{port}}"
  metrics_listen: "127.0.0.1:{{metrics_port}}"
  threads: 2
  # Loopback is trusted by default; here the test client plays a stranger.
  trusted_proxies: []
public_url: "http://127.0.0.1:{{port}}"
upstream:
  url: "echo:"
portal:
  title: "Test App"
roles:
  editor: ["posts:*"]
  reader: ["posts:read"]
rules:
  - path: /public/**
    policy: public
  - path: /posts/**
    methods: [GET, HEAD]
    permission: "posts:read"
  - path: /posts/**
    permission: "posts:write"
  - path: /blocked/**
    policy: deny
users:
  - username: alice
    password_hash: "{alice}"
    email: alice@example.test
    name: Alice Example
    role: editor
  - username: bob
    password_hash: "{bob}"
    role: reader
  - username: carol
    password_hash: "{bob}"
    role: editor
    status: disabled
  - username: robot
    password_hash: "{bob}"
    type: api
    role: reader
api_keys:
  - name: admin-key
    hash: "{k1}"
    permissions: ["*"]
  - name: reader-key
    hash: "{k2}"
    user: alice
    permissions: ["posts:read"]
  - name: old-key
    hash: "{k3}"
    permissions: ["*"]
    expires: "2020-01-01T00:00:00Z"
  - name: carols-key
    hash: "{k4}"
    user: carol
"#,
            k1 = api_key_hash(KEY_ADMIN),
            k2 = api_key_hash(KEY_READER),
            k3 = api_key_hash(KEY_EXPIRED),
            k4 = api_key_hash(KEY_DISABLED_OWNER),
        );
        Gatehouse::start(&yaml)
    })
}

fn get(path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = client().get(server().url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

fn json(r: Response) -> serde_json::Value {
    let text = r.text().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

#[test]
fn api_client_without_credentials_gets_401_json_with_challenge() {
    let r = get("/app", &[]);
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("Basic realm=\"Test App\"") && challenge.contains("Bearer"),
        "{challenge}"
    );
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(json(r)["error"], "unauthorized");
}

#[test]
fn browser_is_redirected_to_login_with_rd() {
    let r = get(
        "/app/page?x=1",
        &[("accept", "text/html,application/xhtml+xml")],
    );
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap();
    let port = server().port;
    assert_eq!(
        loc,
        format!("http://127.0.0.1:{port}/_auth/login?rd=http://127.0.0.1:{port}/app/page%3Fx%3D1")
    );
    let r = client()
        .post(server().url("/app/form"))
        .header("accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(r.status(), 303, "non-GET browsers get 303");
    let r = get(
        "/app",
        &[
            ("accept", "text/html"),
            ("x-requested-with", "XMLHttpRequest"),
        ],
    );
    assert_eq!(r.status(), 401, "XHR is an API client");
}

#[test]
fn login_redirect_never_points_at_a_spoofed_host() {
    let resp = raw_request(
        server().addr(),
        "GET /x HTTP/1.1\r\nHost: evil.com\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let location = resp
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("location:"))
        .unwrap();
    assert!(!location.contains("evil.com"), "{location}");
    assert!(location.contains("rd=http://127.0.0.1:"), "{location}");
}

#[test]
fn login_page_ignores_open_redirect_targets() {
    for rd in [
        "//evil.com",
        "https://evil.com",
        "https://app.example.com.evil.com",
        "javascript:alert(1)",
        "http://127.0.0.1.evil.com/",
    ] {
        let r = client()
            .get(server().url("/_auth/login"))
            .query(&[("rd", rd)])
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let page = r.text().unwrap();
        assert!(
            !page.contains("evil.com") && !page.contains("javascript:"),
            "rd {rd} shown: {page}"
        );
    }
    let port = server().port;
    let ok = format!("http://127.0.0.1:{port}/dashboard");
    let page = client()
        .get(server().url("/_auth/login"))
        .query(&[("rd", ok.as_str())])
        .send()
        .unwrap()
        .text()
        .unwrap();
    let kept = page.replace("&#x2f;", "/");
    assert!(
        kept.contains(&format!("name=\"rd\" value=\"{ok}\"")),
        "an allowed rd is kept: {page}"
    );
}

#[test]
fn basic_user_reaches_app_with_identity_headers_and_no_credential() {
    let r = get("/app?q=1", &[("authorization", &basic("alice", ALICE_PW))]);
    assert_eq!(r.status(), 200);
    let echo = echo_json(&r.text().unwrap());
    let h = &echo["headers"];
    assert_eq!(h["remote-user"], "alice");
    assert_eq!(h["remote-email"], "alice@example.test");
    assert_eq!(h["remote-name"], "Alice Example");
    assert_eq!(h["remote-groups"], "editor");
    assert_eq!(h["remote-permissions"], "posts:*");
    assert_eq!(h["x-auth-request-user"], "alice");
    assert_eq!(h["x-auth-request-email"], "alice@example.test");
    assert_eq!(h["x-auth-request-groups"], "editor");
    assert_eq!(h["x-auth-method"], "basic");
    assert!(
        h.get("authorization").is_none(),
        "consumed credential forwarded: {h}"
    );
    assert_eq!(echo["path"], "/app");
    assert_eq!(echo["query"], "q=1");
}

#[test]
fn unknown_fields_are_empty_not_missing() {
    let r = get("/app", &[("authorization", &basic("bob", BOB_PW))]);
    assert_eq!(r.status(), 200);
    let h = echo_json(&r.text().unwrap())["headers"].clone();
    assert_eq!(h["remote-user"], "bob");
    assert_eq!(h["remote-email"], "");
    assert_eq!(h["remote-name"], "");
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let wrong = get("/app", &[("authorization", &basic("alice", "nope"))]);
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().unwrap();
    let unknown = get("/app", &[("authorization", &basic("mallory", "nope"))]);
    assert_eq!(unknown.status(), 401);
    assert_eq!(
        unknown.text().unwrap(),
        wrong,
        "messages must not reveal which users exist"
    );
    assert!(wrong.contains("invalid_credentials"));
}

#[test]
fn disabled_user_and_disabled_owners_key_are_refused() {
    let r = get("/app", &[("authorization", &basic("carol", BOB_PW))]);
    assert_eq!(r.status(), 401);
    assert_eq!(json(r)["error"], "account_disabled");
    let r = get("/app", &[("x-api-key", KEY_DISABLED_OWNER)]);
    assert_eq!(r.status(), 401);
}

#[test]
fn api_users_use_basic_too() {
    let r = get("/posts/1", &[("authorization", &basic("robot", BOB_PW))]);
    assert_eq!(r.status(), 200);
    assert_eq!(
        echo_json(&r.text().unwrap())["headers"]["remote-user"],
        "robot"
    );
}

#[test]
fn api_key_in_x_api_key_or_bearer() {
    let r = get("/app", &[("x-api-key", KEY_ADMIN)]);
    assert_eq!(r.status(), 200);
    let h = echo_json(&r.text().unwrap())["headers"].clone();
    assert_eq!(h["remote-user"], "admin-key");
    assert_eq!(h["x-auth-method"], "api_key");
    assert!(h.get("x-api-key").is_none(), "consumed key forwarded");

    let r = get("/app", &[("authorization", &format!("Bearer {KEY_ADMIN}"))]);
    assert_eq!(r.status(), 200);
    let h = echo_json(&r.text().unwrap())["headers"].clone();
    assert!(h.get("authorization").is_none());
}

#[test]
fn bound_key_acts_as_its_user_with_narrowed_permissions() {
    let r = get("/posts/1", &[("x-api-key", KEY_READER)]);
    assert_eq!(r.status(), 200);
    let h = echo_json(&r.text().unwrap())["headers"].clone();
    assert_eq!(h["remote-user"], "alice");
    assert_eq!(h["remote-permissions"], "posts:read");
    let r = client()
        .post(server().url("/posts/1"))
        .header("x-api-key", KEY_READER)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "the key is narrower than alice");
}

#[test]
fn bad_expired_and_foreign_keys_are_401() {
    for (key, code) in [
        ("gh_doesNotExist0123456789", "invalid_api_key"),
        (KEY_EXPIRED, "credential_expired"),
        ("sk_live_foreignprefix", "invalid_api_key"),
    ] {
        let r = get("/app", &[("x-api-key", key)]);
        assert_eq!(r.status(), 401, "{key}");
        assert_eq!(json(r)["error"], code, "{key}");
    }
    let r = get("/app", &[("authorization", "Bearer not-a-key-or-token")]);
    assert_eq!(r.status(), 401);
}

#[test]
fn permissions_decide_per_method_and_path() {
    let bob = basic("bob", BOB_PW);
    let alice = basic("alice", ALICE_PW);
    assert_eq!(get("/posts/1", &[("authorization", &bob)]).status(), 200);
    let r = client()
        .post(server().url("/posts/1"))
        .header("authorization", &bob)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let body = json(r);
    assert_eq!(body["error"], "forbidden");
    let r = client()
        .post(server().url("/posts/1"))
        .header("authorization", &alice)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .post(server().url("/posts/1"))
        .header("authorization", &bob)
        .header("accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.text().unwrap().contains("<html"),
        "browsers get a 403 page"
    );
}

#[test]
fn deny_rule_forbids_everyone() {
    assert_eq!(get("/blocked/x", &[("x-api-key", KEY_ADMIN)]).status(), 403);
    assert_eq!(get("/blocked/x", &[]).status(), 403);
}

#[test]
fn public_path_needs_nothing_and_strips_spoofs() {
    let r = get(
        "/public/page",
        &[("remote-user", "admin"), ("x-auth-request-user", "admin")],
    );
    assert_eq!(r.status(), 200);
    let h = echo_json(&r.text().unwrap())["headers"].clone();
    assert!(h.get("remote-user").is_none(), "{h}");
    assert!(h.get("x-auth-request-user").is_none(), "{h}");
    let r = get("/public/page", &[("authorization", &basic("bob", BOB_PW))]);
    assert_eq!(
        echo_json(&r.text().unwrap())["headers"]["remote-user"],
        "bob",
        "public paths still identify"
    );
    assert_eq!(
        get("/public/page", &[("authorization", "Basic !!!")]).status(),
        200
    );
}

#[test]
fn spoofed_identity_headers_never_reach_the_app() {
    let req = format!(
        "GET /app HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\nRemote-User: admin\r\nremote_user: admin\r\nREMOTE-USER: admin\r\nRemote_Groups: admin\r\nX-Auth-Request-User: admin\r\nX_AUTH_METHOD: session\r\nConnection: close\r\n\r\n",
        basic("bob", BOB_PW)
    );
    let resp = raw_request(server().addr(), &req).unwrap();
    let body = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
    let echo = echo_json(body);
    let h = echo["headers"].as_object().unwrap();
    assert_eq!(h["remote-user"], "bob");
    assert_eq!(h["remote-groups"], "reader");
    assert_eq!(h["x-auth-method"], "basic");
    for k in h.keys() {
        assert!(!k.contains('_'), "underscore variant {k} reached the app");
    }
    assert!(
        !body.contains("admin"),
        "a spoofed value reached the app: {body}"
    );
}

#[test]
fn forwarded_headers_come_from_the_connection() {
    let r = get(
        "/public/x",
        &[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-host", "evil.com"),
            ("x-forwarded-proto", "https"),
        ],
    );
    let h = echo_json(&r.text().unwrap())["headers"].clone();
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(
        h["x-forwarded-host"],
        format!("127.0.0.1:{}", server().port)
    );
}

fn status_of(raw_response: &str) -> u16 {
    raw_response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn malformed_credentials_get_a_clean_400() {
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let huge = "A".repeat(10_000);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "bad base64",
            b"Authorization: Basic !!!notbase64\r\n".to_vec(),
        ),
        (
            "missing colon",
            format!("Authorization: Basic {}\r\n", b64(b"alice")).into_bytes(),
        ),
        (
            "non-UTF-8 decoded",
            format!(
                "Authorization: Basic {}\r\n",
                b64(&[0xff, 0xfe, b':', b'x'])
            )
            .into_bytes(),
        ),
        (
            "non-ASCII header bytes",
            b"Authorization: Basic \xc3\xa9\xff\r\n".to_vec(),
        ),
        ("empty Basic", b"Authorization: Basic\r\n".to_vec()),
        (
            "empty user",
            format!("Authorization: Basic {}\r\n", b64(b":pw")).into_bytes(),
        ),
        ("empty X-API-Key", b"X-API-Key: \r\n".to_vec()),
        (
            "huge Authorization",
            format!("Authorization: Basic {huge}\r\n").into_bytes(),
        ),
        (
            "duplicate Authorization",
            format!(
                "Authorization: {}\r\nAuthorization: {}\r\n",
                basic("bob", BOB_PW),
                basic("alice", ALICE_PW)
            )
            .into_bytes(),
        ),
        (
            "duplicate X-API-Key",
            format!("X-API-Key: {KEY_ADMIN}\r\nX-API-Key: {KEY_ADMIN}\r\n").into_bytes(),
        ),
    ];
    for (what, header) in cases {
        let mut req = b"GET /app HTTP/1.1\r\nHost: t\r\nConnection: close\r\n".to_vec();
        req.extend_from_slice(&header);
        req.extend_from_slice(b"\r\n");
        let resp = raw_bytes(server().addr(), &req).unwrap();
        assert_eq!(status_of(&resp), 400, "{what}: {resp}");
        assert!(resp.contains("malformed_credentials"), "{what}: {resp}");
    }
    let resp = raw_request(
        server().addr(),
        "GET /app HTTP/1.1\r\nHost: t\r\nAuthorization: Digest x=1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        status_of(&resp),
        401,
        "an unsupported scheme is just unauthenticated"
    );
    // The server is still healthy after all of that.
    assert_eq!(get("/_auth/healthz", &[]).status(), 200);
}

#[test]
fn dot_segments_are_refused_not_resolved() {
    for path in [
        "/public/../posts/1",
        "/public/%2e%2e/posts/1",
        "/public%2f..%2fposts/1",
    ] {
        let resp = raw_request(
            server().addr(),
            &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        )
        .unwrap();
        assert_eq!(status_of(&resp), 400, "{path}: {resp}");
        assert!(resp.contains("invalid_path"));
    }
    // Encoded letters are decoded before matching: no bypass of /posts/**.
    let resp = raw_request(
        server().addr(),
        "GET /%70osts/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(status_of(&resp), 401);
    let resp = raw_request(
        server().addr(),
        "GET //posts/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(status_of(&resp), 401);
}

#[test]
fn denials_keep_the_connection_alive() {
    let mut s = TcpStream::connect(server().addr()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    for _ in 0..3 {
        s.write_all(b"GET /app HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let resp = read_response(&mut s);
        assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
        assert!(
            !resp.to_ascii_lowercase().contains("connection: close"),
            "{resp}"
        );
    }
    s.write_all(b"HEAD /app HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = std::io::Read::read(&mut s, &mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(
        head.starts_with("HTTP/1.1 401") && head.ends_with("\r\n\r\n"),
        "HEAD has no body: {head}"
    );
}

#[test]
fn portal_endpoints_answer_themselves() {
    for p in ["/_auth/healthz", "/_auth/readyz", "/_auth/info"] {
        let r = get(p, &[]);
        assert_eq!(r.status(), 200, "{p}");
        assert_eq!(r.headers()["content-type"], "application/json", "{p}");
    }
    assert_eq!(json(get("/_auth/info", &[]))["name"], "gatehouse");
    let r = get("/_auth/nope", &[]);
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(json(r)["error"], "not_found");
    // `/_authx` is not the portal: it is protected like any app path.
    assert_eq!(get("/_authx", &[]).status(), 401);
}

#[test]
fn metrics_count_decisions_without_names_or_paths() {
    get("/app", &[("authorization", &basic("bob", BOB_PW))]);
    get("/app", &[]);
    let m = server().metrics();
    assert!(
        m.contains("gatehouse_requests_total{auth_method=\"basic\",decision=\"allow\"}"),
        "{m}"
    );
    assert!(
        m.contains("gatehouse_requests_total{auth_method=\"none\",decision=\"unauthenticated\"}")
    );
    assert!(m.contains("gatehouse_auth_decision_seconds_bucket"));
    assert!(m.contains("gatehouse_identity_cache_total{result=\"hit\"}"));
    assert!(
        !m.contains("bob") && !m.contains("/app"),
        "high-cardinality labels leaked"
    );
}
