//! Who is asking: the identity behind an API request's credential, and the
//! account owner for endpoints that change the caller's own account.

use crate::app::Live;
use crate::authn::AuthnError;
use crate::credentials::CredentialSource;
use crate::gate::AuthFailure;
use crate::identity::{AuthMethod, Identity};
use crate::portal::csrf::proven_same_origin;
use crate::portal::json::{error, store_down, unauthorized};
use crate::portal::PortalState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The identity behind the request's credential, or the answer to send.
pub(in crate::portal) async fn who(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
) -> Result<(Arc<Identity>, CredentialSource), Response> {
    match live.gate.identify(headers, ip).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(unauthorized(s, "unauthorized", "authentication required")),
        Err(AuthFailure::Unauthenticated(crate::gate::Unauthenticated::Rejected(
            AuthnError::Unavailable,
        ))) => Err(store_down(
            s,
            "credentials cannot be checked right now; try again shortly",
        )),
        Err(failure) => {
            let denial: crate::gate::Denial = failure.into();
            let asker = crate::respond::Asker {
                method: &http::Method::GET,
                browser: false,
                return_to: None,
            };
            Err(s.responder.denial(&denial, &asker).into_response())
        }
    }
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
