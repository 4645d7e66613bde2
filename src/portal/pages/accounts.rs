//! The self-service pages, usable without JavaScript: `register` (also
//! through an invitation link), `activate` (the mailed link shows a button:
//! mail scanners that fetch links do not use it up), and `reset` (ask for a
//! link; follow it to set a new password). The rules are `self_service`'s.

use crate::accounts::registration::{LinkToken, RegistrationMode};
use crate::app::Live;
use crate::portal::csrf::{csrf_ok, csrf_token};
use crate::portal::html::{csrf_refused, page, with_retry_after};
use crate::portal::self_service::{
    activate as activate_account, confirm_reset, register as register_account, request_reset,
    Registered, Registration, SelfServiceError,
};
use crate::portal::{ClientIp, PortalState};
use crate::session::Origin;
use crate::store::{unix_now, TokenPurpose};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;

/// The page's words for a failure, and its status.
fn problem(e: &SelfServiceError) -> (StatusCode, String) {
    match e {
        SelfServiceError::Closed => (
            StatusCode::FORBIDDEN,
            "Registration is closed here. Ask an administrator for an invitation.".into(),
        ),
        SelfServiceError::Taken => (
            StatusCode::CONFLICT,
            "That user name or e-mail address cannot be used. Choose another.".into(),
        ),
        SelfServiceError::Invalid(e) => (StatusCode::BAD_REQUEST, sentence(&e.to_string())),
        SelfServiceError::BadToken => (
            StatusCode::BAD_REQUEST,
            "This link is unknown, used already, or expired. Ask for a new one.".into(),
        ),
        SelfServiceError::EmailRequired => (
            StatusCode::BAD_REQUEST,
            "Enter your e-mail address: the activation link is sent there.".into(),
        ),
        SelfServiceError::Banned(b) => (
            StatusCode::TOO_MANY_REQUESTS,
            crate::portal::html::ban_notice(*b),
        ),
        SelfServiceError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "This cannot be done right now. Try again shortly.".into(),
        ),
    }
}

/// `a password needs …` → `A password needs ….`
fn sentence(s: &str) -> String {
    let mut out: String = s.chars().take(1).flat_map(char::to_uppercase).collect();
    out.push_str(&s[s.chars().next().map_or(0, char::len_utf8)..]);
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

struct Link<'a> {
    href: String,
    label: &'a str,
}

#[allow(clippy::too_many_arguments)]
fn message(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    status: StatusCode,
    heading: &str,
    text: Option<&str>,
    error: Option<&str>,
    form: Option<(&str, &str, &str)>,
    links: &[Link<'_>],
) -> Response {
    let (csrf, set) = csrf_token(s, live, headers);
    let links: Vec<minijinja::Value> = links
        .iter()
        .map(|l| minijinja::context! { href => &l.href, label => l.label })
        .collect();
    let (form_action, form_button, token) = form.unwrap_or(("", "", ""));
    let ctx = minijinja::context! {
        title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix, csrf => csrf,
        heading => heading, message => text, error => error, links => links,
        form_action => form_action, form_button => form_button, token => token,
    };
    page(s, status, "message.html", ctx, set.as_slice())
}

fn sign_in_link(s: &PortalState) -> Link<'static> {
    Link {
        href: format!("{}/login", s.prefix),
        label: "Sign in",
    }
}

#[derive(Deserialize, Default)]
pub(in crate::portal) struct RegisterForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    invitation: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub(in crate::portal) struct InvitationQuery {
    invitation: Option<String>,
}

fn register_form(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    status: StatusCode,
    form: &RegisterForm,
    invited_email: Option<&str>,
    error: Option<&str>,
) -> Response {
    let (csrf, set) = csrf_token(s, live, headers);
    let ctx = minijinja::context! {
        title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix, csrf => csrf,
        username => &form.username, email => &form.email, invitation => &form.invitation,
        invited_email => invited_email, error => error,
        pending_activation => live.registration.mode == RegistrationMode::Invite,
        min_password => live.passwords.min_length,
    };
    page(s, status, "register.html", ctx, set.as_slice())
}

/// `GET register[?invitation=…]`.
pub(in crate::portal) async fn register_page(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Query(q): Query<InvitationQuery>,
    headers: HeaderMap,
) -> Response {
    let invitation = q.invitation.unwrap_or_default();
    let form = RegisterForm {
        invitation: invitation.clone(),
        ..RegisterForm::default()
    };
    let invited = match (&s.store, invitation.is_empty()) {
        (Some(store), false) => store
            .account_token(
                &LinkToken::hash_of(&invitation),
                TokenPurpose::Invitation,
                unix_now(),
            )
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    if !invitation.is_empty() && invited.is_none() {
        let (status, text) = problem(&SelfServiceError::BadToken);
        return message(
            &s,
            &live,
            &headers,
            status,
            "Invitation",
            None,
            Some(&text),
            None,
            &[sign_in_link(&s)],
        );
    }
    let email = invited.as_ref().and_then(|i| i.email.clone());
    register_form(
        &s,
        &live,
        &headers,
        StatusCode::OK,
        &form,
        email.as_deref(),
        None,
    )
}

/// `POST register`.
pub(in crate::portal) async fn register_submit(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<RegisterForm>,
) -> Response {
    if !csrf_ok(&s, &headers, &form.csrf) {
        return csrf_refused(&s);
    }
    let r = Registration {
        username: &form.username,
        email: &form.email,
        password: &form.password,
        invitation: Some(form.invitation.as_str()),
    };
    match register_account(&s, &live, r, &origin).await {
        Ok(Registered::Active { .. }) => message(
            &s,
            &live,
            &headers,
            StatusCode::CREATED,
            "Account created",
            Some("Your account is ready. Sign in with your user name and password."),
            None,
            None,
            &[sign_in_link(&s)],
        ),
        Ok(Registered::PendingActivation) => message(
            &s,
            &live,
            &headers,
            StatusCode::CREATED,
            "Check your mail",
            Some("We sent a link to your e-mail address. Follow it to activate your account, then sign in."),
            None,
            None,
            &[sign_in_link(&s)],
        ),
        Err(e) => {
            let (status, text) = problem(&e);
            let resp = register_form(&s, &live, &headers, status, &form, None, Some(&text));
            match e {
                SelfServiceError::Banned(b) => with_retry_after(resp, b),
                _ => resp,
            }
        }
    }
}

#[derive(Deserialize)]
pub(in crate::portal) struct TokenQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub(in crate::portal) struct TokenForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// `GET activate?token=…`: a button, so a mail scanner's fetch uses nothing up.
pub(in crate::portal) async fn activate_page(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let token = q.token.unwrap_or_default();
    let action = format!("{}/activate", s.prefix);
    message(
        &s,
        &live,
        &headers,
        StatusCode::OK,
        "Activate your account",
        Some("One click and your account is ready."),
        None,
        Some((&action, "Activate my account", &token)),
        &[],
    )
}

/// `POST activate`.
pub(in crate::portal) async fn activate_submit(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    if !csrf_ok(&s, &headers, &form.csrf) {
        return csrf_refused(&s);
    }
    match activate_account(&s, &live, &form.token, &origin).await {
        Ok(_) => message(
            &s,
            &live,
            &headers,
            StatusCode::OK,
            "Account activated",
            Some("Your account is ready. Sign in with your user name and password."),
            None,
            None,
            &[sign_in_link(&s)],
        ),
        Err(e) => {
            let (status, text) = problem(&e);
            message(
                &s,
                &live,
                &headers,
                status,
                "Activate your account",
                None,
                Some(&text),
                None,
                &[sign_in_link(&s)],
            )
        }
    }
}

fn reset_form(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    status: StatusCode,
    token: &str,
    error: Option<&str>,
) -> Response {
    let (csrf, set) = csrf_token(s, live, headers);
    let ctx = minijinja::context! {
        title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix, csrf => csrf,
        token => token, error => error, min_password => live.passwords.min_length,
    };
    page(s, status, "reset.html", ctx, set.as_slice())
}

/// `GET reset[?token=…]`: ask for a link, or (with one) set the password.
pub(in crate::portal) async fn reset_page(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let token = q.token.unwrap_or_default();
    reset_form(&s, &live, &headers, StatusCode::OK, &token, None)
}

#[derive(Deserialize)]
pub(in crate::portal) struct ResetRequestForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    csrf: String,
}

/// `POST reset`: the same page for every address.
pub(in crate::portal) async fn reset_submit(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Form(form): Form<ResetRequestForm>,
) -> Response {
    if !csrf_ok(&s, &headers, &form.csrf) {
        return csrf_refused(&s);
    }
    match request_reset(&s, &live, form.email.trim(), ip).await {
        Ok(()) => message(
            &s,
            &live,
            &headers,
            StatusCode::OK,
            "Check your mail",
            Some("If an account uses that address, a link to set a new password is on its way."),
            None,
            None,
            &[sign_in_link(&s)],
        ),
        Err(e) => {
            let (status, text) = problem(&e);
            let resp = reset_form(&s, &live, &headers, status, "", Some(&text));
            match e {
                SelfServiceError::Banned(b) => with_retry_after(resp, b),
                _ => resp,
            }
        }
    }
}

#[derive(Deserialize)]
pub(in crate::portal) struct ResetConfirmForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    csrf: String,
}

/// `POST reset/confirm`.
pub(in crate::portal) async fn reset_confirm_submit(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<ResetConfirmForm>,
) -> Response {
    if !csrf_ok(&s, &headers, &form.csrf) {
        return csrf_refused(&s);
    }
    match confirm_reset(&s, &live, &form.token, &form.new_password, &origin).await {
        Ok(_) => message(
            &s,
            &live,
            &headers,
            StatusCode::OK,
            "Password changed",
            Some("Your new password is set, and every other session has ended. Sign in with it."),
            None,
            None,
            &[sign_in_link(&s)],
        ),
        Err(e) => {
            let (status, text) = problem(&e);
            // A weak password keeps the link (it was not used): try again.
            let token = match e {
                SelfServiceError::Invalid(_) => form.token.as_str(),
                _ => "",
            };
            reset_form(&s, &live, &headers, status, token, Some(&text))
        }
    }
}
