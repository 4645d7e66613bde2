//! The sign-in and sign-out pages: server-rendered forms, CSRF-protected by a
//! double-submit cookie, sessions created with a fresh id at every login.

use super::api::{sign_in, signed_in, SignInFailure};
use super::{ClientIp, PortalState};
use crate::app::Live;
use crate::credentials::cookie_values;
use crate::identity::UserKind;
use crate::session::{self, SameSite};
use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Name of the CSRF double-submit cookie.
const CSRF_COOKIE: &str = "gatehouse_csrf";

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    rd: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rd: String,
}

#[derive(Deserialize)]
pub(super) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

pub(super) fn first_cookie<'h>(headers: &'h HeaderMap, name: &'h str) -> Option<&'h str> {
    cookie_values(headers, name).next()
}

/// The CSRF token already set, or a new one (with the header to set it).
pub(super) fn csrf_token(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
) -> (String, Option<String>) {
    match first_cookie(headers, CSRF_COOKIE).filter(|t| t.len() == 43) {
        Some(t) => (t.to_owned(), None),
        None => {
            let t = session::random_id();
            let set = session::cookie(
                &live.session,
                CSRF_COOKIE,
                &t,
                3600,
                &s.prefix,
                SameSite::Strict,
            );
            (t.clone(), Some(set))
        }
    }
}

/// The request does not come from another site: its `Origin` (when sent)
/// is ours, and the browser does not call it cross-site.
pub(super) fn same_origin(s: &PortalState, headers: &HeaderMap) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let ours = s.redirect.public_url().origin().ascii_serialization();
        if origin != ours {
            return false;
        }
    }
    headers
        .get("sec-fetch-site")
        .is_none_or(|v| v.as_bytes() != b"cross-site")
}

/// A cookie-authenticated JSON write proves it comes from our own pages:
/// `Origin` is ours, or — from a browser that sends no `Origin` —
/// `Sec-Fetch-Site` says `same-origin`. A request with neither is refused:
/// SameSite=Lax and the JSON content type already stop browsers, and this
/// holds even where they would not.
pub(super) fn proven_same_origin(s: &PortalState, headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    if fetch_site.is_some_and(|site| site != b"same-origin") {
        return false;
    }
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            let ours = s.redirect.public_url().origin().ascii_serialization();
            origin.as_bytes() == ours.as_bytes()
        }
        None => fetch_site.is_some(),
    }
}

/// Form token equals cookie token, and the request comes from our own origin.
pub(super) fn csrf_ok(s: &PortalState, headers: &HeaderMap, form_token: &str) -> bool {
    if !same_origin(s, headers) {
        return false;
    }
    match first_cookie(headers, CSRF_COOKIE) {
        Some(cookie) if !form_token.is_empty() => {
            bool::from(cookie.as_bytes().ct_eq(form_token.as_bytes()))
        }
        _ => false,
    }
}

pub(super) fn page(
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
pub(super) fn uncached_with_cookies(mut resp: Response, set_cookies: &[String]) -> Response {
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in set_cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// What the sign-in page shows besides the form.
#[derive(Default)]
pub(super) struct LoginView<'a> {
    pub rd: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    pub setup_open: bool,
}

pub(super) fn login_page_response(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    status: StatusCode,
    view: LoginView<'_>,
) -> Response {
    let (csrf, set) = csrf_token(s, live, headers);
    let rd = s
        .redirect
        .validate(view.rd)
        .map(String::from)
        .unwrap_or_default();
    let ctx = minijinja::context! {
        title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix,
        csrf => csrf, rd => rd, username => view.username, error => view.error,
        setup_open => view.setup_open,
    };
    page(s, status, "login.html", ctx, set.as_slice())
}

pub(super) async fn login_page(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let rd = q.rd.as_deref().unwrap_or("");
    let setup_open = super::setup::is_open(&s, &live).await.unwrap_or(false);
    let view = LoginView {
        rd,
        setup_open,
        ..LoginView::default()
    };
    login_page_response(&s, &live, &headers, StatusCode::OK, view)
}

pub(super) fn see_other(location: &str, set_cookies: &[String]) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    uncached_with_cookies(resp, set_cookies)
}

pub(super) fn csrf_refused(s: &PortalState) -> Response {
    s.responder.page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form is no longer valid (or was sent from another site). Reload the page and try again.",
    )
    .into_response()
}

const BAD_LOGIN: &str = "Invalid username or password.";

pub(super) async fn login_submit(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !csrf_ok(&s, &headers, &form.csrf) {
        return csrf_refused(&s);
    }
    let again = |status: StatusCode, message: &str| {
        let view = LoginView {
            rd: &form.rd,
            username: &form.username,
            error: Some(message),
            setup_open: false,
        };
        login_page_response(&s, &live, &headers, status, view)
    };
    let user = match sign_in(&live, form.username.trim(), &form.password, ip).await {
        Ok(u) if u.kind == UserKind::User => u,
        // Machine accounts use Basic or API keys, never the page.
        Ok(_) | Err(SignInFailure::Invalid | SignInFailure::Disabled) => {
            return again(StatusCode::UNAUTHORIZED, BAD_LOGIN);
        }
        Err(SignInFailure::Banned(b)) => {
            let resp = again(StatusCode::TOO_MANY_REQUESTS, &ban_notice(b));
            return with_retry_after(resp, b);
        }
        Err(SignInFailure::Unavailable) => {
            return again(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
        }
    };
    let target = return_to(&s, &form.rd);
    match live.two_factor.owed(&user).await {
        Ok(None) => {}
        // The password is right; the session waits for the second factor.
        Ok(Some(purpose)) => {
            return match super::second_factor::begin(&s, &live, &user.username, purpose, &target)
                .await
            {
                Some(resp) => resp,
                None => again(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE),
            };
        }
        Err(_) => return again(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE),
    }
    signed_in(&live, &user.username).await;
    let Some(session_cookie) = start_session(&s, &live, &user.username).await else {
        return again(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
    };
    see_other(&target, &[session_cookie])
}

/// Where to go after signing in: `rd` when it is allowed, else the app.
pub(super) fn return_to(s: &PortalState, rd: &str) -> String {
    s.redirect
        .validate(rd)
        .map(String::from)
        .unwrap_or_else(|| s.redirect.public_url().to_string())
}

/// What a sign-in page says to a banned user or address.
pub(super) fn ban_notice(b: crate::regulation::Banned) -> String {
    format!(
        "Too many failed attempts. Try again in {} minutes.",
        b.retry_after.as_secs().div_ceil(60)
    )
}

/// `resp` with the ban's `Retry-After`.
pub(super) fn with_retry_after(mut resp: Response, b: crate::regulation::Banned) -> Response {
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(b.retry_after.as_secs().max(1)),
    );
    resp
}

pub(super) const UNAVAILABLE: &str = "Sign-in is unavailable right now. Try again shortly.";

/// Start a session for `username` and answer its `Set-Cookie`.
pub(super) async fn start_session(s: &PortalState, live: &Live, username: &str) -> Option<String> {
    let store = s.store.as_ref()?;
    match session::start(store, &live.session, username).await {
        Ok(id) => {
            tracing::info!(user = %username, "signed in");
            Some(session::session_cookie(&live.session, &id))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot create a session");
            None
        }
    }
}

pub(super) async fn logout_page(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
) -> Response {
    let (csrf, set) = csrf_token(&s, &live, &headers);
    let ctx = minijinja::context! { title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix, csrf => csrf };
    page(&s, StatusCode::OK, "logout.html", ctx, set.as_slice())
}

pub(super) async fn logout_submit(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !csrf_ok(&s, &headers, &form.csrf) {
        return csrf_refused(&s);
    }
    if let (Some(store), Some(id)) = (&s.store, first_cookie(&headers, &live.session.cookie_name)) {
        let hash = session::id_hash(id);
        if let Err(e) = store.revoke_session(&hash).await {
            tracing::error!(error = %e, "cannot revoke a session");
            return s
                .responder
                .page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again",
                    "Signing out failed; try again shortly.",
                )
                .into_response();
        }
        live.gate.authenticator().invalidate_revoked(&hash);
    }
    let clear = session::clear_session_cookie(&live.session);
    see_other(&format!("{}/login", s.prefix), &[clear])
}
