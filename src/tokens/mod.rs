//! Gatehouse's own tokens: Ed25519 signing keys, issuing JWTs, verifying
//! them, and publishing the public keys as a JWKS.
//!
//! Verification here covers the token itself (algorithm, key, signature,
//! `iss`, `aud`, `exp`, `nbf`); whether its `jti` was revoked and whether its
//! user may still sign in is the authenticator's business. Tokens of other
//! issuers are in [`external`].

pub mod external;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Why a bearer token is refused. Every variant is a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    AlgorithmNotAllowed,
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not trusted")]
    UnknownIssuer,
    #[error("the token is not meant for this audience")]
    WrongAudience,
    #[error("the token lacks a required claim")]
    MissingClaim,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the issuer's keys cannot be fetched")]
    KeysUnavailable,
}

impl TokenError {
    fn from_jwt(e: &jsonwebtoken::errors::Error) -> TokenError {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => TokenError::BadSignature,
            K::ExpiredSignature => TokenError::Expired,
            K::ImmatureSignature => TokenError::NotYetValid,
            K::InvalidIssuer => TokenError::UnknownIssuer,
            K::InvalidAudience => TokenError::WrongAudience,
            K::MissingRequiredClaim(_) | K::InvalidClaimFormat(_) => TokenError::MissingClaim,
            K::InvalidAlgorithm | K::InvalidAlgorithmName => TokenError::AlgorithmNotAllowed,
            K::InvalidKeyFormat | K::InvalidEddsaKey | K::InvalidRsaKey(_) | K::InvalidEcdsaKey => {
                TokenError::AlgorithmNotAllowed
            }
            _ => TokenError::Malformed,
        }
    }
}

/// What an unverified token says about itself: enough to pick the verifier.
#[derive(Debug, Clone)]
pub struct Peek {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub iss: Option<String>,
}

/// Read a token's header and `iss` without trusting either.
pub fn peek(token: &str) -> Result<Peek, TokenError> {
    #[derive(Deserialize)]
    struct IssOnly {
        iss: Option<String>,
    }
    if token.len() > crate::credentials::MAX_CREDENTIAL_LEN || token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    // `decode_header` refuses `alg: none` (no such `Algorithm`), which is right.
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    let payload = token.split('.').nth(1).ok_or(TokenError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed)?;
    let claims: IssOnly = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    Ok(Peek {
        alg: header.alg,
        kid: header.kid,
        iss: claims.iss,
    })
}

/// The claims of a Gatehouse token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The user's credentials version when the token was issued (absent:
    /// 0); a password change bumps the user's, which ends this token.
    #[serde(rename = "cv", default, skip_serializing_if = "is_zero")]
    pub credentials_version: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A signing key, parsed.
#[derive(Clone)]
pub struct KeyMaterial {
    pub kid: String,
    /// PKCS#8 DER of the private key; `None` for a retired, verify-only key.
    private_der: Option<Vec<u8>>,
    public: [u8; 32],
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("kid", &self.kid)
            .field("signs", &self.private_der.is_some())
            .finish()
    }
}

/// Why a signing key could not be read or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("is not a PKCS#8 PEM Ed25519 private key (see `gatehouse signing-key generate`)")]
    NotPrivateKey,
    #[error("is not a PEM Ed25519 public key")]
    NotPublicKey,
    #[error("cannot encode the key: {0}")]
    Encode(String),
}

impl KeyMaterial {
    /// From a PKCS#8 PEM Ed25519 private key.
    pub fn from_private_pem(kid: &str, pem: &str) -> Result<KeyMaterial, KeyError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|_| KeyError::NotPrivateKey)?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(KeyMaterial {
            kid: kid.to_owned(),
            private_der: Some(der.as_bytes().to_vec()),
            public: key.verifying_key().to_bytes(),
        })
    }

    /// From an SPKI PEM Ed25519 public key (a retired key that only verifies).
    pub fn from_public_pem(kid: &str, pem: &str) -> Result<KeyMaterial, KeyError> {
        let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|_| KeyError::NotPublicKey)?;
        Ok(KeyMaterial {
            kid: kid.to_owned(),
            private_der: None,
            public: key.to_bytes(),
        })
    }

    /// A fresh key: `(kid, PKCS#8 PEM)`. The kid is derived from the public key.
    pub fn generate() -> Result<(String, String), KeyError> {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        let digest = blake3::hash(&key.verifying_key().to_bytes());
        let kid = format!("gh-{}", &digest.to_hex()[..16]);
        Ok((kid, pem.to_string()))
    }

    fn x(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public)
    }
}

/// `tokens:` after validation.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub ttl: Duration,
    /// Configured keys; empty means "use the store's generated key".
    pub keys: Vec<KeyMaterial>,
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub jti: String,
    pub expires_at: i64,
}

struct VerifyKey {
    kid: String,
    key: DecodingKey,
}

/// Issues and verifies Gatehouse tokens.
pub struct TokenService {
    issuer: String,
    audience: String,
    ttl: Duration,
    signer: Option<(String, EncodingKey)>,
    verifiers: Vec<VerifyKey>,
    jwks: serde_json::Value,
    validation: Validation,
}

impl TokenService {
    /// `keys`: configured keys, or the store's generated ones when none are configured.
    pub fn new(settings: &TokenSettings, keys: Vec<KeyMaterial>) -> TokenService {
        let signer = keys.iter().find_map(|k| {
            k.private_der
                .as_ref()
                .map(|der| (k.kid.clone(), EncodingKey::from_ed_der(der)))
        });
        let verifiers = keys
            .iter()
            .map(|k| VerifyKey {
                kid: k.kid.clone(),
                key: DecodingKey::from_ed_der(&k.public),
            })
            .collect();
        let jwks = serde_json::json!({
            "keys": keys.iter().map(|k| serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                "kid": k.kid, "x": k.x(),
            })).collect::<Vec<_>>()
        });
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        TokenService {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl: settings.ttl,
            signer,
            verifiers,
            jwks,
            validation,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The public keys, as served at `.well-known/jwks.json`.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// Sign a token for `user`, valid from `now` for the configured lifetime.
    pub fn issue(
        &self,
        user: &crate::directory::UserRecord,
        now: i64,
    ) -> Result<IssuedToken, String> {
        let (kid, key) = self
            .signer
            .as_ref()
            .ok_or("no signing key with a private key is configured")?;
        let jti = crate::session::random_id();
        let expires_at = now + self.ttl.as_secs() as i64;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: user.username.clone(),
            aud: self.audience.clone(),
            exp: expires_at,
            iat: now,
            nbf: now,
            jti: jti.clone(),
            role: user.role.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            credentials_version: user.credentials_version,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, key)
            .map_err(|e| format!("cannot sign a token: {e}"))?;
        Ok(IssuedToken {
            token,
            jti,
            expires_at,
        })
    }

    /// Check signature and claims of one of our tokens.
    pub fn verify(&self, token: &str, peek: &Peek) -> Result<Claims, TokenError> {
        if peek.alg != Algorithm::EdDSA {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let kid = peek.kid.as_deref().ok_or(TokenError::UnknownKey)?;
        let key = self
            .verifiers
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &self.validation)
            .map_err(|e| TokenError::from_jwt(&e))?;
        if data.claims.jti.is_empty() {
            return Err(TokenError::MissingClaim);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{UserRecord, UserStatus};
    use crate::identity::UserKind;

    fn service(keys: Vec<KeyMaterial>) -> TokenService {
        TokenService::new(
            &TokenSettings {
                issuer: "https://auth.example.com".into(),
                audience: "https://auth.example.com".into(),
                ttl: Duration::from_secs(3600),
                keys: vec![],
            },
            keys,
        )
    }

    fn user() -> UserRecord {
        UserRecord {
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            name: None,
            kind: UserKind::User,
            status: UserStatus::Enabled,
            role: "admin".into(),
            password_hash: None,
            credentials_version: 0,
        }
    }

    fn key(kid: &str) -> KeyMaterial {
        let (_, pem) = KeyMaterial::generate().unwrap();
        KeyMaterial::from_private_pem(kid, &pem).unwrap()
    }

    fn now() -> i64 {
        crate::store::unix_now()
    }

    #[test]
    fn issued_tokens_verify_and_rotate() {
        let (old, new) = (key("old"), key("new"));
        let before = service(vec![old.clone()]);
        let issued = before.issue(&user(), now()).unwrap();
        // Rotation: the new key signs, the old one still verifies.
        let after = service(vec![new, old]);
        let peek = peek(&issued.token).unwrap();
        assert_eq!(peek.kid.as_deref(), Some("old"));
        let claims = after.verify(&issued.token, &peek).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.role.as_str()),
            ("alice", "admin")
        );
        let fresh = after.issue(&user(), now()).unwrap();
        assert_eq!(peek_kid(&fresh.token), "new");
        // Without the old key, its tokens are refused.
        let only_new = service(vec![key("new")]);
        assert_eq!(
            only_new.verify(&issued.token, &peek).err(),
            Some(TokenError::UnknownKey)
        );
        assert_eq!(after.jwks()["keys"].as_array().unwrap().len(), 2);
    }

    fn peek_kid(t: &str) -> String {
        peek(t).unwrap().kid.unwrap()
    }

    #[test]
    fn time_claims_are_enforced_without_leeway() {
        let s = service(vec![key("k")]);
        let expired = s.issue(&user(), now() - 3601).unwrap();
        let p = peek(&expired.token).unwrap();
        assert_eq!(
            s.verify(&expired.token, &p).err(),
            Some(TokenError::Expired)
        );
        let future = s.issue(&user(), now() + 600).unwrap();
        let p = peek(&future.token).unwrap();
        assert_eq!(
            s.verify(&future.token, &p).err(),
            Some(TokenError::NotYetValid)
        );
    }

    #[test]
    fn a_verify_only_key_cannot_sign() {
        let k = key("k");
        let public = KeyMaterial {
            private_der: None,
            ..k
        };
        assert!(service(vec![public]).issue(&user(), now()).is_err());
    }

    #[test]
    fn peek_refuses_garbage() {
        for t in [
            "",
            "a.b",
            "a.b.c",
            "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.x",
        ] {
            assert!(peek(t).is_err(), "{t}");
        }
    }
}
