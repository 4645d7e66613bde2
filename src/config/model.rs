//! The validated configuration model, and the validation that builds it.
//!
//! Everything here is already checked: addresses resolve, patterns compile,
//! roles exist, hashes parse. Validation keeps going after a problem so the
//! user sees every error in one run.

use super::raw::{self, RawConfig};
use super::ConfigError;
use crate::accounts::users::valid_name;
use crate::directory::{ApiKeyRecord, Directory, Roles, UserRecord, UserStatus};
use crate::identity::{IdentityField, UserKind};
use crate::permission::{Permission, PermissionSet};
use crate::policy::{Access, AccessRule, PathCase, Policy};
use crate::redirect::RedirectPolicy;
use crate::regulation::RegulationSettings;
use crate::request::{ReadSettings, Semicolons};
use crate::session::SessionSettings;
use crate::tokens::external::IssuerSettings;
use crate::tokens::{KeyMaterial, TokenSettings};
use crate::two_factor::cipher::{SecretCipher, MIN_KEY_CHARS};
use crate::two_factor::TwoFactorSettings;
use http::{HeaderName, Method};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// The whole validated configuration.
#[derive(Debug)]
pub struct Config {
    pub server: ServerSettings,
    pub public_url: Url,
    pub upstream: UpstreamSettings,
    /// `sqlite://…` or `postgres://…`.
    pub store_url: String,
    pub session: SessionSettings,
    pub portal: PortalSettings,
    pub policy: Policy,
    pub directory: Directory,
    pub headers: HeaderSettings,
    pub cache: CacheSettings,
    pub redirect: RedirectPolicy,
    pub tokens: TokenSettings,
    pub trusted_issuers: Vec<IssuerSettings>,
    pub regulation: RegulationSettings,
    pub two_factor: TwoFactorSettings,
    /// How request paths are read (`paths:`).
    pub paths: ReadSettings,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub trusted_proxies: Vec<IpNet>,
    pub threads: usize,
    pub grace_period: Duration,
    pub tls: Option<TlsSettings>,
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// Where allowed requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTarget {
    /// The built-in echo app.
    Echo,
    /// A real app, resolved at start.
    Http {
        addr: SocketAddr,
        tls: bool,
        /// Host name for SNI and certificate checks.
        host: String,
    },
}

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub target: UpstreamTarget,
    pub connect_timeout: Duration,
    pub read_timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// `/_auth`: no trailing slash.
    pub prefix: String,
    pub title: String,
}

/// One identity header: its name, the spelling sent on the wire, its field.
#[derive(Debug, Clone)]
pub struct IdentityHeader {
    pub name: HeaderName,
    /// As configured (`Remote-User`), kept as shared bytes so inserting the
    /// header upstream copies nothing.
    pub wire_name: bytes::Bytes,
    pub field: IdentityField,
}

/// The upstream identity headers, in configured order.
#[derive(Debug, Clone)]
pub struct HeaderSettings {
    pub names: Vec<IdentityHeader>,
    pub pass_credentials: bool,
    pub method_override: MethodOverride,
}

/// What happens to `X-HTTP-Method-Override` and kin (`headers.method_override`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MethodOverride {
    /// Removed before proxying: the app sees the method that was judged.
    #[default]
    Strip,
    /// Kept; the request must pass as the overriding method too.
    Judge,
}

#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub ttl: Duration,
    pub max_entries: u64,
}

/// Collects errors while validating one key path at a time.
struct Checker<'e> {
    errors: &'e mut Vec<ConfigError>,
}

impl Checker<'_> {
    fn err(&mut self, path: &str, message: impl AsRef<str>) {
        self.errors.push(ConfigError::at(path, message.as_ref()));
    }

    fn duration(&mut self, path: &str, value: Option<&str>, default: Duration) -> Duration {
        match value {
            None => default,
            Some(s) => parse_duration(s).unwrap_or_else(|e| {
                self.err(path, e.to_string());
                default
            }),
        }
    }

    fn addr(&mut self, path: &str, value: &str) -> Option<SocketAddr> {
        match value.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(a)) => Some(a),
            _ => {
                self.err(
                    path,
                    format!("`{value}` is not a `host:port` address that resolves"),
                );
                None
            }
        }
    }
}

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a duration like `30s`, `5m` or `24h` ({reason})")]
pub struct InvalidDuration {
    pub value: String,
    pub reason: String,
}

/// `30s`, `5m`, `24h`, `1h 30m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, InvalidDuration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| InvalidDuration {
        value: s.to_owned(),
        reason: e.to_string(),
    })
}

pub(super) fn validate(raw: RawConfig, errors: &mut Vec<ConfigError>) -> Option<Config> {
    let mut c = Checker { errors };
    let server = server(&mut c, raw.server);
    let public_url = public_url(
        &mut c,
        raw.public_url.as_deref(),
        server.as_ref().map(|s| s.listen),
    );
    let upstream = upstream(&mut c, raw.upstream);
    let store_url = raw
        .store
        .url
        .unwrap_or_else(|| "sqlite://data/gatehouse.db".to_owned());
    if !["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|p| store_url.starts_with(p))
    {
        c.err(
            "store.url",
            format!("`{store_url}` must start with `sqlite://` or `postgres://`"),
        );
    }
    let portal = portal(&mut c, raw.portal);
    let session = session(&mut c, raw.session, public_url.as_ref());
    let roles = roles(&mut c, raw.roles);
    let (paths, case) = paths(raw.paths);
    let policy = rules(&mut c, raw.rules, case);
    let users = users(&mut c, raw.users, &roles);
    let api_keys = api_keys(&mut c, raw.api_keys, &users);
    let headers = headers(&mut c, raw.headers);
    let cache = CacheSettings {
        ttl: c.duration(
            "cache.ttl",
            raw.cache.ttl.as_deref(),
            Duration::from_secs(300),
        ),
        max_entries: raw.cache.max_entries.unwrap_or(100_000),
    };
    if cache.max_entries == 0 {
        c.err("cache.max_entries", "must be at least 1");
    }
    let redirect = redirect(
        &mut c,
        raw.redirect,
        public_url.as_ref(),
        session.domain.as_deref(),
    );
    let tokens = tokens(&mut c, raw.tokens, public_url.as_ref());
    let trusted_issuers = trusted_issuers(&mut c, raw.trusted_issuers, &roles);
    let regulation = regulation(&mut c, raw.regulation);
    let two_factor = two_factor(&mut c, raw.two_factor, &portal.title, &roles);
    Some(Config {
        server: server?,
        public_url: public_url?,
        upstream: upstream?,
        store_url,
        session,
        portal,
        policy: policy?,
        directory: Directory {
            users,
            api_keys,
            roles,
        },
        headers,
        cache,
        redirect: redirect?,
        tokens,
        trusted_issuers,
        regulation,
        two_factor,
        paths,
    })
}

fn paths(raw: raw::RawPaths) -> (ReadSettings, PathCase) {
    let semicolons = match raw.allow_semicolons {
        Some(false) => Semicolons::Refuse,
        _ => Semicolons::JudgeBoth,
    };
    let case = match raw.case_insensitive {
        Some(true) => PathCase::Insensitive,
        _ => PathCase::Sensitive,
    };
    (ReadSettings { semicolons }, case)
}

/// Who may describe a request in `X-Forwarded-*` / `X-Original-*` when
/// `server.trusted_proxies` is absent: a proxy on the same host.
const DEFAULT_TRUSTED_PROXIES: [&str; 2] = ["127.0.0.0/8", "::1/128"];

fn server(c: &mut Checker, raw: raw::RawServer) -> Option<ServerSettings> {
    let listen = c.addr(
        "server.listen",
        raw.listen.as_deref().unwrap_or("0.0.0.0:8080"),
    );
    let metrics_listen = raw
        .metrics_listen
        .as_deref()
        .and_then(|m| c.addr("server.metrics_listen", m));
    let mut trusted_proxies = Vec::new();
    let listed = raw
        .trusted_proxies
        .unwrap_or_else(|| DEFAULT_TRUSTED_PROXIES.map(String::from).to_vec());
    for (i, p) in listed.iter().enumerate() {
        let parsed = p
            .parse::<IpNet>()
            .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => trusted_proxies.push(net),
            Err(_) => c.err(
                &format!("server.trusted_proxies[{i}]"),
                format!("`{p}` is not an IP address or CIDR range"),
            ),
        }
    }
    let threads = raw
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 || threads > 256 {
        c.err("server.threads", "must be between 1 and 256");
    }
    let grace_period = c.duration(
        "server.grace_period",
        raw.grace_period.as_deref(),
        Duration::from_secs(5),
    );
    let tls = raw.tls.map(|t| {
        for (key, p) in [("cert_path", &t.cert_path), ("key_path", &t.key_path)] {
            // Pingora panics on unreadable PEM at start-up: catch it here instead.
            let at = format!("server.tls.{key}");
            match std::fs::read_to_string(p) {
                Ok(pem) if pem.contains("-----BEGIN ") => {}
                Ok(_) => c.err(&at, format!("`{p}` is not a PEM file")),
                Err(e) => c.err(&at, format!("cannot read `{p}`: {e}")),
            }
        }
        TlsSettings {
            cert_path: t.cert_path.into(),
            key_path: t.key_path.into(),
        }
    });
    Some(ServerSettings {
        listen: listen?,
        metrics_listen,
        trusted_proxies,
        threads: threads.clamp(1, 256),
        grace_period,
        tls,
    })
}

fn public_url(c: &mut Checker, raw: Option<&str>, listen: Option<SocketAddr>) -> Option<Url> {
    let text = match raw {
        Some(t) => t.to_owned(),
        None => format!("http://localhost:{}", listen.map_or(8080, |l| l.port())),
    };
    match Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            if u.query().is_some() || u.fragment().is_some() || u.path() != "/" {
                c.err(
                    "public_url",
                    "must be an origin like `https://app.example.com` (no path, query or fragment)",
                );
            }
            Some(u)
        }
        _ => {
            c.err("public_url", format!("`{text}` is not an http(s) URL"));
            None
        }
    }
}

fn upstream(c: &mut Checker, raw: raw::RawUpstream) -> Option<UpstreamSettings> {
    let connect_timeout = c.duration(
        "upstream.connect_timeout",
        raw.connect_timeout.as_deref(),
        Duration::from_secs(5),
    );
    let read_timeout = raw
        .read_timeout
        .as_deref()
        .map(|r| c.duration("upstream.read_timeout", Some(r), Duration::from_secs(60)));
    let Some(url) = raw.url else {
        c.err(
            "upstream.url",
            "is required (`http://host:port`, or `echo:` for the built-in echo app)",
        );
        return None;
    };
    let target = if url == "echo:" {
        UpstreamTarget::Echo
    } else {
        let parsed = Url::parse(&url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        let Some(u) = parsed else {
            c.err(
                "upstream.url",
                format!("`{url}` is not `http://host:port`, `https://host:port` or `echo:`"),
            );
            return None;
        };
        if u.path() != "/" || u.query().is_some() {
            c.err(
                "upstream.url",
                "must not have a path or query: requests keep their own",
            );
        }
        let host = u
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let port = u.port_or_known_default().unwrap_or(80);
        let addr = c.addr(
            "upstream.url",
            &format!("{}:{port}", u.host_str().unwrap_or_default()),
        )?;
        UpstreamTarget::Http {
            addr,
            tls: u.scheme() == "https",
            host,
        }
    };
    Some(UpstreamSettings {
        target,
        connect_timeout,
        read_timeout,
    })
}

fn portal(c: &mut Checker, raw: raw::RawPortal) -> PortalSettings {
    let prefix = raw.prefix.unwrap_or_else(|| "/_auth".into());
    let ok = prefix.starts_with('/')
        && prefix.len() > 1
        && !prefix.ends_with('/')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'));
    if !ok {
        c.err("portal.prefix", format!("`{prefix}` must look like `/_auth`: a leading `/`, no trailing `/`, letters, digits, `_-./`"));
    }
    PortalSettings {
        prefix,
        title: raw.title.unwrap_or_else(|| "Gatehouse".into()),
    }
}

fn permission_list(c: &mut Checker, path: &str, list: &[String]) -> Vec<Permission> {
    let mut out = Vec::new();
    for (i, p) in list.iter().enumerate() {
        match p.parse::<Permission>() {
            Ok(perm) => out.push(perm),
            Err(e) => c.err(&format!("{path}[{i}]"), e.to_string()),
        }
    }
    out
}

fn roles(c: &mut Checker, raw: BTreeMap<String, Vec<String>>) -> Roles {
    let mut map = BTreeMap::new();
    map.insert(
        "admin".to_owned(),
        PermissionSet::new(vec![Permission::All]),
    );
    map.insert("user".to_owned(), PermissionSet::default());
    for (name, perms) in raw {
        if !valid_name(&name) {
            c.err(
                &format!("roles.{name}"),
                "role names use letters, digits, `_`, `-`, `.`",
            );
        }
        let list = permission_list(c, &format!("roles.{name}"), &perms);
        map.insert(name, PermissionSet::new(list));
    }
    Roles::new(map)
}

fn rules(c: &mut Checker, raw: raw::RawRules, case: PathCase) -> Option<Policy> {
    let default = match raw.default.as_deref() {
        None | Some("authenticated") => Access::Authenticated,
        Some("deny") => Access::Deny,
        Some(other) => {
            c.err(
                "rules.default",
                format!("`{other}` must be `authenticated` or `deny`"),
            );
            Access::Authenticated
        }
    };
    let mut compiled = Vec::new();
    for (i, r) in raw.rules.into_iter().enumerate() {
        let at = |k: &str| format!("rules[{i}].{k}");
        let access = match (r.policy.as_deref(), r.permission.as_deref()) {
            (Some(_), Some(_)) => {
                c.err(
                    &format!("rules[{i}]"),
                    "set `policy` or `permission`, not both",
                );
                continue;
            }
            (None, None) => {
                c.err(
                    &format!("rules[{i}]"),
                    "needs `policy` (public, authenticated, deny) or `permission`",
                );
                continue;
            }
            (Some("public"), None) => Access::Public,
            (Some("authenticated"), None) => Access::Authenticated,
            (Some("deny"), None) => Access::Deny,
            (Some(other), None) => {
                c.err(
                    &at("policy"),
                    format!("`{other}` must be `public`, `authenticated` or `deny`"),
                );
                continue;
            }
            (None, Some(p)) => match p.parse() {
                Ok(perm) => Access::Permission(perm),
                Err(e) => {
                    c.err(&at("permission"), e.to_string());
                    continue;
                }
            },
        };
        let methods = match r.methods {
            None => None,
            Some(list) => {
                let mut out = Vec::new();
                for (j, m) in list.iter().enumerate() {
                    let upper = m.to_ascii_uppercase();
                    match Method::from_bytes(upper.as_bytes()) {
                        Ok(method) if !upper.is_empty() => out.push(method),
                        _ => c.err(
                            &format!("rules[{i}].methods[{j}]"),
                            format!("`{m}` is not an HTTP method"),
                        ),
                    }
                }
                Some(out)
            }
        };
        let paths = r.path.map(raw::OneOrMany::into_vec);
        match AccessRule::new(Some(i), paths, methods, r.hosts, access, case) {
            Ok(rule) => compiled.push(rule),
            Err(e) => c.err(&format!("rules[{i}]"), e.to_string()),
        }
    }
    Some(Policy::new(compiled, default))
}

fn users(c: &mut Checker, raw: Vec<raw::RawUser>, roles: &Roles) -> BTreeMap<String, UserRecord> {
    let mut out = BTreeMap::new();
    for (i, u) in raw.into_iter().enumerate() {
        let at = |k: &str| format!("users[{i}].{k}");
        if !valid_name(&u.username) {
            c.err(
                &at("username"),
                format!(
                    "`{}` must be 1-128 letters, digits, `_`, `-`, `.`, `@`",
                    u.username
                ),
            );
        }
        if out.contains_key(&u.username) {
            c.err(
                &at("username"),
                format!("`{}` is declared twice", u.username),
            );
        }
        let kind = match u.kind.as_deref() {
            None | Some("user") => UserKind::User,
            Some("api") => UserKind::Api,
            Some(o) => {
                c.err(&at("type"), format!("`{o}` must be `user` or `api`"));
                UserKind::User
            }
        };
        let status = match u.status.as_deref() {
            None | Some("enabled") => UserStatus::Enabled,
            Some("disabled") => UserStatus::Disabled,
            Some(o) => {
                c.err(
                    &at("status"),
                    format!("`{o}` must be `enabled` or `disabled`"),
                );
                UserStatus::Disabled
            }
        };
        let role = u.role.unwrap_or_else(|| "user".into());
        if !roles.contains(&role) {
            c.err(
                &at("role"),
                format!("role `{role}` is not defined under `roles`"),
            );
        }
        if let Some(h) = &u.password_hash {
            if let Err(e) = crate::authn::password::check_phc(h) {
                c.err(&at("password_hash"), e);
            }
        }
        if let Some(e) = &u.email {
            if !e.contains('@') || e.chars().any(char::is_whitespace) {
                c.err(&at("email"), format!("`{e}` is not an email address"));
            }
        }
        out.insert(
            u.username.clone(),
            UserRecord {
                username: u.username,
                email: u.email,
                name: u.name,
                kind,
                status,
                role,
                password_hash: u.password_hash,
            },
        );
    }
    out
}

fn api_keys(
    c: &mut Checker,
    raw: Vec<raw::RawApiKey>,
    users: &BTreeMap<String, UserRecord>,
) -> Vec<ApiKeyRecord> {
    let mut out: Vec<ApiKeyRecord> = Vec::new();
    let mut names = HashSet::new();
    for (i, k) in raw.into_iter().enumerate() {
        let at = |f: &str| format!("api_keys[{i}].{f}");
        if !valid_name(&k.name) || !names.insert(k.name.clone()) {
            c.err(
                &at("name"),
                format!(
                    "`{}` must be a unique name of letters, digits, `_-.@`",
                    k.name
                ),
            );
        }
        let sha256 = k
            .hash
            .strip_prefix("sha256:")
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        let Some(sha256) = sha256 else {
            c.err(
                &at("hash"),
                "must be `sha256:` followed by 64 hex digits (see `gatehouse apikey generate`)",
            );
            continue;
        };
        if out.iter().any(|o| o.sha256 == sha256) {
            c.err(&at("hash"), "the same key is declared twice");
        }
        if let Some(u) = &k.user {
            if !users.contains_key(u) {
                c.err(
                    &at("user"),
                    format!("user `{u}` is not declared under `users`"),
                );
            }
        }
        let permissions = k
            .permissions
            .as_ref()
            .map(|p| permission_list(c, &at("permissions"), p));
        if k.user.is_none() && permissions.is_none() {
            c.err(
                &format!("api_keys[{i}]"),
                "bind the key to a `user` or give it `permissions`",
            );
        }
        let expires_at =
            k.expires
                .as_deref()
                .and_then(|e| match humantime::parse_rfc3339_weak(e) {
                    Ok(t) => Some(t),
                    Err(_) => {
                        c.err(
                            &at("expires"),
                            format!("`{e}` is not an RFC 3339 time like `2027-01-31T00:00:00Z`"),
                        );
                        None
                    }
                });
        out.push(ApiKeyRecord {
            name: k.name,
            sha256,
            owner: k.user,
            permissions,
            expires_at,
        });
    }
    out
}

fn headers(c: &mut Checker, raw: raw::RawHeaders) -> HeaderSettings {
    use IdentityField::*;
    let wanted = [
        ("user", raw.user, "Remote-User", User),
        ("email", raw.email, "Remote-Email", Email),
        ("name", raw.name, "Remote-Name", Name),
        ("groups", raw.groups, "Remote-Groups", Groups),
        (
            "permissions",
            raw.permissions,
            "Remote-Permissions",
            Permissions,
        ),
        (
            "auth_request_user",
            raw.auth_request_user,
            "X-Auth-Request-User",
            User,
        ),
        (
            "auth_request_email",
            raw.auth_request_email,
            "X-Auth-Request-Email",
            Email,
        ),
        (
            "auth_request_groups",
            raw.auth_request_groups,
            "X-Auth-Request-Groups",
            Groups,
        ),
        ("method", raw.method, "X-Auth-Method", Method),
    ];
    let mut names: Vec<IdentityHeader> = Vec::new();
    for (key, value, default, field) in wanted {
        let name = value.unwrap_or_else(|| default.to_owned());
        if name.is_empty() {
            continue;
        }
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) if names.iter().any(|n| n.name == h) => {
                c.err(&format!("headers.{key}"), format!("`{name}` is used twice"));
            }
            Ok(h) => names.push(IdentityHeader {
                name: h,
                wire_name: bytes::Bytes::from(name),
                field,
            }),
            Err(_) => c.err(
                &format!("headers.{key}"),
                format!("`{name}` is not a valid header name"),
            ),
        }
    }
    let method_override = match raw.method_override.as_deref() {
        None | Some("strip") => MethodOverride::Strip,
        Some("judge") => MethodOverride::Judge,
        Some(other) => {
            c.err(
                "headers.method_override",
                format!("`{other}` must be `strip` or `judge`"),
            );
            MethodOverride::Strip
        }
    };
    HeaderSettings {
        names,
        pass_credentials: raw.pass_credentials.unwrap_or(false),
        method_override,
    }
}

/// `rd` may go to `public_url`'s host, `redirect.allowed_domains`, and the
/// session cookie's domain (one sign-in covers it, so returning there is safe).
fn redirect(
    c: &mut Checker,
    raw: raw::RawRedirect,
    public_url: Option<&Url>,
    session_domain: Option<&str>,
) -> Option<RedirectPolicy> {
    let mut domains = Vec::new();
    for (i, d) in raw.allowed_domains.iter().enumerate() {
        let d = d
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .to_ascii_lowercase();
        if d.is_empty()
            || !d
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        {
            c.err(
                &format!("redirect.allowed_domains[{i}]"),
                format!("`{d}` is not a domain name"),
            );
        } else {
            domains.push(d);
        }
    }
    if let Some(d) = session_domain.filter(|d| !domains.iter().any(|known| known == d)) {
        domains.push(d.to_owned());
    }
    Some(RedirectPolicy::new(public_url?, domains))
}

fn session(c: &mut Checker, raw: raw::RawSession, public_url: Option<&Url>) -> SessionSettings {
    let cookie_name = raw
        .cookie_name
        .unwrap_or_else(|| "gatehouse_session".into());
    if cookie_name.is_empty()
        || !cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        c.err(
            "session.cookie_name",
            format!("`{cookie_name}` must be letters, digits, `_`, `-`, `.`"),
        );
    }
    let idle_timeout = c.duration(
        "session.idle_timeout",
        raw.idle_timeout.as_deref(),
        Duration::from_secs(3600),
    );
    let lifetime = c.duration(
        "session.lifetime",
        raw.lifetime.as_deref(),
        Duration::from_secs(12 * 3600),
    );
    if idle_timeout.is_zero() || lifetime.is_zero() {
        c.err(
            "session",
            "idle_timeout and lifetime must be longer than zero",
        );
    }
    let domain = raw
        .domain
        .map(|d| d.trim_start_matches('.').to_ascii_lowercase());
    if let Some(d) = &domain {
        if d.is_empty()
            || !d
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        {
            c.err("session.domain", format!("`{d}` is not a domain name"));
        }
    }
    SessionSettings {
        cookie_name,
        idle_timeout,
        lifetime,
        domain,
        secure: raw
            .secure
            .unwrap_or_else(|| public_url.is_none_or(|u| u.scheme() == "https")),
    }
}

fn tokens(c: &mut Checker, raw: raw::RawTokens, public_url: Option<&Url>) -> TokenSettings {
    let default_issuer = public_url.map_or(String::new(), |u| {
        u.as_str().trim_end_matches('/').to_owned()
    });
    let issuer = raw.issuer.unwrap_or(default_issuer);
    if issuer.is_empty() {
        c.err("tokens.issuer", "must not be empty");
    }
    let audience = raw.audience.unwrap_or_else(|| issuer.clone());
    let ttl = c.duration(
        "tokens.ttl",
        raw.ttl.as_deref(),
        Duration::from_secs(24 * 3600),
    );
    if ttl < Duration::from_secs(60) {
        c.err("tokens.ttl", "must be at least one minute");
    }
    let mut keys: Vec<KeyMaterial> = Vec::new();
    for (i, k) in raw.keys.iter().enumerate() {
        let at = |f: &str| format!("tokens.keys[{i}].{f}");
        if !valid_name(&k.kid) || keys.iter().any(|o| o.kid == k.kid) {
            c.err(
                &at("kid"),
                format!("`{}` must be a unique id of letters, digits, `_-.@`", k.kid),
            );
        }
        let parsed = match (&k.private_key, &k.public_key) {
            (Some(pem), None) => {
                KeyMaterial::from_private_pem(&k.kid, pem)
                    .map_err(|e| (at("private_key"), e.to_string()))
            }
            (None, Some(pem)) => {
                KeyMaterial::from_public_pem(&k.kid, pem)
                    .map_err(|e| (at("public_key"), e.to_string()))
            }
            _ => Err((
                format!("tokens.keys[{i}]"),
                "give `private_key` (or `private_key_file`) to sign, or `public_key` for a retired key"
                    .to_owned(),
            )),
        };
        match parsed {
            Ok(key) => keys.push(key),
            Err((path, e)) => c.err(&path, e),
        }
    }
    if !raw.keys.is_empty() && raw.keys.iter().all(|k| k.private_key.is_none()) {
        c.err(
            "tokens.keys",
            "at least one key needs a `private_key` to sign with",
        );
    }
    TokenSettings {
        issuer,
        audience,
        ttl,
        keys,
    }
}

fn trusted_issuers(
    c: &mut Checker,
    raw: Vec<raw::RawTrustedIssuer>,
    roles: &Roles,
) -> Vec<IssuerSettings> {
    use jsonwebtoken::Algorithm;
    let mut out: Vec<IssuerSettings> = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        let at = |f: &str| format!("trusted_issuers[{i}].{f}");
        if t.issuer.is_empty() || out.iter().any(|o| o.issuer == t.issuer) {
            c.err(&at("issuer"), "must be a non-empty issuer, listed once");
        }
        let audience = t.audience.map(raw::OneOrMany::into_vec).unwrap_or_default();
        if audience.is_empty() {
            c.err(
                &at("audience"),
                "is required: tokens meant for other applications must not open this one",
            );
        }
        let jwks_url = t.jwks_url.as_deref().and_then(|u| match Url::parse(u) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            _ => {
                c.err(&at("jwks_url"), format!("`{u}` is not an http(s) URL"));
                None
            }
        });
        if t.jwks_url.is_none() && Url::parse(&t.issuer).is_err() {
            c.err(
                &at("jwks_url"),
                "is required when `issuer` is not a URL to discover it from",
            );
        }
        let mut algorithms = Vec::new();
        for (j, a) in t
            .algorithms
            .unwrap_or_else(|| vec!["RS256".into()])
            .iter()
            .enumerate()
        {
            match a.parse::<Algorithm>() {
                Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) | Err(_) => c.err(
                    &format!("trusted_issuers[{i}].algorithms[{j}]"),
                    format!(
                        "`{a}` must be an asymmetric JWS algorithm (RS256, PS256, ES256, EdDSA, …)"
                    ),
                ),
                Ok(alg) => algorithms.push(alg),
            }
        }
        if algorithms.is_empty() {
            algorithms.push(Algorithm::RS256);
        }
        let default_role = t.default_role.unwrap_or_else(|| "user".into());
        if !roles.contains(&default_role) {
            c.err(
                &at("default_role"),
                format!("role `{default_role}` is not defined under `roles`"),
            );
        }
        for (claim, role) in &t.role_map {
            if !roles.contains(role) {
                c.err(
                    &format!("trusted_issuers[{i}].role_map.{claim}"),
                    format!("role `{role}` is not defined under `roles`"),
                );
            }
        }
        let leeway = c.duration(&at("leeway"), t.leeway.as_deref(), Duration::from_secs(5));
        out.push(IssuerSettings {
            issuer: t.issuer,
            audience,
            jwks_url,
            algorithms,
            username_claim: t.username_claim.unwrap_or_else(|| "sub".into()),
            roles_claim: t.roles_claim,
            role_map: t.role_map,
            default_role,
            leeway,
        });
    }
    out
}

fn regulation(c: &mut Checker, raw: raw::RawRegulation) -> RegulationSettings {
    let d = RegulationSettings::default();
    let settings = RegulationSettings {
        max_retries: raw.max_retries.unwrap_or(d.max_retries),
        max_retries_per_ip: raw.max_retries_per_ip.unwrap_or(d.max_retries_per_ip),
        find_time: c.duration(
            "regulation.find_time",
            raw.find_time.as_deref(),
            d.find_time,
        ),
        ban_time: c.duration("regulation.ban_time", raw.ban_time.as_deref(), d.ban_time),
    };
    if settings.max_retries > 0 && (settings.find_time.is_zero() || settings.ban_time.is_zero()) {
        c.err(
            "regulation",
            "find_time and ban_time must be longer than zero",
        );
    }
    settings
}

fn two_factor(
    c: &mut Checker,
    raw: raw::RawTwoFactor,
    title: &str,
    roles: &Roles,
) -> TwoFactorSettings {
    let d = TwoFactorSettings::default();
    // Apps split the label on `:`; a title borrowed as issuer loses them.
    let issuer = raw
        .issuer
        .unwrap_or_else(|| title.replace(':', "").trim().to_owned());
    if issuer.is_empty() || issuer.contains(':') {
        c.err(
            "two_factor.issuer",
            "must be a non-empty name without `:` (authenticator apps split on it)",
        );
    }
    let mut long_enough = |key: &str, value: Option<&str>| match value {
        Some(k) if k.chars().count() < MIN_KEY_CHARS => {
            c.err(
                key,
                format!(
                    "must be at least {MIN_KEY_CHARS} characters (try `openssl rand -base64 32`)"
                ),
            );
            false
        }
        _ => true,
    };
    let key = raw.encryption_key.as_deref();
    let previous = raw.previous_encryption_key.as_deref();
    let ok = long_enough("two_factor.encryption_key", key)
        & long_enough("two_factor.previous_encryption_key", previous);
    if previous.is_some() && (key.is_none() || key == previous) {
        c.err(
            "two_factor.previous_encryption_key",
            "needs a different `two_factor.encryption_key` to rotate to",
        );
    }
    let cipher = match key {
        Some(k) if ok => Some(SecretCipher::new(k, previous)),
        _ => None,
    };
    let mut required = std::collections::BTreeSet::new();
    for (i, role) in raw.required_for_roles.into_iter().enumerate() {
        if !roles.contains(&role) {
            c.err(
                &format!("two_factor.required_for_roles[{i}]"),
                format!("role `{role}` is not defined under `roles`"),
            );
        }
        required.insert(role);
    }
    if !required.is_empty() && cipher.is_none() {
        c.err(
            "two_factor.required_for_roles",
            "needs `two_factor.encryption_key` (or `encryption_key_file`): without it nobody can enrol",
        );
    }
    let pending_ttl = c.duration(
        "two_factor.pending_ttl",
        raw.pending_ttl.as_deref(),
        d.pending_ttl,
    );
    if pending_ttl.is_zero() {
        c.err("two_factor.pending_ttl", "must be longer than zero");
    }
    TwoFactorSettings {
        issuer,
        required_for_roles: required,
        cipher,
        pending_ttl,
    }
}
