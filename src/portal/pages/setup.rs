//! The setup page: creates the first administrator, and only while no
//! enabled user exists (in the store or the config file); more users come
//! from the CLI or the admin API. Should every user be disabled or deleted
//! it opens again: `gatehouse user` refuses that unless `--force`, and the
//! server logs a warning when it happens.

use crate::accounts::admin::setup_is_open;
use crate::accounts::users::{check_password, AccountError, NewAccount, PasswordPolicy};
use crate::app::Live;
use crate::audit::{action, AuditEvent, Outcome};
use crate::portal::csrf::{csrf_ok, csrf_token};
use crate::portal::html::{csrf_refused, page, see_other};
use crate::portal::sign_in::{start_session, Channel};
use crate::portal::PortalState;
use crate::respond::ErrorPage;
use crate::store::StoreError;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;

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
    match &s.store {
        Some(store) => setup_is_open(live.gate.authenticator().directory(), store).await,
        None => Ok(false),
    }
}

fn closed(s: &PortalState) -> Response {
    let page = ErrorPage::new(
        StatusCode::FORBIDDEN,
        "Setup is already done",
        "An administrator account exists, so there is nothing left to set up here. Sign in with your account instead.",
    )
    .link("Sign in", format!("{}/login", s.prefix));
    s.responder.render(&page).into_response()
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
        min_password => live.passwords.min_length, error => error,
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

/// The page's words for what is wrong with an account.
fn message(e: &AccountError, policy: &PasswordPolicy) -> String {
    match e {
        AccountError::InvalidName => {
            "Choose a user name of letters, digits, `_`, `-`, `.` or `@`.".into()
        }
        AccountError::InvalidEmail => "That email address does not look right.".into(),
        AccountError::PasswordTooShort { .. } | AccountError::PasswordTooLong { .. } => {
            format!(
                "Choose a password of at least {} characters.",
                policy.min_length
            )
        }
        AccountError::Hash(_) => "The password could not be stored; try again.".into(),
    }
}

/// The first administrator the form asks for, or what is wrong with it.
fn problem(form: &SetupForm, policy: &PasswordPolicy) -> Result<NewAccount, String> {
    let account = NewAccount::new(&form.username, Some(&form.email))
        .map_err(|e| message(&e, policy))?
        .role("admin");
    check_password(policy, &form.password).map_err(|e| message(&e, policy))?;
    if form.password != form.password_confirm {
        return Err("The two passwords differ.".into());
    }
    Ok(account)
}

pub(in crate::portal) async fn setup_submit(
    State(s): State<Arc<PortalState>>,
    origin: crate::session::Origin,
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
    let policy = live.passwords.clone();
    let account = match problem(&form, &policy) {
        Ok(account) => account,
        Err(message) => {
            return form_page(
                &s,
                &live,
                &headers,
                StatusCode::BAD_REQUEST,
                Some(&form),
                Some(&message),
            )
        }
    };
    let Some(store) = &s.store else {
        return unavailable(&s);
    };
    let password = form.password.clone();
    let new_user = match tokio::task::spawn_blocking(move || {
        account.with_password(&policy, &password)
    })
    .await
    {
        Ok(Ok(u)) => u,
        _ => return unavailable(&s),
    };
    let created = store.create_first_user(new_user).await;
    match created {
        Ok(user) => {
            let username = &user.record.username;
            s.audit.record(
                AuditEvent::new(action::USER_CREATE, Outcome::Success)
                    .actor(username)
                    .target(username)
                    .origin(&origin)
                    .detail("channel", "setup")
                    .detail("role", user.record.role.clone()),
            );
            match start_session(&s, &live, username, &origin, Channel::Setup).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn form(username: &str, email: &str, password: &str, confirm: &str) -> SetupForm {
        SetupForm {
            username: username.into(),
            email: email.into(),
            password: password.into(),
            password_confirm: confirm.into(),
            csrf: String::new(),
        }
    }

    #[test]
    fn the_page_says_what_is_wrong_first() {
        let name = "Choose a user name of letters, digits, `_`, `-`, `.` or `@`.";
        let email = "That email address does not look right.";
        let password = "Choose a password of at least 8 characters.";
        let differ = "The two passwords differ.";
        let long = "p".repeat(1025);
        for (f, want) in [
            (form("", "", "a long password", "a long password"), name),
            (form("root admin", "x", "short", "other"), name),
            (form("root", "root.example.com", "short", "other"), email),
            (
                form(
                    "root",
                    "root @example.com",
                    "a long password",
                    "a long password",
                ),
                email,
            ),
            (form("root", "", "short", "short"), password),
            (form("root", "", &long, &long), password),
            (
                form("root", "", "a long password", "another long one"),
                differ,
            ),
        ] {
            assert_eq!(
                problem(&f, &PasswordPolicy::default()).unwrap_err(),
                want,
                "{:?}",
                f.username
            );
        }
    }

    #[test]
    fn a_good_form_is_an_admin_account() {
        let f = form(
            " root ",
            " root@example.com ",
            "a long password",
            "a long password",
        );
        let policy = PasswordPolicy::default();
        let account = problem(&f, &policy).unwrap();
        assert_eq!(account.username(), "root");
        assert_eq!(account.email(), Some("root@example.com"));
        let user = account.with_password(&policy, "a long password").unwrap();
        assert_eq!(user.role, "admin");
        assert_eq!(
            problem(&form("root", "  ", "12345678", "12345678"), &policy)
                .unwrap()
                .email(),
            None
        );
    }
}
