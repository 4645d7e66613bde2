//! Test harness: starts the real `gatehouse` binary on a free loopback port
//! and talks to it from the outside.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// A port nobody listens on right now, handed out once per test binary.
///
/// Picked below Linux's ephemeral range (32768–60999), so the test's own
/// client connections cannot take it between this call and the server's
/// bind, and never twice, so two servers started in parallel cannot share it
/// (Pingora's listeners use `SO_REUSEPORT`, which would let them).
pub fn free_port() -> u16 {
    use rand::Rng;
    static TAKEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = rand::thread_rng();
    for _ in 0..10_000 {
        let port = rng.gen_range(20_000..32_000);
        if !taken.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

/// argon2id hash of `password`, made by the binary under test.
pub fn hash_password(password: &str) -> String {
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn hash-password");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `sha256:<hex>` of an API key.
pub fn api_key_hash(key: &str) -> String {
    gatehouse::authn::api_key_hash(key)
}

/// A running Gatehouse process.
pub struct Gatehouse {
    pub port: u16,
    pub metrics_port: u16,
    pub dir: tempfile::TempDir,
    pid: u32,
    /// Set by the thread that waits for the process, once it has exited.
    status: Arc<Mutex<Option<ExitStatus>>>,
}

impl Gatehouse {
    /// Start `gatehouse serve` with `yaml`, where `{port}` and `{metrics_port}`
    /// are replaced by free ports. The process dies with the test binary.
    pub fn start(yaml: &str) -> Gatehouse {
        Self::start_with_env(yaml, &[])
    }

    pub fn start_with_env(yaml: &str, env: &[(&str, &str)]) -> Gatehouse {
        Self::start_on(free_port(), yaml, env)
    }

    /// [`Gatehouse::start_with_env`] on a port chosen beforehand (for peers
    /// that must know Gatehouse's address before it starts).
    pub fn start_on(port: u16, yaml: &str, env: &[(&str, &str)]) -> Gatehouse {
        let metrics_port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let text = yaml
            .replace("{port}", &port.to_string())
            .replace("{metrics_port}", &metrics_port.to_string());
        let path: PathBuf = dir.path().join("gatehouse.yaml");
        std::fs::write(&path, &text).unwrap();
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.replace("{port}", &port.to_string())))
            .collect();
        // Each instance gets its own SQLite file unless the test names a store.
        if !text.contains("store:") && !env.iter().any(|(k, _)| k == "GATEHOUSE__STORE__URL") {
            let db = dir.path().join("gatehouse.db");
            env.push((
                "GATEHOUSE__STORE__URL".into(),
                format!("sqlite://{}", db.display()),
            ));
        }
        let (tx, rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(None));
        let exit = status.clone();
        // Spawned from a thread that lives as long as the test binary, so the
        // parent-death signal fires when the binary exits, not when one test ends.
        std::thread::spawn(move || {
            let mut cmd = Command::new(BIN);
            cmd.arg("serve").arg("-c").arg(&path).envs(env).env(
                "RUST_LOG",
                std::env::var("GATEHOUSE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            );
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child: std::io::Result<Child> = cmd.spawn();
            let pid = child.as_ref().map(|c| c.id()).ok();
            let _ = tx.send(pid);
            if let Ok(mut c) = child {
                if let Ok(s) = c.wait() {
                    *exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
                }
            }
            loop {
                std::thread::park();
            }
        });
        let pid = rx.recv().unwrap().expect("gatehouse did not start");
        let g = Gatehouse {
            port,
            metrics_port,
            dir,
            pid,
            status,
        };
        g.wait_ready(yaml.contains("cert_path"));
        g
    }

    /// Poll the health endpoint (or, for a TLS listener, the port) until it answers.
    fn wait_ready(&self, tls: bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if !std::path::Path::new(&format!("/proc/{}", self.pid)).exists() {
                panic!("gatehouse exited during start-up (see its stderr above)");
            }
            if tls && TcpStream::connect(self.addr()).is_ok() {
                return;
            }
            if let Ok(r) = raw_request(
                self.addr(),
                "GET /_auth/healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            ) {
                if r.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gatehouse on port {} did not become ready", self.port);
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn metrics(&self) -> String {
        reqwest::blocking::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .and_then(|r| r.text())
            .unwrap_or_default()
    }

    /// The config file this instance was started with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gatehouse.yaml")
    }

    /// Send a signal (e.g. `libc::SIGHUP`) to the process.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid as i32, sig);
        }
    }

    /// The process id (for reading `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Is the process still running?
    pub fn alive(&self) -> bool {
        std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// How the process ended, once it has (`None` while it runs).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for the process to end and return how it did. `bound` is a
    /// liveness limit for a process that never stops, not a timing assertion.
    pub fn wait_exit(&self, bound: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exit_status() {
                return status;
            }
            assert!(
                start.elapsed() < bound,
                "gatehouse (pid {}) still runs {bound:?} later",
                self.pid
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&self) {
        unsafe {
            libc::kill(self.pid as i32, libc::SIGKILL);
        }
    }
}

/// A client that follows no redirects.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Send raw bytes, read until the server closes or `Connection: close` ends it.
pub fn raw_request(addr: SocketAddr, request: &str) -> std::io::Result<String> {
    raw_bytes(addr, request.as_bytes())
}

pub fn raw_bytes(addr: SocketAddr, request: &[u8]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Read one HTTP/1.1 response (headers + Content-Length body) from a stream.
pub fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

/// Parse the echo app's JSON body.
pub fn echo_json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not echo JSON ({e}): {body}"))
}

/// A fresh, empty PostgreSQL database for this test, when
/// `GATEHOUSE_TEST_POSTGRES` names a server (an admin URL such as
/// `postgres://postgres@127.0.0.1:5432/postgres`). `None` means: skip.
pub fn postgres_database(test: &str) -> Option<String> {
    use sqlx::Connection;
    let admin = std::env::var("GATEHOUSE_TEST_POSTGRES").ok()?;
    let name = format!("gh_{}_{}_{}", test, std::process::id(), free_port());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("GATEHOUSE_TEST_POSTGRES={admin} is set but unreachable: {e}")
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

/// Run a `gatehouse` subcommand; returns (exit code, stdout, stderr).
pub fn gatehouse_cmd(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("GATEHOUSE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Poll until `check` holds and return how long it took. The 15 s bound is a
/// liveness limit for a stuck server, not a timing assertion.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if check() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} never happened");
}

/// Like [`postgres_database`], but prints the SKIP line itself when no
/// server is configured.
pub fn postgres_or_skip(test: &str) -> Option<String> {
    let url = postgres_database(test);
    if url.is_none() {
        println!(
            "SKIP {test}: GATEHOUSE_TEST_POSTGRES is not set, so the PostgreSQL half did not run"
        );
    }
    url
}

/// The value a response sets for cookie `name`.
pub fn set_cookie_value(r: &reqwest::blocking::Response, name: &str) -> Option<String> {
    r.headers().get_all("set-cookie").iter().find_map(|c| {
        c.to_str()
            .ok()?
            .strip_prefix(&format!("{name}="))
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
    })
}

/// GET a CSRF-protected page: (CSRF cookie, the form's CSRF token, the HTML).
pub fn csrf_form(g: &Gatehouse, path: &str) -> (String, String, String) {
    let r = client().get(g.url(path)).send().unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    let cookie = set_cookie_value(&r, "gatehouse_csrf").expect("a CSRF cookie");
    let html = r.text().unwrap();
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_owned();
    (cookie, token, html)
}

/// A config on `store_url` with the usual test listeners, plus `extra` YAML.
pub fn store_yaml(store_url: &str, extra: &str) -> String {
    format!(
        "server:\n  listen: \"127.0.0.1:{{port}}\"\n  metrics_listen: \"127.0.0.1:{{metrics_port}}\"\npublic_url: \"http://127.0.0.1:{{port}}\"\nupstream:\n  url: \"echo:\"\nstore:\n  url: \"{store_url}\"\n{extra}"
    )
}

/// `gatehouse user add NAME --password-stdin [extra args]` on `store_url`.
pub fn add_store_user(store_url: &str, dir: &Path, name: &str, pw: &str, extra: &[&str]) {
    let cli = dir.join("cli.yaml");
    std::fs::write(
        &cli,
        store_yaml(store_url, "")
            .replace("{port}", "1")
            .replace("{metrics_port}", "2"),
    )
    .unwrap();
    let mut args = vec!["user", "add", name, "--password-stdin", "-c"];
    let cli = cli.display().to_string();
    args.push(&cli);
    args.extend_from_slice(extra);
    let (code, _, err) = gatehouse_cmd(&args, Some(pw));
    assert_eq!(code, 0, "{err}");
}

/// A WebSocket client connection through Gatehouse.
pub type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Open a WebSocket to `/ws` on Gatehouse's `port`, with `X-API-Key: key`
/// when given; the upgrade's answer, or why there was none.
pub async fn websocket(
    port: u16,
    key: Option<&str>,
) -> Result<
    (
        WebSocket,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    String,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://127.0.0.1:{port}/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    if let Some(key) = key {
        let value = key
            .parse()
            .map_err(|_| "a key that is not a header value")?;
        req.headers_mut().insert("x-api-key", value);
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| e.to_string())
}

/// A loopback listener served on a thread of its own (a current-thread tokio
/// runtime): each accepted connection goes to `serve`, run as a task.
pub fn serve_loopback<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                if let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream));
                }
            }
        });
    });
    addr
}
