//! Who is asking: the identity behind an API request's credential, and the
//! account owner for endpoints that change the caller's own account.

use crate::app::Live;
use crate::credentials::CredentialSource;
use crate::gate::{Denial, Unauthenticated};
use crate::identity::{AuthMethod, Identity};
use crate::portal::csrf::proven_same_origin;
use crate::portal::json::error;
use crate::portal::PortalState;
use crate::respond::Asker;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
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

/// The identity for an account endpoint: a person or machine signed in by
/// session, token or password — not an API key (keys do not mint keys).
/// Cookie-authenticated writes must come from our own origin.
pub(in crate::portal) async fn account_owner(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
    writes: bool,
) -> Result<Arc<Identity>, Response> {
    let (identity, source) = who(s, live, headers, ip).await?;
    if identity.method == AuthMethod::ApiKey {
        return Err(error(
            s,
            StatusCode::FORBIDDEN,
            "forbidden",
            "API keys cannot manage API keys; sign in as the user",
        ));
    }
    if !identity.is_local_account() {
        return Err(error(
            s,
            StatusCode::FORBIDDEN,
            "forbidden",
            "tokens of external issuers have no account here",
        ));
    }
    if writes && source == CredentialSource::SessionCookie && !proven_same_origin(s, headers) {
        return Err(error(
            s,
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "cross-site requests may not change your account",
        ));
    }
    Ok(identity)
}
