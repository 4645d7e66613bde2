//! Who may create their own account, and how: the registration mode, the
//! first-user rule (when no enabled user exists, the first registration
//! becomes an active admin in any mode: the setup rule, kept here), and
//! invitations that open a closed registration. Also the mailed links'
//! tokens: 256 random bits, only their hash stored.

use crate::accounts::users::check_email;
use crate::directory::Roles;
use crate::mail::MailTemplates;
use crate::store::{unix_now, AccountToken, Store, TokenPurpose};
use std::time::Duration;

/// `registration.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationMode {
    /// Nobody registers (invitations still do).
    #[default]
    Closed,
    /// Anyone registers and signs in at once.
    Open,
    /// Anyone registers with an e-mail address, and signs in once the
    /// mailed activation link is followed.
    Invite,
}

impl RegistrationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationMode::Closed => "closed",
            RegistrationMode::Open => "open",
            RegistrationMode::Invite => "invite",
        }
    }

    /// Registration is possible without an invitation.
    pub fn is_enabled(self) -> bool {
        self != RegistrationMode::Closed
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "closed" => Some(RegistrationMode::Closed),
            "open" => Some(RegistrationMode::Open),
            "invite" => Some(RegistrationMode::Invite),
            _ => None,
        }
    }
}

/// `registration:`, validated.
#[derive(Debug, Clone)]
pub struct RegistrationSettings {
    pub mode: RegistrationMode,
    pub default_role: String,
    pub activation_ttl: Duration,
    /// How long an invitation link works (`gatehouse invite create --ttl`
    /// and the API may say otherwise).
    pub invitation_ttl: Duration,
}

impl Default for RegistrationSettings {
    fn default() -> Self {
        RegistrationSettings {
            mode: RegistrationMode::Closed,
            default_role: "user".into(),
            activation_ttl: Duration::from_secs(24 * 3600),
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What a registration request leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Nobody enabled exists: an active admin, in any mode.
    FirstAdmin,
    /// An invitation: active at once, its role, its (verified) address.
    Invited,
    /// Open registration: active at once, the default role.
    Active,
    /// Invite mode: the account waits for its activation link.
    PendingActivation,
    /// Closed, and no invitation.
    Refused,
}

/// The registration rule, in one place.
pub fn admission(mode: RegistrationMode, nobody_enabled: bool, invited: bool) -> Admission {
    if nobody_enabled {
        return Admission::FirstAdmin;
    }
    if invited {
        return Admission::Invited;
    }
    match mode {
        RegistrationMode::Closed => Admission::Refused,
        RegistrationMode::Open => Admission::Active,
        RegistrationMode::Invite => Admission::PendingActivation,
    }
}

/// A mailed link's token: 256 random bits (base64url), the hash the store
/// keeps, and a short public id.
pub struct LinkToken {
    pub token: String,
    pub hash: String,
    pub id: String,
}

impl LinkToken {
    pub fn new() -> Self {
        let token = crate::session::random_id();
        let hash = crate::session::id_hash(&token);
        let id = crate::session::random_id()[..16].to_owned();
        LinkToken { token, hash, id }
    }

    /// The hash of a token presented back.
    pub fn hash_of(token: &str) -> String {
        crate::session::id_hash(token.trim())
    }
}

impl Default for LinkToken {
    fn default() -> Self {
        Self::new()
    }
}

/// Why an invitation was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvitationError {
    #[error("{0}")]
    Invalid(String),
    #[error("the invitation cannot be kept or mailed right now")]
    Unavailable,
}

/// An invitation as asked: who, with which role, for how long, by whom.
pub struct NewInvitation<'a> {
    pub email: &'a str,
    pub role: &'a str,
    pub ttl: Duration,
    pub created_by: &'a str,
}

/// Create an invitation and, in the same transaction, the mail with its
/// link (`{register_url}?invitation=…`). Answers the stored invitation and
/// the link (for the admin to pass on by hand too). One home for the API
/// and `gatehouse invite create`.
pub async fn create_invitation(
    store: &Store,
    mail: &MailTemplates,
    roles: &Roles,
    register_url: &str,
    asked: NewInvitation<'_>,
) -> Result<(AccountToken, String), InvitationError> {
    let email = asked.email.trim();
    if email.is_empty() || check_email(email).is_err() {
        return Err(InvitationError::Invalid(
            "`email` must be an e-mail address".into(),
        ));
    }
    if !roles.contains(asked.role) {
        return Err(InvitationError::Invalid(format!(
            "role `{}` is not defined",
            asked.role
        )));
    }
    if asked.ttl.as_secs() < 60 {
        return Err(InvitationError::Invalid(
            "an invitation lives at least a minute".into(),
        ));
    }
    let t = LinkToken::new();
    let link = format!("{register_url}?invitation={}", t.token);
    let now = unix_now();
    let context = serde_json::json!({
        "link": link,
        "role": asked.role,
        "ttl_days": asked.ttl.as_secs().div_ceil(86_400),
        "ttl": humantime::format_duration(asked.ttl).to_string(),
    });
    let outgoing = mail
        .render("invitation", &context)
        .map_err(|e| {
            tracing::error!(error = %e, "the invitation mail cannot be rendered");
            InvitationError::Unavailable
        })?
        .to_outgoing(email);
    let token = AccountToken {
        token_hash: t.hash,
        id: t.id,
        purpose: TokenPurpose::Invitation,
        username: None,
        email: Some(email.to_owned()),
        role: Some(asked.role.to_owned()),
        password_hash: None,
        created_by: Some(asked.created_by.to_owned()),
        created_at: now,
        expires_at: now + asked.ttl.as_secs() as i64,
        used_at: None,
    };
    store
        .create_account_token(token.clone(), Some(outgoing))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "an invitation cannot be kept");
            InvitationError::Unavailable
        })?;
    store.wake_outbox();
    Ok((token, link))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Admission::*;
    use RegistrationMode::*;

    #[test]
    fn who_gets_in_and_how() {
        let cases = [
            // mode, nobody enabled, invited → admission
            (Closed, true, false, FirstAdmin),
            (Invite, true, false, FirstAdmin),
            (Open, true, true, FirstAdmin),
            (Closed, false, false, Refused),
            (Closed, false, true, Invited),
            (Open, false, false, Active),
            (Open, false, true, Invited),
            (Invite, false, false, PendingActivation),
            (Invite, false, true, Invited),
        ];
        for (mode, nobody, invited, want) in cases {
            assert_eq!(
                admission(mode, nobody, invited),
                want,
                "{mode:?} {nobody} {invited}"
            );
        }
    }

    #[test]
    fn link_tokens_are_fresh_and_only_hashes_are_kept() {
        let (a, b) = (LinkToken::new(), LinkToken::new());
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 43, "256 bits");
        assert_eq!(LinkToken::hash_of(&a.token), a.hash);
        assert_ne!(a.hash, a.token);
        assert_eq!(a.id.len(), 16);
    }
}
