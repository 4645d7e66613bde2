//! Single sign-on in the browser: `oidc/{id}/authorize` sends the browser to
//! the provider, `oidc/callback` brings it back signed in.
//!
//! The pending sign-in (provider, nonce, PKCE verifier, where to return) is
//! kept in the store, so any replica can finish it, single-use, for ten
//! minutes. It is keyed by the hash of `state` together with a random
//! binding cookie of this browser: a callback URL taken from someone else's
//! sign-in finds nothing here, so nobody can be signed in as somebody else
//! (login CSRF). Every failure answers the sign-in page with what went wrong
//! and the way to start again; never a 500.

use crate::accounts::sso::{account_for, SsoAccountError};
use crate::app::Live;
use crate::audit::{action, AuditEvent, Outcome};
use crate::identity::UserKind;
use crate::portal::csrf::first_cookie;
use crate::portal::html::{see_other, uncached_with_cookies};
use crate::portal::pages::login::{login_page_response, LoginView};
use crate::portal::sign_in::return_to;
use crate::portal::PortalState;
use crate::session::{self, SameSite};
use crate::sso::{check_allowed, role_for, SsoError, PENDING_TTL};
use crate::store::{unix_now, SessionSso, SsoPending};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
pub(in crate::portal) struct AuthorizeQuery {
    rd: Option<String>,
}

#[derive(Deserialize)]
pub(in crate::portal) struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// The binding cookie's name: the session cookie's, with `_sso`.
fn binding_cookie(live: &Live) -> String {
    format!("{}_sso", live.session.cookie_name)
}

/// What the store keys a pending sign-in by.
fn pending_key(state: &str, binding: &str) -> String {
    session::id_hash(&format!("{state}.{binding}"))
}

/// `302` to `{p}/oidc/{id}/authorize`, keeping `rd` (the sign-in page's
/// `auto_redirect`).
pub(in crate::portal) fn send_to_provider(s: &PortalState, id: &str, rd: &str) -> Response {
    let mut location = format!("{}/oidc/{id}/authorize", s.prefix);
    if let Some(rd) = s.redirect.validate(rd) {
        location.push_str("?rd=");
        location.extend(url::form_urlencoded::byte_serialize(rd.as_str().as_bytes()));
    }
    found(&location, &[])
}

fn found(location: &str, set_cookies: &[String]) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    uncached_with_cookies(resp, set_cookies)
}

/// The sign-in page, with `message`, answered with `status`.
fn problem(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    status: StatusCode,
    message: &str,
    rd: &str,
) -> Response {
    let view = LoginView {
        rd,
        error: Some(message),
        ..LoginView::default()
    };
    login_page_response(s, live, headers, status, view)
}

const EXPIRED: &str = "Sign-in expired. Start again.";

/// What the person reads when the provider side failed.
fn sso_problem(e: &SsoError) -> (StatusCode, &'static str, &'static str) {
    match e {
        SsoError::UnknownProvider(_) => (
            StatusCode::NOT_FOUND,
            "unknown_provider",
            "That sign-in provider is not configured here.",
        ),
        SsoError::Unreachable(_) => (
            StatusCode::BAD_GATEWAY,
            "unreachable",
            "The identity provider cannot be reached right now. Try again shortly.",
        ),
        SsoError::Refused(_) => (
            StatusCode::UNAUTHORIZED,
            "refused",
            "The identity provider did not confirm the sign-in. Start again.",
        ),
        SsoError::InvalidToken(_) => (
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The identity provider's answer could not be verified. Start again.",
        ),
    }
}

/// `GET {p}/oidc/{id}/authorize?rd=…`: `302` to the provider.
pub(in crate::portal) async fn authorize(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Path(id): Path<String>,
    Query(q): Query<AuthorizeQuery>,
    headers: HeaderMap,
) -> Response {
    let rd = q.rd.as_deref().unwrap_or("");
    let start = match live.sso.begin(&id).await {
        Ok(start) => start,
        Err(e) => {
            tracing::warn!(provider = %id, error = %e, "single sign-on cannot start");
            let (status, outcome, message) = sso_problem(&e);
            if live.sso.provider(&id).is_some() {
                s.metrics.sso_sign_in(&id, outcome);
            }
            return problem(&s, &live, &headers, status, message, rd);
        }
    };
    let Some(store) = &s.store else {
        return problem(
            &s,
            &live,
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable right now. Try again shortly.",
            rd,
        );
    };
    let name = binding_cookie(&live);
    let binding = first_cookie(&headers, &name)
        .filter(|b| b.len() == 43)
        .map_or_else(session::random_id, str::to_owned);
    let pending = SsoPending {
        state_hash: pending_key(&start.state, &binding),
        provider: id.clone(),
        nonce: start.nonce,
        pkce_verifier: start.pkce_verifier,
        return_to: return_to(&s, rd),
        expires_at: unix_now() + PENDING_TTL.as_secs() as i64,
    };
    if let Err(e) = store.create_sso_pending(pending).await {
        tracing::error!(error = %e, "cannot keep a pending sign-in");
        return problem(
            &s,
            &live,
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable right now. Try again shortly.",
            rd,
        );
    }
    // Kept across starts (and its lifetime renewed), so a sign-in begun
    // in another tab still finds its binding.
    let cookie = session::cookie(
        &live.session,
        &name,
        &binding,
        PENDING_TTL.as_secs() as i64,
        &format!("{}/oidc", s.prefix),
        SameSite::Lax,
    );
    found(start.url.as_str(), &[cookie])
}

/// `GET {p}/oidc/callback`: finish the sign-in, start the session, return.
pub(in crate::portal) async fn callback(
    State(s): State<Arc<PortalState>>,
    origin: session::Origin,
    Extension(live): Extension<Arc<Live>>,
    Query(q): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let again =
        |status: StatusCode, message: &str| problem(&s, &live, &headers, status, message, "");
    let unavailable = || {
        again(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable right now. Try again shortly.",
        )
    };
    let Some(store) = &s.store else {
        return unavailable();
    };
    let binding_name = binding_cookie(&live);
    let binding = first_cookie(&headers, &binding_name);
    let pending = match (q.state.as_deref(), binding) {
        (Some(state), Some(binding)) => {
            match store
                .take_sso_pending(&pending_key(state, binding), unix_now())
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read a pending sign-in");
                    return unavailable();
                }
            }
        }
        _ => None,
    };
    let Some(pending) = pending else {
        return again(StatusCode::BAD_REQUEST, EXPIRED);
    };
    let id = pending.provider.as_str();
    // Every end but success is counted and put on the audit trail here.
    let count = |outcome: &str| {
        s.metrics.sso_sign_in(id, outcome);
        if outcome != "success" {
            let failure = AuditEvent::new(action::SIGN_IN, Outcome::Failure)
                .origin(&origin)
                .detail("channel", "sso")
                .detail("provider", id)
                .detail("reason", outcome);
            s.audit.record(failure);
        }
    };
    let Some(p) = live.sso.provider(id) else {
        return again(StatusCode::BAD_REQUEST, EXPIRED);
    };
    if let Some(error) = q.error.as_deref() {
        count("refused");
        tracing::info!(provider = %id, error, "the identity provider refused the sign-in");
        let message = format!("{} did not sign you in ({error}).", p.display_name);
        return again(StatusCode::FORBIDDEN, &message);
    }
    let Some(code) = q.code.as_deref() else {
        return again(StatusCode::BAD_REQUEST, EXPIRED);
    };
    let sign_in = match live
        .sso
        .finish(id, code, &pending.nonce, &pending.pkce_verifier)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(provider = %id, error = %e, "single sign-on failed");
            let (status, outcome, message) = sso_problem(&e);
            count(outcome);
            return again(status, message);
        }
    };
    let groups = sign_in.claims.groups(&p.groups_claim);
    if let Err(why) = check_allowed(p, &sign_in.claims, &groups) {
        count("forbidden");
        tracing::info!(provider = %id, subject = %sign_in.subject, reason = %why, "single sign-on refused");
        return again(
            StatusCode::FORBIDDEN,
            "Your account at the identity provider may not sign in here.",
        );
    }
    let role = role_for(p, &groups);
    let directory = live.gate.authenticator().directory();
    let user = match account_for(store, directory, p, &sign_in, &role).await {
        Ok((user, _)) if user.record.kind == UserKind::User => user,
        Ok(_) | Err(SsoAccountError::Disabled) => {
            count("forbidden");
            return again(StatusCode::FORBIDDEN, "This account is disabled.");
        }
        Err(SsoAccountError::NotLinked) => {
            count("forbidden");
            return again(
                StatusCode::FORBIDDEN,
                "No account here is linked to your identity. Ask an administrator to create one.",
            );
        }
        Err(SsoAccountError::NameTaken(name)) => {
            count("conflict");
            let message = format!(
                "The user name `{name}` belongs to another account here, so a new one cannot be created. Ask an administrator to link them."
            );
            return again(StatusCode::CONFLICT, &message);
        }
        Err(SsoAccountError::NoUsableName) => {
            count("forbidden");
            return again(
                StatusCode::FORBIDDEN,
                "The identity provider gave no user name that can be used here.",
            );
        }
        Err(SsoAccountError::Unavailable) => {
            count("error");
            return unavailable();
        }
    };
    let username = user.record.username;
    // Role or status may have changed: no cached identity keeps the old one.
    live.gate.authenticator().invalidate_user(&username);
    let sso = SessionSso {
        provider: id.to_owned(),
        subject: sign_in.subject,
        sid: sign_in.sid,
        id_token: sign_in.id_token,
    };
    let id_session = match session::start_sso(store, &live.session, &username, &origin, sso).await {
        Ok(session_id) => session_id,
        Err(e) => {
            tracing::error!(error = %e, "cannot create a session");
            count("error");
            return unavailable();
        }
    };
    count("success");
    s.audit.record(
        AuditEvent::new(action::SIGN_IN, Outcome::Success)
            .actor(&username)
            .origin(&origin)
            .detail("channel", "sso")
            .detail("provider", id),
    );
    let cookie = session::session_cookie(&live.session, &id_session);
    see_other(&pending.return_to, &[cookie])
}
