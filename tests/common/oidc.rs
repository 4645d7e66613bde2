//! Real OpenID Connect providers for the single sign-on tests: npm
//! `oidc-provider` (a certified OP), one `node tests/oidc-provider/op.mjs`
//! process per provider, each on its own loopback port (so its own issuer),
//! with one confidential client and a fixed set of users.
//!
//! Include it next to the common harness:
//!
//! ```ignore
//! mod common;
//! #[path = "common/oidc.rs"]
//! mod oidc;
//! ```
//!
//! Found through `GATEHOUSE_TEST_OIDC_PROVIDER` (the `tests/oidc-provider`
//! directory with its `node_modules` installed by
//! `npm ci --prefix tests/oidc-provider`); without it the tests SKIP.
//!
//! The test plays the browser: the provider's cookies live in a
//! [`ProviderCookies`] jar (the crate's reqwest has no cookie store), and
//! [`sign_in_at_provider`] / [`end_session_at_provider`] fill in the
//! provider's own pages (its development login form accepts any password).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Url;

/// The `tests/oidc-provider` directory named by `GATEHOUSE_TEST_OIDC_PROVIDER`,
/// or `None` (after printing a SKIP line) when the variable is unset.
/// Panics when it is set but `oidc-provider` is not installed there.
pub fn oidc_provider_dir_or_skip(test: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("GATEHOUSE_TEST_OIDC_PROVIDER") else {
        println!("SKIP {test}: GATEHOUSE_TEST_OIDC_PROVIDER is not set, so no OpenID provider ran");
        return None;
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("op.mjs").is_file(),
        "GATEHOUSE_TEST_OIDC_PROVIDER={} is set but has no op.mjs: point it at tests/oidc-provider",
        dir.display()
    );
    assert!(
        dir.join("node_modules/oidc-provider/package.json").is_file(),
        "GATEHOUSE_TEST_OIDC_PROVIDER={} is set but oidc-provider is not installed there: run `npm ci --prefix tests/oidc-provider`",
        dir.display()
    );
    Some(dir)
}

/// One user of a provider. `login` is the name typed into the provider's
/// login form; the rest are the claims it releases (by scope: `openid` →
/// `sub`, `email` → `email`, `email_verified`, `profile` → `name`,
/// `preferred_username`, `groups` → `groups`).
#[derive(Clone, Debug)]
pub struct OpUser {
    pub login: String,
    pub sub: String,
    /// `None`: the provider has no e-mail address for this user.
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    pub groups: Vec<String>,
    /// More claims, merged last (so they can also replace the ones above).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl OpUser {
    /// `login` with `sub` = login, e-mail `login@example.test` (verified),
    /// name and preferred_username = login, no groups.
    pub fn new(login: &str) -> OpUser {
        OpUser {
            login: login.to_owned(),
            sub: login.to_owned(),
            email: Some(format!("{login}@example.test")),
            email_verified: true,
            name: Some(login.to_owned()),
            preferred_username: Some(login.to_owned()),
            groups: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    pub fn sub(mut self, sub: &str) -> Self {
        self.sub = sub.to_owned();
        self
    }

    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }

    pub fn no_email(mut self) -> Self {
        self.email = None;
        self
    }

    pub fn email_verified(mut self, verified: bool) -> Self {
        self.email_verified = verified;
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    pub fn groups(mut self, groups: &[&str]) -> Self {
        self.groups = groups.iter().map(|g| g.to_string()).collect();
        self
    }

    pub fn claim(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extra.insert(name.to_owned(), value);
        self
    }

    /// The claims object op.mjs serves for this user.
    pub fn claims(&self) -> serde_json::Value {
        let mut c = serde_json::Map::new();
        c.insert("sub".into(), self.sub.clone().into());
        if let Some(email) = &self.email {
            c.insert("email".into(), email.clone().into());
            c.insert("email_verified".into(), self.email_verified.into());
        }
        if let Some(name) = &self.name {
            c.insert("name".into(), name.clone().into());
        }
        if let Some(u) = &self.preferred_username {
            c.insert("preferred_username".into(), u.clone().into());
        }
        c.insert("groups".into(), self.groups.clone().into());
        c.extend(self.extra.clone());
        serde_json::Value::Object(c)
    }
}

/// How one provider is set up: its one client and its users.
#[derive(Clone, Debug)]
pub struct OpOptions {
    pub client_id: String,
    pub client_secret: String,
    /// The client's one registered redirect_uri (the RP's callback).
    pub redirect_uri: String,
    pub post_logout_redirect_uri: Option<String>,
    /// Where the provider POSTs `logout_token` on logout (with `sid`).
    pub backchannel_logout_uri: Option<String>,
    pub users: Vec<OpUser>,
    /// Leave `groups` out of the ID token; only userinfo has them.
    pub groups_in_userinfo_only: bool,
}

impl OpOptions {
    pub fn new(client_id: &str, client_secret: &str, redirect_uri: &str) -> OpOptions {
        OpOptions {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            post_logout_redirect_uri: None,
            backchannel_logout_uri: None,
            users: Vec::new(),
            groups_in_userinfo_only: false,
        }
    }

    pub fn user(mut self, user: OpUser) -> Self {
        self.users.push(user);
        self
    }

    pub fn post_logout_redirect_uri(mut self, uri: &str) -> Self {
        self.post_logout_redirect_uri = Some(uri.to_owned());
        self
    }

    pub fn backchannel_logout_uri(mut self, uri: &str) -> Self {
        self.backchannel_logout_uri = Some(uri.to_owned());
        self
    }

    pub fn groups_in_userinfo_only(mut self) -> Self {
        self.groups_in_userinfo_only = true;
        self
    }

    fn env(&self, port: u16, keys_file: &Path) -> Vec<(String, String)> {
        let users: serde_json::Map<String, serde_json::Value> = self
            .users
            .iter()
            .map(|u| (u.login.clone(), u.claims()))
            .collect();
        let mut env = vec![
            ("OP_PORT".to_owned(), port.to_string()),
            ("OP_CLIENT_ID".to_owned(), self.client_id.clone()),
            ("OP_CLIENT_SECRET".to_owned(), self.client_secret.clone()),
            ("OP_REDIRECT".to_owned(), self.redirect_uri.clone()),
            (
                "OP_POST_LOGOUT".to_owned(),
                self.post_logout_redirect_uri.clone().unwrap_or_default(),
            ),
            (
                "OP_BACKCHANNEL".to_owned(),
                self.backchannel_logout_uri.clone().unwrap_or_default(),
            ),
            (
                "OP_USERS".to_owned(),
                serde_json::Value::Object(users).to_string(),
            ),
            (
                "OP_GROUPS_IN_USERINFO_ONLY".to_owned(),
                if self.groups_in_userinfo_only {
                    "1"
                } else {
                    ""
                }
                .to_owned(),
            ),
            ("OP_KEYS_FILE".to_owned(), keys_file.display().to_string()),
        ];
        env.retain(|(_, v)| !v.is_empty());
        env
    }
}

/// A running `node op.mjs`. Killed on drop (and when the test binary dies).
pub struct OidcProvider {
    dir: PathBuf,
    port: u16,
    options: OpOptions,
    /// Holds the signing key, so a restarted provider keeps it.
    state: tempfile::TempDir,
    process: Option<Process>,
    log: Arc<Mutex<String>>,
}

struct Process {
    pid: u32,
    exited: Arc<AtomicBool>,
}

impl OidcProvider {
    /// Start a provider for `options` on `127.0.0.1:port` (its issuer is
    /// `http://127.0.0.1:port`); returns once it listens.
    pub fn start(dir: &Path, port: u16, options: &OpOptions) -> OidcProvider {
        let mut op = OidcProvider {
            dir: dir.to_owned(),
            port,
            options: options.clone(),
            state: tempfile::tempdir().unwrap(),
            process: None,
            log: Arc::new(Mutex::new(String::new())),
        };
        op.spawn();
        op
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn options(&self) -> &OpOptions {
        &self.options
    }

    /// `issuer + path`, e.g. `url("/.well-known/openid-configuration")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer())
    }

    /// Its discovery document.
    pub fn discovery(&self) -> serde_json::Value {
        reqwest::blocking::get(self.url("/.well-known/openid-configuration"))
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("discovery at {}: {e}", self.issuer()))
    }

    /// Everything the process printed so far (start-up warnings, errors such
    /// as a failed back-channel logout POST).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn running(&self) -> bool {
        self.process
            .as_ref()
            .is_some_and(|p| !p.exited.load(Ordering::SeqCst))
    }

    /// Kill the process and wait until it is gone (its port is then closed).
    /// The provider forgets its sessions, grants and codes; a restart keeps
    /// its signing key.
    pub fn stop(&mut self) {
        let Some(p) = self.process.take() else { return };
        unsafe {
            libc::kill(p.pid as i32, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !p.exited.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the OpenID provider did not die");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop (if running) and start again: same port, client, users and key.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Stop and start again on the same port with the same key but other
    /// options (e.g. a redirect_uri only known once the RP runs).
    pub fn restart_with(&mut self, options: &OpOptions) {
        self.stop();
        self.options = options.clone();
        self.spawn();
    }

    fn spawn(&mut self) {
        let env = self
            .options
            .env(self.port, &self.state.path().join("jwk.json"));
        let dir = self.dir.clone();
        let exited = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        // The child gets SIGKILL when the thread that spawned it ends, so the
        // thread lives until the child is gone.
        let exited_in_thread = exited.clone();
        std::thread::spawn(move || {
            let mut cmd = Command::new("node");
            cmd.arg("op.mjs")
                .current_dir(&dir)
                .envs(env)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            match cmd.spawn() {
                Ok(mut child) => {
                    let out = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
                    let _ = tx.send(Ok((child.id(), out)));
                    let _ = child.wait();
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
            exited_in_thread.store(true, Ordering::SeqCst);
        });
        let (pid, (stdout, stderr)) = rx
            .recv()
            .unwrap()
            .unwrap_or_else(|e| panic!("cannot run `node op.mjs` in {}: {e}", self.dir.display()));
        self.process = Some(Process {
            pid,
            exited: exited.clone(),
        });

        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut err = BufReader::new(stderr);
            let mut line = String::new();
            while err.read_line(&mut line).unwrap_or(0) > 0 {
                log.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let (ready_tx, ready_rx) = mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut out = BufReader::new(stdout);
            let mut line = String::new();
            while out.read_line(&mut line).unwrap_or(0) > 0 {
                log.lock().unwrap().push_str(&line);
                if let Some(issuer) = line.trim_end().strip_prefix("ready ") {
                    let _ = ready_tx.send(issuer.to_owned());
                }
                line.clear();
            }
        });

        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match ready_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(issuer) => {
                    assert_eq!(issuer, self.issuer(), "op.mjs announced another issuer");
                    return;
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if exited.load(Ordering::SeqCst) {
                        // Let the readers drain what it said before dying.
                        std::thread::sleep(Duration::from_millis(200));
                        panic!(
                            "the OpenID provider on port {} exited during start-up:\n{}",
                            self.port,
                            self.log()
                        );
                    }
                }
                Err(_) => {
                    let log = self.log();
                    self.stop();
                    panic!(
                        "the OpenID provider on port {} did not become ready:\n{log}",
                        self.port
                    );
                }
            }
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(p) = self.process.take() {
            unsafe {
                libc::kill(p.pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// The cookies providers set in "the browser", by origin (`host:port`; so two
/// providers on 127.0.0.1 keep separate sessions, as if on separate hosts)
/// and path. Keep one per simulated browser: a second sign-in with the same
/// jar finds the provider's session.
#[derive(Default)]
pub struct ProviderCookies {
    jar: Mutex<Vec<StoredCookie>>,
}

#[derive(Clone, Debug)]
struct StoredCookie {
    origin: String,
    name: String,
    value: String,
    path: String,
}

fn origin_of(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

impl ProviderCookies {
    pub fn new() -> ProviderCookies {
        ProviderCookies::default()
    }

    /// Forget every cookie (a fresh browser).
    pub fn clear(&self) {
        self.jar.lock().unwrap().clear();
    }

    /// The value of cookie `name` for the origin of `url`, any path.
    pub fn get(&self, url: &str, name: &str) -> Option<String> {
        let origin = origin_of(&Url::parse(url).expect("a URL"));
        self.jar
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.origin == origin && c.name == name)
            .map(|c| c.value.clone())
    }

    /// The `Cookie` header a browser would send to `url`.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let origin = origin_of(url);
        let jar = self.jar.lock().unwrap();
        let mut matching: Vec<&StoredCookie> = jar
            .iter()
            .filter(|c| c.origin == origin && path_matches(&c.path, url.path()))
            .collect();
        // Longer paths first, as browsers do.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let header = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ");
        (!header.is_empty()).then_some(header)
    }

    /// Take in the `Set-Cookie` headers of a response to `url`.
    pub fn store(&self, url: &Url, response: &reqwest::blocking::Response) {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Ok(line) = value.to_str() {
                self.store_line(url, line);
            }
        }
    }

    fn store_line(&self, url: &Url, line: &str) {
        let mut parts = line.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        let default_path = match url.path().rfind('/') {
            Some(0) | None => "/".to_owned(),
            Some(i) => url.path()[..i].to_owned(),
        };
        let mut path = default_path;
        let mut expired = value.is_empty();
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "path" if v.trim().starts_with('/') => path = v.trim().to_owned(),
                "max-age" => expired |= v.trim().parse::<i64>().is_ok_and(|s| s <= 0),
                // Deletions are dated 1970; nothing the provider sets expires
                // within a test otherwise.
                "expires" => expired |= v.contains("1970"),
                _ => {}
            }
        }
        let origin = origin_of(url);
        let mut jar = self.jar.lock().unwrap();
        jar.retain(|c| !(c.origin == origin && c.name == name && c.path == path));
        if !expired {
            jar.push(StoredCookie {
                origin,
                name,
                value,
                path,
            });
        }
    }
}

/// One request as a browser would send it (cookies from `cookies`, no
/// redirects followed), storing the cookies the answer sets.
fn browser_request(
    client: &reqwest::blocking::Client,
    cookies: &ProviderCookies,
    url: &Url,
    form: Option<&[(&str, &str)]>,
) -> reqwest::blocking::Response {
    let mut req = match form {
        Some(form) => client.post(url.clone()).form(form),
        None => client.get(url.clone()),
    };
    if let Some(header) = cookies.header_for(url) {
        req = req.header(reqwest::header::COOKIE, header);
    }
    let what = if form.is_some() { "POST" } else { "GET" };
    let response = req
        .send()
        .unwrap_or_else(|e| panic!("{what} {url} at the OpenID provider: {e}"));
    cookies.store(url, &response);
    response
}

fn location(response: &reqwest::blocking::Response, base: &Url) -> Option<Url> {
    if !response.status().is_redirection() {
        return None;
    }
    let loc = response
        .headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()?;
    Some(
        base.join(loc)
            .unwrap_or_else(|e| panic!("bad Location {loc:?} from {base}: {e}")),
    )
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in one tag's text (`<input ... >`).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(&format!("{name}=")) {
        let at = from + i;
        from = at + name.len() + 1;
        // A whole attribute name, not the tail of another one.
        if at > 0 && !lower.as_bytes()[at - 1].is_ascii_whitespace() {
            continue;
        }
        let rest = &tag[from..];
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
            _ => rest
                .split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or(""),
        };
        return Some(html_unescape(value));
    }
    None
}

/// A page's first form: its action and its hidden fields.
struct Form {
    action: Option<String>,
    hidden: BTreeMap<String, String>,
}

fn first_form(html: &str) -> Option<Form> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<form")?;
    let end = lower[start..]
        .find("</form")
        .map_or(html.len(), |i| start + i);
    let tag_end = lower[start..].find('>').map_or(end, |i| start + i);
    let action = attribute(&html[start..tag_end], "action");
    let mut hidden = BTreeMap::new();
    let mut at = start;
    while let Some(i) = lower[at..end].find("<input") {
        let s = at + i;
        let e = lower[s..].find('>').map_or(end, |j| s + j);
        let tag = &html[s..e];
        if attribute(tag, "type").is_some_and(|t| t.eq_ignore_ascii_case("hidden")) {
            if let Some(name) = attribute(tag, "name") {
                hidden.insert(name, attribute(tag, "value").unwrap_or_default());
            }
        }
        at = e;
    }
    Some(Form { action, hidden })
}

fn short(body: &str) -> String {
    let body = body.trim();
    if body.len() > 3000 {
        let mut cut = 3000;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &body[..cut])
    } else {
        body.to_owned()
    }
}

/// Play the browser from the provider's authorization URL (where the RP sent
/// it) to the RP's callback: follow the provider's redirects and fill in its
/// dev pages — log in as `login` (any password), then consent — until a
/// redirect goes to a URL starting with `redirect_prefix`. Returns that URL
/// (with `code`, `state` and `iss`) without requesting it. A `login` that is
/// none of [`OpOptions::users`] ends there too, with `error=access_denied`.
///
/// `client` must not follow redirects (`common::client()`); the provider's
/// cookies live in `cookies`, so with a jar that already holds a provider
/// session the login (and a consent already given) is skipped, whatever
/// `login` says. Panics on anything else (an error page, a status other than
/// 200 or a redirect, a loop).
pub fn sign_in_at_provider(
    client: &reqwest::blocking::Client,
    cookies: &ProviderCookies,
    authorize_url: &str,
    login: &str,
    redirect_prefix: &str,
) -> String {
    let mut url = Url::parse(authorize_url)
        .unwrap_or_else(|e| panic!("not an authorization URL ({e}): {authorize_url}"));
    let mut form: Option<Vec<(&str, &str)>> = None;
    let mut logged_in = false;
    let mut consents = 0;
    for _ in 0..30 {
        let response = browser_request(client, cookies, &url, form.as_deref());
        let status = response.status();
        if let Some(next) = location(&response, &url) {
            if next.as_str().starts_with(redirect_prefix) {
                return next.to_string();
            }
            url = next;
            form = None;
            continue;
        }
        let body = response.text().unwrap_or_default();
        assert!(
            status == 200,
            "the OpenID provider answered {status} at {url}:\n{}",
            short(&body)
        );
        let page = first_form(&body).unwrap_or_else(|| {
            panic!(
                "the OpenID provider's page at {url} has no form:\n{}",
                short(&body)
            )
        });
        let action = match &page.action {
            Some(a) => url
                .join(a)
                .unwrap_or_else(|e| panic!("bad form action {a:?}: {e}")),
            None => url.clone(),
        };
        match page.hidden.get("prompt").map(String::as_str) {
            Some("login") => {
                assert!(
                    !logged_in,
                    "the OpenID provider at {url} asks to log in again after logging in as {login:?}"
                );
                logged_in = true;
                form = Some(vec![("prompt", "login"), ("login", login), ("password", "x")]);
            }
            Some("consent") => {
                consents += 1;
                assert!(
                    consents <= 3,
                    "the OpenID provider at {url} keeps asking for consent"
                );
                form = Some(vec![("prompt", "consent")]);
            }
            _ => panic!(
                "unexpected page at the OpenID provider ({url}) while going to {redirect_prefix}:\n{}",
                short(&body)
            ),
        }
        url = action;
    }
    panic!("no redirect to {redirect_prefix} after 30 steps at the OpenID provider (last: {url})");
}

/// Play the browser through RP-initiated logout: load `end_session_url` (the
/// provider's `/session/end?id_token_hint=…&post_logout_redirect_uri=…` where
/// the RP sent it), confirm ("Yes, sign me out": its hidden `xsrf` plus
/// `logout=yes`, posted to `/session/end/confirm`) and return where the
/// provider then redirects (the post_logout_redirect_uri with `state`, or its
/// own `/session/end/success`) without requesting it.
///
/// The provider ends its session and POSTs a `logout_token` to every
/// `backchannel_logout_uri` of a client in that session before it answers
/// the confirmation, so by the time this returns the RP has it (or the
/// provider logged why not: [`OidcProvider::log`]).
pub fn end_session_at_provider(
    client: &reqwest::blocking::Client,
    cookies: &ProviderCookies,
    end_session_url: &str,
) -> String {
    let url = Url::parse(end_session_url)
        .unwrap_or_else(|e| panic!("not an end-session URL ({e}): {end_session_url}"));
    let response = browser_request(client, cookies, &url, None);
    let status = response.status();
    let body = response.text().unwrap_or_default();
    assert!(
        status == 200,
        "the OpenID provider answered {status} at {url}:\n{}",
        short(&body)
    );
    let page = first_form(&body).unwrap_or_else(|| {
        panic!(
            "the OpenID provider's logout page at {url} has no form:\n{}",
            short(&body)
        )
    });
    let xsrf = page.hidden.get("xsrf").unwrap_or_else(|| {
        panic!(
            "no xsrf field in the OpenID provider's logout page:\n{}",
            short(&body)
        )
    });
    let action = match &page.action {
        Some(a) => url.join(a).unwrap(),
        None => url.join("/session/end/confirm").unwrap(),
    };
    let response = browser_request(
        client,
        cookies,
        &action,
        Some(&[("xsrf", xsrf), ("logout", "yes")]),
    );
    let status = response.status();
    match location(&response, &action) {
        Some(next) => next.to_string(),
        None => panic!(
            "the OpenID provider answered {status} to the logout confirmation:\n{}",
            short(&response.text().unwrap_or_default())
        ),
    }
}

/// The payload of a JWT (no signature check).
pub fn jwt_payload(jwt: &str) -> serde_json::Value {
    jwt_part(jwt, 1)
}

/// The header of a JWT (`alg`, `kid`, `typ`).
pub fn jwt_header(jwt: &str) -> serde_json::Value {
    jwt_part(jwt, 0)
}

fn jwt_part(jwt: &str, i: usize) -> serde_json::Value {
    let part = jwt
        .split('.')
        .nth(i)
        .unwrap_or_else(|| panic!("not a JWT: {jwt}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("not base64url ({e}): {jwt}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {jwt}"))
}

/// A PKCE pair: (code_verifier, S256 code_challenge).
pub fn pkce_pair() -> (String, String) {
    use rand::RngCore;
    use sha2::Digest;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The value of query parameter `name` in `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
