//! Sessions and the random ids Gatehouse mints.
//!
//! Owns: [`SessionSettings`]; [`random_id`] (session ids, CSRF tokens,
//! pending sign-in ids, JWT ids); [`id_hash`] (all the store ever keeps of
//! such an id); starting a session with a brand-new id; and the `Set-Cookie`
//! values for the session and the portal's other cookies. Checking a session cookie is the
//! authenticator's job (`authn`); revoking one is the store's.

use crate::store::{unix_now, SessionRecord, SessionSso, Store, StoreError};
use sha2::{Digest, Sha256};
use std::time::Duration;

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
) -> Result<String, StoreError> {
    begin(store, settings, username, None).await
}

/// Like [`start`], for a sign-in through an identity provider.
pub async fn start_sso(
    store: &Store,
    settings: &SessionSettings,
    username: &str,
    sso: SessionSso,
) -> Result<String, StoreError> {
    begin(store, settings, username, Some(sso)).await
}

/// [`start`] and [`start_sso`]: a new session, and the user's last sign-in.
async fn begin(
    store: &Store,
    settings: &SessionSettings,
    username: &str,
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
