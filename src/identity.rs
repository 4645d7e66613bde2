//! `Identity`: who a verified request comes from.
//!
//! Built once per verified credential (then shared from the cache), so the
//! upstream header values are rendered here, once, instead of per request.

use crate::permission::PermissionSet;
use http::HeaderValue;
use std::borrow::Cow;
use std::sync::OnceLock;
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

    /// `user` or `api`.
    pub fn parse(s: &str) -> Option<UserKind> {
        match s {
            "user" => Some(UserKind::User),
            "api" => Some(UserKind::Api),
            _ => None,
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

/// How a revocable credential is found again when it is revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// SHA-256 (hex) of the session id.
    Session(String),
    /// `jti` of a Gatehouse token.
    Token(String),
    /// SHA-256 (hex) of a stored API key.
    ApiKey(String),
}

impl Revocation {
    /// The key the store and the change feed know it by.
    pub fn key(&self) -> &str {
        match self {
            Revocation::Session(k) | Revocation::Token(k) | Revocation::ApiKey(k) => k,
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
    /// What revocation finds this identity's credential by, when it can be
    /// revoked (sessions, Gatehouse tokens, stored API keys).
    pub revocation: Option<Revocation>,
    values: [HeaderValue; 6],
    /// This identity's upstream header lines as written on the wire, for
    /// the header set numbered `.0` (rendered on first use; see
    /// [`Identity::header_lines`]).
    lines: OnceLock<(u64, Box<[u8]>)>,
}

fn header_value(s: &str) -> HeaderValue {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    HeaderValue::from_bytes(clean.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl Identity {
    /// How pages name whoever this is: "Alice Example (alice)", or the user
    /// name alone when there is no other name.
    pub fn shown_as(&self) -> String {
        match self.name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() && name != self.subject => {
                format!("{name} ({})", self.subject)
            }
            _ => self.subject.clone(),
        }
    }

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
            revocation: None,
            values,
            lines: OnceLock::new(),
        }
    }

    /// The identity of a session: re-checked after `recheck_at`.
    pub fn for_session(self, id_hash: String, recheck_at: SystemTime) -> Identity {
        self.revocable(Revocation::Session(id_hash), Some(recheck_at))
    }

    /// The identity of a Gatehouse token: trusted until it expires (or is
    /// revoked, which the change feed reports).
    pub fn for_token(self, jti: String, expires_at: SystemTime) -> Identity {
        self.revocable(Revocation::Token(jti), Some(expires_at))
    }

    /// An identity the change feed can revoke through `handle`.
    pub fn revocable(mut self, handle: Revocation, expires_at: Option<SystemTime>) -> Identity {
        self.revocation = Some(handle);
        self.expires_at = expires_at;
        self
    }

    /// A user of ours (config file or store), as opposed to the subject of
    /// an external issuer's token, which has no account here.
    pub fn is_local_account(&self) -> bool {
        self.method != AuthMethod::Jwt || matches!(self.revocation, Some(Revocation::Token(_)))
    }

    /// The same principal, established another way.
    pub fn with_method(&self, method: AuthMethod) -> Identity {
        let mut copy = self.clone();
        copy.method = method;
        copy.values[5] = HeaderValue::from_static(method.as_str());
        copy.lines = OnceLock::new();
        copy
    }

    /// The header lines `render` writes for this identity and the header
    /// set numbered `set`: rendered once and kept for the first set asked
    /// for (an identity lives in one configuration's cache, so it meets one
    /// set), rendered on every call for any other.
    pub fn header_lines(&self, set: u64, render: impl Fn(&Identity) -> Vec<u8>) -> Cow<'_, [u8]> {
        let (kept_for, lines) = self
            .lines
            .get_or_init(|| (set, render(self).into_boxed_slice()));
        if *kept_for == set {
            Cow::Borrowed(lines)
        } else {
            Cow::Owned(render(self))
        }
    }

    /// The rendered value of one header field (empty when unknown).
    pub fn header_value(&self, field: IdentityField) -> &HeaderValue {
        &self.values[field as usize]
    }

    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    /// Whether it has expired by now; the clock is read only for an
    /// identity that expires (sessions, tokens), not for every request.
    pub fn has_expired(&self) -> bool {
        self.expires_at.is_some_and(|t| SystemTime::now() >= t)
    }
}
