//! The `account` page: who you are signed in as, and your second factor —
//! turn it on (QR code, confirm with a code, recovery codes shown once) or
//! off (with a current code or your password). Session users only; every
//! form carries the CSRF token.

use crate::app::Live;
use crate::credentials::CredentialSource;
use crate::identity::Identity;
use crate::portal::csrf::{csrf_ok, csrf_token};
use crate::portal::html::{csrf_refused, page, see_other, two_factor_problem};
use crate::portal::pages::second_factor::enrolment_for;
use crate::portal::sign_in::{reauthenticate, turn_on_second_factor, SignInFailure};
use crate::portal::{ClientIp, PortalState};
use crate::two_factor::{Enrolment, TwoFactorError};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
pub(in crate::portal) struct AccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

/// What the page shows besides the account facts.
#[derive(Default)]
struct AccountView<'a> {
    notice: Option<&'a str>,
    error: Option<&'a str>,
    enrolment: Option<Enrolment>,
    recovery_codes: Option<Vec<String>>,
}

impl<'a> AccountView<'a> {
    fn error(message: &'a str) -> Self {
        AccountView {
            error: Some(message),
            ..AccountView::default()
        }
    }

    fn enrolling(enrolment: Enrolment, error: Option<&'a str>) -> Self {
        AccountView {
            error,
            enrolment: Some(enrolment),
            ..AccountView::default()
        }
    }
}

/// The signed-in session user, or the answer to send instead.
async fn session_user(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
) -> Result<Arc<Identity>, Response> {
    match live.gate.identify(headers, ip).await {
        Ok(Some((identity, CredentialSource::SessionCookie))) => Ok(identity),
        _ => {
            let rd = format!("{}/account", s.prefix);
            let login = format!(
                "{}/login?rd={}",
                s.prefix,
                percent_encoding::utf8_percent_encode(&rd, percent_encoding::NON_ALPHANUMERIC)
            );
            Err(see_other(&login, &[]))
        }
    }
}

async fn account_page(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    identity: &Identity,
    status: StatusCode,
    view: AccountView<'_>,
) -> Response {
    let (csrf, set) = csrf_token(s, live, headers);
    let two_factor = &live.two_factor;
    let enabled = match two_factor.is_enabled(&identity.subject).await {
        Ok(on) => on,
        Err(_) => return unavailable(s),
    };
    let codes_left = match enabled {
        true => two_factor
            .recovery_codes_left(&identity.subject)
            .await
            .unwrap_or(0),
        false => 0,
    };
    let required = identity
        .role
        .as_deref()
        .is_some_and(|role| two_factor.role_requires(role));
    let ctx = minijinja::context! {
        title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix, csrf => csrf,
        username => &identity.subject, email => &identity.email, name => &identity.name,
        role => &identity.role,
        two_factor_enabled => enabled, two_factor_required => required,
        two_factor_available => two_factor.is_available(),
        codes_left => codes_left,
        notice => view.notice, error => view.error,
        enrol => view.enrolment.is_some(),
        secret => view.enrolment.as_ref().map(|e| e.secret.as_str()),
        qr_svg => view.enrolment.as_ref().map(|e| e.qr_svg.as_str()),
        recovery_codes => view.recovery_codes,
    };
    page(s, status, "account.html", ctx, set.as_slice())
}

fn unavailable(s: &PortalState) -> Response {
    s.responder
        .page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "Your account cannot be shown right now. Try again shortly.",
        )
        .into_response()
}

/// `GET account`.
pub(in crate::portal) async fn show(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let identity = match session_user(&s, &live, &headers, ip).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let view = AccountView::default();
    account_page(&s, &live, &headers, &identity, StatusCode::OK, view).await
}

/// The signed-in user behind a form post with a valid CSRF token.
async fn form_user(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
    form: &AccountForm,
) -> Result<Arc<Identity>, Response> {
    if !csrf_ok(s, headers, &form.csrf) {
        return Err(csrf_refused(s));
    }
    session_user(s, live, headers, ip).await
}

/// `POST account/2fa`: start enrolling; shows the QR code.
pub(in crate::portal) async fn enrol(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let identity = match form_user(&s, &live, &headers, ip, &form).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let (status, view) = match enrolment_for(&live, &identity.subject).await {
        Ok(enrolment) => (StatusCode::OK, AccountView::enrolling(enrolment, None)),
        Err(e) => {
            let (status, message) = two_factor_problem(&e);
            (status, AccountView::error(message))
        }
    };
    account_page(&s, &live, &headers, &identity, status, view).await
}

/// `POST account/2fa/confirm`: turn it on with a code; shows the recovery codes.
pub(in crate::portal) async fn confirm(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let identity = match form_user(&s, &live, &headers, ip, &form).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    match turn_on_second_factor(&live, &identity.subject, &form.code).await {
        Ok(codes) => {
            let view = AccountView {
                notice: Some("Two-factor authentication is on."),
                recovery_codes: Some(codes),
                ..AccountView::default()
            };
            account_page(&s, &live, &headers, &identity, StatusCode::OK, view).await
        }
        Err(e) => {
            let (status, message) = two_factor_problem(&e);
            // A wrong code: the same QR code again, for another try.
            let view = match e {
                TwoFactorError::InvalidCode => {
                    match enrolment_for(&live, &identity.subject).await {
                        Ok(enrolment) => AccountView::enrolling(enrolment, Some(message)),
                        Err(_) => AccountView::error(message),
                    }
                }
                _ => AccountView::error(message),
            };
            account_page(&s, &live, &headers, &identity, status, view).await
        }
    }
}

/// `POST account/2fa/disable`: turn it off, proven by a code or the password.
pub(in crate::portal) async fn disable(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let identity = match form_user(&s, &live, &headers, ip, &form).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let again = |status, message| {
        account_page(
            &s,
            &live,
            &headers,
            &identity,
            status,
            AccountView::error(message),
        )
    };
    if identity
        .role
        .as_deref()
        .is_some_and(|r| live.two_factor.role_requires(r))
    {
        return again(
            StatusCode::FORBIDDEN,
            "Your role requires two-factor authentication, so it stays on.",
        )
        .await;
    }
    let proven = reauthenticate(&live, &identity.subject, &form.code, &form.password, ip).await;
    match proven {
        None => {
            return again(
                StatusCode::BAD_REQUEST,
                "Enter a current code or your password to turn it off.",
            )
            .await
        }
        Some(Ok(())) => {}
        Some(Err(SignInFailure::Banned(_))) => {
            return again(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts. Try again later.",
            )
            .await
        }
        Some(Err(SignInFailure::Unavailable)) => return unavailable(&s),
        Some(Err(_)) => {
            return again(StatusCode::FORBIDDEN, "That code or password is not right.").await
        }
    }
    match live.two_factor.remove(&identity.subject).await {
        Ok(()) | Err(TwoFactorError::NotEnabled) => {
            let view = AccountView {
                notice: Some("Two-factor authentication is off."),
                ..AccountView::default()
            };
            account_page(&s, &live, &headers, &identity, StatusCode::OK, view).await
        }
        Err(e) => {
            let (status, message) = two_factor_problem(&e);
            again(status, message).await
        }
    }
}
