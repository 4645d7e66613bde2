//! Accounts that look after themselves, shared by the pages and the JSON
//! API: registration (open, invite-only with an activation link, or through
//! an invitation), activation, and password reset by a mailed link.
//!
//! Nothing here tells a stranger whether an account exists: a reset request
//! is answered before the store is even asked (the lookup and the mail run
//! after the answer, through the outbox), and so is a registration in invite
//! mode, which answers the same for a taken address as for a free one (the
//! owner of a taken address is told by mail instead).

use crate::accounts::registration::{admission, Admission, LinkToken};
use crate::accounts::users::{AccountError, NewAccount};
use crate::app::Live;
use crate::audit::{action, AuditEvent, Outcome};
use crate::directory::UserStatus;
use crate::identity::UserKind;
use crate::portal::PortalState;
use crate::session::Origin;
use crate::store::{unix_now, AccountToken, OutgoingMail, StoreError, StoredUser, TokenPurpose};
use std::net::IpAddr;
use std::sync::Arc;

/// A registration as asked.
pub(in crate::portal) struct Registration<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    /// An invitation link's token, when the person came through one.
    pub invitation: Option<&'a str>,
}

/// How a registration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::portal) enum Registered {
    /// Signs in now; `is_admin` for the first user.
    Active { is_admin: bool },
    /// Signs in once the mailed link is followed.
    PendingActivation,
}

/// Why a registration (or a reset, or an activation) did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::portal) enum SelfServiceError {
    Closed,
    /// The name or e-mail cannot be used (never says which, or why).
    Taken,
    Invalid(AccountError),
    /// Unknown, used or expired link.
    BadToken,
    /// Invite mode needs an e-mail address to send the link to.
    EmailRequired,
    Banned(crate::regulation::Banned),
    Unavailable,
}

impl SelfServiceError {
    /// The reason in the audit trail.
    fn reason(&self) -> &'static str {
        match self {
            SelfServiceError::Closed => "closed",
            SelfServiceError::Taken => "taken",
            SelfServiceError::Invalid(_) => "invalid",
            SelfServiceError::BadToken => "invalid_token",
            SelfServiceError::EmailRequired => "email_required",
            SelfServiceError::Banned(_) => "banned",
            SelfServiceError::Unavailable => "unavailable",
        }
    }
}

impl From<StoreError> for SelfServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => SelfServiceError::Taken,
            e => {
                tracing::error!(error = %e, "self-service cannot reach the store");
                SelfServiceError::Unavailable
            }
        }
    }
}

/// `{public_url}{prefix}{path}?token=…`
fn link(s: &PortalState, path: &str, param: &str, token: &str) -> String {
    s.public(&format!("{path}?{param}={token}"))
}

/// A mail from the templates, or `None` (logged) when it cannot be rendered.
fn mail(s: &PortalState, template: &str, to: &str, ctx: serde_json::Value) -> Option<OutgoingMail> {
    match s.mail.render(template, &ctx) {
        Ok(m) => Some(m.to_outgoing(to)),
        Err(e) => {
            tracing::error!(error = %e, template, "a mail cannot be rendered");
            None
        }
    }
}

/// Regulate a self-service request: per address (or name) and per client
/// IP, every request counts, so nobody can mail-bomb an inbox or sweep
/// names from one address.
async fn regulate(
    live: &Live,
    what: &str,
    subject: &str,
    ip: Option<IpAddr>,
) -> Result<(), SelfServiceError> {
    let key = format!("{what}:{}", subject.to_lowercase());
    let regulator = live.gate.regulator();
    regulator
        .check(&key, ip)
        .map_err(SelfServiceError::Banned)?;
    regulator.failed(&key, ip).await;
    Ok(())
}

/// Register an account as the settings and the first-user rule say.
pub(in crate::portal) async fn register(
    s: &Arc<PortalState>,
    live: &Arc<Live>,
    r: Registration<'_>,
    origin: &Origin,
) -> Result<Registered, SelfServiceError> {
    let done = admit(s, live, &r, origin.ip).await;
    let mut event = match &done {
        Ok(Registered::Active { is_admin }) => AuditEvent::new(action::REGISTER, Outcome::Success)
            .detail("status", "active")
            .detail("is_admin", *is_admin),
        Ok(Registered::PendingActivation) => AuditEvent::new(action::REGISTER, Outcome::Success)
            .detail("status", "pending_activation"),
        Err(e) => AuditEvent::new(action::REGISTER, Outcome::Failure).detail("reason", e.reason()),
    };
    event = event.actor(r.username.trim()).origin(origin);
    if r.invitation.is_some_and(|t| !t.trim().is_empty()) {
        event = event.detail("invited", true);
    }
    s.audit.record(event);
    done
}

/// [`register`] without the audit trail.
async fn admit(
    s: &Arc<PortalState>,
    live: &Arc<Live>,
    r: &Registration<'_>,
    ip: Option<IpAddr>,
) -> Result<Registered, SelfServiceError> {
    let store = s.store.as_ref().ok_or(SelfServiceError::Unavailable)?;
    // Per client address (`regulation.max_retries_per_ip`), and per name.
    regulate(live, "register", r.username.trim(), ip).await?;
    let settings = &live.registration;
    let now = unix_now();
    let invitation = match r.invitation.filter(|t| !t.trim().is_empty()) {
        Some(t) => Some(
            store
                .account_token(&LinkToken::hash_of(t), TokenPurpose::Invitation, now)
                .await?
                .ok_or(SelfServiceError::BadToken)?,
        ),
        None => None,
    };
    let nobody_enabled = store.count_enabled_users().await? == 0
        && !live
            .gate
            .authenticator()
            .directory()
            .users
            .values()
            .any(|u| u.status == UserStatus::Enabled);
    let how = admission(settings.mode, nobody_enabled, invitation.is_some());
    // An invitation fixes the address (already verified by the mail).
    let email = invitation
        .as_ref()
        .and_then(|i| i.email.clone())
        .unwrap_or_else(|| r.email.trim().to_owned());
    if how == Admission::PendingActivation && email.is_empty() {
        return Err(SelfServiceError::EmailRequired);
    }
    if how == Admission::Refused {
        return Err(SelfServiceError::Closed);
    }
    let role = match how {
        Admission::FirstAdmin => "admin".to_owned(),
        Admission::Invited => invitation
            .as_ref()
            .and_then(|i| i.role.clone())
            .unwrap_or_else(|| settings.default_role.clone()),
        _ => settings.default_role.clone(),
    };
    let account = NewAccount::new(r.username, Some(&email))
        .map_err(SelfServiceError::Invalid)?
        .role(role);
    let taken_by_config = live
        .gate
        .authenticator()
        .directory()
        .user(account.username())
        .is_some();
    let policy = live.passwords.clone();
    let password = r.password.to_owned();
    let new_user = tokio::task::spawn_blocking(move || account.with_password(&policy, &password))
        .await
        .map_err(|_| SelfServiceError::Unavailable)?
        .map_err(SelfServiceError::Invalid)?;
    match how {
        Admission::FirstAdmin => {
            store
                .create_first_user(new_user)
                .await
                .map_err(|e| match e {
                    StoreError::Closed => SelfServiceError::Taken,
                    e => e.into(),
                })?;
            Ok(Registered::Active { is_admin: true })
        }
        Admission::Invited => {
            if taken_by_config {
                return Err(SelfServiceError::Taken);
            }
            let token = invitation.map(|i| i.token_hash).unwrap_or_default();
            match store
                .create_user_with_token(&token, TokenPurpose::Invitation, new_user, now)
                .await?
            {
                Some(_) => Ok(Registered::Active { is_admin: false }),
                None => Err(SelfServiceError::BadToken),
            }
        }
        Admission::Active => {
            if taken_by_config {
                return Err(SelfServiceError::Taken);
            }
            store.create_user(new_user).await?;
            Ok(Registered::Active { is_admin: false })
        }
        Admission::PendingActivation => {
            // Answered before the store is asked whether the name or address
            // is taken, so the time taken tells nothing either.
            let (s, live) = (s.clone(), live.clone());
            tokio::spawn(async move {
                let Some(store) = &s.store else { return };
                if let Err(e) = pend(&s, &live, store, new_user, taken_by_config, now).await {
                    tracing::error!(error = ?e, "a registration cannot be kept for activation");
                }
            });
            Ok(Registered::PendingActivation)
        }
        Admission::Refused => Err(SelfServiceError::Closed),
    }
}

/// Invite mode: keep the registration with an activation link and mail it
/// (after the answer: see [`register`]).
/// A taken name or address answers the same as a free one; the address's
/// owner is told by mail that someone tried.
async fn pend(
    s: &PortalState,
    live: &Live,
    store: &crate::store::Store,
    user: crate::store::NewUser,
    taken_by_config: bool,
    now: i64,
) -> Result<(), SelfServiceError> {
    let email = user.email.clone().unwrap_or_default();
    let owner = store.user_by_email(&email).await?;
    let taken = taken_by_config
        || owner.is_some()
        || store.user(&user.username).await?.is_some()
        || store
            .registration_pending(&user.username, &email, now)
            .await?;
    if taken {
        if let Some(owner) = owner {
            if let Some(m) = mail(
                s,
                "registration_exists",
                &email,
                serde_json::json!({"username": owner.record.username, "reset_link": s.public("/reset")}),
            ) {
                store.enqueue_mail(&m).await?;
                store.wake_outbox();
            }
        }
        return Ok(());
    }
    let t = LinkToken::new();
    let ttl = live.registration.activation_ttl;
    let m = mail(
        s,
        "activation",
        &email,
        serde_json::json!({
            "link": link(s, "/activate", "token", &t.token),
            "username": user.username,
            "ttl_hours": ttl.as_secs().div_ceil(3600),
        }),
    )
    .ok_or(SelfServiceError::Unavailable)?;
    store
        .create_account_token(
            AccountToken {
                token_hash: t.hash,
                id: t.id,
                purpose: TokenPurpose::Activation,
                username: Some(user.username),
                email: user.email,
                role: Some(user.role),
                password_hash: user.password_hash,
                created_by: None,
                created_at: now,
                expires_at: now + ttl.as_secs() as i64,
                used_at: None,
            },
            Some(m),
        )
        .await?;
    store.wake_outbox();
    Ok(())
}

/// Follow an activation link: the registration it holds becomes a user.
pub(in crate::portal) async fn activate(
    s: &PortalState,
    live: &Live,
    token: &str,
    origin: &Origin,
) -> Result<String, SelfServiceError> {
    let done = activate_link(s, live, token).await;
    if let Ok(username) = &done {
        s.audit.record(
            AuditEvent::new(action::REGISTER, Outcome::Success)
                .actor(username)
                .origin(origin)
                .detail("status", "activated"),
        );
    }
    done
}

/// [`activate`] without the audit trail.
async fn activate_link(
    s: &PortalState,
    live: &Live,
    token: &str,
) -> Result<String, SelfServiceError> {
    let store = s.store.as_ref().ok_or(SelfServiceError::Unavailable)?;
    let now = unix_now();
    let hash = LinkToken::hash_of(token);
    let pending = store
        .account_token(&hash, TokenPurpose::Activation, now)
        .await?
        .ok_or(SelfServiceError::BadToken)?;
    let username = pending.username.clone().unwrap_or_default();
    if live
        .gate
        .authenticator()
        .directory()
        .user(&username)
        .is_some()
    {
        return Err(SelfServiceError::Taken);
    }
    let user = crate::store::NewUser {
        username: username.clone(),
        email: pending.email,
        name: None,
        kind: UserKind::User,
        role: pending
            .role
            .unwrap_or_else(|| live.registration.default_role.clone()),
        password_hash: pending.password_hash,
        status: crate::directory::UserStatus::Enabled,
    };
    match store
        .create_user_with_token(&hash, TokenPurpose::Activation, user, now)
        .await?
    {
        Some(_) => Ok(username),
        None => Err(SelfServiceError::BadToken),
    }
}

/// Mail the activation link again (a new one; the old stops working).
/// Answered the same whether or not anything waits for that address.
pub(in crate::portal) async fn resend_activation(
    s: &Arc<PortalState>,
    live: &Arc<Live>,
    email: &str,
    ip: Option<IpAddr>,
) -> Result<(), SelfServiceError> {
    regulate(live, "activation", email, ip).await?;
    let (s, live, email) = (s.clone(), live.clone(), email.trim().to_owned());
    tokio::spawn(async move {
        let Some(store) = &s.store else { return };
        let now = unix_now();
        let Ok(Some(old)) = store.pending_activation(&email, now).await else {
            return;
        };
        let t = LinkToken::new();
        let ttl = live.registration.activation_ttl;
        let Some(m) = mail(
            &s,
            "activation",
            &email,
            serde_json::json!({
                "link": link(&s, "/activate", "token", &t.token),
                "username": old.username,
                "ttl_hours": ttl.as_secs().div_ceil(3600),
            }),
        ) else {
            return;
        };
        let new = AccountToken {
            token_hash: t.hash,
            id: t.id,
            created_at: now,
            expires_at: now + ttl.as_secs() as i64,
            ..old.clone()
        };
        match store.replace_account_token(&old.token_hash, new, m).await {
            Ok(()) => store.wake_outbox(),
            Err(e) => tracing::error!(error = %e, "an activation link cannot be sent again"),
        }
    });
    Ok(())
}

/// Ask for a reset link. Answered at once, the same for every address: the
/// lookup, the token and the mail happen afterwards, through the outbox.
pub(in crate::portal) async fn request_reset(
    s: &Arc<PortalState>,
    live: &Arc<Live>,
    email: &str,
    ip: Option<IpAddr>,
) -> Result<(), SelfServiceError> {
    regulate(live, "reset", email, ip).await?;
    let (s, live, email) = (s.clone(), live.clone(), email.trim().to_owned());
    tokio::spawn(async move {
        let Some(store) = &s.store else { return };
        let user = match store.user_by_email(&email).await {
            Ok(Some(u))
                if u.record.status == UserStatus::Enabled && u.record.kind == UserKind::User =>
            {
                u
            }
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "a reset request cannot reach the store");
                return;
            }
        };
        let t = LinkToken::new();
        let ttl = live.passwords.reset_ttl;
        let now = unix_now();
        let Some(m) = mail(
            &s,
            "password_reset",
            &email,
            serde_json::json!({
                "link": link(&s, "/reset", "token", &t.token),
                "username": user.record.username,
                "ttl_minutes": ttl.as_secs().div_ceil(60),
            }),
        ) else {
            return;
        };
        let token = AccountToken {
            token_hash: t.hash,
            id: t.id,
            purpose: TokenPurpose::Reset,
            username: Some(user.record.username),
            email: Some(email),
            role: None,
            password_hash: None,
            created_by: None,
            created_at: now,
            expires_at: now + ttl.as_secs() as i64,
            used_at: None,
        };
        match store.create_account_token(token, Some(m)).await {
            Ok(()) => store.wake_outbox(),
            Err(e) => tracing::error!(error = %e, "a reset link cannot be kept"),
        }
    });
    Ok(())
}

/// Set a new password with a reset link: every session and token of the
/// user ends (on every replica) and their sign-in ban is lifted.
pub(in crate::portal) async fn confirm_reset(
    s: &PortalState,
    live: &Live,
    token: &str,
    new_password: &str,
    origin: &Origin,
) -> Result<String, SelfServiceError> {
    let store = s.store.as_ref().ok_or(SelfServiceError::Unavailable)?;
    let policy = live.passwords.clone();
    let password = new_password.to_owned();
    // Checked before the link is used up, so a weak password costs nothing.
    let hash = tokio::task::spawn_blocking(move || {
        crate::accounts::users::hash_new_password(&policy, &password)
    })
    .await
    .map_err(|_| SelfServiceError::Unavailable)?
    .map_err(SelfServiceError::Invalid)?;
    let used = store
        .use_account_token(&LinkToken::hash_of(token), TokenPurpose::Reset, unix_now())
        .await?
        .ok_or(SelfServiceError::BadToken)?;
    let username = used.username.unwrap_or_default();
    let user: Option<StoredUser> = store.user(&username).await?;
    if user.is_none() {
        return Err(SelfServiceError::BadToken);
    }
    // The new password, every session ended, every token issued before refused.
    store.change_password(&username, &hash, None).await?;
    live.gate.authenticator().invalidate_user(&username);
    live.gate.regulator().succeeded(&username).await;
    s.audit.record(
        AuditEvent::new(action::PASSWORD_RESET, Outcome::Success)
            .actor(&username)
            .origin(origin),
    );
    Ok(username)
}
