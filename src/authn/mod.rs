//! Authentication: verifying a presented credential into an [`Identity`].
//!
//! Every verified credential is cached in moka under a keyed BLAKE3 hash of
//! the credential (never the plaintext), so argon2 runs once per credential;
//! each worker thread also remembers the last credentials it saw, with their
//! hash and identity ([`recent`]), checked against the same lifetime and
//! every invalidation of the cache;
//! concurrent first requests with the same credential share one verification.
//! Unknown users still cost one argon2 verification (of a dummy hash), so
//! timing does not tell which usernames exist.

pub mod password;
pub mod recent;

use crate::credentials::API_KEY_PREFIX;
use crate::credentials::{ApiKeyCredential, BasicCredential, Credential};
use crate::directory::UserRecord;
use crate::directory::{Directory, UserStatus};
use crate::identity::{AuthMethod, Identity, UserKind};
use crate::metrics::Metrics;
use crate::permission::PermissionSet;
use crate::store::Store;
use crate::tokens::external::TrustedIssuers;
use crate::tokens::{TokenError, TokenService};
use crate::two_factor::TwoFactor;
use moka::future::Cache;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use subtle::ConstantTimeEq;

/// Why a credential did not authenticate. Each maps to a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthnError {
    #[error("the user name or password is wrong")]
    InvalidCredentials,
    #[error("the API key is not valid")]
    InvalidApiKey,
    #[error("API keys start with `gh_`")]
    UnknownKeyFormat,
    #[error("{0}")]
    Token(TokenError),
    #[error("the account is disabled")]
    Disabled,
    #[error("the credential has expired")]
    Expired,
    #[error("the credential could not be checked")]
    Internal,
    #[error("the user store is unavailable")]
    Unavailable,
    #[error("the session has ended; sign in again")]
    SessionEnded,
    #[error("this account uses two-factor authentication, so a password alone (Basic) is refused; programs should use an API key or an `api` user, people sign in on the portal")]
    SecondFactorRequired,
}

impl AuthnError {
    /// The `error` code of the JSON answer.
    pub fn code(&self) -> &'static str {
        match self {
            AuthnError::InvalidCredentials => "invalid_credentials",
            AuthnError::InvalidApiKey | AuthnError::UnknownKeyFormat => "invalid_api_key",
            AuthnError::Token(TokenError::Expired) => "token_expired",
            AuthnError::Token(TokenError::Revoked) => "token_revoked",
            AuthnError::Token(_) => "invalid_token",
            AuthnError::Disabled => "account_disabled",
            AuthnError::Expired => "credential_expired",
            AuthnError::Internal => "internal_error",
            AuthnError::Unavailable => "store_unavailable",
            AuthnError::SessionEnded => "session_expired",
            AuthnError::SecondFactorRequired => "two_factor_required",
        }
    }
}

/// Was the answer served from the cache?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
}

/// The cache's hasher: its keys are keyed BLAKE3 outputs, already uniformly
/// random, so their first bytes serve as their hash (SipHash over them again
/// bought nothing).
#[derive(Clone, Copy, Default)]
pub struct KeyBits;

impl std::hash::BuildHasher for KeyBits {
    type Hasher = KeyBitsHasher;
    fn build_hasher(&self) -> KeyBitsHasher {
        KeyBitsHasher(0)
    }
}

/// See [`KeyBits`]: each write folds in its first eight bytes.
pub struct KeyBitsHasher(u64);

impl std::hash::Hasher for KeyBitsHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A verified identity as cached: trusted until `fresh_until` (the cache's
/// time to live, counted from the verification), unless invalidated first
/// or past its own check-by time.
#[derive(Clone)]
pub struct Cached {
    identity: Arc<Identity>,
    fresh_until: Instant,
}

/// Verifies credentials against the directory, through the cache.
pub struct Authenticator {
    directory: Arc<Directory>,
    cache: Cache<[u8; 32], Cached, KeyBits>,
    cache_key: [u8; 32],
    /// How long a verified credential is trusted without a new check.
    ttl: Duration,
    /// With the invalidation count read before each was looked up.
    recent: recent::RecentCredentials<(Cached, u64)>,
    /// Counts the cache's invalidations: what a thread remembers holds only
    /// while this has not moved since it was looked up.
    generation: AtomicU64,
    dummy_hash: Arc<str>,
    metrics: Arc<Metrics>,
    store: Option<Store>,
    session_idle: Duration,
    tokens: Arc<TokenService>,
    issuers: Arc<TrustedIssuers>,
    two_factor: Arc<TwoFactor>,
}

/// What the authenticator needs besides the directory: built once at start
/// and kept across reloads (keys, fetched JWKS).
#[derive(Clone)]
pub struct AuthnServices {
    pub metrics: Arc<Metrics>,
    pub store: Option<Store>,
    pub tokens: Arc<TokenService>,
    pub issuers: Arc<TrustedIssuers>,
}

impl Authenticator {
    pub fn new(
        directory: Arc<Directory>,
        ttl: Duration,
        max_entries: u64,
        services: AuthnServices,
        session_idle: Duration,
        two_factor: Arc<TwoFactor>,
    ) -> Self {
        let AuthnServices {
            metrics,
            store,
            tokens,
            issuers,
        } = services;
        use rand::RngCore;
        let mut cache_key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut cache_key);
        Authenticator {
            directory,
            cache: Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build_with_hasher(KeyBits),
            cache_key,
            ttl,
            recent: recent::RecentCredentials::default(),
            generation: AtomicU64::new(0),
            dummy_hash: password::dummy_hash().into(),
            metrics,
            store,
            session_idle,
            tokens,
            issuers,
            two_factor,
        }
    }

    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// `cred` as the per-thread memory of credentials sees it.
    fn presented(cred: &Credential) -> recent::Presented<'_> {
        let (kind, first, second): (u8, &str, &str) = match cred {
            Credential::Basic(b) => (0, &b.username, &b.password),
            Credential::ApiKey(k) => (1, &k.key, ""),
            Credential::Bearer(t) => (2, &t.0, ""),
            Credential::Session(c) => (3, &c.0, ""),
        };
        recent::Presented {
            kind,
            first: first.as_bytes(),
            second: second.as_bytes(),
        }
    }

    /// The keyed BLAKE3 hash naming `cred` in the cache.
    fn hash_credential(&self, cred: &Credential) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.cache_key);
        match cred {
            Credential::Basic(b) => {
                h.update(b"basic\0");
                h.update(&(b.username.len() as u64).to_le_bytes());
                h.update(b.username.as_bytes());
                h.update(b.password.as_bytes());
            }
            Credential::ApiKey(k) => {
                h.update(b"apikey\0");
                h.update(k.key.as_bytes());
            }
            Credential::Bearer(t) => {
                h.update(b"bearer\0");
                h.update(t.0.as_bytes());
            }
            Credential::Session(c) => {
                h.update(b"session\0");
                h.update(c.0.as_bytes());
            }
        }
        *h.finalize().as_bytes()
    }

    /// Verify one credential. On success the identity is cached.
    pub async fn authenticate(
        &self,
        cred: &Credential,
    ) -> Result<(Arc<Identity>, CacheOutcome), AuthnError> {
        // Read before the cache is: an invalidation from here on makes what
        // is remembered below stale.
        let generation = self.generation.load(Ordering::SeqCst);
        let presented = Self::presented(cred);
        let recalled = self.recent.recall(presented, || self.hash_credential(cred));
        if let Some((known, seen)) = recalled.known {
            if seen == generation
                && Instant::now() < known.fresh_until
                && !known.identity.has_expired()
            {
                return Ok((known.identity, CacheOutcome::Hit));
            }
        }
        let key = recalled.key;
        let hit = match self.cache.get(&key).await {
            Some(cached) if !cached.identity.has_expired() => Some(cached),
            Some(_) => {
                // Past its check-by time: verify afresh (an expired key fails
                // there; a live session is re-read and touched).
                self.cache.invalidate(&key).await;
                None
            }
            None => None,
        };
        let (cached, outcome) = match hit {
            Some(cached) => (cached, CacheOutcome::Hit),
            None => {
                let verified = self
                    .cache
                    .try_get_with(key, self.verify_for_cache(cred))
                    .await
                    .map_err(|e| (*e).clone())?;
                (verified, CacheOutcome::Miss)
            }
        };
        let identity = cached.identity.clone();
        self.recent.remember(presented, key, (cached, generation));
        Ok((identity, outcome))
    }

    async fn verify_for_cache(&self, cred: &Credential) -> Result<Cached, AuthnError> {
        let identity = self.verify(cred).await?;
        Ok(Cached {
            identity,
            fresh_until: Instant::now() + self.ttl,
        })
    }

    async fn verify(&self, cred: &Credential) -> Result<Arc<Identity>, AuthnError> {
        match cred {
            Credential::Basic(b) => self.verify_basic(b).await,
            Credential::ApiKey(k) => self.verify_api_key(k).await,
            Credential::Bearer(t) => self.verify_jwt(&t.0).await,
            Credential::Session(c) => self.verify_session(&c.0).await,
        }
    }

    /// A session cookie: its hash must name a live session of an enabled user.
    async fn verify_session(&self, cookie: &str) -> Result<Arc<Identity>, AuthnError> {
        let store = self.store.as_ref().ok_or(AuthnError::SessionEnded)?;
        let id_hash = crate::session::id_hash(cookie);
        let now = crate::store::unix_now();
        let record = store
            .session(&id_hash)
            .await
            .map_err(|_| AuthnError::Unavailable)?
            .ok_or(AuthnError::SessionEnded)?;
        if !record.is_live(now, self.session_idle.as_secs() as i64) {
            return Err(AuthnError::SessionEnded);
        }
        let user = self
            .find_user(&record.username)
            .await?
            .ok_or(AuthnError::SessionEnded)?;
        if user.status == UserStatus::Disabled {
            return Err(AuthnError::Disabled);
        }
        if let Err(e) = store.touch_session(&id_hash, now).await {
            tracing::warn!(error = %e, "cannot record session activity");
        }
        // Re-read at most a minute later, and never past the session's end.
        let recheck = (now + SESSION_RECHECK_SECS).min(record.expires_at);
        let recheck_at = std::time::UNIX_EPOCH + Duration::from_secs(recheck.max(0) as u64);
        let identity = self.directory.identity_of(&user, AuthMethod::Session);
        Ok(Arc::new(identity.for_session(id_hash, recheck_at)))
    }

    /// A bearer JWT: ours (checked for revocation, for a password change
    /// since it was issued, and for a still-enabled user), or a trusted
    /// issuer's.
    async fn verify_jwt(&self, token: &str) -> Result<Arc<Identity>, AuthnError> {
        let peek = crate::tokens::peek(token).map_err(AuthnError::Token)?;
        let iss = peek.iss.as_deref().unwrap_or_default();
        if iss != self.tokens.issuer() {
            if self.issuers.knows(iss) {
                let claims = self
                    .issuers
                    .verify(token, &peek)
                    .await
                    .map_err(AuthnError::Token)?;
                return Ok(Arc::new(self.external_identity(claims)));
            }
            return Err(AuthnError::Token(TokenError::UnknownIssuer));
        }
        let claims = self
            .tokens
            .verify(token, &peek)
            .map_err(AuthnError::Token)?;
        if let Some(store) = &self.store {
            let revoked = store.is_token_revoked(&claims.jti).await.map_err(|e| {
                tracing::error!(error = %e, "revocation check failed");
                AuthnError::Unavailable
            })?;
            if revoked {
                return Err(AuthnError::Token(TokenError::Revoked));
            }
        }
        let user = self
            .find_user(&claims.sub)
            .await?
            .ok_or(AuthnError::Token(TokenError::Revoked))?;
        // Issued before the user's password last changed: ended with it.
        if claims.credentials_version != user.credentials_version {
            return Err(AuthnError::Token(TokenError::Revoked));
        }
        if user.status == UserStatus::Disabled {
            return Err(AuthnError::Disabled);
        }
        let expires = std::time::UNIX_EPOCH + Duration::from_secs(claims.exp.max(0) as u64);
        let identity = self.directory.identity_of(&user, AuthMethod::Jwt);
        Ok(Arc::new(identity.for_token(claims.jti, expires)))
    }

    /// The identity an external token describes; its role is the first
    /// claimed value that names a configured role.
    fn external_identity(&self, claims: crate::tokens::external::ExternalClaims) -> Identity {
        let roles = &self.directory.roles;
        let role = claims
            .role_candidates
            .iter()
            .find(|r| roles.contains(r))
            .cloned()
            .unwrap_or(claims.default_role);
        let expires = std::time::UNIX_EPOCH + Duration::from_secs(claims.expires_at.max(0) as u64);
        Identity::new(
            claims.subject,
            claims.email,
            claims.name,
            UserKind::User,
            Some(role.clone()),
            roles.permissions(&role),
            AuthMethod::Jwt,
            Some(expires),
        )
    }

    /// Look a user up by name or, failing that, by e-mail (sign-in forms
    /// accept either). Unknown: `None`.
    pub async fn find_login(&self, login: &str) -> Result<Option<UserRecord>, AuthnError> {
        if let Some(u) = self.find_user(login).await? {
            return Ok(Some(u));
        }
        if !login.contains('@') {
            return Ok(None);
        }
        let lower = login.to_ascii_lowercase();
        if let Some(u) = self.directory.users.values().find(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.to_ascii_lowercase() == lower)
        }) {
            return Ok(Some(u.clone()));
        }
        match &self.store {
            Some(store) => store
                .user_by_email(login)
                .await
                .map(|found| found.map(|s| s.record))
                .map_err(|_| AuthnError::Unavailable),
            None => Ok(None),
        }
    }

    /// Forget the cached identity of a revoked session, token or stored API
    /// key, found by its store key (the change feed's subject).
    pub fn invalidate_revoked(&self, key: &str) {
        let key = key.to_owned();
        self.invalidate_where(move |id| id.revocation.as_ref().is_some_and(|r| r.key() == key));
    }

    /// Forget every cached identity of `username` (disabled, deleted, role
    /// or password changed — here or on another replica).
    pub fn invalidate_user(&self, username: &str) {
        let username = username.to_owned();
        self.invalidate_where(move |id| id.subject == username);
    }

    fn invalidate_where(&self, doomed: impl Fn(&Identity) -> bool + Send + Sync + 'static) {
        if let Err(e) = self
            .cache
            .invalidate_entries_if(move |_, cached| doomed(&cached.identity))
        {
            tracing::error!(error = %e, "cache invalidation failed; clearing the cache");
            self.cache.invalidate_all();
        }
        // After the cache's: a thread that looks up afresh from here on
        // finds the invalidation there.
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// A configured user, else a stored one.
    async fn find_user(&self, username: &str) -> Result<Option<UserRecord>, AuthnError> {
        if let Some(u) = self.directory.user(username) {
            return Ok(Some(u.clone()));
        }
        match &self.store {
            Some(store) => store
                .user(username)
                .await
                .map(|found| found.map(|s| s.record))
                .map_err(|e| {
                    tracing::error!(error = %e, "user lookup failed");
                    AuthnError::Unavailable
                }),
            None => Ok(None),
        }
    }

    async fn verify_basic(&self, cred: &BasicCredential) -> Result<Arc<Identity>, AuthnError> {
        let user = self.verify_password(&cred.username, &cred.password).await?;
        // A person with a second factor (or whose role needs one) cannot
        // skip it by sending the password alone.
        match self.two_factor.password_suffices(&user).await {
            Ok(true) => {}
            Ok(false) => return Err(AuthnError::SecondFactorRequired),
            Err(_) => return Err(AuthnError::Unavailable),
        }
        Ok(Arc::new(
            self.directory.identity_of(&user, AuthMethod::Basic),
        ))
    }

    /// Check a user name and password (Basic, the login page). Unknown users
    /// cost one argon2 verification too; a disabled user is reported only
    /// once the password is right.
    pub async fn verify_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserRecord, AuthnError> {
        let user = self.find_user(username).await?;
        let hash: Arc<str> = match user.as_ref().and_then(|u| u.password_hash.as_deref()) {
            Some(h) => h.into(),
            None => self.dummy_hash.clone(),
        };
        let password = password.to_owned();
        self.metrics.password_verification();
        let matched =
            tokio::task::spawn_blocking(move || password::verify_password(&password, &hash))
                .await
                .map_err(|_| AuthnError::Internal)?;
        let user = match user {
            Some(u) if matched && u.password_hash.is_some() => u,
            _ => return Err(AuthnError::InvalidCredentials),
        };
        if user.status == UserStatus::Disabled {
            return Err(AuthnError::Disabled);
        }
        Ok(user)
    }

    /// An API key: one declared in the config file (compared in constant
    /// time), else one stored (found by its hash), bound to a live user.
    async fn verify_api_key(&self, cred: &ApiKeyCredential) -> Result<Arc<Identity>, AuthnError> {
        if !cred.key.starts_with(API_KEY_PREFIX) {
            return Err(AuthnError::UnknownKeyFormat);
        }
        let digest: [u8; 32] = Sha256::digest(cred.key.as_bytes()).into();
        let mut found = None;
        for record in &self.directory.api_keys {
            if bool::from(record.sha256.ct_eq(&digest)) {
                found = Some(record);
            }
        }
        let Some(record) = found else {
            return self.verify_stored_api_key(&hex::encode(digest)).await;
        };
        if record.expires_at.is_some_and(|t| SystemTime::now() >= t) {
            return Err(AuthnError::Expired);
        }
        let identity = match &record.owner {
            Some(owner) => {
                let user = self
                    .directory
                    .user(owner)
                    .ok_or(AuthnError::InvalidApiKey)?;
                self.key_identity(user, record.permissions.as_deref(), record.expires_at)?
            }
            None => Identity::new(
                record.name.clone(),
                None,
                None,
                UserKind::Api,
                None,
                PermissionSet::new(record.permissions.clone().unwrap_or_default()),
                AuthMethod::ApiKey,
                record.expires_at,
            ),
        };
        Ok(Arc::new(identity))
    }

    /// A key created through the CLI or the API, looked up by its hash (the
    /// lookup key is itself a hash of a 238-bit secret: nothing to time).
    async fn verify_stored_api_key(&self, sha256: &str) -> Result<Arc<Identity>, AuthnError> {
        let store = self.store.as_ref().ok_or(AuthnError::InvalidApiKey)?;
        let key = store
            .api_key_by_hash(sha256)
            .await
            .map_err(|_| AuthnError::Unavailable)?
            .filter(|k| !k.revoked)
            .ok_or(AuthnError::InvalidApiKey)?;
        let now = crate::store::unix_now();
        if key.expires_at.is_some_and(|t| now >= t) {
            return Err(AuthnError::Expired);
        }
        let user = self
            .find_user(&key.username)
            .await?
            .ok_or(AuthnError::InvalidApiKey)?;
        let permissions: Option<Vec<crate::permission::Permission>> = key
            .permissions
            .as_ref()
            .map(|list| list.iter().filter_map(|p| p.parse().ok()).collect());
        let expires = key
            .expires_at
            .map(|t| std::time::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64));
        let identity = self.key_identity(&user, permissions.as_deref(), expires)?;
        Ok(Arc::new(identity.revocable(
            crate::identity::Revocation::ApiKey(key.sha256),
            expires,
        )))
    }

    /// The identity of a key acting as `user`, narrowed to `own` permissions.
    fn key_identity(
        &self,
        user: &UserRecord,
        own: Option<&[crate::permission::Permission]>,
        expires_at: Option<SystemTime>,
    ) -> Result<Identity, AuthnError> {
        if user.status == UserStatus::Disabled {
            return Err(AuthnError::Disabled);
        }
        let base = self.directory.identity_of(user, AuthMethod::ApiKey);
        let permissions = match own {
            Some(own) => base.permissions.narrow(own),
            None => base.permissions.clone(),
        };
        Ok(Identity::new(
            base.subject,
            base.email,
            base.name,
            base.kind,
            base.role,
            permissions,
            AuthMethod::ApiKey,
            expires_at,
        ))
    }
}

/// How long a verified session is trusted before the store is asked again
/// (which also records activity for the idle timeout).
const SESSION_RECHECK_SECS: i64 = 60;

/// `sha256:<hex>` of an API key, as written in the config.
pub fn api_key_hash(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// A fresh API key: `gh_` and 40 base62 characters (~238 bits).
pub fn generate_api_key() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..40)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{API_KEY_PREFIX}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::App;
    use crate::credentials::BasicCredential;
    use crate::settings::Config;

    const PASSWORD: &str = "bob-password-1";

    /// An app whose one user is bob, its identities cached for `ttl`.
    fn app(ttl: &str) -> Arc<App> {
        let yaml = format!(
            r#"
public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://127.0.0.1:9"
cache:
  ttl: {ttl}
users:
  - username: bob
    password_hash: "{}"
    role: admin
"#,
            password::hash_password(PASSWORD).unwrap()
        );
        let config = Config::from_yaml(&yaml, std::iter::empty()).unwrap();
        let tokens = Arc::new(TokenService::new(&config.tokens, vec![]));
        let metrics = Arc::new(Metrics::new().unwrap());
        App::new(config, metrics, None, None, tokens, None).unwrap()
    }

    fn bob(password: &str) -> Credential {
        Credential::Basic(BasicCredential {
            username: "bob".into(),
            password: password.into(),
        })
    }

    async fn outcome(authn: &Authenticator, cred: &Credential) -> Result<CacheOutcome, AuthnError> {
        authn.authenticate(cred).await.map(|(_, outcome)| outcome)
    }

    /// What a thread remembers of a credential (`recent`) must end with the
    /// cache's entry: at an invalidation and at the end of its time to live.
    #[tokio::test]
    async fn an_invalidation_or_the_time_to_live_ends_what_is_remembered() {
        let gatehouse = app("1h");
        let live = gatehouse.live();
        let authn = live.gate.authenticator();
        assert_eq!(outcome(authn, &bob(PASSWORD)).await, Ok(CacheOutcome::Miss));
        assert_eq!(outcome(authn, &bob(PASSWORD)).await, Ok(CacheOutcome::Hit));
        assert_eq!(outcome(authn, &bob(PASSWORD)).await, Ok(CacheOutcome::Hit));
        authn.invalidate_user("bob");
        assert_eq!(outcome(authn, &bob(PASSWORD)).await, Ok(CacheOutcome::Miss));
        assert_eq!(outcome(authn, &bob(PASSWORD)).await, Ok(CacheOutcome::Hit));
        // Another user's invalidation leaves bob's entry in the cache (what
        // the thread remembered is looked up there again), and a wrong
        // password is never taken for the remembered one.
        authn.invalidate_user("alice");
        assert_eq!(outcome(authn, &bob(PASSWORD)).await, Ok(CacheOutcome::Hit));
        assert_eq!(
            outcome(authn, &bob("bob-password-2")).await,
            Err(AuthnError::InvalidCredentials)
        );

        let gatehouse = app("200ms");
        let live = gatehouse.live();
        let authn = live.gate.authenticator();
        assert_eq!(outcome(authn, &bob(PASSWORD)).await, Ok(CacheOutcome::Miss));
        assert_eq!(outcome(authn, &bob(PASSWORD)).await, Ok(CacheOutcome::Hit));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(outcome(authn, &bob(PASSWORD)).await, Ok(CacheOutcome::Miss));
    }
}
