//! Which local account a single sign-on opens.
//!
//! An identity is its (provider, issuer, `sub`), linked to a local user in
//! the store; never an e-mail address or a name alone. On the first sign-in:
//! an existing link wins; else, with `link_existing_by_email`, the stored
//! user with the same e-mail is linked, only when the provider says the
//! address is verified; else, with `auto_create_users`, a `user` account
//! without a password is created with the mapped role. A name that is taken
//! is refused, never merged. Disabled users are refused; `sync_role` sets
//! the mapped role at every sign-in, adding and removing rights.

use super::users::{check_username, NewAccount};
use crate::directory::{Directory, UserStatus};
use crate::sso::{ProviderSettings, ProviderSignIn};
use crate::store::{unix_now, SsoIdentity, Store, StoreError, StoredUser};

/// Why a single sign-on opens no account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoAccountError {
    #[error("no account is linked to this identity, and accounts are not created automatically")]
    NotLinked,
    #[error("the user name `{0}` is taken by another account")]
    NameTaken(String),
    #[error("the provider gave no usable user name")]
    NoUsableName,
    #[error("the account is disabled")]
    Disabled,
    #[error("the store is unavailable")]
    Unavailable,
}

impl From<StoreError> for SsoAccountError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "single sign-on cannot reach the store");
        SsoAccountError::Unavailable
    }
}

/// How the account was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Linked,
    LinkedByEmail,
    Created,
}

/// The account `sign_in` opens, with `role` as the provider's groups map it.
pub async fn account_for(
    store: &Store,
    directory: &Directory,
    p: &ProviderSettings,
    sign_in: &ProviderSignIn,
    role: &str,
) -> Result<(StoredUser, Found), SsoAccountError> {
    let id = SsoIdentity {
        provider: p.id.clone(),
        issuer: sign_in.issuer.clone(),
        subject: sign_in.subject.clone(),
    };
    let (mut user, found) = match linked(store, &id).await? {
        Some(user) => (user, Found::Linked),
        None => match by_email(store, p, sign_in, &id).await? {
            Some(user) => (user, Found::LinkedByEmail),
            None if p.auto_create_users => (
                create(store, directory, p, sign_in, &id, role).await?,
                Found::Created,
            ),
            None => return Err(SsoAccountError::NotLinked),
        },
    };
    if user.record.status == UserStatus::Disabled {
        return Err(SsoAccountError::Disabled);
    }
    if p.sync_role && user.record.role != role {
        store.set_role(&user.record.username, role).await?;
        user.record.role = role.to_owned();
    }
    if let Err(e) = store.touch_sso_link(&id, unix_now()).await {
        tracing::debug!(error = %e, "SSO sign-in time not recorded");
    }
    Ok((user, found))
}

async fn linked(store: &Store, id: &SsoIdentity) -> Result<Option<StoredUser>, StoreError> {
    match store.sso_linked_user(id).await? {
        Some(name) => store.user(&name).await,
        None => Ok(None),
    }
}

/// `link_existing_by_email`: only an address the provider has verified.
async fn by_email(
    store: &Store,
    p: &ProviderSettings,
    sign_in: &ProviderSignIn,
    id: &SsoIdentity,
) -> Result<Option<StoredUser>, SsoAccountError> {
    if !p.link_existing_by_email {
        return Ok(None);
    }
    let Some(email) = sign_in.claims.verified_email() else {
        return Ok(None);
    };
    let Some(user) = store.user_by_email(email).await? else {
        return Ok(None);
    };
    match store.link_sso(id, &user.record.username).await {
        Ok(()) => Ok(Some(user)),
        // Another replica linked it a moment ago: the link decides.
        Err(StoreError::Conflict(_)) => Ok(linked(store, id).await?),
        Err(e) => Err(e.into()),
    }
}

async fn create(
    store: &Store,
    directory: &Directory,
    p: &ProviderSettings,
    sign_in: &ProviderSignIn,
    id: &SsoIdentity,
    role: &str,
) -> Result<StoredUser, SsoAccountError> {
    let claims = &sign_in.claims;
    let username = claims
        .username(p, |n| check_username(n).is_ok())
        .ok_or(SsoAccountError::NoUsableName)?;
    if directory.user(&username).is_some() {
        return Err(SsoAccountError::NameTaken(username));
    }
    // Only a verified address, and never one another account holds.
    let email = match claims.verified_email() {
        Some(e) if store.user_by_email(e).await?.is_none() => Some(e),
        _ => None,
    };
    let account = NewAccount::new(&username, email)
        .or_else(|_| NewAccount::new(&username, None))
        .map_err(|_| SsoAccountError::NoUsableName)?
        .display_name(claims.name().map(str::to_owned))
        .role(role);
    match store.create_sso_user(account.without_password(), id).await {
        Ok(user) => Ok(user),
        Err(StoreError::Conflict(_)) => match linked(store, id).await? {
            // The same person, signing in twice at once on two replicas.
            Some(user) => Ok(user),
            None => Err(SsoAccountError::NameTaken(username)),
        },
        Err(e) => Err(e.into()),
    }
}
