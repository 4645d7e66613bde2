//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): a provider
//! POSTs a signed `logout_token`; it is verified like an ID token (the
//! provider's keys and algorithms from discovery, `iss`, `aud`, `iat`, `exp`
//! when present), must carry the logout `events` claim and `sub` or `sid`,
//! and must not carry a `nonce`.

use super::{ProviderSettings, SsoError};
use crate::tokens::external::decoding_keys;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Validation};
use openidconnect::ProviderMetadataWithLogout;
use serde_json::Value;

const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Whose sessions a verified logout token ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutNotice {
    pub provider: String,
    pub subject: Option<String>,
    pub sid: Option<String>,
}

fn invalid(why: impl Into<String>) -> SsoError {
    SsoError::InvalidToken(why.into())
}

/// The `iss` a token claims, before any check (to pick the provider).
pub(super) fn unverified_issuer(token: &str) -> Result<String, SsoError> {
    use base64::Engine;
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| invalid("not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid("not a JWT"))?;
    let claims: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("not a JWT"))?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| invalid("no `iss` claim"))
}

/// Verify `token` as provider `p`'s logout token.
pub(super) fn verify(
    token: &str,
    p: &ProviderSettings,
    metadata: &ProviderMetadataWithLogout,
) -> Result<LogoutNotice, SsoError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(e.to_string()))?;
    let allowed: Vec<Algorithm> = metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter_map(|a| serde_json::to_value(a).ok())
        .filter_map(|v| v.as_str().and_then(|s| s.parse::<Algorithm>().ok()))
        .filter(|a| !matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        .collect();
    if !allowed.contains(&header.alg) {
        return Err(invalid(format!(
            "`{:?}` is not an algorithm this provider signs with",
            header.alg
        )));
    }
    let jwks: JwkSet = serde_json::to_value(metadata.jwks())
        .and_then(serde_json::from_value)
        .map_err(|e| invalid(format!("the provider's keys: {e}")))?;
    let (by_kid, anonymous) = decoding_keys(&jwks, &allowed);
    let entry = match &header.kid {
        Some(kid) => by_kid.get(kid).cloned(),
        None if by_kid.len() + anonymous.len() == 1 => {
            by_kid.values().next().or(anonymous.first()).cloned()
        }
        None => None,
    }
    .ok_or_else(|| invalid("signed with a key the provider does not publish"))?;
    let (key, pinned) = &*entry;
    if pinned.is_some_and(|a| a != header.alg) {
        return Err(invalid("the key is for another algorithm"));
    }
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[metadata.issuer().as_str()]);
    validation.set_audience(&[p.client_id.as_str()]);
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.leeway = 60;
    let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, &validation)
        .map_err(|e| invalid(e.to_string()))?;
    let claims = data.claims;
    if claims.get("iat").and_then(Value::as_i64).is_none() {
        return Err(invalid("no `iat` claim"));
    }
    let is_logout = claims
        .get("events")
        .and_then(Value::as_object)
        .is_some_and(|e| e.get(LOGOUT_EVENT).is_some_and(Value::is_object));
    if !is_logout {
        return Err(invalid("no back-channel logout event"));
    }
    if claims.contains_key("nonce") {
        return Err(invalid("a logout token must not carry a nonce"));
    }
    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
    let (subject, sid) = (text("sub"), text("sid"));
    if subject.is_none() && sid.is_none() {
        return Err(invalid("neither `sub` nor `sid`"));
    }
    Ok(LogoutNotice {
        provider: p.id.clone(),
        subject,
        sid,
    })
}
