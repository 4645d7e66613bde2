//! Sessions and the random ids Gatehouse mints.
//!
//! Owns: [`SessionSettings`]; [`random_id`] (session ids, CSRF tokens,
//! pending sign-in ids, JWT ids); [`id_hash`] (all the store ever keeps of
//! such an id); starting a session with a brand-new id; and the `Set-Cookie`
//! values for the session and the portal's other cookies; a request's
//! [`Origin`] (address and user agent) kept with its session. Checking a session cookie is the
//! authenticator's job (`authn`); revoking one is the store's.

use crate::store::{unix_now, SessionRecord, SessionSso, Store, StoreError};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::time::Duration;

/// Where a request comes from: the client's address (after trusted
/// proxies) and its `User-Agent`, as kept with a session and written into
/// an audit event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Origin {
    /// Longest `User-Agent` kept, in characters.
    pub const MAX_USER_AGENT: usize = 256;

    /// `ip` and the request's `User-Agent` (control characters dropped,
    /// cut at [`Origin::MAX_USER_AGENT`]; none when empty or not text).
    pub fn new(ip: Option<IpAddr>, headers: &http::HeaderMap) -> Origin {
        let user_agent = headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(Self::MAX_USER_AGENT)
                    .collect::<String>()
            })
            .filter(|ua| !ua.trim().is_empty());
        Origin { ip, user_agent }
    }
}

/// The session cookie (`session:` in the config).
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub cookie_name: String,
    pub idle_timeout: Duration,
    pub lifetime: Duration,
    pub domain: Option<String>,
    pub secure: bool,
}

/// 256 random bits from the OS, base64url without padding (43 characters).
pub fn random_id() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a session or pending sign-in id: its SHA-256, hex.
pub fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Store a new session for `username` under a brand-new id (whatever
/// session cookie came in is never promoted) and return the id.
pub async fn start(
    store: &Store,
    settings: &SessionSettings,
    username: &str,
    origin: &Origin,
) -> Result<String, StoreError> {
    begin(store, settings, username, origin, None).await
}

/// Like [`start`], for a sign-in through an identity provider.
pub async fn start_sso(
    store: &Store,
    settings: &SessionSettings,
    username: &str,
    origin: &Origin,
    sso: SessionSso,
) -> Result<String, StoreError> {
    begin(store, settings, username, origin, Some(sso)).await
}

/// [`start`] and [`start_sso`]: a new session, and the user's last sign-in.
async fn begin(
    store: &Store,
    settings: &SessionSettings,
    username: &str,
    origin: &Origin,
    sso: Option<SessionSso>,
) -> Result<String, StoreError> {
    let id = random_id();
    let now = unix_now();
    store
        .create_session(SessionRecord {
            id_hash: id_hash(&id),
            username: username.to_owned(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + settings.lifetime.as_secs() as i64,
            revoked: false,
            ip: origin.ip.map(|ip| ip.to_string()),
            user_agent: origin.user_agent.clone(),
            sso,
        })
        .await?;
    if let Err(e) = store.record_login(username, now).await {
        tracing::debug!(error = %e, "last login not recorded");
    }
    Ok(id)
}

/// How a cookie may travel: `Lax` ones (the session) go to every host of
/// `session.domain`; `Strict` ones (CSRF, pending sign-in) stay on the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
}

/// A `Set-Cookie` value: always `HttpOnly`, `Secure` when the public URL is
/// https.
pub fn cookie(
    settings: &SessionSettings,
    name: &str,
    value: &str,
    max_age: i64,
    path: &str,
    same_site: SameSite,
) -> String {
    let lax = same_site == SameSite::Lax;
    let mut c = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={}",
        if lax { "Lax" } else { "Strict" }
    );
    if settings.secure {
        c.push_str("; Secure");
    }
    if lax {
        if let Some(d) = &settings.domain {
            c.push_str("; Domain=");
            c.push_str(d);
        }
    }
    c
}

/// `Set-Cookie` for a new session id.
pub fn session_cookie(settings: &SessionSettings, id: &str) -> String {
    let lifetime = settings.lifetime.as_secs() as i64;
    cookie(
        settings,
        &settings.cookie_name,
        id,
        lifetime,
        "/",
        SameSite::Lax,
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(settings: &SessionSettings) -> String {
    cookie(settings, &settings.cookie_name, "", 0, "/", SameSite::Lax)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secure: bool, domain: Option<&str>) -> SessionSettings {
        SessionSettings {
            cookie_name: "gh".into(),
            idle_timeout: Duration::from_secs(60),
            lifetime: Duration::from_secs(3600),
            domain: domain.map(Into::into),
            secure,
        }
    }

    #[test]
    fn the_user_agent_kept_is_text_and_bounded() {
        let origin = |ua: &[u8]| {
            let mut h = http::HeaderMap::new();
            h.insert(
                http::header::USER_AGENT,
                http::HeaderValue::from_bytes(ua).unwrap(),
            );
            Origin::new(None, &h).user_agent
        };
        assert_eq!(origin(b"curl/8.5"), Some("curl/8.5".into()));
        assert_eq!(origin(b"a\tb"), Some("ab".into()));
        assert_eq!(origin(b"  "), None);
        assert_eq!(origin(b"caf\xe9"), None, "not text");
        let long = vec![b'x'; 1000];
        assert_eq!(origin(&long).map(|u| u.len()), Some(Origin::MAX_USER_AGENT));
        assert_eq!(Origin::new(None, &http::HeaderMap::new()).user_agent, None);
    }

    #[test]
    fn ids_are_fresh_and_only_their_hash_is_kept() {
        let (a, b) = (random_id(), random_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(id_hash(&a).len(), 64);
        assert_ne!(id_hash(&a), a);
    }

    #[test]
    fn only_the_session_cookie_crosses_to_the_session_domain() {
        let s = settings(true, Some("example.com"));
        assert_eq!(
            session_cookie(&s, "abc"),
            "gh=abc; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure; Domain=example.com"
        );
        assert_eq!(
            cookie(&s, "csrf", "t", 60, "/_auth", SameSite::Strict),
            "csrf=t; Path=/_auth; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(
            clear_session_cookie(&settings(false, None)),
            "gh=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        );
    }
}
