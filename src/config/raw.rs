//! The YAML file schema, exactly as users write it.
//!
//! Every struct rejects unknown keys: a typo in a security configuration must
//! fail loudly instead of silently opening a door. Checking meaning is `sections` (for
//! what `config` owns) and the `settings` module (for the rest).

use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Listeners, threads, trusted proxies.
    #[serde(default)]
    pub server: RawServer,
    /// The externally visible URL of Gatehouse (and, in inline mode, of the app).
    pub public_url: Option<String>,
    /// Where inline mode sends allowed requests.
    #[serde(default)]
    pub upstream: RawUpstream,
    /// Where users (and sessions) are stored.
    #[serde(default)]
    pub store: RawStore,
    /// The session cookie and its lifetimes.
    #[serde(default)]
    pub session: RawSession,
    /// The portal prefix and title.
    #[serde(default)]
    pub portal: RawPortal,
    /// Role name → permission list (`resource:action`, `resource:*`, `*`).
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
    /// Access rules; either a plain list or `{default, rules}`.
    #[serde(default)]
    pub rules: RawRules,
    /// Read-only users declared in the file.
    #[serde(default)]
    pub users: Vec<RawUser>,
    /// API keys declared in the file (hashes only).
    #[serde(default)]
    pub api_keys: Vec<RawApiKey>,
    /// Names of the identity headers sent upstream.
    #[serde(default)]
    pub headers: RawHeaders,
    /// The verified-credential cache.
    #[serde(default)]
    pub cache: RawCache,
    /// Where `rd` may send a user after login.
    #[serde(default)]
    pub redirect: RawRedirect,
    /// Gatehouse's own JWTs: issuer, lifetime, signing keys.
    #[serde(default)]
    pub tokens: RawTokens,
    /// External issuers whose bearer JWTs are accepted.
    #[serde(default)]
    pub trusted_issuers: Vec<RawTrustedIssuer>,
    /// Limits on failed sign-ins.
    #[serde(default)]
    pub regulation: RawRegulation,
    /// TOTP second factors.
    #[serde(default)]
    pub two_factor: RawTwoFactor,
    /// Single sign-on providers.
    #[serde(default)]
    pub oidc: RawOidc,
    /// The SMTP server mail goes through; none: mail waits in the outbox.
    pub smtp: Option<RawSmtp>,
    /// Who may create their own account.
    #[serde(default)]
    pub registration: RawRegistration,
    /// How request paths are read.
    #[serde(default)]
    pub paths: RawPaths,
    /// The rule for new passwords.
    #[serde(default)]
    pub passwords: RawPasswords,
    /// The audit trail.
    #[serde(default)]
    pub audit: RawAudit,
}

/// `paths:` — how request paths are read, to match how the app reads them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPaths {
    /// `;` in paths: allowed and judged with and without path parameters
    /// (default true); false refuses such requests with 400.
    pub allow_semicolons: Option<bool>,
    /// Match path patterns case-insensitively, for apps that route so (IIS,
    /// ASP.NET); default false.
    pub case_insensitive: Option<bool>,
}

/// `server:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Address of the proxy listener, `host:port` (default `0.0.0.0:8080`).
    pub listen: Option<String>,
    /// Address of the Prometheus `/metrics` listener; none when absent.
    pub metrics_listen: Option<String>,
    /// Addresses or CIDRs whose `X-Forwarded-*` / `X-Original-*` headers are
    /// believed (inline `X-Forwarded-For` chains, forward-auth requests).
    /// Absent: loopback only (`127.0.0.0/8`, `::1`); `[]`: nobody.
    pub trusted_proxies: Option<Vec<String>>,
    /// Proxy worker threads, sharing one listener (default: number of CPUs).
    pub threads: Option<usize>,
    /// How long a SIGTERM waits for in-flight requests (default `5s`; whole
    /// seconds, rounded up).
    pub grace_period: Option<String>,
    /// TLS for the proxy listener.
    pub tls: Option<RawTls>,
}

/// `server.tls:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain file.
    pub cert_path: String,
    /// PEM private key file.
    pub key_path: String,
}

/// `upstream:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// `http://host:port`, `https://host:port`, or `echo:` for the built-in echo app.
    pub url: Option<String>,
    /// Connect timeout (default `5s`).
    pub connect_timeout: Option<String>,
    /// Idle read timeout on the upstream connection (default: none, so long polls
    /// and WebSockets live as long as they need).
    pub read_timeout: Option<String>,
}

/// `store:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `sqlite://PATH` (default `sqlite://data/gatehouse.db`) or `postgres://…`.
    pub url: Option<String>,
}

/// `session:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSession {
    /// Cookie name (default `gatehouse_session`).
    pub cookie_name: Option<String>,
    /// A session unused this long ends (default `1h`).
    pub idle_timeout: Option<String>,
    /// A session ends this long after login, used or not (default `12h`).
    pub lifetime: Option<String>,
    /// Cookie `Domain`, so one login covers subdomains (default: host only).
    pub domain: Option<String>,
    /// Cookie `Secure` flag (default: true unless `public_url` is http).
    pub secure: Option<bool>,
}

/// `portal:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPortal {
    /// Path prefix Gatehouse answers itself (default `/_auth`).
    pub prefix: Option<String>,
    /// Product name shown on pages (default `Gatehouse`).
    pub title: Option<String>,
    /// Show the name-and-password form on the sign-in page (default true).
    pub password_login: Option<bool>,
    /// An image shown above the title on every page: an `https://` URL or a
    /// path on the page's own host starting with `/` (default: none).
    pub logo_url: Option<String>,
    /// The colour of buttons and links: `#rgb` or `#rrggbb` (default `#4a5afc`).
    pub accent_color: Option<String>,
}

/// `rules:` after normalisation (a plain list becomes `{rules: list}`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRules {
    /// What applies when no rule matches: `authenticated` (default) or `deny`.
    pub default: Option<String>,
    /// The rules, first match wins.
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// One access rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Path glob(s): `*` within a segment, `**` across segments; `/a/**` also matches `/a`.
    pub path: Option<OneOrMany>,
    /// HTTP methods (default: all).
    pub methods: Option<Vec<String>>,
    /// Host glob(s) (default: all hosts).
    pub hosts: Option<Vec<String>>,
    /// `public`, `authenticated` or `deny`.
    pub policy: Option<String>,
    /// A permission the identity must hold (`resource:action`).
    pub permission: Option<String>,
}

/// One user declared in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub username: String,
    /// argon2id PHC string from `gatehouse hash-password`.
    pub password_hash: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    /// Role name (default `user`).
    pub role: Option<String>,
    /// `user` (default) or `api`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `enabled` (default) or `disabled`.
    pub status: Option<String>,
}

/// One API key declared in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    /// A label shown in logs and, for keys not bound to a user, as the identity.
    pub name: String,
    /// `sha256:<hex>` of the key, from `gatehouse apikey generate`.
    pub hash: String,
    /// The user the key acts as.
    pub user: Option<String>,
    /// The key's own permissions (for a bound key: narrowed to the user's).
    pub permissions: Option<Vec<String>>,
    /// RFC 3339 instant after which the key is refused.
    pub expires: Option<String>,
}

/// `headers:` — names of the upstream identity headers; an empty string disables one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaders {
    pub user: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Option<String>,
    pub permissions: Option<String>,
    pub auth_request_user: Option<String>,
    pub auth_request_email: Option<String>,
    pub auth_request_groups: Option<String>,
    pub method: Option<String>,
    /// Forward the consumed credential (Authorization / X-API-Key) upstream (default false).
    pub pass_credentials: Option<bool>,
    /// `X-HTTP-Method-Override` and kin: `strip` (default) removes them
    /// before proxying; `judge` keeps them and judges the overriding method too.
    pub method_override: Option<String>,
}

/// `cache:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// How long a verified credential is trusted without re-verification (default `5m`).
    pub ttl: Option<String>,
    /// Upper bound on cached identities (default 100000).
    pub max_entries: Option<u64>,
}

/// `redirect:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedirect {
    /// Extra domains (and their subdomains) `rd` may point to.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
}

/// `tokens:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    /// `iss` of issued tokens (default: `public_url` without the trailing `/`).
    pub issuer: Option<String>,
    /// `aud` of issued tokens (default: the issuer).
    pub audience: Option<String>,
    /// Token lifetime (default `24h`).
    pub ttl: Option<String>,
    /// Signing keys: the first with a private key signs, every one verifies
    /// and is published. None: a key is generated and kept in the store.
    #[serde(default)]
    pub keys: Vec<RawSigningKey>,
}

/// One Ed25519 signing key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigningKey {
    /// Key id (`kid` header and JWKS entry).
    pub kid: String,
    /// PKCS#8 PEM private key (`gatehouse signing-key generate`); usually
    /// given as `private_key_file`.
    pub private_key: Option<String>,
    /// SPKI PEM public key of a retired key: verifies, never signs.
    pub public_key: Option<String>,
}

/// One external issuer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrustedIssuer {
    /// Expected `iss`, exactly.
    pub issuer: String,
    /// Accepted `aud` value(s).
    pub audience: Option<OneOrMany>,
    /// JWKS URL (default: `jwks_uri` from `{issuer}/.well-known/openid-configuration`).
    pub jwks_url: Option<String>,
    /// Accepted `alg` values (default `[RS256]`); anything else is refused.
    pub algorithms: Option<Vec<String>>,
    /// Claim naming the user (default `sub`).
    pub username_claim: Option<String>,
    /// Claim holding role names (a string or a list); none: `default_role`.
    pub roles_claim: Option<String>,
    /// Claim value → Gatehouse role, for values that are not role names.
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
    /// Role when no claim value names one (default `user`).
    pub default_role: Option<String>,
    /// Clock skew allowed on `exp`/`nbf` (default `5s`).
    pub leeway: Option<String>,
}

/// `regulation:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegulation {
    /// Failed sign-ins of one user name within `find_time` that ban it
    /// (default 5; 0 turns regulation off).
    pub max_retries: Option<u32>,
    /// Failed sign-ins from one client IP within `find_time` that ban it
    /// (default 100).
    pub max_retries_per_ip: Option<u32>,
    /// The window failures are counted in (default `5m`).
    pub find_time: Option<String>,
    /// How long a ban lasts (default `15m`).
    pub ban_time: Option<String>,
}

/// `two_factor:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTwoFactor {
    /// Name authenticator apps show beside the account (default: `portal.title`).
    pub issuer: Option<String>,
    /// At least 32 characters; encrypts TOTP secrets and keys recovery-code
    /// hashes. Usually `encryption_key_file`. Without it nobody can enrol.
    pub encryption_key: Option<String>,
    /// The key being replaced, during a rotation: secrets it sealed are
    /// sealed again with `encryption_key` at start; then it can go.
    pub previous_encryption_key: Option<String>,
    /// Roles whose regular users must enrol before they get a session.
    #[serde(default)]
    pub required_for_roles: Vec<String>,
    /// How long the code may take after the password (default `5m`).
    pub pending_ttl: Option<String>,
}

/// `oidc:`: single sign-on through OpenID Connect providers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    #[serde(default)]
    pub providers: Vec<RawOidcProvider>,
    /// A provider id: the sign-in page goes straight there.
    pub auto_redirect: Option<String>,
}

/// One OpenID Connect provider Gatehouse signs people in with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidcProvider {
    pub id: String,
    pub display_name: Option<String>,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub username_claim: Option<String>,
    pub groups_claim: Option<String>,
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
    pub default_role: Option<String>,
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    pub auto_create_users: Option<bool>,
    pub link_existing_by_email: Option<bool>,
    pub sync_role: Option<bool>,
}

/// `registration:` — self-service accounts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistration {
    /// `closed` (default), `open` or `invite`.
    pub mode: Option<String>,
    pub default_role: Option<String>,
    pub activation_ttl: Option<String>,
    pub invitation_ttl: Option<String>,
}

/// `passwords:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPasswords {
    /// Shortest new password, in characters (default 8; 8 to 1024).
    pub min_length: Option<usize>,
    /// How long a mailed password-reset link works (default `1h`).
    pub reset_ttl: Option<String>,
}

/// `audit:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// How long audit events are kept (default `90d`).
    pub retention: Option<String>,
    /// Also log refused proxy requests, sampled (default false).
    pub log_denials: Option<bool>,
}

/// `smtp:` — where mail is sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    /// The SMTP server's name or address.
    pub host: Option<String>,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none` (loopback hosts only).
    pub security: Option<String>,
    /// Login, with `password` (usually `password_file`).
    pub username: Option<String>,
    pub password: Option<String>,
    /// The `From` of every mail: `no-reply@example.com` or `Name <address>`.
    pub from: Option<String>,
    /// A directory of files overriding built-in templates, one each
    /// (`password_reset.subject.txt`, `password_reset.txt`, …).
    pub templates_dir: Option<String>,
}
