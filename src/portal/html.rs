//! The pages' answers: rendered templates, `303 See Other` with cookies,
//! ban notices with `Retry-After`, the CSRF refusal page; and the layer that
//! gives a browser a page, not JSON, for every error under the prefix.

use crate::portal::PortalState;
use crate::respond::{in_words, sentence, wants_html};
use crate::two_factor::TwoFactorError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use std::sync::Arc;

pub(in crate::portal) fn page(
    s: &PortalState,
    status: StatusCode,
    template: &str,
    ctx: minijinja::Value,
    set_cookies: &[String],
) -> Response {
    let html = s
        .responder
        .templates()
        .get_template(template)
        .and_then(|t| t.render(ctx));
    let mut resp = match html {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page unavailable").into_response()
        }
    };
    resp.headers_mut()
        .insert("x-frame-options", HeaderValue::from_static("DENY"));
    uncached_with_cookies(resp, set_cookies)
}

/// `Cache-Control: no-store` plus the given `Set-Cookie` values.
pub(in crate::portal) fn uncached_with_cookies(
    mut resp: Response,
    set_cookies: &[String],
) -> Response {
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in set_cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    resp
}

pub(in crate::portal) fn see_other(location: &str, set_cookies: &[String]) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    uncached_with_cookies(resp, set_cookies)
}

pub(in crate::portal) fn csrf_refused(s: &PortalState) -> Response {
    s.responder.page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form was open too long, or was sent from another site. Go back, reload the page and try again.",
    )
    .into_response()
}

/// What a sign-in page says to a banned user or address.
pub(in crate::portal) fn ban_notice(b: crate::regulation::Banned) -> String {
    format!(
        "Too many failed sign-in attempts. Try again {}.",
        in_words(b.retry_after)
    )
}

/// Largest error body read back to put its message on a page.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Middleware: a browser ([`wants_html`]) gets a page for every error under
/// the prefix, with the status kept; API clients keep the JSON. The page
/// words the status; a JSON error's `message` becomes its detail line
/// (except where the status says it all). `Retry-After`, `Allow` and
/// `Set-Cookie` stay; `WWW-Authenticate` goes, so that the browser shows the
/// page (with its sign-in link) instead of a password prompt.
pub(in crate::portal) async fn pages_for_browsers(
    State(s): State<Arc<PortalState>>,
    request: Request,
    next: Next,
) -> Response {
    let browser = wants_html(request.headers());
    let response = next.run(request).await;
    let status = response.status();
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !browser || is_html || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let message = match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(sentence)),
        Err(_) => None,
    };
    let mut page = s.responder.status_page(status);
    if let Some(m) = message.filter(|_| !matches!(status.as_u16(), 401 | 404 | 405)) {
        page = page.detail(m);
    }
    let mut out = s.responder.render(&page).into_response();
    for name in [header::RETRY_AFTER, header::ALLOW, header::SET_COOKIE] {
        for value in parts.headers.get_all(&name) {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

/// `resp` with the ban's `Retry-After`.
pub(in crate::portal) fn with_retry_after(
    mut resp: Response,
    b: crate::regulation::Banned,
) -> Response {
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(b.retry_after.as_secs().max(1)),
    );
    resp
}

pub(in crate::portal) const UNAVAILABLE: &str =
    "Sign-in is unavailable right now. Try again shortly.";

/// The page's words for a second-factor operation that did not happen.
pub(in crate::portal) fn two_factor_problem(e: &TwoFactorError) -> (StatusCode, &'static str) {
    match e {
        TwoFactorError::InvalidCode => (
            StatusCode::BAD_REQUEST,
            "That code is not valid. Enter the code your app shows now.",
        ),
        TwoFactorError::CodeAlreadyUsed => (
            StatusCode::BAD_REQUEST,
            "That code was already used. Wait for the next code from your app.",
        ),
        TwoFactorError::AlreadyEnabled => (
            StatusCode::CONFLICT,
            "Two-factor authentication is already on.",
        ),
        TwoFactorError::NotEnrolling => (
            StatusCode::CONFLICT,
            "Start the set-up again: no enrolment is in progress.",
        ),
        TwoFactorError::NotConfigured => (
            StatusCode::NOT_IMPLEMENTED,
            "Two-factor authentication is not available on this server.",
        ),
        TwoFactorError::NotForMachines => (
            StatusCode::FORBIDDEN,
            "Machine accounts do not use two-factor authentication.",
        ),
        TwoFactorError::NotEnabled => (
            StatusCode::CONFLICT,
            "Two-factor authentication is already off.",
        ),
        TwoFactorError::Undecryptable | TwoFactorError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "This cannot be done right now. Try again shortly.",
        ),
    }
}
