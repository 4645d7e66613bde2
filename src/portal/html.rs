//! The pages' answers: rendered templates, `303 See Other` with cookies,
//! ban notices with `Retry-After`, the CSRF refusal page.

use crate::portal::PortalState;
use crate::two_factor::TwoFactorError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

pub(in crate::portal) fn page(
    s: &PortalState,
    status: StatusCode,
    template: &str,
    ctx: minijinja::Value,
    set_cookies: &[String],
) -> Response {
    let html = s
        .templates
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
        "Form expired",
        "This form is no longer valid (or was sent from another site). Reload the page and try again.",
    )
    .into_response()
}

/// What a sign-in page says to a banned user or address.
pub(in crate::portal) fn ban_notice(b: crate::regulation::Banned) -> String {
    format!(
        "Too many failed attempts. Try again in {} minutes.",
        b.retry_after.as_secs().div_ceil(60)
    )
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
