//! How Gatehouse reads a request, from the outside: every way around the
//! rules that the app behind it could be talked into — request-targets that
//! are not paths, path parameters, an encoded `/`, HEAD, method overrides,
//! host spellings, rewrite and forwarding headers — against an upstream that
//! records exactly the bytes it receives.

mod common;

use base64::Engine;
use common::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// An app that answers 200 to everything and keeps each request's head
/// (request line and headers, exactly as received) by its `x-test-id`.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<HashMap<String, String>>>,
}

fn serve_connection(stream: TcpStream, seen: Arc<Mutex<HashMap<String, String>>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Some(id) = header("x-test-id") {
            seen.lock().unwrap().insert(id, head.clone());
        }
        if out
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\napp-seen")
            .is_err()
        {
            return;
        }
    }
}

fn recorder() -> &'static Recorder {
    static R: OnceLock<Recorder> = OnceLock::new();
    R.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let s = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || serve_connection(stream, s));
            }
        });
        Recorder { addr, seen }
    })
}

const BOB_PW: &str = "bob-password-1";
const ALICE_PW: &str = "alice-password-1";

fn yaml(extra: &str) -> String {
    let bob = hash_password(BOB_PW);
    let alice = hash_password(ALICE_PW);
    format!(
        r#"
server:
  listen: "127.0.0.1:{{port}}"
  metrics_listen: "127.0.0.1:{{metrics_port}}"
  threads: 2
public_url: "http://127.0.0.1:{{port}}"
upstream:
  url: "http://{up}"
roles:
  admin: ["*"]
  staff: ["posts:read"]
rules:
  - path: /
    methods: [GET]
    policy: public
  - path: /public/**
    policy: public
  - hosts: ["admin.example.com"]
    policy: deny
  - path: /admin/**
    permission: "admin:access"
  - path: /users/*
    permission: "users:manage"
  - path: /reports/**
    methods: [GET]
    permission: "reports:read"
  - path: /items/**
    methods: [DELETE]
    permission: "items:delete"
users:
  - username: bob
    password_hash: "{bob}"
    role: staff
  - username: alice
    password_hash: "{alice}"
    role: admin
{extra}
"#,
        up = recorder().addr
    )
}

/// Loopback is a stranger here: nothing it says about forwarding is believed.
fn strict() -> &'static Gatehouse {
    static G: OnceLock<Gatehouse> = OnceLock::new();
    G.get_or_init(|| {
        Gatehouse::start(
            &yaml("  # strict\n")
                .replace("  threads: 2\n", "  threads: 2\n  trusted_proxies: []\n"),
        )
    })
}

/// Method overrides kept and judged; loopback trusted (the default).
fn judging() -> &'static Gatehouse {
    static G: OnceLock<Gatehouse> = OnceLock::new();
    G.get_or_init(|| Gatehouse::start(&yaml("headers:\n  method_override: judge\n")))
}

/// `;` refused outright; paths matched case-insensitively.
fn refusing() -> &'static Gatehouse {
    static G: OnceLock<Gatehouse> = OnceLock::new();
    G.get_or_init(|| {
        Gatehouse::start(&yaml(
            "paths:\n  allow_semicolons: false\n  case_insensitive: true\n",
        ))
    })
}

fn basic(user: &str, pw: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
    format!("Authorization: Basic {b}\r\n")
}

fn bob() -> String {
    basic("bob", BOB_PW)
}

fn alice() -> String {
    basic("alice", ALICE_PW)
}

/// What came back, and the head the app received (if any).
struct Outcome {
    status: u16,
    response: String,
    app_saw: Option<String>,
}

/// Send `method target` with `headers` (CRLF-terminated lines) and a
/// `Host: 127.0.0.1`, unless `headers` has one.
fn send(g: &Gatehouse, method: &str, target: &str, headers: &str) -> Outcome {
    static N: AtomicU64 = AtomicU64::new(0);
    let id = format!(
        "t{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let has_host = headers
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("host:"));
    let host = if has_host {
        String::new()
    } else {
        format!("Host: 127.0.0.1:{}\r\n", g.port)
    };
    let request = format!(
        "{method} {target} HTTP/1.1\r\n{host}{headers}X-Test-Id: {id}\r\nConnection: close\r\n\r\n"
    );
    let response = raw_request(g.addr(), &request).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let app_saw = recorder().seen.lock().unwrap().remove(&id);
    Outcome {
        status,
        response,
        app_saw,
    }
}

fn request_line(app_saw: &Option<String>) -> &str {
    app_saw
        .as_deref()
        .and_then(|h| h.lines().next())
        .unwrap_or("")
}

fn app_header(app_saw: &Option<String>, name: &str) -> Vec<String> {
    app_saw
        .as_deref()
        .unwrap_or("")
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
        .collect()
}

#[track_caller]
fn refused(o: &Outcome, status: u16, code: &str) {
    assert_eq!(o.status, status, "{}", o.response);
    assert!(o.app_saw.is_none(), "the app saw {:?}", o.app_saw);
    assert!(
        o.response.contains(&format!("\"error\":\"{code}\"")),
        "{}",
        o.response
    );
    assert!(
        !o.response.to_ascii_lowercase().contains("pingora"),
        "{}",
        o.response
    );
}

#[test]
fn control_the_public_root_and_permissions_work() {
    let g = strict();
    let o = send(g, "GET", "/", "");
    assert_eq!(o.status, 200, "{}", o.response);
    assert_eq!(request_line(&o.app_saw), "GET / HTTP/1.1");
    refused(&send(g, "GET", "/admin/x", &bob()), 403, "forbidden");
    let o = send(g, "GET", "/admin/x", &alice());
    assert_eq!(request_line(&o.app_saw), "GET /admin/x HTTP/1.1");
}

#[test]
fn targets_that_are_not_paths_are_refused() {
    let g = strict();
    for target in ["admin/x", ";/admin/x", "%2fadmin/x", "\\admin\\x", "h:80"] {
        for who in [String::new(), bob(), alice()] {
            let o = send(g, "GET", target, &who);
            refused(&o, 400, "invalid_request_target");
        }
    }
    // Pingora's parser refuses these itself, before Gatehouse reads them
    // (its answer still says `Server: Pingora`; see the README).
    for target in ["ftp://h/admin/x", "http://elsewhere.example/admin/x"] {
        let o = send(g, "GET", target, &alice());
        assert_eq!(o.status, 400, "{target}: {}", o.response);
        assert!(o.app_saw.is_none(), "{target}: the app saw {:?}", o.app_saw);
    }
    refused(&send(g, "GET", "*", ""), 400, "invalid_request_target");
    // `OPTIONS *` is a request for the server as a whole: no path rule is
    // public for it, so the default (authenticated) decides.
    let o = send(g, "OPTIONS", "*", "");
    assert_eq!(o.status, 401, "{}", o.response);
    assert!(o.app_saw.is_none());
}

#[test]
fn absolute_form_is_judged_by_its_path_and_sent_as_origin_form() {
    let g = strict();
    let target = format!("http://127.0.0.1:{}/admin/x?q=1", g.port);
    refused(&send(g, "GET", &target, ""), 401, "unauthorized");
    refused(&send(g, "GET", &target, &bob()), 403, "forbidden");
    let o = send(g, "GET", &target, &alice());
    assert_eq!(o.status, 200, "{}", o.response);
    assert_eq!(request_line(&o.app_saw), "GET /admin/x?q=1 HTTP/1.1");
}

#[test]
fn path_parameters_cannot_hide_a_path() {
    let g = strict();
    for target in [
        "/public/..;/admin/x",
        "/public/%2e%2e;/admin/x",
        "/public/..;jsessionid=1/admin/x",
        "/public/.;/admin/x",
        "/public/..%3b/admin/x",
        "/public/%252e%252e/admin/x",
    ] {
        refused(&send(g, "GET", target, ""), 400, "invalid_path");
        refused(&send(g, "GET", target, &bob()), 400, "invalid_path");
    }
    // Tomcat serves `/admin` for these; the rule must see it too.
    for target in [
        "/admin;x",
        "/admin;x/y",
        "/admin%3bx/y",
        "/ADMIN;x/../admin",
    ] {
        let o = send(g, "GET", target, &bob());
        assert!(o.app_saw.is_none(), "{target}: the app saw {:?}", o.app_saw);
        assert!(
            o.status == 403 || o.status == 400,
            "{target}: {}",
            o.response
        );
    }
    let o = send(g, "GET", "/admin;x", &alice());
    assert_eq!(request_line(&o.app_saw), "GET /admin;x HTTP/1.1");
    // A public path keeps working with a parameter.
    let o = send(g, "GET", "/public/a;v=1", "");
    assert_eq!(request_line(&o.app_saw), "GET /public/a;v=1 HTTP/1.1");
}

#[test]
fn an_encoded_slash_is_judged_both_ways() {
    let g = strict();
    // Express routes `/users/:id` on the raw path: `a%2Fb` is one segment.
    refused(&send(g, "GET", "/users/a%2Fb", &bob()), 403, "forbidden");
    refused(&send(g, "GET", "/users/a%5Cb", &bob()), 403, "forbidden");
    let o = send(g, "GET", "/users/a%2Fb", &alice());
    assert_eq!(request_line(&o.app_saw), "GET /users/a%2Fb HTTP/1.1");
}

#[test]
fn head_is_judged_as_get() {
    let g = strict();
    refused(&send(g, "GET", "/reports/q3", &bob()), 403, "forbidden");
    let o = send(g, "HEAD", "/reports/q3", &bob());
    assert_eq!(o.status, 403, "{}", o.response);
    assert!(o.app_saw.is_none(), "the app saw {:?}", o.app_saw);
    let o = send(g, "HEAD", "/reports/q3", &alice());
    assert_eq!(request_line(&o.app_saw), "HEAD /reports/q3 HTTP/1.1");
    // HEAD on the public root still works.
    let o = send(g, "HEAD", "/", "");
    assert_eq!(o.status, 200, "{}", o.response);
}

const OVERRIDES: [&str; 4] = [
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
    "X_HTTP_Method_Override",
];

#[test]
fn method_overrides_are_stripped_by_default() {
    let g = strict();
    refused(&send(g, "DELETE", "/items/1", &bob()), 403, "forbidden");
    for h in OVERRIDES {
        let o = send(g, "POST", "/items/1", &format!("{}{h}: DELETE\r\n", bob()));
        assert_eq!(o.status, 200, "{}", o.response);
        assert_eq!(request_line(&o.app_saw), "POST /items/1 HTTP/1.1");
        assert!(app_header(&o.app_saw, h).is_empty(), "{h} reached the app");
    }
}

#[test]
fn method_overrides_can_be_kept_and_judged() {
    let g = judging();
    for h in OVERRIDES {
        let o = send(g, "POST", "/items/1", &format!("{}{h}: delete\r\n", bob()));
        refused(&o, 403, "forbidden");
        let o = send(
            g,
            "POST",
            "/items/1",
            &format!("{}{h}: DELETE\r\n", alice()),
        );
        assert_eq!(app_header(&o.app_saw, h), ["DELETE"], "{h}");
    }
    refused(
        &send(
            g,
            "POST",
            "/items/1",
            &format!("{}X-HTTP-Method: DE LETE\r\n", bob()),
        ),
        400,
        "invalid_method_override",
    );
    // Harmless overrides still pass.
    let o = send(
        g,
        "POST",
        "/items/1",
        &format!("{}X-HTTP-Method: PUT\r\n", bob()),
    );
    assert_eq!(o.status, 200, "{}", o.response);
}

#[test]
fn host_spellings_meet_the_host_rule() {
    let g = strict();
    for host in [
        "admin.example.com",
        "admin.example.com.",
        "admin.example.com.:80",
        "ADMIN.Example.Com:8080",
    ] {
        let o = send(g, "GET", "/x", &format!("Host: {host}\r\n{}", alice()));
        refused(&o, 403, "forbidden");
    }
}

#[test]
fn rewrite_and_forwarding_headers_of_strangers_never_reach_the_app() {
    let g = strict();
    let spoofed = "X-Original-URL: /admin/x\r\nX-Rewrite-URL: /admin/x\r\n\
        Forwarded: for=1.2.3.4;host=evil.example;proto=https\r\nX-Real-IP: 1.2.3.4\r\n\
        X-Forwarded-For: 1.2.3.4\r\nX_Forwarded_For: 1.2.3.4\r\nX-Forwarded-Port: 443\r\n\
        X-Forwarded-Prefix: /admin\r\nX-Forwarded-Host: evil.example\r\nTrue-Client-IP: 1.2.3.4\r\n";
    let o = send(g, "GET", "/", spoofed);
    assert_eq!(o.status, 200, "{}", o.response);
    for h in [
        "x-original-url",
        "x-rewrite-url",
        "forwarded",
        "x_forwarded_for",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "true-client-ip",
    ] {
        assert!(
            app_header(&o.app_saw, h).is_empty(),
            "{h} reached the app: {:?}",
            o.app_saw
        );
    }
    assert_eq!(app_header(&o.app_saw, "x-real-ip"), ["127.0.0.1"]);
    assert_eq!(app_header(&o.app_saw, "x-forwarded-for"), ["127.0.0.1"]);
    let host = format!("127.0.0.1:{}", g.port);
    assert_eq!(app_header(&o.app_saw, "x-forwarded-host"), [host]);
}

#[test]
fn rewrite_headers_a_trusted_proxy_passes_on_are_judged() {
    let g = judging();
    let o = send(g, "GET", "/", "X-Original-URL: /admin/x\r\n");
    refused(&o, 401, "unauthorized");
    refused(
        &send(
            g,
            "GET",
            "/",
            &format!("{}X-Rewrite-URL: /admin;x\r\n", bob()),
        ),
        403,
        "forbidden",
    );
    let o = send(
        g,
        "GET",
        "/",
        &format!("{}X-Original-URL: /admin/x\r\n", alice()),
    );
    assert_eq!(app_header(&o.app_saw, "x-original-url"), ["/admin/x"]);
    refused(
        &send(g, "GET", "/", "X-Original-URL: admin/x\r\n"),
        400,
        "invalid_rewrite_url",
    );
}

#[test]
fn semicolons_can_be_refused_and_paths_matched_in_any_case() {
    let g = refusing();
    refused(&send(g, "GET", "/public/a;v=1", ""), 400, "invalid_path");
    refused(&send(g, "GET", "/public/a%3Bv=1", ""), 400, "invalid_path");
    for target in ["/ADMIN/x", "/Admin/x", "/%41dmin/x"] {
        refused(&send(g, "GET", target, &bob()), 403, "forbidden");
    }
    let o = send(g, "GET", "/PUBLIC/x", "");
    assert_eq!(o.status, 200, "{}", o.response);
}

#[test]
fn explain_reads_the_request_as_the_gate_does() {
    let g = strict();
    let config = g.config_path().display().to_string();
    let explain = |method: &str, url: &str, user: Option<&str>| {
        let mut args = vec!["explain", "-c", &config, "--method", method, "--url", url];
        if let Some(u) = user {
            args.extend(["--user", u]);
        }
        let (code, out, err) = gatehouse_cmd(&args, None);
        assert_eq!(code, 0, "{err}");
        out
    };
    let out = explain("GET", "/public/..;/admin/x", None);
    assert!(out.contains("bad request (400)"), "{out}");
    let out = explain("HEAD", "/reports/q3", Some("bob"));
    assert!(
        out.contains("forbidden (403)") && out.contains("GET /reports/q3"),
        "{out}"
    );
    let out = explain("GET", "/admin;x", Some("bob"));
    assert!(
        out.contains("forbidden (403)") && out.contains("GET /admin"),
        "{out}"
    );
    let out = explain("GET", "http://ADMIN.example.com.:80/x", Some("alice"));
    assert!(
        out.contains("host=admin.example.com") && out.contains("forbidden"),
        "{out}"
    );
    let out = explain("GET", "/admin/x", Some("alice"));
    assert!(out.contains("decision: allow"), "{out}");
}

/// `gatehouse explain` on the server's own config file, with `args` added;
/// answers its output (the run must succeed).
fn explain_on(g: &Gatehouse, method: &str, url: &str, args: &[&str]) -> String {
    let config = g.config_path().display().to_string();
    let mut all = vec!["explain", "-c", &config, "--method", method, "--url", url];
    all.extend_from_slice(args);
    let (code, out, err) = gatehouse_cmd(&all, None);
    assert_eq!(code, 0, "{err}");
    out
}

/// (server, method, target, user, extra header).
type Case = (
    &'static Gatehouse,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

#[test]
fn explain_answers_what_the_server_answers() {
    // The server's status and error code are what `explain` says it would
    // answer.
    let cases: Vec<Case> = vec![
        (strict(), "GET", "/public/../admin/x", None, None),
        (
            strict(),
            "GET",
            "/public/%2e%2E/admin/x",
            Some("alice"),
            None,
        ),
        (strict(), "GET", "/admin/x", None, None),
        (strict(), "GET", "/admin/x", Some("bob"), None),
        (strict(), "GET", "/admin/x", Some("alice"), None),
        (strict(), "HEAD", "/reports/q3", Some("bob"), None),
        (strict(), "HEAD", "/reports/q3", Some("alice"), None),
        (strict(), "GET", "/admin;x/y", Some("bob"), None),
        (strict(), "GET", "/public/a", None, None),
        (strict(), "POST", "/", None, None),
        (
            judging(),
            "POST",
            "/items/1",
            Some("bob"),
            Some("X-HTTP-Method-Override: DELETE"),
        ),
        (
            judging(),
            "POST",
            "/items/1",
            Some("alice"),
            Some("X-HTTP-Method-Override: DELETE"),
        ),
    ];
    for (g, method, target, user, header) in cases {
        let mut headers = match user {
            Some("bob") => bob(),
            Some(_) => alice(),
            None => String::new(),
        };
        let mut args = Vec::new();
        if let Some(u) = user {
            args.extend(["--user", u]);
        }
        if let Some(h) = header {
            headers.push_str(&format!("{h}\r\n"));
            args.extend(["--header", h]);
        }
        let o = send(g, method, target, &headers);
        let out = explain_on(g, method, target, &args);
        let answer = out
            .lines()
            .find_map(|l| l.strip_prefix("answer:"))
            .unwrap_or_else(|| panic!("no answer line: {out}"))
            .trim();
        let (status, reason) = answer.split_once(' ').unwrap_or((answer, ""));
        assert_eq!(
            status,
            o.status.to_string(),
            "{method} {target} as {user:?}: explain said\n{out}\nthe server\n{}",
            o.response
        );
        // (A HEAD answer has no body to name the code.)
        if o.status >= 400 && method != "HEAD" {
            assert!(
                o.response.contains(&format!("\"error\":\"{reason}\"")),
                "{method} {target}: explain said {reason}, the server\n{}",
                o.response
            );
        }
    }
    // HEAD is judged as GET too, and says so.
    let out = explain_on(strict(), "HEAD", "/reports/q3", &["--user", "bob"]);
    assert!(out.contains("also read as: GET /reports/q3"), "{out}");
    assert!(out.contains("answer:   403 forbidden"), "{out}");
}
