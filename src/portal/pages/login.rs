//! The sign-in and sign-out pages: server-rendered forms, CSRF-protected by a
//! double-submit cookie, sessions created with a fresh id at every login.

use crate::app::Live;
use crate::identity::UserKind;
use crate::portal::csrf::{csrf_ok, csrf_token, first_cookie};
use crate::portal::html::{
    ban_notice, csrf_refused, page, see_other, with_retry_after, UNAVAILABLE,
};
use crate::portal::pages::second_factor::begin;
use crate::portal::pages::setup::is_open;
use crate::portal::sign_in::{
    audit_sign_in, audit_sign_out, return_to, sign_in, signed_in, start_session, Channel,
    SignInFailure,
};
use crate::portal::PortalState;
use crate::session::{self, Origin};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
pub(in crate::portal) struct LoginQuery {
    rd: Option<String>,
}

#[derive(Deserialize)]
pub(in crate::portal) struct LoginForm {
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
pub(in crate::portal) struct LogoutForm {
    #[serde(default)]
    csrf: String,
    /// Where the sign-in page that follows returns to ("sign in as someone else").
    #[serde(default)]
    rd: String,
}

/// What the sign-in page shows besides the form.
#[derive(Default)]
pub(in crate::portal) struct LoginView<'a> {
    pub rd: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    pub setup_open: bool,
}

pub(in crate::portal) fn login_page_response(
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
    let providers: Vec<minijinja::Value> = live
        .sso
        .providers()
        .map(|p| minijinja::context! { id => &p.id, display_name => &p.display_name })
        .collect();
    let ctx = minijinja::context! {
        title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix,
        csrf => csrf, rd => rd, username => view.username, error => view.error,
        setup_open => view.setup_open, providers => providers,
        rd_query => url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>(),
        password_login => s.password_login || providers.is_empty(),
        registration_open => live.registration.mode.is_enabled(),
    };
    page(s, status, "login.html", ctx, set.as_slice())
}

pub(in crate::portal) async fn login_page(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let rd = q.rd.as_deref().unwrap_or("");
    if let Some(id) = live.sso.auto_redirect() {
        return crate::portal::pages::sso::send_to_provider(&s, id, rd);
    }
    let setup_open = is_open(&s, &live).await.unwrap_or(false);
    let view = LoginView {
        rd,
        setup_open,
        ..LoginView::default()
    };
    login_page_response(&s, &live, &headers, StatusCode::OK, view)
}

const BAD_LOGIN: &str = "Invalid username or password.";

pub(in crate::portal) async fn login_submit(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let ip = origin.ip;
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
    let login = form.username.trim();
    let signed = sign_in(&live, login, &form.password, ip).await;
    let failure = match &signed {
        Ok(u) if u.kind != UserKind::User => Some("machine_account"),
        Err(f) => Some(f.reason()),
        Ok(_) => None,
    };
    if let Some(reason) = failure {
        audit_sign_in(&s, &origin, login, Channel::Page, Some(reason));
    }
    let user = match signed {
        Ok(u) if u.kind == UserKind::User => u,
        // Machine accounts use Basic or API keys, never the page.
        // (A used code cannot come from this password-only step.)
        Ok(_)
        | Err(SignInFailure::Invalid | SignInFailure::Disabled | SignInFailure::CodeAlreadyUsed) => {
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
            return match begin(&s, &live, &user.username, purpose, &target).await {
                Some(resp) => resp,
                None => again(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE),
            };
        }
        Err(_) => return again(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE),
    }
    signed_in(&live, &user.username).await;
    let Some(session_cookie) =
        start_session(&s, &live, &user.username, &origin, Channel::Page).await
    else {
        return again(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
    };
    see_other(&target, &[session_cookie])
}

pub(in crate::portal) async fn logout_page(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let (csrf, set) = csrf_token(&s, &live, &headers);
    let rd =
        q.rd.as_deref()
            .and_then(|rd| s.redirect.validate(rd))
            .map(String::from)
            .unwrap_or_default();
    let ctx = minijinja::context! {
        title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix, csrf => csrf,
        rd => rd,
    };
    page(&s, StatusCode::OK, "logout.html", ctx, set.as_slice())
}

pub(in crate::portal) async fn logout_submit(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !csrf_ok(&s, &headers, &form.csrf) {
        return csrf_refused(&s);
    }
    let mut provider_logout = None;
    if let (Some(store), Some(id)) = (&s.store, first_cookie(&headers, &live.session.cookie_name)) {
        let hash = session::id_hash(id);
        let mut who = None;
        // A session from single sign-on also ends at its provider (RP-initiated logout).
        if let Ok(Some(record)) = store.session(&hash).await {
            if !record.revoked {
                who = Some(record.username.clone());
            }
            if let Some(sso) = record.sso.filter(|_| !record.revoked) {
                let back = s.public("/login");
                provider_logout = live
                    .sso
                    .end_session_url(&sso.provider, &sso.id_token, &back)
                    .await;
            }
        }
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
        if let Some(username) = who {
            audit_sign_out(&s, &origin, &username, "page");
        }
    }
    let clear = session::clear_session_cookie(&live.session);
    let login = match s.redirect.validate(&form.rd) {
        Some(rd) => format!(
            "{}/login?rd={}",
            s.prefix,
            url::form_urlencoded::byte_serialize(rd.as_str().as_bytes()).collect::<String>()
        ),
        None => format!("{}/login", s.prefix),
    };
    match provider_logout {
        Some(url) => see_other(url.as_str(), &[clear]),
        None => see_other(&login, &[clear]),
    }
}
