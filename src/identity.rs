//! `Identity`: who a verified request comes from.
//!
//! Built once per verified credential (then shared from the cache), so the
//! upstream header values are rendered here, once, instead of per request.

use crate::policy::PermissionSet;
use http::HeaderValue;
use std::time::SystemTime;

/// `type` of a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// A person: logs into pages, may use 2FA.
    User,
    /// A machine: Basic or API key only.
    Api,
}

impl UserKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UserKind::User => "user",
            UserKind::Api => "api",
        }
    }
}

/// How the identity was established (`X-Auth-Method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Session,
    Basic,
    ApiKey,
    Jwt,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Session => "session",
            AuthMethod::Basic => "basic",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Jwt => "jwt",
        }
    }
}

/// Which identity fact a header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityField {
    User,
    Email,
    Name,
    Groups,
    Permissions,
    Method,
}

/// A verified principal.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Username (or the API key's name for a key not bound to a user).
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub kind: UserKind,
    /// The role, if any (sent as `Remote-Groups`).
    pub role: Option<String>,
    pub permissions: PermissionSet,
    pub method: AuthMethod,
    /// After this instant the credential no longer counts (for sessions:
    /// must be re-checked against the store).
    pub expires_at: Option<SystemTime>,
    /// Hash of the session id, for sessions (revocation finds it by this).
    pub session: Option<String>,
    /// What revocation finds a revocable credential by: the `jti` of a
    /// Gatehouse token, or the SHA-256 (hex) of a stored API key.
    pub credential_id: Option<String>,
    values: [HeaderValue; 6],
}

fn header_value(s: &str) -> HeaderValue {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    HeaderValue::from_bytes(clean.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl Identity {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        subject: String,
        email: Option<String>,
        name: Option<String>,
        kind: UserKind,
        role: Option<String>,
        permissions: PermissionSet,
        method: AuthMethod,
        expires_at: Option<SystemTime>,
    ) -> Self {
        let values = [
            header_value(&subject),
            header_value(email.as_deref().unwrap_or("")),
            header_value(name.as_deref().unwrap_or("")),
            header_value(role.as_deref().unwrap_or("")),
            header_value(&permissions.to_header_string()),
            HeaderValue::from_static(method.as_str()),
        ];
        Identity {
            subject,
            email,
            name,
            kind,
            role,
            permissions,
            method,
            expires_at,
            session: None,
            credential_id: None,
            values,
        }
    }

    /// The identity of a session: re-checked after `recheck_at`.
    pub fn for_session(mut self, id_hash: String, recheck_at: SystemTime) -> Identity {
        self.session = Some(id_hash);
        self.expires_at = Some(recheck_at);
        self
    }

    /// The identity of a Gatehouse token: trusted until it expires (or is
    /// revoked, which the change feed reports).
    pub fn for_token(self, jti: String, expires_at: SystemTime) -> Identity {
        self.revocable(jti, Some(expires_at))
    }

    /// An identity the change feed can revoke by `id` (a token's `jti`, a
    /// stored API key's hash).
    pub fn revocable(mut self, id: String, expires_at: Option<SystemTime>) -> Identity {
        self.credential_id = Some(id);
        self.expires_at = expires_at;
        self
    }

    /// The same principal, established another way.
    pub fn with_method(&self, method: AuthMethod) -> Identity {
        let mut copy = self.clone();
        copy.method = method;
        copy.values[5] = HeaderValue::from_static(method.as_str());
        copy
    }

    /// The rendered value of one header field (empty when unknown).
    pub fn header_value(&self, field: IdentityField) -> &HeaderValue {
        &self.values[field as usize]
    }

    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }
}
