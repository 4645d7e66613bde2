//! The `2fa` page: the step between a right password and a session.
//!
//! The password page leaves a pending sign-in in the store (only the hash of
//! its id; the id rides in a short-lived, `SameSite=Strict` cookie) and
//! sends the browser here. This page asks for the code, or, when the user's
//! role requires a second factor not yet set up, shows the QR code to enrol
//! first. Only a right code turns the pending sign-in into a session.

use crate::app::Live;
use crate::audit::{action, AuditEvent, Outcome};
use crate::portal::csrf::{csrf_ok, csrf_token, first_cookie};
use crate::portal::html::{
    ban_notice, csrf_refused, page, see_other, with_retry_after, UNAVAILABLE,
};
use crate::portal::pages::login::{login_page_response, LoginView};
use crate::portal::sign_in::{
    audit_sign_in, check_code, signed_in, start_session, turn_on_at_sign_in, Channel, SignInFailure,
};
use crate::portal::PortalState;
use crate::session::Origin;
use crate::session::{cookie, id_hash, random_id, SameSite};
use crate::store::{unix_now, PendingLogin, PendingPurpose};
use crate::two_factor::{Enrolment, TwoFactorError};
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;

/// The cookie carrying the pending sign-in's id.
const PENDING_COOKIE: &str = "gatehouse_2fa";

#[derive(Deserialize)]
pub(in crate::portal) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// Password accepted, second factor owed: remember the sign-in and send the
/// browser to the `2fa` page. `None` when the store cannot take it.
pub(in crate::portal) async fn begin(
    s: &PortalState,
    live: &Live,
    username: &str,
    purpose: PendingPurpose,
    return_to: &str,
) -> Option<Response> {
    let store = s.store.as_ref()?;
    let id = random_id();
    let ttl = live.two_factor.pending_ttl().as_secs() as i64;
    let pending = PendingLogin {
        id_hash: id_hash(&id),
        username: username.to_owned(),
        purpose,
        return_to: return_to.to_owned(),
        expires_at: unix_now() + ttl,
    };
    if let Err(e) = store.create_pending_login(pending).await {
        tracing::error!(error = %e, "cannot remember a pending sign-in");
        return None;
    }
    let set = cookie(
        &live.session,
        PENDING_COOKIE,
        &id,
        ttl,
        &s.prefix,
        SameSite::Strict,
    );
    Some(see_other(&format!("{}/2fa", s.prefix), &[set]))
}

/// The pending sign-in the request's cookie names, if still live.
async fn pending(s: &PortalState, headers: &HeaderMap) -> Result<Option<PendingLogin>, StatusCode> {
    let (Some(store), Some(id)) = (&s.store, first_cookie(headers, PENDING_COOKIE)) else {
        return Ok(None);
    };
    store
        .pending_login(&id_hash(id))
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

fn clear_pending(s: &PortalState, live: &Live) -> String {
    cookie(
        &live.session,
        PENDING_COOKIE,
        "",
        0,
        &s.prefix,
        SameSite::Strict,
    )
}

/// The sign-in page again, because the pending sign-in is gone.
fn expired(s: &PortalState, live: &Live, headers: &HeaderMap) -> Response {
    let view = LoginView {
        error: Some("Your sign-in took too long or has ended. Enter your password again."),
        ..LoginView::default()
    };
    let mut resp = login_page_response(s, live, headers, StatusCode::UNAUTHORIZED, view);
    if let Ok(v) = HeaderValue::from_str(&clear_pending(s, live)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// What the `2fa` page shows besides the code field.
struct CodeView<'a> {
    error: Option<&'a str>,
    /// Enrolling first: the QR code and secret.
    enrolment: Option<&'a Enrolment>,
}

fn code_page(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    status: StatusCode,
    view: CodeView<'_>,
) -> Response {
    let (csrf, set) = csrf_token(s, live, headers);
    let ctx = minijinja::context! {
        title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix,
        csrf => csrf, error => view.error,
        enrol => view.enrolment.is_some(),
        secret => view.enrolment.map(|e| e.secret.as_str()),
        otpauth_url => view.enrolment.map(|e| e.otpauth_url.as_str()),
        qr_svg => view.enrolment.map(|e| e.qr_svg.as_str()),
    };
    page(s, status, "two_factor.html", ctx, set.as_slice())
}

/// The enrolment to show `username` (started now, or the one in progress).
pub(in crate::portal) async fn enrolment_for(
    live: &Live,
    username: &str,
) -> Result<Enrolment, TwoFactorError> {
    let user = live
        .gate
        .authenticator()
        .find_login(username)
        .await
        .map_err(|_| TwoFactorError::Unavailable)?
        .ok_or(TwoFactorError::NotEnrolling)?;
    live.two_factor.begin(&user).await
}

fn unavailable(s: &PortalState) -> Response {
    s.responder
        .page(StatusCode::SERVICE_UNAVAILABLE, "Try again", UNAVAILABLE)
        .into_response()
}

/// `GET 2fa`.
pub(in crate::portal) async fn code_form(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
) -> Response {
    let pending = match pending(&s, &headers).await {
        Ok(Some(p)) => p,
        Ok(None) => return see_other(&format!("{}/login", s.prefix), &[]),
        Err(_) => return unavailable(&s),
    };
    match pending.purpose {
        PendingPurpose::Verify => {
            let view = CodeView {
                error: None,
                enrolment: None,
            };
            code_page(&s, &live, &headers, StatusCode::OK, view)
        }
        PendingPurpose::Enrol => match enrolment_for(&live, &pending.username).await {
            Ok(enrolment) => {
                let view = CodeView {
                    error: None,
                    enrolment: Some(&enrolment),
                };
                code_page(&s, &live, &headers, StatusCode::OK, view)
            }
            Err(e) => {
                tracing::error!(error = %e, user = %pending.username, "enrolment cannot start");
                unavailable(&s)
            }
        },
    }
}

/// `POST 2fa`: the code (or a recovery code); a session when it is right.
pub(in crate::portal) async fn code_submit(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let ip = origin.ip;
    if !csrf_ok(&s, &headers, &form.csrf) {
        return csrf_refused(&s);
    }
    let pending = match pending(&s, &headers).await {
        Ok(Some(p)) => p,
        Ok(None) => return expired(&s, &live, &headers),
        Err(_) => return unavailable(&s),
    };
    let username = pending.username.as_str();
    let checked = match pending.purpose {
        PendingPurpose::Verify => check_code(&live, username, &form.code, ip)
            .await
            .map(|()| None),
        PendingPurpose::Enrol => turn_on_at_sign_in(&live, username, &form.code, ip)
            .await
            .map(Some),
    };
    let recovery_codes = match checked {
        Ok(codes) => codes,
        Err(failure) => {
            if failure != SignInFailure::Unavailable {
                let reason = match failure {
                    SignInFailure::Invalid => "invalid_code",
                    ref other => other.reason(),
                };
                audit_sign_in(&s, &origin, username, Channel::Page, Some(reason));
            }
            return refused(&s, &live, &headers, &pending, failure).await;
        }
    };
    if recovery_codes.is_some() {
        s.audit.record(
            AuditEvent::new(action::TWO_FACTOR_ENABLE, Outcome::Success)
                .actor(username)
                .origin(&origin)
                .detail("at_sign_in", true),
        );
    }
    // One pending sign-in makes one session, even from two tabs at once.
    let Some(store) = &s.store else {
        return unavailable(&s);
    };
    match store.finish_pending_login(&pending.id_hash).await {
        Ok(true) => {}
        Ok(false) => return expired(&s, &live, &headers),
        Err(_) => return unavailable(&s),
    }
    signed_in(&live, username).await;
    let Some(session) = start_session(&s, &live, username, &origin, Channel::Page).await else {
        return unavailable(&s);
    };
    let cookies = [session, clear_pending(&s, &live)];
    match recovery_codes {
        None => see_other(&pending.return_to, &cookies),
        Some(codes) => {
            let ctx = minijinja::context! {
                title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix,
                codes => codes, continue_to => &pending.return_to,
            };
            page(&s, StatusCode::OK, "recovery_codes.html", ctx, &cookies)
        }
    }
}

/// The `2fa` page again, saying why the code was not taken.
async fn refused(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    pending: &PendingLogin,
    failure: SignInFailure,
) -> Response {
    let (status, message, ban) = match failure {
        SignInFailure::Banned(b) => (StatusCode::TOO_MANY_REQUESTS, ban_notice(b), Some(b)),
        SignInFailure::Unavailable => return unavailable(s),
        SignInFailure::CodeAlreadyUsed => (
            StatusCode::UNAUTHORIZED,
            "That code was already used. Wait for the next code from your app.".to_owned(),
            None,
        ),
        _ => (
            StatusCode::UNAUTHORIZED,
            "That code is not valid. Enter the current code from your app, or a recovery code."
                .to_owned(),
            None,
        ),
    };
    let enrolment = match pending.purpose {
        PendingPurpose::Enrol => enrolment_for(live, &pending.username).await.ok(),
        PendingPurpose::Verify => None,
    };
    let view = CodeView {
        error: Some(&message),
        enrolment: enrolment.as_ref(),
    };
    let resp = code_page(s, live, headers, status, view);
    match ban {
        Some(b) => with_retry_after(resp, b),
        None => resp,
    }
}
