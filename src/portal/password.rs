//! Changing your own password, shared by the account page and `api/me/password`:
//! who may (stored users; config-file users change theirs in the file), the
//! old password proven under regulation like a sign-in (an account without
//! one, signed in through single sign-on, sets its first without), the
//! configured rule for the new one, and what a change ends: the user's other
//! sessions, every token issued before, and cached Basic passwords — here at
//! once, on other replicas through the change feed.

use crate::accounts::users::{check_password, hash_new_password, AccountError};
use crate::app::Live;
use crate::audit::{action, AuditEvent, Outcome};
use crate::portal::sign_in::{sign_in, signed_in, SignInFailure};
use crate::portal::PortalState;
use crate::session::Origin;
use crate::store::StoreError;

/// Why a password was not changed, answered by page and API each their way.
#[derive(Debug, PartialEq)]
pub(in crate::portal) enum PasswordChangeFailure {
    /// A config-file user: read-only here.
    ReadOnly,
    /// The account has a password, and the old one was not sent.
    OldPasswordRequired,
    /// The old password did not prove the user (wrong, banned, …).
    SignIn(SignInFailure),
    /// The new password breaks the rule.
    Weak(AccountError),
    Unavailable,
}

/// What the change asks for.
pub(in crate::portal) struct PasswordChange<'a> {
    pub username: &'a str,
    /// Empty when not sent.
    pub old_password: &'a str,
    pub new_password: &'a str,
    /// The session the request came with (its id hash): it stays.
    pub keep_session: Option<&'a str>,
}

/// Change `change.username`'s password; answers how many other sessions
/// ended.
pub(in crate::portal) async fn change_password(
    s: &PortalState,
    live: &Live,
    change: PasswordChange<'_>,
    origin: &Origin,
) -> Result<u64, PasswordChangeFailure> {
    let ip = origin.ip;
    use PasswordChangeFailure as Failure;
    let username = change.username;
    let authn = live.gate.authenticator();
    if authn.directory().user(username).is_some() {
        return Err(Failure::ReadOnly);
    }
    let store = s.store.as_ref().ok_or(Failure::Unavailable)?;
    let stored = match store.user(username).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(Failure::SignIn(SignInFailure::Invalid)),
        Err(_) => return Err(Failure::Unavailable),
    };
    let has_password = stored.record.password_hash.is_some();
    if has_password && change.old_password.is_empty() {
        return Err(Failure::OldPasswordRequired);
    }
    // The rule first: a refused new password costs no hashing and no
    // failed attempt.
    check_password(&live.passwords, change.new_password).map_err(Failure::Weak)?;
    if has_password {
        if let Err(failure) = sign_in(live, username, change.old_password, ip).await {
            if failure != SignInFailure::Unavailable {
                s.audit.record(
                    AuditEvent::new(action::PASSWORD_CHANGE, Outcome::Failure)
                        .actor(username)
                        .origin(origin)
                        .detail("reason", failure.reason()),
                );
            }
            return Err(Failure::SignIn(failure));
        }
        signed_in(live, username).await;
    }
    let (policy, new) = (live.passwords.clone(), change.new_password.to_owned());
    let hash = match tokio::task::spawn_blocking(move || hash_new_password(&policy, &new)).await {
        Ok(Ok(hash)) => hash,
        Ok(Err(
            e @ (AccountError::PasswordTooShort { .. } | AccountError::PasswordTooLong { .. }),
        )) => return Err(Failure::Weak(e)),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot hash a new password");
            return Err(Failure::Unavailable);
        }
        Err(_) => return Err(Failure::Unavailable),
    };
    let ended = match store
        .change_password(username, &hash, change.keep_session)
        .await
    {
        Ok(ended) => ended,
        Err(StoreError::NotFound(_)) => return Err(Failure::SignIn(SignInFailure::Invalid)),
        Err(e) => {
            tracing::error!(error = %e, "cannot store a new password");
            return Err(Failure::Unavailable);
        }
    };
    // This replica at once; the others hear the `user` change.
    authn.invalidate_user(username);
    if let Some(email) = stored.record.email.as_deref() {
        notify(s, store, username, email).await;
    }
    s.audit.record(
        AuditEvent::new(action::PASSWORD_CHANGE, Outcome::Success)
            .actor(username)
            .origin(origin)
            .detail("other_sessions_ended", ended),
    );
    Ok(ended)
}

/// Tell the account's address that its password changed (through the
/// outbox; a failure is logged, the change stands).
async fn notify(s: &PortalState, store: &crate::store::Store, username: &str, email: &str) {
    let ctx = serde_json::json!({"username": username});
    let queued = match s.mail.render("password_changed", &ctx) {
        Ok(m) => store.enqueue_mail(&m.to_outgoing(email)).await.map(|_| ()),
        Err(e) => {
            tracing::error!(error = %e, "the password-changed mail cannot be rendered");
            return;
        }
    };
    match queued {
        Ok(()) => store.wake_outbox(),
        Err(e) => tracing::error!(error = %e, "the password-changed mail cannot be queued"),
    }
}
