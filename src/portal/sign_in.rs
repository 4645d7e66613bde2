//! Signing in, shared by the pages and the JSON API: name (or e-mail) and
//! password under regulation, second-factor steps regulated the same way,
//! re-authentication before sensitive changes, starting the session, and
//! where to return afterwards.

use crate::app::Live;
use crate::authn::AuthnError;
use crate::directory::UserRecord;
use crate::portal::PortalState;
use crate::two_factor::TwoFactorError;

use crate::audit::{action, AuditEvent, Outcome};
use crate::session::{self, Origin};

/// Why a sign-in did not succeed, answered the same way by page and API.
#[derive(Debug, PartialEq)]
pub(in crate::portal) enum SignInFailure {
    /// Wrong name, password or code (never says which).
    Invalid,
    /// The right password, and a right code whose time step was used
    /// already: said apart from `Invalid` only once the password is known
    /// right, so a wrong password still looks like a wrong code.
    CodeAlreadyUsed,
    Disabled,
    Banned(crate::regulation::Banned),
    Unavailable,
}

/// Check a name (or e-mail) and password under regulation: a banned user
/// or address is refused before any password work; a wrong password
/// counts against both. The count is cleared only once every factor is
/// in ([`signed_in`]), so a known password does not reset code guessing.
pub(in crate::portal) async fn sign_in(
    live: &Live,
    login: &str,
    password: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<UserRecord, SignInFailure> {
    let authn = live.gate.authenticator();
    let regulator = live.gate.regulator();
    // Regulate by the name typed; an e-mail maps to its user's name so both
    // spellings share one count.
    let username = match authn.find_login(login).await {
        Ok(Some(u)) => u.username,
        Ok(None) => login.to_owned(),
        Err(_) => return Err(SignInFailure::Unavailable),
    };
    regulator
        .check(&username, ip)
        .map_err(SignInFailure::Banned)?;
    match authn.verify_password(&username, password).await {
        Ok(user) => Ok(user),
        Err(AuthnError::InvalidCredentials) => {
            regulator.failed(&username, ip).await;
            Err(SignInFailure::Invalid)
        }
        Err(AuthnError::Disabled) => Err(SignInFailure::Disabled),
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed for a reason of ours");
            Err(SignInFailure::Unavailable)
        }
    }
}

/// A second-factor step under regulation, like a password: refused while
/// the user or address is banned, counted when the code is wrong.
async fn regulated<T>(
    live: &Live,
    username: &str,
    ip: Option<std::net::IpAddr>,
    attempt: impl std::future::Future<Output = Result<T, TwoFactorError>>,
) -> Result<T, SignInFailure> {
    let regulator = live.gate.regulator();
    regulator
        .check(username, ip)
        .map_err(SignInFailure::Banned)?;
    match attempt.await {
        Ok(done) => Ok(done),
        Err(TwoFactorError::InvalidCode) => {
            regulator.failed(username, ip).await;
            Err(SignInFailure::Invalid)
        }
        Err(TwoFactorError::CodeAlreadyUsed) => {
            regulator.failed(username, ip).await;
            Err(SignInFailure::CodeAlreadyUsed)
        }
        Err(e) => {
            tracing::error!(error = %e, user = %username, "second factor cannot be checked");
            Err(SignInFailure::Unavailable)
        }
    }
}

/// Check a second-factor code (TOTP or recovery), regulated.
pub(in crate::portal) async fn check_code(
    live: &Live,
    username: &str,
    code: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<(), SignInFailure> {
    regulated(live, username, ip, live.two_factor.verify(username, code)).await
}

/// Confirm `username`'s enrolment with a code; answers the recovery codes.
/// Password-only credentials cached here stop working at once (other
/// replicas hear it through the change feed).
pub(in crate::portal) async fn turn_on_second_factor(
    live: &Live,
    username: &str,
    code: &str,
) -> Result<Vec<String>, TwoFactorError> {
    let codes = live.two_factor.confirm(username, code).await?;
    live.gate.authenticator().invalidate_user(username);
    Ok(codes)
}

/// [`turn_on_second_factor`] while signing in, regulated like a password.
pub(in crate::portal) async fn turn_on_at_sign_in(
    live: &Live,
    username: &str,
    code: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<Vec<String>, SignInFailure> {
    regulated(
        live,
        username,
        ip,
        turn_on_second_factor(live, username, code),
    )
    .await
}

/// The signed-in user proves they are at the keyboard before a sensitive
/// change: a current code when given, else the password (both regulated).
/// `None` when neither was sent.
pub(in crate::portal) async fn reauthenticate(
    live: &Live,
    username: &str,
    code: &str,
    password: &str,
    ip: Option<std::net::IpAddr>,
) -> Option<Result<(), SignInFailure>> {
    Some(match (code.trim(), password) {
        ("", "") => return None,
        ("", password) => sign_in(live, username, password, ip).await.map(|_| ()),
        (code, _) => check_code(live, username, code, ip).await,
    })
}

/// Every factor is in: forget the user's failed attempts.
pub(in crate::portal) async fn signed_in(live: &Live, username: &str) {
    live.gate.regulator().succeeded(username).await;
}

/// Which way a sign-in came (`channel` in the audit trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::portal) enum Channel {
    /// The sign-in page (and its second-factor step).
    Page,
    /// `api/login` (a token).
    Api,
    /// `api/session` (Basic, then a cookie).
    Basic,
    /// The setup page's first administrator.
    Setup,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Page => "page",
            Channel::Api => "api",
            Channel::Basic => "basic",
            Channel::Setup => "setup",
        }
    }
}

impl SignInFailure {
    /// The reason in the audit trail.
    pub(in crate::portal) fn reason(&self) -> &'static str {
        match self {
            SignInFailure::Invalid => "invalid_credentials",
            SignInFailure::CodeAlreadyUsed => "code_already_used",
            SignInFailure::Disabled => "account_disabled",
            SignInFailure::Banned(_) => "banned",
            SignInFailure::Unavailable => "unavailable",
        }
    }
}

/// Put a sign-in on the audit trail: `login` as typed (a name or an
/// address) and why it failed, or the user it signed in.
pub(in crate::portal) fn audit_sign_in(
    s: &PortalState,
    origin: &Origin,
    login: &str,
    channel: Channel,
    failure: Option<&str>,
) {
    let outcome = if failure.is_some() {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    let mut event = AuditEvent::new(action::SIGN_IN, outcome)
        .actor(login)
        .origin(origin)
        .detail("channel", channel.as_str());
    if let Some(reason) = failure {
        event = event.detail("reason", reason);
    }
    s.audit.record(event);
}

/// Put a sign-out on the audit trail (`channel`: `page` or `api`).
pub(in crate::portal) fn audit_sign_out(
    s: &PortalState,
    origin: &Origin,
    username: &str,
    channel: &'static str,
) {
    s.audit.record(
        AuditEvent::new(action::SIGN_OUT, Outcome::Success)
            .actor(username)
            .origin(origin)
            .detail("channel", channel),
    );
}

/// Start a session for `username` (who signed in through `channel`) and
/// answer its `Set-Cookie`; the sign-in goes on the audit trail.
pub(in crate::portal) async fn start_session(
    s: &PortalState,
    live: &Live,
    username: &str,
    origin: &Origin,
    channel: Channel,
) -> Option<String> {
    let store = s.store.as_ref()?;
    match session::start(store, &live.session, username, origin).await {
        Ok(id) => {
            audit_sign_in(s, origin, username, channel, None);
            Some(session::session_cookie(&live.session, &id))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot create a session");
            None
        }
    }
}

/// Where to go after signing in: `rd` when it is allowed, else the app.
pub(in crate::portal) fn return_to(s: &PortalState, rd: &str) -> String {
    s.redirect
        .validate(rd)
        .map(String::from)
        .unwrap_or_else(|| s.redirect.public_url().to_string())
}
