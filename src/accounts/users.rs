//! Users: what a user's name, email and password must be (the password
//! rule is the configured [`PasswordPolicy`]), and the checked
//! [`NewAccount`] that becomes the store's [`NewUser`] once its password is
//! hashed. The setup page and `gatehouse user add` both create users here;
//! `gatehouse user set-password`, the account page and `api/me/password`
//! change a password through [`hash_new_password`].

use crate::authn::password::hash_password;
use crate::directory::UserStatus;
use crate::identity::UserKind;
use crate::store::NewUser;
use std::time::Duration;

/// Longest password accepted, in bytes (what Argon2 is asked to hash).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// `passwords:`: what a new password must be — at least `min_length`
/// characters, and at most [`MAX_PASSWORD_LEN`] bytes — and how long a
/// mailed reset link lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Shortest password accepted, in characters.
    pub min_length: usize,
    pub reset_ttl: Duration,
}

impl PasswordPolicy {
    /// The shortest `min_length` a configuration may ask for, and the default.
    pub const LEAST_MIN_LENGTH: usize = 8;

    /// The rule in words, for forms and error messages.
    pub fn rule(&self) -> String {
        format!(
            "at least {} characters (and at most {MAX_PASSWORD_LEN} bytes)",
            self.min_length
        )
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: Self::LEAST_MIN_LENGTH,
            reset_ttl: Duration::from_secs(3600),
        }
    }
}

/// Why an account cannot be created or changed as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("a user name is 1-128 letters, digits, `_`, `-`, `.` or `@`")]
    InvalidName,
    #[error("an email address has an `@` and no spaces")]
    InvalidEmail,
    #[error("a password needs at least {min} characters")]
    PasswordTooShort { min: usize },
    #[error("a password has at most {max} bytes")]
    PasswordTooLong { max: usize },
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Names of users, roles, keys: 1-128 letters, digits, `_-.@`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'))
}

/// A user name: see [`valid_name`].
pub fn check_username(username: &str) -> Result<(), AccountError> {
    if valid_name(username) {
        Ok(())
    } else {
        Err(AccountError::InvalidName)
    }
}

/// An email address: none (empty) is fine; otherwise it has an `@` and no
/// whitespace. (Whether mail reaches it is not checked.)
pub fn check_email(email: &str) -> Result<(), AccountError> {
    if email.is_empty() || (email.contains('@') && !email.chars().any(char::is_whitespace)) {
        Ok(())
    } else {
        Err(AccountError::InvalidEmail)
    }
}

/// A password: at least `policy.min_length` characters, at most
/// [`MAX_PASSWORD_LEN`] bytes.
pub fn check_password(policy: &PasswordPolicy, password: &str) -> Result<(), AccountError> {
    if password.chars().count() < policy.min_length {
        Err(AccountError::PasswordTooShort {
            min: policy.min_length,
        })
    } else if password.len() > MAX_PASSWORD_LEN {
        Err(AccountError::PasswordTooLong {
            max: MAX_PASSWORD_LEN,
        })
    } else {
        Ok(())
    }
}

/// Check a new password and hash it (Argon2: slow, keep it off async
/// worker threads).
pub fn hash_new_password(policy: &PasswordPolicy, password: &str) -> Result<String, AccountError> {
    check_password(policy, password)?;
    hash_password(password).map_err(AccountError::Hash)
}

/// A user about to be stored, its name and email checked: a person
/// (`user`) with role `user` unless told otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    username: String,
    email: Option<String>,
    name: Option<String>,
    kind: UserKind,
    role: String,
    status: UserStatus,
}

impl NewAccount {
    /// Trims `username` and `email` (an empty email is none), then checks
    /// them.
    pub fn new(username: &str, email: Option<&str>) -> Result<NewAccount, AccountError> {
        let username = username.trim();
        check_username(username)?;
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        if let Some(email) = email {
            check_email(email)?;
        }
        Ok(NewAccount {
            username: username.to_owned(),
            email: email.map(str::to_owned),
            name: None,
            kind: UserKind::User,
            role: "user".to_owned(),
            status: UserStatus::Enabled,
        })
    }

    /// The display name (free text).
    pub fn display_name(mut self, name: Option<String>) -> Self {
        self.name = name;
        self
    }

    pub fn kind(mut self, kind: UserKind) -> Self {
        self.kind = kind;
        self
    }

    /// Enabled (the default) or disabled.
    pub fn status(mut self, status: UserStatus) -> Self {
        self.status = status;
        self
    }

    /// The role (the caller knows which roles exist).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = role.into();
        self
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// The record to store for an account that signs in elsewhere (single
    /// sign-on): no password, so no password sign-in.
    pub fn without_password(self) -> NewUser {
        NewUser {
            username: self.username,
            email: self.email,
            name: self.name,
            kind: self.kind,
            role: self.role,
            password_hash: None,
            status: self.status,
        }
    }

    /// Check `password` against `policy` and hash it into the record to
    /// store (slow: see [`hash_new_password`]).
    pub fn with_password(
        self,
        policy: &PasswordPolicy,
        password: &str,
    ) -> Result<NewUser, AccountError> {
        let hash = hash_new_password(policy, password)?;
        Ok(NewUser {
            username: self.username,
            email: self.email,
            name: self.name,
            kind: self.kind,
            role: self.role,
            password_hash: Some(hash),
            status: self.status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::password::verify_password;

    /// Each case: an input and whether `check` accepts it (else `refusal`).
    fn table(
        check: fn(&str) -> Result<(), AccountError>,
        refusal: AccountError,
        cases: &[(&str, bool)],
    ) {
        for &(input, ok) in cases {
            let want = if ok { Ok(()) } else { Err(refusal.clone()) };
            assert_eq!(check(input), want, "{input:?}");
        }
    }

    #[test]
    fn names() {
        let long = "a".repeat(128);
        let too_long = "a".repeat(129);
        let cases = [
            ("alice", true),
            ("a", true),
            ("Bob_2-x.y@example", true),
            (long.as_str(), true),
            ("", false),
            (too_long.as_str(), false),
            ("bob smith", false),
            (" bob", false),
            ("bob/x", false),
            ("bob:x", false),
            ("zoë", false),
        ];
        for (name, ok) in cases {
            assert_eq!(valid_name(name), ok, "{name:?}");
        }
        table(check_username, AccountError::InvalidName, &cases);
    }

    #[test]
    fn emails() {
        let cases = [
            ("", true),
            ("amy@example.com", true),
            ("a@b", true),
            ("@", true),
            ("amy.example.com", false),
            ("amy @example.com", false),
            ("amy@example.com\t", false),
            ("amy@exam\nple.com", false),
        ];
        table(check_email, AccountError::InvalidEmail, &cases);
    }

    #[test]
    fn passwords() {
        let short = Err(AccountError::PasswordTooShort { min: 8 });
        let long = Err(AccountError::PasswordTooLong { max: 1024 });
        for (password, want) in [
            (String::new(), short.clone()),
            ("1234567".to_owned(), short.clone()),
            ("12345678".to_owned(), Ok(())),
            // Characters are counted, not bytes: seven two-byte ones are short.
            ("ééééééé".to_owned(), short.clone()),
            ("éééééééé".to_owned(), Ok(())),
            ("a".repeat(1024), Ok(())),
            ("a".repeat(1025), long.clone()),
            // ...but the upper bound is in bytes: 513 characters, 1026 bytes.
            ("é".repeat(513), long.clone()),
        ] {
            assert_eq!(
                check_password(&PasswordPolicy::default(), &password),
                want,
                "{password:?}"
            );
        }
        assert_eq!(
            AccountError::PasswordTooShort {
                min: PasswordPolicy::default().min_length
            }
            .to_string(),
            "a password needs at least 8 characters"
        );
        // A configured minimum counts characters too; the maximum stays.
        let twelve = PasswordPolicy {
            min_length: 12,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            check_password(&twelve, "12345678901"),
            Err(AccountError::PasswordTooShort { min: 12 })
        );
        assert_eq!(check_password(&twelve, "123456789012"), Ok(()));
        assert_eq!(check_password(&twelve, &"a".repeat(1025)), long);
        assert_eq!(
            twelve.rule(),
            "at least 12 characters (and at most 1024 bytes)"
        );
    }

    #[test]
    fn new_account_trims_and_checks() {
        let a = NewAccount::new("  amy ", Some(" amy@example.com ")).unwrap();
        assert_eq!(a.username(), "amy");
        assert_eq!(a.email(), Some("amy@example.com"));
        for email in [None, Some(""), Some("   ")] {
            assert_eq!(NewAccount::new("amy", email).unwrap().email(), None);
        }
        assert_eq!(
            NewAccount::new("", None).unwrap_err(),
            AccountError::InvalidName
        );
        assert_eq!(
            NewAccount::new("amy smith", None).unwrap_err(),
            AccountError::InvalidName
        );
        assert_eq!(
            NewAccount::new("amy", Some("no-at-sign")).unwrap_err(),
            AccountError::InvalidEmail
        );
    }

    #[test]
    fn with_password_checks_then_hashes() {
        let account = NewAccount::new("bot", Some("bot@example.com"))
            .unwrap()
            .display_name(Some("The Bot".into()))
            .kind(UserKind::Api)
            .role("staff");
        let policy = PasswordPolicy::default();
        assert_eq!(
            account.clone().with_password(&policy, "short").unwrap_err(),
            AccountError::PasswordTooShort { min: 8 }
        );
        let user = account.with_password(&policy, "long enough").unwrap();
        assert_eq!(user.username, "bot");
        assert_eq!(user.email.as_deref(), Some("bot@example.com"));
        assert_eq!(user.name.as_deref(), Some("The Bot"));
        assert_eq!(user.kind, UserKind::Api);
        assert_eq!(user.role, "staff");
        let hash = user.password_hash.unwrap();
        assert!(verify_password("long enough", &hash));
        assert!(!verify_password("long enougH", &hash));

        let plain = NewAccount::new("amy", None)
            .unwrap()
            .with_password(&policy, "12345678")
            .unwrap();
        assert_eq!((plain.kind, plain.role.as_str()), (UserKind::User, "user"));
        assert_eq!(plain.name, None);
    }
}
