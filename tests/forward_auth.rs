//! Forward-auth from the outside: `{p}/verify` and `{p}/verify/nginx` asked
//! directly, and the whole flow through the real Traefik, nginx and Caddy,
//! each configured with the example files under `config/forward-auth/` as
//! they are (only the ports are swapped for free ones).
//!
//! The proxies are found through `GATEHOUSE_TEST_TRAEFIK`, `GATEHOUSE_TEST_NGINX`
//! and `GATEHOUSE_TEST_CADDY`, else on `PATH`; a missing one prints a `SKIP`
//! line. The app behind the proxy is Gatehouse's echo app, run in-process.

mod common;

use base64::Engine;
use common::*;
use reqwest::blocking::{RequestBuilder, Response};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/forward-auth");
/// The addresses the example files are written for.
const EXAMPLE_GATEHOUSE: &str = "127.0.0.1:9091";
const EXAMPLE_APP: &str = "127.0.0.1:3000";
const EXAMPLE_PROXY: &str = "127.0.0.1:8000";
/// The example users and key (documented next to their hashes).
const ALICE: (&str, &str) = ("alice", "alice-example-password");
const KEY: &str = "gh_BiirSsmV3CA22ipuwCeVE6JDJpNN07i7JZu2LYGy";
const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

fn example(name: &str) -> String {
    std::fs::read_to_string(Path::new(EXAMPLES).join(name))
        .unwrap_or_else(|e| panic!("config/forward-auth/{name}: {e}"))
}

/// Replace `from` by `to`, insisting that `from` is there (a silent no-op
/// would test something other than the example).
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the example no longer contains `{from}`"
    );
    text.replace(from, to)
}

fn basic(user: &str, pw: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
    format!("Basic {b64}")
}

/// The example Gatehouse config, for a proxy on `proxy_port` (its public URL).
fn example_gatehouse(proxy_port: u16) -> Gatehouse {
    let yaml = swap(
        &example("gatehouse.yaml"),
        EXAMPLE_GATEHOUSE,
        "127.0.0.1:{port}",
    );
    let yaml = swap(&yaml, EXAMPLE_PROXY, &format!("127.0.0.1:{proxy_port}"));
    Gatehouse::start(&yaml)
}

/// Gatehouse's echo app, in this process: what the app behind the proxy sees.
fn echo_app() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            if let Err(e) = rt.block_on(gatehouse::upstream::echo::serve(listener)) {
                panic!("echo app: {e}");
            }
        });
        addr
    })
}

// ---------------------------------------------------------------------------
// The real proxies
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Traefik,
    Nginx,
    Caddy,
}

impl Kind {
    fn env_var(self) -> &'static str {
        match self {
            Kind::Traefik => "GATEHOUSE_TEST_TRAEFIK",
            Kind::Nginx => "GATEHOUSE_TEST_NGINX",
            Kind::Caddy => "GATEHOUSE_TEST_CADDY",
        }
    }

    fn program(self) -> &'static str {
        match self {
            Kind::Traefik => "traefik",
            Kind::Nginx => "nginx",
            Kind::Caddy => "caddy",
        }
    }

    /// The binary: the environment variable, else `PATH` (plus the sbin
    /// directories, where Debian puts nginx). `None` means: skip.
    fn binary(self) -> Option<PathBuf> {
        if let Ok(p) = std::env::var(self.env_var()) {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "{}={} is not a file",
                self.env_var(),
                p.display()
            );
            return Some(p);
        }
        let path = std::env::var("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
            .map(|d| d.join(self.program()))
            .find(|p| p.is_file())
    }
}

/// A running proxy, killed (by PID) when dropped or when the test thread ends.
struct Proxy {
    kind: Kind,
    port: u16,
    pid: u32,
    dir: tempfile::TempDir,
}

impl Proxy {
    /// Write the example config for `kind` with the real ports and start it.
    fn start(kind: Kind, bin: &Path, port: u16, gatehouse: u16) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ports = |text: &str| {
            let text = swap(text, EXAMPLE_PROXY, &format!("127.0.0.1:{port}"));
            let text = swap(&text, EXAMPLE_GATEHOUSE, &format!("127.0.0.1:{gatehouse}"));
            swap(&text, EXAMPLE_APP, &echo_app().to_string())
        };
        let mut cmd = Command::new(bin);
        match kind {
            Kind::Traefik => {
                let dynamic = d.join("dynamic.yml");
                std::fs::write(&dynamic, ports(&example("dynamic.yml"))).unwrap();
                let stat = swap(
                    &example("traefik.yml"),
                    "127.0.0.1:8000",
                    &format!("127.0.0.1:{port}"),
                );
                let stat = swap(
                    &stat,
                    "/etc/traefik/dynamic.yml",
                    &dynamic.display().to_string(),
                );
                std::fs::write(d.join("traefik.yml"), stat).unwrap();
                cmd.arg(format!("--configFile={}", d.join("traefik.yml").display()));
            }
            Kind::Nginx => {
                // The example is a server block; this is the http {} around it.
                std::fs::write(d.join("gatehouse.conf"), ports(&example("nginx.conf"))).unwrap();
                let p = d.display();
                let main = format!(
                    "daemon off;\nmaster_process off;\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\n\
                     events {{ worker_connections 256; }}\nhttp {{\n  access_log off;\n\
                     client_body_temp_path {p}/body; proxy_temp_path {p}/proxy;\n\
                     fastcgi_temp_path {p}/fcgi; uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;\n\
                     include {p}/gatehouse.conf;\n}}\n"
                );
                std::fs::write(d.join("nginx.conf"), main).unwrap();
                cmd.arg("-c")
                    .arg(d.join("nginx.conf"))
                    .arg("-p")
                    .arg(d)
                    .arg("-e")
                    .arg(d.join("error.log"));
            }
            Kind::Caddy => {
                // The example is a site block; the test adds the global options
                // a shared test machine needs (no admin port, no certificates).
                let site = ports(&example("Caddyfile"));
                let file = format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}");
                std::fs::write(d.join("Caddyfile"), file).unwrap();
                cmd.args(["run", "--adapter", "caddyfile", "--config"])
                    .arg(d.join("Caddyfile"))
                    .env("XDG_DATA_HOME", d)
                    .env("XDG_CONFIG_HOME", d)
                    .env("HOME", d);
            }
        }
        let log = std::fs::File::create(d.join("proxy.log")).unwrap();
        cmd.current_dir(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let proxy = Proxy {
            kind,
            port,
            pid: child.id(),
            dir,
        };
        // Reap it in the background so it does not linger as a zombie.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        proxy.wait_ready();
        proxy
    }

    fn log(&self) -> String {
        let mut out =
            std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default();
        out += &std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default();
        out
    }

    /// Until Gatehouse answers through the proxy (routes loaded, both up).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if !Path::new(&format!("/proc/{}", self.pid)).exists() {
                panic!("{:?} exited during start-up:\n{}", self.kind, self.log());
            }
            let ok = client()
                .get(self.url("/_auth/healthz"))
                .timeout(Duration::from_secs(2))
                .send()
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{:?} never routed to Gatehouse:\n{}", self.kind, self.log());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.pid as i32, libc::SIGKILL);
        }
    }
}

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn set_cookie_value(r: &Response, name: &str) -> Option<String> {
    r.headers().get_all("set-cookie").iter().find_map(|v| {
        v.to_str()
            .ok()?
            .strip_prefix(&format!("{name}="))
            .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
    })
}

/// An attribute value as a browser reads it (the pages escape `/` too).
fn html_unescape(v: &str) -> String {
    v.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `rd` of a login URL, decoded.
fn rd_of(location: &str) -> Option<String> {
    url::Url::parse(location)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned())
}

/// The app's view of a request that reached it (the echo app's JSON).
fn app_saw(r: Response, what: &str) -> serde_json::Value {
    let status = r.status();
    let body = r.text().unwrap();
    assert_eq!(status, 200, "{what}: {body}");
    echo_json(&body)
}

/// Sign in through the proxy like a browser: follow the login redirect, GET
/// the page (CSRF cookie + token), POST the form; returns (location, session).
fn sign_in(p: &Proxy, login_url: &str, user: (&str, &str)) -> (String, String) {
    let page = client()
        .get(login_url)
        .header("accept", BROWSER)
        .send()
        .unwrap();
    assert_eq!(page.status(), 200, "{:?}: login page", p.kind);
    let csrf_cookie = set_cookie_value(&page, "gatehouse_csrf").expect("csrf cookie");
    let html = page.text().unwrap();
    let field = |name: &str| {
        html.split(&format!("name=\"{name}\" value=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(html_unescape)
            .unwrap_or_default()
    };
    let (csrf, rd) = (field("csrf"), field("rd"));
    let r = client()
        .post(p.url("/_auth/login"))
        .header("accept", BROWSER)
        .header("cookie", format!("gatehouse_csrf={csrf_cookie}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", user.0),
            ("password", user.1),
            ("rd", rd.as_str()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303, "{:?}: sign-in", p.kind);
    let session = set_cookie_value(&r, "gatehouse_session").expect("session cookie");
    (header(&r, "location"), session)
}

/// Everything a user of `kind` is promised, through the real proxy.
fn through_the_proxy(kind: Kind) {
    let Some(bin) = kind.binary() else {
        println!(
            "SKIP: {} not found (set {} or put it on PATH)",
            kind.program(),
            kind.env_var()
        );
        return;
    };
    let port = free_port();
    let g = example_gatehouse(port);
    let p = Proxy::start(kind, &bin, port, g.port);
    let get = |path: &str| client().get(p.url(path));
    let spoofing = |rb: RequestBuilder| {
        rb.header("Remote-User", "admin")
            .header("remote-groups", "admin")
            .header("X-Auth-Request-User", "admin")
            .header("X-Auth-Method", "admin")
    };

    // A browser without a credential goes to the sign-in page, with rd.
    let r = get("/posts/1?x=1&y=%C3%A9")
        .header("accept", BROWSER)
        .send()
        .unwrap();
    assert_eq!(r.status(), 302, "{kind:?}: browser without a credential");
    let login = header(&r, "location");
    assert!(
        login.starts_with(&p.url("/_auth/login?rd=")),
        "{kind:?}: {login}"
    );
    let original = p.url("/posts/1?x=1&y=%C3%A9");
    assert_eq!(rd_of(&login).as_deref(), Some(original.as_str()));

    // Signing in there leads back to the original URL, which now works.
    let (back, session) = sign_in(&p, &login, ALICE);
    assert_eq!(back, original, "{kind:?}: back where the user was");
    let seen = app_saw(
        spoofing(get("/posts/1?x=1&y=%C3%A9"))
            .header("accept", BROWSER)
            .header("cookie", format!("gatehouse_session={session}"))
            .send()
            .unwrap(),
        "session cookie",
    );
    assert_eq!(seen["path"], "/posts/1");
    assert_eq!(seen["query"], "x=1&y=%C3%A9");
    let h = &seen["headers"];
    assert_eq!(h["remote-user"], "alice", "{kind:?}: {h}");
    assert_eq!(h["remote-groups"], "editor");
    assert_eq!(h["remote-email"], "alice@example.com");
    assert_eq!(h["x-auth-request-user"], "alice");
    assert_eq!(h["x-auth-method"], "session");

    // A browser's POST is redirected too (303 where the proxy passes it on;
    // nginx turns Gatehouse's 401 + Location into its own 302).
    let r = client()
        .post(p.url("/posts/1"))
        .header("accept", BROWSER)
        .body("x=1")
        .send()
        .unwrap();
    let want = if kind == Kind::Nginx { 302 } else { 303 };
    assert_eq!(r.status(), want, "{kind:?}: browser POST");
    assert!(header(&r, "location").starts_with(&p.url("/_auth/login")));

    // An API client without a credential gets 401 with the challenge.
    let r = get("/posts/1")
        .header("accept", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401, "{kind:?}: API client");
    assert!(
        header(&r, "www-authenticate").starts_with("Basic realm="),
        "{kind:?}"
    );
    assert_eq!(header(&r, "location"), "");

    // Basic: the app sees the identity, never the client's claims.
    let seen = app_saw(
        spoofing(get("/posts/2"))
            .header("authorization", basic(ALICE.0, ALICE.1))
            .send()
            .unwrap(),
        "basic",
    );
    let h = &seen["headers"];
    assert_eq!(h["remote-user"], "alice", "{kind:?}: {h}");
    assert_eq!(h["remote-groups"], "editor");
    assert_eq!(h["x-auth-method"], "basic");
    assert!(
        !h.to_string().contains("admin"),
        "{kind:?}: spoofed value reached the app: {h}"
    );

    // An API key (header or bearer) acts as its user.
    for (name, value) in [
        ("x-api-key", KEY.to_owned()),
        ("authorization", format!("Bearer {KEY}")),
    ] {
        let seen = app_saw(
            spoofing(get("/posts/3"))
                .header(name, value)
                .send()
                .unwrap(),
            name,
        );
        let h = &seen["headers"];
        assert_eq!(h["remote-user"], "deploy-bot", "{kind:?}: {h}");
        assert_eq!(h["remote-groups"], "viewer");
        assert_eq!(h["x-auth-method"], "api_key");
        assert!(!h.to_string().contains("admin"), "{kind:?}: {h}");
    }

    // Known but not permitted: 403.
    let r = get("/admin/x")
        .header("authorization", basic(ALICE.0, ALICE.1))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "{kind:?}: forbidden path");
    let r = get("/posts/3")
        .header("x-api-key", KEY)
        .header("accept", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .delete(p.url("/posts/3"))
        .header("x-api-key", KEY)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "{kind:?}: viewer deleting");

    // A public path lets anyone through, still without their claims.
    let seen = app_saw(spoofing(get("/public/x")).send().unwrap(), "public path");
    let h = &seen["headers"];
    assert!(!h.to_string().contains("admin"), "{kind:?}: {h}");

    // `Remote_User` is the same variable to many frameworks, and copying
    // `Remote-User` does not replace it: nginx and Caddy drop header names
    // with `_`; Traefik passes them on, so Gatehouse refuses the request.
    let r = get("/posts/4")
        .header("authorization", basic(ALICE.0, ALICE.1))
        .header("Remote_User", "admin")
        .send()
        .unwrap();
    if kind != Kind::Traefik {
        let seen = app_saw(r, "underscore variant");
        assert!(
            !seen["headers"].to_string().contains("admin"),
            "{}",
            seen["headers"]
        );
    } else {
        let status = r.status();
        let body = r.text().unwrap();
        assert_eq!(status, 400, "{kind:?}: underscore variant: {body}");
        assert!(body.contains("spoofed_identity_header"), "{body}");
    }
    drop(p);
    drop(g);
}

#[test]
fn traefik_forward_auth_end_to_end() {
    through_the_proxy(Kind::Traefik);
}

#[test]
fn nginx_auth_request_end_to_end() {
    through_the_proxy(Kind::Nginx);
}

#[test]
fn caddy_forward_auth_end_to_end() {
    through_the_proxy(Kind::Caddy);
}

/// The README shows the example files as they are tested (after their
/// leading comment block).
#[test]
fn the_readme_shows_the_tested_configs() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for name in ["traefik.yml", "dynamic.yml", "nginx.conf", "Caddyfile"] {
        let text = example(name);
        let body: Vec<&str> = text
            .lines()
            .skip_while(|l| l.starts_with('#') || l.trim().is_empty())
            .collect();
        assert!(
            readme.contains(&body.join("\n")),
            "README.md does not show config/forward-auth/{name} as it is"
        );
    }
}

// ---------------------------------------------------------------------------
// The verify endpoints asked directly (from loopback, trusted by default)
// ---------------------------------------------------------------------------

/// The example Gatehouse with its public URL at proxy port 8000.
fn direct() -> &'static Gatehouse {
    static G: OnceLock<Gatehouse> = OnceLock::new();
    G.get_or_init(|| example_gatehouse(8000))
}

/// `rb` describing `method proto://host uri` the way Traefik and Caddy do.
fn described(
    rb: RequestBuilder,
    method: &str,
    proto: &str,
    host: &str,
    uri: &str,
) -> RequestBuilder {
    rb.header("x-forwarded-method", method)
        .header("x-forwarded-proto", proto)
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", uri)
        .header("x-forwarded-for", "203.0.113.9")
}

/// A Traefik-style verify request for `method http://host uri`.
fn verify(g: &Gatehouse, method: &str, host: &str, uri: &str) -> RequestBuilder {
    described(
        client().get(g.url("/_auth/verify")),
        method,
        "http",
        host,
        uri,
    )
}

fn verify_nginx(g: &Gatehouse, method: &str, url: &str) -> RequestBuilder {
    client()
        .get(g.url("/_auth/verify/nginx"))
        .header("x-original-method", method)
        .header("x-original-url", url)
}

fn error_code(r: Response) -> String {
    let body = r.text().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    v["error"].as_str().unwrap_or("").to_owned()
}

const IDENTITY_HEADERS: [&str; 9] = [
    "remote-user",
    "remote-email",
    "remote-name",
    "remote-groups",
    "remote-permissions",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-groups",
    "x-auth-method",
];

#[test]
fn verify_answers_200_with_the_identity_headers() {
    let g = direct();
    let r = verify(g, "GET", "127.0.0.1:8000", "/posts/1")
        .header("authorization", basic(ALICE.0, ALICE.1))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "remote-user"), "alice");
    assert_eq!(header(&r, "remote-email"), "alice@example.com");
    assert_eq!(header(&r, "remote-name"), "Alice Example");
    assert_eq!(header(&r, "remote-groups"), "editor");
    assert_eq!(header(&r, "remote-permissions"), "posts:*");
    assert_eq!(header(&r, "x-auth-request-groups"), "editor");
    assert_eq!(header(&r, "x-auth-method"), "basic");
    assert_eq!(header(&r, "content-length"), "0");
    assert_eq!(r.text().unwrap(), "");

    // A public path: 200, and every identity header present but empty, so a
    // proxy that copies them overwrites the client's.
    let r = verify(g, "GET", "127.0.0.1:8000", "/public/x")
        .header("remote-user", "admin")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    for name in IDENTITY_HEADERS {
        assert_eq!(
            r.headers().get(name).map(|v| v.as_bytes()),
            Some(&b""[..]),
            "{name}"
        );
    }

    // nginx flavour: the same answer.
    let r = verify_nginx(g, "GET", "http://127.0.0.1:8000/posts/1")
        .header("x-api-key", KEY)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "remote-user"), "deploy-bot");
    assert_eq!(header(&r, "x-auth-method"), "api_key");
}

#[test]
fn verify_decides_for_the_described_method_and_path_not_its_own() {
    let g = direct();
    // The API key may read posts (GET, HEAD), not write them.
    for (method, want) in [("GET", 200), ("HEAD", 200), ("POST", 403), ("DELETE", 403)] {
        let r = verify(g, method, "127.0.0.1:8000", "/posts/1")
            .header("x-api-key", KEY)
            .send()
            .unwrap();
        assert_eq!(r.status(), want, "{method}");
        let r = verify_nginx(g, method, "http://127.0.0.1:8000/posts/1")
            .header("x-api-key", KEY)
            .send()
            .unwrap();
        assert_eq!(r.status(), want, "nginx {method}");
    }
    // The query is not part of the path: `/public/x?admin` is public, and
    // Caddy's copy of the client's query on the verify URL changes nothing.
    let caddy = |uri: &str, query: &str| {
        let rb = client().get(g.url(&format!("/_auth/verify?{query}")));
        described(rb, "GET", "http", "127.0.0.1:8000", uri)
    };
    let r = caddy("/public/x?next=/admin/x", "next=/admin/x")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = caddy("/admin/x?x=1", "x=1")
        .header("authorization", basic(ALICE.0, ALICE.1))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[test]
fn verify_sends_browsers_to_sign_in_with_the_original_url() {
    let g = direct();
    let login = "http://127.0.0.1:8000/_auth/login";
    for (method, want) in [("GET", 302), ("HEAD", 302), ("POST", 303), ("PUT", 303)] {
        let r = verify(g, method, "127.0.0.1:8000", "/posts/1?a=1&b=%2F")
            .header("accept", BROWSER)
            .send()
            .unwrap();
        assert_eq!(r.status(), want, "{method}");
        let location = header(&r, "location");
        assert!(location.starts_with(login), "{location}");
        assert_eq!(
            rd_of(&location).as_deref(),
            Some("http://127.0.0.1:8000/posts/1?a=1&b=%2F")
        );
    }
    // nginx: 401 with the same Location (nginx accepts no 302).
    let r = verify_nginx(g, "GET", "http://127.0.0.1:8000/p?q=1")
        .header("accept", BROWSER)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        rd_of(&header(&r, "location")).as_deref(),
        Some("http://127.0.0.1:8000/p?q=1")
    );
    // API clients: 401 JSON and the challenge, no Location.
    for r in [
        verify(g, "GET", "127.0.0.1:8000", "/posts/1")
            .send()
            .unwrap(),
        verify_nginx(g, "GET", "http://127.0.0.1:8000/posts/1")
            .send()
            .unwrap(),
    ] {
        assert_eq!(r.status(), 401);
        assert!(header(&r, "www-authenticate").starts_with("Basic realm="));
        assert_eq!(header(&r, "location"), "");
        assert_eq!(error_code(r), "unauthorized");
    }
}

#[test]
fn rd_returns_only_to_allowed_hosts() {
    let g = direct();
    let login = "http://127.0.0.1:8000/_auth/login";
    for host in ["evil.example", "127.0.0.1.evil.example:8000"] {
        let r = verify(g, "GET", host, "/x")
            .header("accept", BROWSER)
            .send()
            .unwrap();
        assert_eq!(r.status(), 302, "{host}");
        assert_eq!(header(&r, "location"), login, "{host}: no rd");
        let r = verify_nginx(g, "GET", &format!("http://{host}/x"))
            .header("accept", BROWSER)
            .send()
            .unwrap();
        assert_eq!(r.status(), 401, "{host}");
        assert_eq!(header(&r, "location"), login, "{host}: no rd");
    }
}

#[test]
fn one_sign_in_covers_the_session_domain_and_rd_returns_to_its_subdomains() {
    let g = Gatehouse::start(
        r#"
server:
  listen: "127.0.0.1:{port}"
public_url: "https://auth.example.test"
upstream:
  url: "echo:"
session:
  domain: example.test
"#,
    );
    let browser = |proto: &str, host: &str| {
        let rb = client()
            .get(g.url("/_auth/verify"))
            .header("accept", BROWSER);
        described(rb, "GET", proto, host, "/page").send().unwrap()
    };
    let r = browser("https", "wiki.example.test");
    assert_eq!(r.status(), 302);
    let location = header(&r, "location");
    assert!(location.starts_with("https://auth.example.test/_auth/login?rd="));
    assert_eq!(
        rd_of(&location).as_deref(),
        Some("https://wiki.example.test/page")
    );
    // Not over plain http, and not to another domain.
    for (proto, host) in [("http", "wiki.example.test"), ("https", "example.org")] {
        let r = browser(proto, host);
        assert_eq!(
            header(&r, "location"),
            "https://auth.example.test/_auth/login",
            "{proto}://{host}"
        );
    }
    // The sign-in page follows the same rule.
    let r = client()
        .get(g.url("/_auth/login?rd=https://wiki.example.test/page"))
        .send()
        .unwrap();
    assert!(html_unescape(&r.text().unwrap()).contains("value=\"https://wiki.example.test/page\""));
}

#[test]
fn verify_from_an_untrusted_address_is_refused_without_looking_at_the_claim() {
    // Only 10/8 is trusted, so this (loopback) test client is not.
    for trusted in ["[\"10.0.0.0/8\"]", "[]"] {
        let g = Gatehouse::start(&format!(
            "server:\n  listen: \"127.0.0.1:{{port}}\"\n  trusted_proxies: {trusted}\n\
             upstream:\n  url: \"echo:\"\nrules:\n  - path: /public/**\n    policy: public\n"
        ));
        for r in [
            verify(&g, "GET", "127.0.0.1", "/public/x").send().unwrap(),
            verify_nginx(&g, "GET", "http://127.0.0.1/public/x")
                .send()
                .unwrap(),
        ] {
            assert_eq!(r.status(), 400, "{trusted}");
            assert_eq!(header(&r, "content-type"), "application/json", "{trusted}");
            let body = r.text().unwrap();
            assert!(body.contains("\"untrusted_forwarder\""), "{body}");
            assert!(body.contains("127.0.0.1 is not one"), "{body}");
        }
        // Inline requests are unaffected; X-Forwarded-For is just not believed.
        let r = client()
            .get(g.url("/public/x"))
            .header("x-forwarded-for", "6.6.6.6")
            .send()
            .unwrap();
        assert_eq!(
            echo_json(&r.text().unwrap())["headers"]["x-forwarded-for"],
            "127.0.0.1"
        );
    }
}

#[test]
fn inline_believes_loopback_forwarded_headers_by_default() {
    let g = direct();
    let r = client()
        .get(g.url("/public/x"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example.com")
        .send()
        .unwrap();
    let h = echo_json(&r.text().unwrap())["headers"].clone();
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "app.example.com");
}

#[test]
fn head_and_other_methods_on_the_verify_endpoint() {
    let g = direct();
    let head = || {
        let rb = client().head(g.url("/_auth/verify"));
        described(rb, "GET", "http", "127.0.0.1:8000", "/posts/1")
    };
    let r = head().header("x-api-key", KEY).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "remote-user"), "deploy-bot");
    assert_eq!(head().send().unwrap().status(), 401);
    for path in ["/_auth/verify", "/_auth/verify/nginx"] {
        let rb = client().post(g.url(path));
        let r = described(rb, "GET", "http", "127.0.0.1:8000", "/public/x")
            .send()
            .unwrap();
        assert_eq!(r.status(), 405, "{path}");
        assert_eq!(header(&r, "allow"), "GET, HEAD");
        assert_eq!(error_code(r), "method_not_allowed");
    }
}

/// What is wrong, the headers that say it, the `error` code expected.
type BadCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn malformed_descriptions_get_a_precise_400() {
    let g = direct();
    let cases: &[BadCase] = &[
        ("no headers", &[], "missing_forwarded_header"),
        (
            "no method",
            &[("x-forwarded-host", "a"), ("x-forwarded-uri", "/")],
            "missing_forwarded_header",
        ),
        (
            "relative uri",
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-host", "a"),
                ("x-forwarded-uri", "x"),
            ],
            "invalid_forwarded_header",
        ),
        (
            "host list",
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-host", "a.com, b.com"),
                ("x-forwarded-uri", "/"),
            ],
            "invalid_forwarded_header",
        ),
        (
            "proto",
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-proto", "gopher"),
                ("x-forwarded-host", "a"),
                ("x-forwarded-uri", "/"),
            ],
            "invalid_forwarded_header",
        ),
        (
            "dot segments",
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-host", "a"),
                ("x-forwarded-uri", "/public/../admin/x"),
            ],
            "invalid_path",
        ),
        (
            "broken basic",
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-host", "a"),
                ("x-forwarded-uri", "/posts/1"),
                ("authorization", "Basic !!!"),
            ],
            "malformed_credentials",
        ),
    ];
    for (what, headers, code) in cases {
        let mut rb = client().get(g.url("/_auth/verify"));
        for (k, v) in *headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().unwrap();
        assert_eq!(r.status(), 400, "{what}");
        assert_eq!(error_code(r), *code, "{what}");
    }
    // Bytes that are not text, straight on the wire: 400, not 500.
    let req = b"GET /_auth/verify HTTP/1.1\r\nHost: t\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Host: a\r\nX-Forwarded-Uri: /\xff\xfe\r\nConnection: close\r\n\r\n";
    let resp = raw_bytes(g.addr(), req).unwrap();
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    let req = b"GET /_auth/verify/nginx HTTP/1.1\r\nHost: t\r\nX-Original-Method: GET\r\nX-Original-URL: http://a/\xc3\x28\r\nConnection: close\r\n\r\n";
    let resp = raw_bytes(g.addr(), req).unwrap();
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");

    // nginx: a missing description is Gatehouse's 400 (nginx fails closed with
    // 500); a bad path or credential, the client's fault, becomes 403.
    for (url, extra, want) in [
        ("/relative", None, 400),
        ("http://a/public/../admin", None, 403),
        (
            "http://a/posts/1",
            Some(("authorization", "Basic !!!")),
            403,
        ),
    ] {
        let mut rb = verify_nginx(g, "GET", url);
        if let Some((k, v)) = extra {
            rb = rb.header(k, v);
        }
        assert_eq!(rb.send().unwrap().status(), want, "{url}");
    }
}

/// The proxy in front forwards the client's request as it came, override and
/// rewrite headers included: the verify endpoints judge every reading the
/// app behind it could make, as the inline proxy does.
#[test]
fn verify_judges_every_reading_the_app_could_make() {
    let g = direct();
    let alice = basic(ALICE.0, ALICE.1);
    // Path parameters: Tomcat serves `/admin/x` for both.
    for uri in ["/admin;x/x", "/admin%3bx/x"] {
        let r = verify(g, "GET", "127.0.0.1:8000", uri)
            .header("authorization", &alice)
            .send()
            .unwrap();
        assert_eq!(r.status(), 403, "{uri}");
    }
    let r = verify(g, "GET", "127.0.0.1:8000", "/assets/..;/admin/x")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r), "invalid_path");
    // The API key may read posts; an override that makes the read a delete
    // reaches the app, so it is judged (and refused).
    let r = verify(g, "GET", "127.0.0.1:8000", "/posts/1")
        .header("x-api-key", KEY)
        .header("x-http-method-override", "DELETE")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = verify_nginx(g, "POST", "http://127.0.0.1:8000/posts/1")
        .header("x-api-key", KEY)
        .header("x-method-override", "GET")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "nginx: the POST itself is still judged");
    // A rewrite header the client added is a second path (Traefik and Caddy
    // pass every client header through).
    let r = verify(g, "GET", "127.0.0.1:8000", "/")
        .header("x-rewrite-url", "/admin/x")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    // Host spellings meet host rules: `/admin/**` is for 127.0.0.1 only.
    for host in ["127.0.0.1.", "127.0.0.1.:80"] {
        let r = verify(g, "GET", host, "/admin/x")
            .header("authorization", &alice)
            .send()
            .unwrap();
        assert_eq!(r.status(), 403, "{host}");
    }
}

// ---------------------------------------------------------------------------
// Single sign-on behind the proxy
// ---------------------------------------------------------------------------

/// Real OpenID providers (`GATEHOUSE_TEST_OIDC_PROVIDER`), as in tests/oidc.rs.
#[path = "common/oidc.rs"]
mod oidc;

/// A browser's request through the proxy: its cookies from `jar` (by origin
/// and path), no redirects followed, the cookies the answer sets kept.
fn browse(jar: &oidc::ProviderCookies, url: &str) -> Response {
    let url = reqwest::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let mut rb = client().get(url.clone()).header("accept", BROWSER);
    if let Some(cookies) = jar.header_for(&url) {
        rb = rb.header("cookie", cookies);
    }
    let r = rb.send().unwrap();
    jar.store(&url, &r);
    r
}

/// Traefik in front of the app, Gatehouse its forward-auth target with one
/// real OpenID provider: a browser without a session is sent to the sign-in
/// page, signs in at the provider, and lands back on the app it asked for,
/// as the provider's user. Everything the browser visits is on the proxy's
/// origin (`/_auth/` routed to Gatehouse), so the provider's redirect URI is
/// the proxy's too.
#[test]
fn sso_through_traefik_forward_auth_ends_back_at_the_app() {
    let kind = Kind::Traefik;
    let Some(bin) = kind.binary() else {
        println!(
            "SKIP: {} not found (set {} or put it on PATH)",
            kind.program(),
            kind.env_var()
        );
        return;
    };
    let Some(op_dir) =
        oidc::oidc_provider_dir_or_skip("sso_through_traefik_forward_auth_ends_back_at_the_app")
    else {
        return;
    };
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let callback = format!("{public_url}/_auth/oidc/callback");
    let corp = oidc::OidcProvider::start(
        &op_dir,
        free_port(),
        &oidc::OpOptions::new("gatehouse-corp", "secret-of-corp", &callback).user(
            oidc::OpUser::new("sam")
                .sub("corp-sam")
                .email("sam@corp.test")
                .groups(&["devs"]),
        ),
    );
    // The example Gatehouse, plus the provider.
    let yaml = swap(
        &example("gatehouse.yaml"),
        EXAMPLE_GATEHOUSE,
        "127.0.0.1:{port}",
    );
    let mut yaml = swap(&yaml, EXAMPLE_PROXY, &format!("127.0.0.1:{port}"));
    yaml.push_str(&format!(
        "\noidc:\n  providers:\n    - id: corp\n      display_name: \"Corp SSO\"\n      \
         issuer: \"{}\"\n      client_id: gatehouse-corp\n      client_secret: secret-of-corp\n      \
         scopes: [openid, email, profile, groups]\n      role_map: {{ devs: editor }}\n",
        corp.issuer()
    ));
    let g = Gatehouse::start(&yaml);
    let p = Proxy::start(kind, &bin, port, g.port);
    let jar = oidc::ProviderCookies::new();

    // No session: Gatehouse (through Traefik) sends the browser to sign in.
    let original = p.url("/posts/1?x=1&y=%C3%A9");
    let r = browse(&jar, &original);
    assert_eq!(r.status(), 302, "browser without a session");
    let login = header(&r, "location");
    assert!(login.starts_with(&p.url("/_auth/login?rd=")), "{login}");
    assert_eq!(rd_of(&login).as_deref(), Some(original.as_str()));

    // The sign-in page (on the proxy's origin: Traefik routes `/_auth/` to
    // Gatehouse) offers the provider's button, carrying rd along; clicking it
    // goes off to the provider with the binding cookie set.
    let r = browse(&jar, &login);
    assert_eq!(r.status(), 200, "the sign-in page");
    let page = r.text().unwrap();
    let href = page
        .split("class=\"button provider\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a provider button")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let rd: String = url::form_urlencoded::byte_serialize(original.as_bytes()).collect();
    assert_eq!(href, format!("/_auth/oidc/corp/authorize?rd={rd}"));
    let authorize = p.url(&href);
    let r = browse(&jar, &authorize);
    let to = header(&r, "location");
    assert_eq!(
        r.status(),
        302,
        "authorize: {}",
        r.text().unwrap_or_default()
    );
    assert!(to.starts_with(&corp.issuer()), "{to}");
    assert_eq!(
        oidc::query_param(&to, "redirect_uri").as_deref(),
        Some(callback.as_str())
    );
    let back = oidc::sign_in_at_provider(&client(), &jar, &to, "sam", &callback);

    // The callback, through Traefik, signs the browser in and returns it to
    // the app URL it first asked for.
    let r = browse(&jar, &back);
    let status = r.status();
    let location = header(&r, "location");
    assert_eq!(status, 303, "callback: {}", r.text().unwrap_or_default());
    assert_eq!(location, original, "back where the browser was");
    let sent = jar.header_for(&reqwest::Url::parse(&original).unwrap());
    assert!(
        sent.is_some_and(|c| c.contains("gatehouse_session=")),
        "the session cookie is sent to the app's URLs"
    );

    // That request now reaches the app as the provider's user.
    let seen = app_saw(browse(&jar, &location), "after single sign-on");
    assert_eq!(seen["path"], "/posts/1");
    assert_eq!(seen["query"], "x=1&y=%C3%A9");
    let h = &seen["headers"];
    assert_eq!(h["remote-user"], "sam", "{h}");
    assert_eq!(h["remote-email"], "sam@corp.test", "{h}");
    assert_eq!(h["remote-groups"], "editor", "{h}");
    assert_eq!(h["x-auth-request-user"], "sam", "{h}");
    assert_eq!(h["x-auth-method"], "session", "{h}");
    drop(p);
    drop(g);
    drop(corp);
}
