//! Who is asking: the identity behind an API request's credential, the
//! account owner for endpoints that change the caller's own account, the
//! administrator for endpoints that read or change others', and where the
//! request comes from.

use crate::accounts::admin::{authorize, Admin, AdminNeed};
use crate::app::Live;
use crate::credentials::CredentialSource;
use crate::gate::{Denial, Unauthenticated};
use crate::identity::{AuthMethod, Identity};
use crate::portal::csrf::proven_same_origin;
use crate::portal::json::error;
use crate::portal::{ClientIp, PortalState};
use crate::respond::Asker;
use crate::session::Origin;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// The identity behind the request's credential, or the answer to send:
/// every failure answered by [`Responder::denial`], as the proxy and
/// forward-auth answer it (401 with `WWW-Authenticate`, 503 with
/// `Retry-After` when the store cannot check it, 400, 429).
///
/// [`Responder::denial`]: crate::respond::Responder::denial
pub(in crate::portal) async fn who(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
) -> Result<(Arc<Identity>, CredentialSource), Response> {
    let denial = match live.gate.identify(headers, ip).await {
        Ok(Some(found)) => return Ok(found),
        Ok(None) => Denial::Unauthenticated(Unauthenticated::Missing),
        Err(failure) => failure.into(),
    };
    let api_client = Asker {
        method: &http::Method::GET,
        browser: false,
        return_to: None,
    };
    Err(s.responder.denial(&denial, &api_client).into_response())
}

/// Why this caller may not use an account endpoint, if they may not. Only a
/// person or machine signed in by session, token or password may (not an API
/// key: keys do not mint keys); cookie-authenticated writes must also prove
/// they come from our own origin.
fn account_refusal(
    s: &PortalState,
    caller: &Caller,
    headers: &HeaderMap,
    writes: bool,
) -> Option<Response> {
    let Caller {
        identity, source, ..
    } = caller;
    if identity.method == AuthMethod::ApiKey {
        return Some(error(
            s,
            StatusCode::FORBIDDEN,
            "forbidden",
            "API keys cannot manage API keys; sign in as the user",
        ));
    }
    if !identity.is_local_account() {
        return Some(error(
            s,
            StatusCode::FORBIDDEN,
            "forbidden",
            "tokens of external issuers have no account here",
        ));
    }
    if writes && *source == CredentialSource::SessionCookie && !proven_same_origin(s, headers) {
        return Some(error(
            s,
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "cross-site requests may not change your account",
        ));
    }
    None
}

/// Extractor: where the request comes from (address after trusted
/// proxies, user agent), for sessions and the audit trail.
impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts.extensions.get::<ClientIp>().and_then(|c| c.0);
        Ok(Origin::new(ip, &parts.headers))
    }
}

/// The request's shared parts every extractor here reads: the configuration
/// snapshot and the client's address, both put there by the proxy.
fn snapshot(parts: &Parts) -> Option<(Arc<Live>, Option<IpAddr>)> {
    let ip = parts.extensions.get::<ClientIp>().and_then(|c| c.0);
    Some((parts.extensions.get::<Arc<Live>>()?.clone(), ip))
}

/// The answer when the proxy did not hand over a snapshot (a bug, not input).
fn no_snapshot(s: &PortalState) -> Response {
    error(
        s,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "the portal was called without a configuration",
    )
}

/// Extractor: whoever the request's credential names, and which header
/// carried it (`api/me`, `api/logout`). Rejects with [`who`]'s answer.
pub(in crate::portal) struct Caller {
    pub live: Arc<Live>,
    pub identity: Arc<Identity>,
    pub source: CredentialSource,
}

impl FromRequestParts<Arc<PortalState>> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        s: &Arc<PortalState>,
    ) -> Result<Self, Self::Rejection> {
        let (live, ip) = snapshot(parts).ok_or_else(|| no_snapshot(s))?;
        let (identity, source) = who(s, &live, &parts.headers, ip).await?;
        Ok(Caller {
            live,
            identity,
            source,
        })
    }
}

/// Extractor: the owner of the account an endpoint reads (`WRITES = false`)
/// or changes (`WRITES = true`), per [`account_refusal`].
pub(in crate::portal) struct AccountOwner<const WRITES: bool> {
    pub live: Arc<Live>,
    pub identity: Arc<Identity>,
}

/// Reads the caller's own account.
pub(in crate::portal) type AccountReader = AccountOwner<false>;
/// Changes the caller's own account (same-origin proof for cookie writes).
pub(in crate::portal) type AccountWriter = AccountOwner<true>;

impl<const WRITES: bool> FromRequestParts<Arc<PortalState>> for AccountOwner<WRITES> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        s: &Arc<PortalState>,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, s).await?;
        if let Some(refusal) = account_refusal(s, &caller, &parts.headers, WRITES) {
            return Err(refusal);
        }
        Ok(AccountOwner {
            live: caller.live,
            identity: caller.identity,
        })
    }
}

/// What an administration endpoint needs of its caller, as a type: see
/// [`Administrator`].
pub(in crate::portal) trait AdminEndpoint {
    const NEED: AdminNeed;
}

/// Reads users, their sessions and keys (`users:get`).
pub(in crate::portal) struct ReadsUsers;
/// Changes users (`users:manage`).
pub(in crate::portal) struct ManagesUsers;
/// Reads the audit trail (`audit:get`).
pub(in crate::portal) struct ReadsAudit;
/// Asks how the policy answers a request (`policy:explain`).
pub(in crate::portal) struct ExplainsPolicy;

impl AdminEndpoint for ReadsUsers {
    const NEED: AdminNeed = AdminNeed::ReadUsers;
}
impl AdminEndpoint for ManagesUsers {
    const NEED: AdminNeed = AdminNeed::ManageUsers;
}
impl AdminEndpoint for ReadsAudit {
    const NEED: AdminNeed = AdminNeed::ReadAudit;
}
impl AdminEndpoint for ExplainsPolicy {
    const NEED: AdminNeed = AdminNeed::ExplainPolicy;
}

/// Extractor: a caller holding what `E` needs ([`authorize`]); 401 for
/// nobody, 403 `forbidden` naming the missing permission, and for a change
/// made with the session cookie, 403 `csrf_failed` unless it proves it
/// comes from our own origin.
pub(in crate::portal) struct Administrator<E> {
    pub live: Arc<Live>,
    pub identity: Arc<Identity>,
    endpoint: std::marker::PhantomData<E>,
}

impl<E: AdminEndpoint> FromRequestParts<Arc<PortalState>> for Administrator<E> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        s: &Arc<PortalState>,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, s).await?;
        if let Err(refusal) = authorize(&caller.identity, E::NEED) {
            return Err(error(
                s,
                StatusCode::FORBIDDEN,
                "forbidden",
                &refusal.to_string(),
            ));
        }
        let writes = !matches!(
            parts.method,
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        );
        if writes
            && caller.source == CredentialSource::SessionCookie
            && !proven_same_origin(s, &parts.headers)
        {
            return Err(error(
                s,
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "cross-site requests may not change accounts",
            ));
        }
        Ok(Administrator {
            live: caller.live,
            identity: caller.identity,
            endpoint: std::marker::PhantomData,
        })
    }
}

impl<E> Administrator<E> {
    /// The administrator at work on `store`, acting as the caller.
    pub fn admin<'a>(&'a self, store: &'a crate::store::Store) -> Admin<'a> {
        Admin {
            store,
            directory: self.live.gate.authenticator().directory(),
            passwords: &self.live.passwords,
            actor: &self.identity.subject,
            reach: Some(&self.identity.permissions),
        }
    }
}
