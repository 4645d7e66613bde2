//! The setup page: creates the first administrator, and only while no
//! enabled user exists (in the store or the config file). Afterwards it is
//! closed for good; more users come from the CLI or the admin API.

use crate::app::Live;
use crate::authn::password::hash_password;
use crate::directory::UserStatus;
use crate::identity::UserKind;
use crate::portal::csrf::{csrf_ok, csrf_token};
use crate::portal::html::{csrf_refused, page, see_other};
use crate::portal::sign_in::start_session;
use crate::portal::PortalState;
use crate::store::{NewUser, StoreError};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;

/// Shortest password the setup page accepts.
pub const MIN_PASSWORD_LEN: usize = 8;

#[derive(Deserialize)]
pub(in crate::portal) struct SetupForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    csrf: String,
}

/// Is the setup page open? Only when nobody enabled exists anywhere.
pub(in crate::portal) async fn is_open(s: &PortalState, live: &Live) -> Result<bool, StoreError> {
    let directory = live.gate.authenticator().directory();
    if directory
        .users
        .values()
        .any(|u| u.status == UserStatus::Enabled)
    {
        return Ok(false);
    }
    match &s.store {
        Some(store) => Ok(store.count_enabled_users().await? == 0),
        None => Ok(false),
    }
}

fn closed(s: &PortalState) -> Response {
    s.responder
        .error(
            StatusCode::FORBIDDEN,
            "setup_closed",
            "Setup is finished: an administrator exists. Sign in instead.",
            true,
        )
        .into_response()
}

fn form_page(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    status: StatusCode,
    form: Option<&SetupForm>,
    error: Option<&str>,
) -> Response {
    let (csrf, set) = csrf_token(s, live, headers);
    let ctx = minijinja::context! {
        title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix, csrf => csrf,
        username => form.map_or("", |f| f.username.as_str()),
        email => form.map_or("", |f| f.email.as_str()),
        min_password => MIN_PASSWORD_LEN, error => error,
    };
    page(s, status, "setup.html", ctx, set.as_slice())
}

pub(in crate::portal) async fn setup_page(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
) -> Response {
    match is_open(&s, &live).await {
        Ok(true) => form_page(&s, &live, &headers, StatusCode::OK, None, None),
        Ok(false) => closed(&s),
        Err(_) => unavailable(&s),
    }
}

fn unavailable(s: &PortalState) -> Response {
    s.responder
        .error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "The store does not answer; try again shortly.",
            true,
        )
        .into_response()
}

/// What is wrong with the form, if anything.
fn problem(form: &SetupForm) -> Option<String> {
    let username = form.username.trim();
    if !crate::config::valid_name(username) {
        return Some("Choose a user name of letters, digits, `_`, `-`, `.` or `@`.".into());
    }
    let email = form.email.trim();
    if !email.is_empty() && (!email.contains('@') || email.chars().any(char::is_whitespace)) {
        return Some("That email address does not look right.".into());
    }
    if form.password.chars().count() < MIN_PASSWORD_LEN || form.password.len() > 1024 {
        return Some(format!(
            "Choose a password of at least {MIN_PASSWORD_LEN} characters."
        ));
    }
    if form.password != form.password_confirm {
        return Some("The two passwords differ.".into());
    }
    None
}

pub(in crate::portal) async fn setup_submit(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    if !csrf_ok(&s, &headers, &form.csrf) {
        return csrf_refused(&s);
    }
    match is_open(&s, &live).await {
        Ok(true) => {}
        Ok(false) => return closed(&s),
        Err(_) => return unavailable(&s),
    }
    if let Some(message) = problem(&form) {
        return form_page(
            &s,
            &live,
            &headers,
            StatusCode::BAD_REQUEST,
            Some(&form),
            Some(&message),
        );
    }
    let Some(store) = &s.store else {
        return unavailable(&s);
    };
    let password = form.password.clone();
    let hash = match tokio::task::spawn_blocking(move || hash_password(&password)).await {
        Ok(Ok(h)) => h,
        _ => return unavailable(&s),
    };
    let email = Some(form.email.trim().to_owned()).filter(|e| !e.is_empty());
    let created = store
        .create_first_user(NewUser {
            username: form.username.trim().to_owned(),
            email,
            name: None,
            kind: UserKind::User,
            role: "admin".into(),
            password_hash: Some(hash),
        })
        .await;
    match created {
        Ok(user) => {
            tracing::info!(user = %user.record.username, "first administrator created on the setup page");
            match start_session(&s, &live, &user.record.username).await {
                Some(cookie) => see_other(s.redirect.public_url().as_str(), &[cookie]),
                None => see_other(&format!("{}/login", s.prefix), &[]),
            }
        }
        Err(StoreError::Closed) => closed(&s),
        Err(StoreError::Conflict(_)) => form_page(
            &s,
            &live,
            &headers,
            StatusCode::CONFLICT,
            Some(&form),
            Some("That user name or email is taken by a disabled account; choose another."),
        ),
        Err(_) => unavailable(&s),
    }
}
