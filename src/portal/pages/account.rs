//! The `account` page: who you are signed in as; your password (change it,
//! or set a first one on an account that signs in through single sign-on);
//! your second factor — turn it on (QR code, confirm with a code, recovery
//! codes shown once) or off (with a current code or your password); and your
//! API keys (list, create with a name, permissions and lifetime — the key
//! shown once —, revoke); and your sessions (where and when each started,
//! sign out one or all the others). Session users only; every form carries the CSRF
//! token. The password and the keys go through the same steps as
//! `api/me/password` and `api/me/api-keys`.

use crate::accounts::api_keys::{expires_after, ApiKeyError};
use crate::app::Live;
use crate::audit::action;
use crate::credentials::CredentialSource;
use crate::identity::{Identity, Revocation};
use crate::portal::api::api_keys::{create_own_key, revoke_own_key, rfc3339};
use crate::portal::api::sessions::{current_session, own_sessions, revoke_own};
use crate::portal::csrf::{csrf_ok, csrf_token};
use crate::portal::html::{
    ban_notice, csrf_refused, page, see_other, two_factor_problem, with_retry_after,
};
use crate::portal::pages::second_factor::enrolment_for;
use crate::portal::password::{change_password, PasswordChange, PasswordChangeFailure};
use crate::portal::sign_in::{reauthenticate, turn_on_second_factor, SignInFailure};
use crate::portal::{ClientIp, PortalState};
use crate::session::Origin;
use crate::store::{unix_now, StoreError};
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

/// `POST account/password`.
#[derive(Deserialize)]
pub(in crate::portal) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    old_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

/// `POST account/api-keys`.
#[derive(Deserialize)]
pub(in crate::portal) struct NewKeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    /// Separated by spaces or commas; none: all of the owner's.
    #[serde(default)]
    permissions: String,
    /// `30d`, `12h`…; empty: until revoked.
    #[serde(default)]
    expires_in: String,
}

/// `POST account/sessions/revoke`: one session (`id`), or, without one,
/// every session but this one.
#[derive(Deserialize)]
pub(in crate::portal) struct RevokeSessionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

/// `POST account/api-keys/revoke`.
#[derive(Deserialize)]
pub(in crate::portal) struct RevokeKeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

/// What the page shows besides the account facts.
#[derive(Default)]
struct AccountView<'a> {
    notice: Option<String>,
    error: Option<&'a str>,
    enrolment: Option<Enrolment>,
    recovery_codes: Option<Vec<String>>,
    /// A key just created (its name, the key): shown this once.
    new_key: Option<(String, String)>,
}

impl<'a> AccountView<'a> {
    fn error(message: &'a str) -> Self {
        AccountView {
            error: Some(message),
            ..AccountView::default()
        }
    }

    fn notice(message: impl Into<String>) -> Self {
        AccountView {
            notice: Some(message.into()),
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

/// How the password section looks for this user.
async fn password_mode(
    s: &PortalState,
    live: &Live,
    username: &str,
) -> Result<&'static str, StoreError> {
    if live
        .gate
        .authenticator()
        .directory()
        .user(username)
        .is_some()
    {
        return Ok("config");
    }
    let Some(store) = &s.store else {
        return Ok("config");
    };
    Ok(match store.user(username).await? {
        Some(u) if u.record.password_hash.is_none() => "set",
        _ => "change",
    })
}

/// The signed-in session user, or a redirect to the sign-in page that
/// comes back to `{prefix}{back}`.
pub(in crate::portal) async fn session_user_for(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
    back: &str,
) -> Result<Arc<Identity>, Response> {
    match live.gate.identify(headers, ip).await {
        Ok(Some((identity, CredentialSource::SessionCookie))) => Ok(identity),
        _ => {
            let rd = format!("{}{back}", s.prefix);
            let login = format!(
                "{}/login?rd={}",
                s.prefix,
                percent_encoding::utf8_percent_encode(&rd, percent_encoding::NON_ALPHANUMERIC)
            );
            Err(see_other(&login, &[]))
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
    session_user_for(s, live, headers, ip, "/account").await
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
    let Ok(password_mode) = password_mode(s, live, &identity.subject).await else {
        return unavailable(s);
    };
    let api_keys: Vec<minijinja::Value> = match &s.store {
        Some(store) => match store.list_api_keys(Some(&identity.subject)).await {
            Ok(keys) => keys
                .iter()
                .map(|k| {
                    minijinja::context! {
                        id => k.id, name => &k.name,
                        permissions => k.permissions.as_ref().map(|p| p.join(" ")),
                        expires_at => k.expires_at.map(rfc3339),
                        created_at => rfc3339(k.created_at),
                    }
                })
                .collect(),
            Err(_) => return unavailable(s),
        },
        None => Vec::new(),
    };
    let current = current_session(identity);
    let sessions: Vec<minijinja::Value> = match own_sessions(s, live, identity).await {
        Ok(records) => records
            .iter()
            .map(|r| {
                minijinja::context! {
                    id => &r.id_hash, created_at => rfc3339(r.created_at),
                    last_seen_at => rfc3339(r.last_seen_at), ip => &r.ip,
                    user_agent => &r.user_agent,
                    sso_provider => r.sso.as_ref().map(|s| s.provider.as_str()),
                    current => current == Some(r.id_hash.as_str()),
                }
            })
            .collect(),
        Err(_) => return unavailable(s),
    };
    let ctx = minijinja::context! {
        title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix, csrf => csrf,
        sessions => sessions,
        administers => crate::accounts::admin::authorize(identity, crate::accounts::admin::AdminNeed::ReadUsers).is_ok(),
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
        password_mode => password_mode, password_rule => live.passwords.rule(),
        min_password => live.passwords.min_length,
        api_keys_available => s.store.is_some(), api_keys => api_keys,
        new_key_name => view.new_key.as_ref().map(|k| k.0.as_str()),
        new_key => view.new_key.as_ref().map(|k| k.1.as_str()),
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
    csrf: &str,
) -> Result<Arc<Identity>, Response> {
    if !csrf_ok(s, headers, csrf) {
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
    let identity = match form_user(&s, &live, &headers, ip, &form.csrf).await {
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
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let ip = origin.ip;
    let identity = match form_user(&s, &live, &headers, ip, &form.csrf).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    match turn_on_second_factor(&live, &identity.subject, &form.code).await {
        Ok(codes) => {
            s.audit_own(action::TWO_FACTOR_ENABLE, &identity.subject, &origin);
            let view = AccountView {
                recovery_codes: Some(codes),
                ..AccountView::notice("Two-factor authentication is on.")
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
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let ip = origin.ip;
    let identity = match form_user(&s, &live, &headers, ip, &form.csrf).await {
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
            s.audit_own(action::TWO_FACTOR_DISABLE, &identity.subject, &origin);
            let view = AccountView::notice("Two-factor authentication is off.");
            account_page(&s, &live, &headers, &identity, StatusCode::OK, view).await
        }
        Err(e) => {
            let (status, message) = two_factor_problem(&e);
            again(status, message).await
        }
    }
}

/// `POST account/password`: change the password (or set a first one), as
/// `api/me/password` does; this session stays, the others end.
pub(in crate::portal) async fn change_password_submit(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let ip = origin.ip;
    let identity = match form_user(&s, &live, &headers, ip, &form.csrf).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let show = |status, view| account_page(&s, &live, &headers, &identity, status, view);
    if form.new_password != form.new_password_confirm {
        let view = AccountView::error("The two new passwords differ.");
        return show(StatusCode::BAD_REQUEST, view).await;
    }
    let keep_session = match &identity.revocation {
        Some(Revocation::Session(hash)) => Some(hash.as_str()),
        _ => None,
    };
    let change = PasswordChange {
        username: &identity.subject,
        old_password: &form.old_password,
        new_password: &form.new_password,
        keep_session,
    };
    let weak = format!("Choose a new password of {}.", live.passwords.rule());
    let (status, message) = match change_password(&s, &live, change, &origin).await {
        Ok(ended) => {
            let notice = match ended {
                0 => "Your password is changed.".to_owned(),
                1 => "Your password is changed. Your other session was signed out.".to_owned(),
                n => format!("Your password is changed. Your {n} other sessions were signed out."),
            };
            return show(StatusCode::OK, AccountView::notice(notice)).await;
        }
        Err(PasswordChangeFailure::ReadOnly) => (
            StatusCode::CONFLICT,
            "Your password is set in the configuration file; an administrator changes it there.",
        ),
        Err(PasswordChangeFailure::OldPasswordRequired) => {
            (StatusCode::BAD_REQUEST, "Enter your current password.")
        }
        Err(PasswordChangeFailure::Weak(_)) => (StatusCode::BAD_REQUEST, weak.as_str()),
        Err(PasswordChangeFailure::SignIn(
            SignInFailure::Invalid | SignInFailure::CodeAlreadyUsed,
        )) => (
            StatusCode::UNAUTHORIZED,
            "Your current password is not right.",
        ),
        Err(PasswordChangeFailure::SignIn(SignInFailure::Disabled)) => {
            (StatusCode::FORBIDDEN, "Your account is disabled.")
        }
        Err(PasswordChangeFailure::SignIn(SignInFailure::Banned(b))) => {
            let notice = ban_notice(b);
            let view = AccountView::error(&notice);
            let resp = show(StatusCode::TOO_MANY_REQUESTS, view).await;
            return with_retry_after(resp, b);
        }
        Err(PasswordChangeFailure::SignIn(SignInFailure::Unavailable))
        | Err(PasswordChangeFailure::Unavailable) => return unavailable(&s),
    };
    show(status, AccountView::error(message)).await
}

/// The page's words for a key that was not created.
fn key_problem(e: &ApiKeyError) -> (StatusCode, String) {
    match e {
        ApiKeyError::NotAllowed(p) => (
            StatusCode::FORBIDDEN,
            format!("You do not hold `{p}`, so your key cannot either."),
        ),
        ApiKeyError::Store(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The key cannot be created right now. Try again shortly.".to_owned(),
        ),
        other => (StatusCode::BAD_REQUEST, format!("Not created: {other}.")),
    }
}

/// `POST account/api-keys`: a new key acting as you, narrowed to a subset
/// of your permissions; the key is on this page only.
pub(in crate::portal) async fn create_key(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<NewKeyForm>,
) -> Response {
    let ip = origin.ip;
    let identity = match form_user(&s, &live, &headers, ip, &form.csrf).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let show = |status, view| account_page(&s, &live, &headers, &identity, status, view);
    let name = form.name.trim();
    let permissions: Vec<String> = form
        .permissions
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let permissions = (!permissions.is_empty()).then_some(permissions);
    let expires_at = match form.expires_in.trim() {
        "" => Ok(None),
        lifetime => expires_after(lifetime, unix_now()).map(Some),
    };
    let created = match expires_at {
        Ok(expires_at) => {
            create_own_key(
                &s,
                &origin,
                &identity,
                name,
                permissions.as_deref(),
                expires_at,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(created) => {
            let view = AccountView {
                new_key: Some((created.stored.name, created.key)),
                ..AccountView::notice("Key created. Copy it now: it is shown only this once.")
            };
            show(StatusCode::CREATED, view).await
        }
        Err(e) => {
            let (status, message) = key_problem(&e);
            show(status, AccountView::error(&message)).await
        }
    }
}

/// `POST account/api-keys/revoke`: revoke one of your keys, everywhere.
pub(in crate::portal) async fn revoke_key(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<RevokeKeyForm>,
) -> Response {
    let ip = origin.ip;
    let identity = match form_user(&s, &live, &headers, ip, &form.csrf).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let show = |status, view| account_page(&s, &live, &headers, &identity, status, view);
    let gone = "No such key: it may be revoked already.";
    let Ok(id) = form.id.trim().parse::<i64>() else {
        return show(StatusCode::NOT_FOUND, AccountView::error(gone)).await;
    };
    match revoke_own_key(&s, &origin, &live, &identity, id).await {
        Ok(()) => show(StatusCode::OK, AccountView::notice("Key revoked.")).await,
        Err(StoreError::NotFound(_)) => show(StatusCode::NOT_FOUND, AccountView::error(gone)).await,
        Err(_) => unavailable(&s),
    }
}

/// `POST account/sessions/revoke`: sign out one of your sessions (`id`),
/// or every other one (no `id`).
pub(in crate::portal) async fn revoke_session(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<RevokeSessionForm>,
) -> Response {
    let ip = origin.ip;
    let identity = match form_user(&s, &live, &headers, ip, &form.csrf).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let only = Some(form.id.trim()).filter(|id| !id.is_empty());
    // This session itself: that is signing out.
    if only.is_some() && only == current_session(&identity) {
        return see_other(&format!("{}/logout", s.prefix), &[]);
    }
    let (status, view) = match revoke_own(&s, &live, &origin, &identity, only).await {
        Ok(0) if only.is_some() => (
            StatusCode::NOT_FOUND,
            AccountView::error("No such session: it may have ended already."),
        ),
        Ok(1) => (
            StatusCode::OK,
            AccountView::notice("One session was signed out."),
        ),
        Ok(n) => (
            StatusCode::OK,
            AccountView::notice(format!("{n} sessions were signed out.")),
        ),
        Err(_) => return unavailable(&s),
    };
    account_page(&s, &live, &headers, &identity, status, view).await
}
