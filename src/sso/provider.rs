//! One OpenID Connect provider as a relying party sees it, through the
//! `openidconnect` crate: discovery (lazy, cached, retried after a failure),
//! the authorization URL with `state`, `nonce` and PKCE S256, the code
//! exchange, ID-token verification, userinfo, and the end-session URL.

use super::claims::Claims;
use super::{ProviderSettings, SsoError};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken,
    IdTokenFields, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl,
    RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse,
    UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Every claim beyond the standard ones (groups, roles, …), kept as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct OtherClaims(serde_json::Map<String, serde_json::Value>);
impl AdditionalClaims for OtherClaims {}

type TokenFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type ProviderIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type ProviderClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<TokenFields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// After a failed discovery, callers are answered at once for this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);
/// A verification failure may refetch the keys this often (key rotation).
const REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// What discovery found.
pub(super) struct Discovered {
    pub metadata: ProviderMetadataWithLogout,
    client: ProviderClient,
    fetched: Instant,
}

#[derive(Default)]
struct Cache {
    discovered: Option<Arc<Discovered>>,
    failed_at: Option<Instant>,
}

/// A provider, its settings and what discovery found.
pub(super) struct Provider {
    pub settings: ProviderSettings,
    cache: Mutex<Cache>,
}

/// An ID token that passed every check, with the claims of the sign-in.
pub(super) struct VerifiedSignIn {
    pub issuer: String,
    pub subject: String,
    pub sid: Option<String>,
    pub id_token: String,
    pub claims: Claims,
}

/// A new authorization request.
pub(super) struct Authorization {
    pub url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

fn unreachable(what: &str, e: impl std::fmt::Display) -> SsoError {
    SsoError::Unreachable(format!("{what}: {e}"))
}

/// Algorithms an ID token may be signed with: what discovery lists, never
/// `none` or a shared-secret HMAC.
fn asymmetric(algs: &[CoreJwsSigningAlgorithm]) -> Vec<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm::*;
    algs.iter()
        .filter(|a| !matches!(a, None | HmacSha256 | HmacSha384 | HmacSha512))
        .cloned()
        .collect()
}

impl Provider {
    pub fn new(settings: ProviderSettings) -> Self {
        Provider {
            settings,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Discovery, from the cache; fetched when absent, or when `stale_after`
    /// has passed since the last fetch.
    pub async fn discovered(
        &self,
        http: &reqwest::Client,
        redirect: &RedirectUrl,
        stale_after: Option<Duration>,
    ) -> Result<Arc<Discovered>, SsoError> {
        let mut cache = self.cache.lock().await;
        if let Some(d) = &cache.discovered {
            if stale_after.is_none_or(|s| d.fetched.elapsed() < s) {
                return Ok(d.clone());
            }
        }
        if cache.discovered.is_none()
            && cache
                .failed_at
                .is_some_and(|t| t.elapsed() < RETRY_AFTER_FAILURE)
        {
            return Err(SsoError::Unreachable(format!(
                "{}: discovery failed moments ago",
                self.settings.issuer
            )));
        }
        match self.discover(http, redirect).await {
            Ok(d) => {
                let d = Arc::new(d);
                cache.discovered = Some(d.clone());
                cache.failed_at = None;
                Ok(d)
            }
            Err(e) => {
                cache.failed_at = Some(Instant::now());
                tracing::warn!(provider = %self.settings.id, error = %e, "OpenID discovery failed");
                // Keys that may be old beat no sign-in at all.
                cache.discovered.clone().ok_or(e)
            }
        }
    }

    async fn discover(
        &self,
        http: &reqwest::Client,
        redirect: &RedirectUrl,
    ) -> Result<Discovered, SsoError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| SsoError::Unreachable(format!("issuer: {e}")))?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, http)
            .await
            .map_err(|e| {
                unreachable(
                    &format!("discovery at {}", self.settings.issuer),
                    error_chain(&e),
                )
            })?;
        let client = ProviderClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect.clone());
        Ok(Discovered {
            metadata,
            client,
            fetched: Instant::now(),
        })
    }

    /// The URL that sends the browser to the provider.
    pub fn authorization(&self, d: &Discovered) -> Authorization {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = d.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Authorization {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Exchange the code, verify the ID token, complete its claims from
    /// userinfo when some the settings read are missing.
    pub async fn finish(
        &self,
        http: &reqwest::Client,
        redirect: &RedirectUrl,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<VerifiedSignIn, SsoError> {
        let d = self.discovered(http, redirect, None).await?;
        let request = d
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| unreachable("token endpoint", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        let response = request.request_async(http).await.map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => SsoError::Refused(format!(
                "the token endpoint refused the code: {}",
                r.error()
            )),
            other => unreachable("token endpoint", error_chain(&other)),
        })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SsoError::InvalidToken("the provider sent no ID token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let claims = match verify(&d, id_token, &nonce) {
            Ok(c) => c,
            // A key rotated in since discovery: fetch the keys again, once.
            Err(SsoError::InvalidToken(e)) if d.fetched.elapsed() >= REFRESH_INTERVAL => {
                tracing::info!(provider = %self.settings.id, error = %e, "refetching the provider's keys");
                let fresh = self
                    .discovered(http, redirect, Some(REFRESH_INTERVAL))
                    .await?;
                verify(&fresh, id_token, &nonce)?
            }
            Err(e) => return Err(e),
        };
        // at_hash, when the ID token carries one, binds it to the access token.
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|e| SsoError::InvalidToken(e.to_string()))?;
            let verifier = d.client.id_token_verifier();
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| SsoError::InvalidToken(e.to_string()))?;
            let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
                .map_err(|e| SsoError::InvalidToken(e.to_string()))?;
            if actual != *expected {
                return Err(SsoError::InvalidToken(
                    "at_hash does not match the access token".into(),
                ));
            }
        }
        let subject = claims.subject().to_string();
        let mut all = Claims(as_map(&claims));
        if all.lacks_any(&self.settings) {
            if let Ok(request) = d.client.user_info(
                response.access_token().clone(),
                Some(claims.subject().clone()),
            ) {
                let info: Result<UserInfoClaims<OtherClaims, CoreGenderClaim>, _> =
                    request.request_async(http).await;
                match info {
                    Ok(info) => all.complete_from(Claims(as_map(&info))),
                    Err(e) => {
                        return Err(unreachable("userinfo endpoint", error_chain(&e)));
                    }
                }
            }
        }
        Ok(VerifiedSignIn {
            issuer: claims.issuer().to_string(),
            sid: all.0.get("sid").and_then(|v| v.as_str()).map(str::to_owned),
            subject,
            id_token: id_token.to_string(),
            claims: all,
        })
    }

    /// Where RP-initiated logout sends the browser, when the provider has an
    /// `end_session_endpoint` (as discovery found it; no fetch here).
    pub async fn end_session_url(&self, id_token: &str, post_logout: &str) -> Option<url::Url> {
        let d = self.cache.lock().await.discovered.clone()?;
        let endpoint = d
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.settings.client_id.clone()));
        if let Ok(url) = PostLogoutRedirectUrl::new(post_logout.to_owned()) {
            request = request.set_post_logout_redirect_uri(url);
        }
        if let Ok(token) = id_token.parse::<ProviderIdToken>() {
            request = request.set_id_token_hint(&token);
        }
        Some(request.http_get_url())
    }
}

fn verify(
    d: &Discovered,
    id_token: &ProviderIdToken,
    nonce: &Nonce,
) -> Result<openidconnect::IdTokenClaims<OtherClaims, CoreGenderClaim>, SsoError> {
    let algs = asymmetric(d.metadata.id_token_signing_alg_values_supported());
    let verifier = d.client.id_token_verifier().set_allowed_algs(algs);
    id_token
        .claims(&verifier, nonce)
        .cloned()
        .map_err(|e| SsoError::InvalidToken(e.to_string()))
}

/// Claims as one JSON object: standard and other claims alike.
fn as_map(claims: &impl Serialize) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(claims) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// An error and its causes on one line (the crate's errors nest the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_hmac_are_never_allowed() {
        use CoreJwsSigningAlgorithm::*;
        let got = asymmetric(&[
            None,
            HmacSha256,
            RsaSsaPkcs1V15Sha256,
            EcdsaP256Sha256,
            HmacSha512,
        ]);
        assert_eq!(got, vec![RsaSsaPkcs1V15Sha256, EcdsaP256Sha256]);
    }
}
