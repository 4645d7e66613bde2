//! Trusted external issuers: bearer JWTs from identity providers, verified
//! against the issuer's JWKS.
//!
//! Keys are fetched at start, cached, and fetched again when a token names
//! an unknown `kid` — at most once per [`REFRESH_INTERVAL`] per issuer, so a
//! stream of made-up kids cannot turn Gatehouse into a request amplifier.
//! `alg` is pinned per issuer: a token whose header names another is refused
//! before any key is touched.

use super::{Peek, TokenError};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How often an issuer's JWKS may be fetched again on an unknown `kid`.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed fetch, the next attempt may come this soon.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// One issuer, validated.
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    pub issuer: String,
    pub audience: Vec<String>,
    /// `None`: discover from `{issuer}/.well-known/openid-configuration`.
    pub jwks_url: Option<url::Url>,
    pub algorithms: Vec<Algorithm>,
    pub username_claim: String,
    pub roles_claim: Option<String>,
    pub role_map: BTreeMap<String, String>,
    pub default_role: String,
    pub leeway: Duration,
}

/// What a verified external token says about its subject.
#[derive(Debug, Clone)]
pub struct ExternalClaims {
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// Claim values mapped through `role_map` (not yet checked against roles).
    pub role_candidates: Vec<String>,
    pub default_role: String,
    pub expires_at: i64,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, Arc<(DecodingKey, Option<Algorithm>)>>,
    /// Keys without a `kid` (used only when the token has none either).
    anonymous: Vec<Arc<(DecodingKey, Option<Algorithm>)>>,
    last_attempt: Option<Instant>,
    last_ok: bool,
    /// The last fetch caused by an unknown `kid` (the start-up fetch is not
    /// one: a key rotated in right after start is picked up at once).
    last_on_demand: Option<Instant>,
}

struct Issuer {
    settings: IssuerSettings,
    validation: Validation,
    cache: RwLock<KeyCache>,
    fetching: tokio::sync::Mutex<()>,
}

/// Every configured external issuer, by `iss`.
pub struct TrustedIssuers {
    issuers: HashMap<String, Issuer>,
    client: reqwest::Client,
    runtime: Option<tokio::runtime::Handle>,
}

impl TrustedIssuers {
    /// `runtime`: where fetches run (the server's background runtime), so
    /// no proxy worker owns the HTTP client's connections.
    pub fn new(settings: Vec<IssuerSettings>, runtime: Option<tokio::runtime::Handle>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        let issuers = settings
            .into_iter()
            .map(|s| {
                let mut v = Validation::new(s.algorithms[0]);
                v.algorithms = s.algorithms.clone();
                v.set_issuer(&[&s.issuer]);
                v.set_audience(&s.audience);
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
                v.validate_nbf = true;
                v.leeway = s.leeway.as_secs();
                (
                    s.issuer.clone(),
                    Issuer {
                        settings: s,
                        validation: v,
                        cache: RwLock::new(KeyCache::default()),
                        fetching: tokio::sync::Mutex::new(()),
                    },
                )
            })
            .collect();
        TrustedIssuers {
            issuers,
            client,
            runtime,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    pub fn knows(&self, iss: &str) -> bool {
        self.issuers.contains_key(iss)
    }

    /// Fetch every issuer's keys now (at start; failures are retried on demand).
    pub async fn prefetch(self: &Arc<Self>) {
        for iss in self.issuers.keys() {
            if let Err(e) = self.refresh(iss, false).await {
                tracing::warn!(issuer = %iss, error = %e, "cannot fetch the issuer's keys yet");
            }
        }
    }

    /// Verify a token whose (unverified) `iss` names one of our issuers.
    pub async fn verify(
        self: &Arc<Self>,
        token: &str,
        peek: &Peek,
    ) -> Result<ExternalClaims, TokenError> {
        let iss = peek.iss.as_deref().ok_or(TokenError::UnknownIssuer)?;
        let issuer = self.issuers.get(iss).ok_or(TokenError::UnknownIssuer)?;
        if !issuer.settings.algorithms.contains(&peek.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let key = match issuer.key_for(peek.kid.as_deref()) {
            Some(k) => k,
            None => {
                if issuer.may_refresh() {
                    if let Err(e) = self.refresh(iss, true).await {
                        tracing::warn!(issuer = %iss, error = %e, "cannot refresh the issuer's keys");
                    }
                }
                issuer
                    .key_for(peek.kid.as_deref())
                    .ok_or(if issuer.has_keys() {
                        TokenError::UnknownKey
                    } else {
                        TokenError::KeysUnavailable
                    })?
            }
        };
        if key.1.is_some_and(|alg| alg != peek.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.0, &issuer.validation)
            .map_err(|e| TokenError::from_jwt(&e))?;
        issuer.claims(&data.claims)
    }

    /// Fetch `iss`'s JWKS (once at a time; callers queue behind a running fetch).
    async fn refresh(self: &Arc<Self>, iss: &str, on_demand: bool) -> Result<(), String> {
        let issuer = self.issuers.get(iss).ok_or("unknown issuer")?;
        let _one_at_a_time = issuer.fetching.lock().await;
        if on_demand && !issuer.may_refresh() {
            return Ok(()); // somebody else just did it
        }
        let this = self.clone();
        let iss_owned = iss.to_owned();
        let fetch = async move { this.fetch_keys(&iss_owned).await };
        let result = match &self.runtime {
            Some(rt) => rt.spawn(fetch).await.map_err(|e| e.to_string())?,
            None => fetch.await,
        };
        let mut cache = issuer.cache.write().map_err(|_| "key cache poisoned")?;
        cache.last_attempt = Some(Instant::now());
        cache.last_ok = result.is_ok();
        if on_demand {
            cache.last_on_demand = cache.last_attempt;
        }
        let set = result?;
        let (keys, anonymous) = decoding_keys(&set, &issuer.settings.algorithms);
        tracing::info!(issuer = %iss, keys = keys.len() + anonymous.len(), "issuer keys loaded");
        cache.keys = keys;
        cache.anonymous = anonymous;
        Ok(())
    }

    async fn fetch_keys(&self, iss: &str) -> Result<JwkSet, String> {
        let issuer = self.issuers.get(iss).ok_or("unknown issuer")?;
        let url = match &issuer.settings.jwks_url {
            Some(u) => u.clone(),
            None => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.settings.issuer.trim_end_matches('/')
                );
                let doc: serde_json::Value = self.get_json(&discovery).await?;
                let uri = doc["jwks_uri"]
                    .as_str()
                    .ok_or_else(|| format!("{discovery} has no jwks_uri"))?;
                url::Url::parse(uri).map_err(|e| format!("jwks_uri `{uri}`: {e}"))?
            }
        };
        self.get_json(url.as_str()).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let mut resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("GET {url}: larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not the JSON expected: {e}"))
    }
}

/// A usable key and the algorithm its JWK pins, if any.
pub type KeyEntry = Arc<(DecodingKey, Option<Algorithm>)>;

/// Usable signing keys of a JWKS, by kid; keys for other uses, of unknown
/// shape, or whose `alg` is not pinned are left out.
pub fn decoding_keys(
    set: &JwkSet,
    pinned: &[Algorithm],
) -> (HashMap<String, KeyEntry>, Vec<KeyEntry>) {
    let mut by_kid = HashMap::new();
    let mut anonymous = Vec::new();
    for jwk in &set.keys {
        if matches!(
            jwk.common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            continue;
        }
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok());
        if alg.is_some_and(|a| !pinned.contains(&a)) {
            continue;
        }
        // An Ed25519 `x` of the wrong length would make the verifier panic.
        if let AlgorithmParameters::OctetKeyPair(p) = &jwk.algorithm {
            let len = base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                p.x.trim_end_matches('='),
            )
            .map_or(0, |b| b.len());
            if len != 32 {
                continue;
            }
        }
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            continue; // shared secrets never come from a public JWKS
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let entry = Arc::new((key, alg));
        match &jwk.common.key_id {
            Some(kid) => {
                by_kid.insert(kid.clone(), entry);
            }
            None => anonymous.push(entry),
        }
    }
    (by_kid, anonymous)
}

impl Issuer {
    fn key_for(&self, kid: Option<&str>) -> Option<KeyEntry> {
        let cache = self.cache.read().ok()?;
        match kid {
            Some(kid) => cache.keys.get(kid).cloned(),
            None if cache.keys.len() + cache.anonymous.len() == 1 => cache
                .keys
                .values()
                .next()
                .or(cache.anonymous.first())
                .cloned(),
            None => None,
        }
    }

    fn has_keys(&self) -> bool {
        self.cache
            .read()
            .is_ok_and(|c| !c.keys.is_empty() || !c.anonymous.is_empty())
    }

    /// May an unknown `kid` cause a fetch now? Once per [`REFRESH_INTERVAL`];
    /// after a failed fetch, again after [`RETRY_AFTER_FAILURE`].
    fn may_refresh(&self) -> bool {
        let Ok(cache) = self.cache.read() else {
            return false;
        };
        if !cache.last_ok {
            return cache
                .last_attempt
                .is_none_or(|at| at.elapsed() >= RETRY_AFTER_FAILURE);
        }
        cache
            .last_on_demand
            .is_none_or(|at| at.elapsed() >= REFRESH_INTERVAL)
    }

    fn claims(&self, claims: &serde_json::Value) -> Result<ExternalClaims, TokenError> {
        let s = &self.settings;
        let subject = claims[s.username_claim.as_str()]
            .as_str()
            .filter(|v| !v.is_empty())
            .ok_or(TokenError::MissingClaim)?
            .to_owned();
        let text = |k: &str| claims[k].as_str().map(str::to_owned);
        let role_candidates = match s.roles_claim.as_deref().map(|c| &claims[c]) {
            Some(serde_json::Value::String(v)) => vec![v.clone()],
            Some(serde_json::Value::Array(vs)) => vs
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
        .into_iter()
        .map(|v| s.role_map.get(&v).cloned().unwrap_or(v))
        .collect();
        Ok(ExternalClaims {
            subject,
            email: text("email"),
            name: text("name"),
            role_candidates,
            default_role: s.default_role.clone(),
            expires_at: claims["exp"].as_i64().unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_keys_are_left_out_instead_of_panicking_later() {
        // A 31-byte Ed25519 `x` would make the verifier slice out of bounds.
        let short =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [7u8; 31]);
        let good = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])
                .verifying_key()
                .to_bytes(),
        );
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": short},
            {"kty": "OKP", "crv": "Ed25519", "kid": "good", "x": good},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": good},
            {"kty": "OKP", "crv": "Ed25519", "kid": "unpinned", "alg": "EdDSA", "x": good},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
        ]}))
        .unwrap();
        let (keys, anonymous) = decoding_keys(&set, &[Algorithm::RS256]);
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort();
        assert_eq!(kids, vec!["good"]);
        assert!(anonymous.is_empty());
    }
}
