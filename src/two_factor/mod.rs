//! Second factors: TOTP (RFC 6238: SHA-1, 6 digits, 30 s, as authenticator
//! apps expect) with single-use recovery codes.
//!
//! Owns enrolment (a secret, its `otpauth://` URL and QR code, active only
//! once confirmed with a code), verification (one step of clock drift either
//! way; a step accepted once is never accepted again), removal, and the
//! policy of who owes a second factor. Pages and the JSON API call it; the
//! store keeps the encrypted secrets ([`cipher`]), re-sealed when the
//! encryption key is rotated.

pub mod cipher;

use crate::directory::UserRecord;
use crate::identity::UserKind;
use crate::store::{PendingPurpose, Store, StoreError};
use cipher::SecretCipher;
use std::collections::BTreeSet;
use std::time::Duration;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

/// `two_factor:` as validated.
#[derive(Debug, Clone)]
pub struct TwoFactorSettings {
    /// Shown by authenticator apps beside the account name.
    pub issuer: String,
    /// Regular users with one of these roles must enrol before they get a session.
    pub required_for_roles: BTreeSet<String>,
    /// Protects secrets at rest; without it nobody can enrol.
    pub cipher: Option<SecretCipher>,
    /// How long a sign-in may wait between password and code.
    pub pending_ttl: Duration,
}

impl Default for TwoFactorSettings {
    fn default() -> Self {
        TwoFactorSettings {
            issuer: "Gatehouse".into(),
            required_for_roles: BTreeSet::new(),
            cipher: None,
            pending_ttl: Duration::from_secs(300),
        }
    }
}

/// Why a second-factor operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwoFactorError {
    #[error(
        "two-factor authentication is not set up on this server (`two_factor.encryption_key`)"
    )]
    NotConfigured,
    #[error("machine accounts do not use two-factor authentication")]
    NotForMachines,
    #[error("two-factor authentication is already enabled")]
    AlreadyEnabled,
    #[error("no enrolment is in progress; start one first")]
    NotEnrolling,
    #[error("two-factor authentication is not enabled")]
    NotEnabled,
    #[error("the code is not valid")]
    InvalidCode,
    /// The authenticator's code was right, but its time step was used
    /// already (a replay, or the same code typed twice).
    #[error("that code was already used; wait for the next one")]
    CodeAlreadyUsed,
    #[error("the stored secret cannot be decrypted (was `two_factor.encryption_key` changed?)")]
    Undecryptable,
    #[error("the store is unavailable")]
    Unavailable,
}

impl From<StoreError> for TwoFactorError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "second-factor store operation failed");
        TwoFactorError::Unavailable
    }
}

/// What an authenticator app needs to enrol.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// Base32, for typing in by hand.
    pub secret: String,
    pub otpauth_url: String,
    /// The URL as a QR code, an `<svg>` element.
    pub qr_svg: String,
}

/// Recovery codes handed out at confirmation.
pub const RECOVERY_CODES: usize = 10;
const STEP_SECS: u64 = 30;
const SECRET_BYTES: usize = 20;

/// Enrols, verifies and removes second factors.
pub struct TwoFactor {
    settings: TwoFactorSettings,
    store: Option<Store>,
}

impl TwoFactor {
    pub fn new(settings: TwoFactorSettings, store: Option<Store>) -> Self {
        TwoFactor { settings, store }
    }

    pub fn pending_ttl(&self) -> Duration {
        self.settings.pending_ttl
    }

    fn parts(&self) -> Result<(&Store, &SecretCipher), TwoFactorError> {
        match (&self.store, &self.settings.cipher) {
            (Some(store), Some(cipher)) => Ok((store, cipher)),
            _ => Err(TwoFactorError::NotConfigured),
        }
    }

    /// Must this user have a second factor (a person whose role requires one)?
    pub fn required_for(&self, user: &UserRecord) -> bool {
        user.kind == UserKind::User && self.role_requires(&user.role)
    }

    /// Is `role` one of `two_factor.required_for_roles`?
    pub fn role_requires(&self, role: &str) -> bool {
        self.settings.required_for_roles.contains(role)
    }

    /// Can anyone enrol here (a store and an encryption key)?
    pub fn is_available(&self) -> bool {
        self.parts().is_ok()
    }

    /// Has the user a confirmed second factor? Asks the store even when no
    /// key is configured, so a removed key fails closed instead of open.
    pub async fn is_enabled(&self, username: &str) -> Result<bool, TwoFactorError> {
        let Some(store) = &self.store else {
            return Ok(false);
        };
        Ok(store
            .second_factor(username)
            .await?
            .is_some_and(|f| f.confirmed))
    }

    /// What a sign-in of `user` still owes once the password is right.
    pub async fn owed(&self, user: &UserRecord) -> Result<Option<PendingPurpose>, TwoFactorError> {
        if user.kind == UserKind::Api {
            return Ok(None);
        }
        if self.is_enabled(&user.username).await? {
            return Ok(Some(PendingPurpose::Verify));
        }
        if self.required_for(user) {
            return Ok(Some(PendingPurpose::Enrol));
        }
        Ok(None)
    }

    /// May `user` authenticate with a password alone (HTTP Basic)? Not a
    /// person who has, or must have, a second factor.
    pub async fn password_suffices(&self, user: &UserRecord) -> Result<bool, TwoFactorError> {
        Ok(self.owed(user).await?.is_none())
    }

    fn totp(&self, username: &str, secret: Vec<u8>) -> Result<TOTP, TwoFactorError> {
        TOTP::new(
            Algorithm::SHA1,
            6,
            1,
            STEP_SECS,
            secret,
            Some(self.settings.issuer.clone()),
            username.to_owned(),
        )
        .map_err(|e| {
            tracing::error!(error = ?e, "TOTP parameters refused");
            TwoFactorError::Undecryptable
        })
    }

    fn enrolment(&self, totp: &TOTP) -> Enrolment {
        let otpauth_url = totp.get_url();
        Enrolment {
            secret: totp.get_secret_base32(),
            qr_svg: qr_svg(&otpauth_url),
            otpauth_url,
        }
    }

    /// Start enrolling `user` (or show the enrolment already started): the
    /// secret is stored encrypted and counts only once confirmed.
    pub async fn begin(&self, user: &UserRecord) -> Result<Enrolment, TwoFactorError> {
        if user.kind == UserKind::Api {
            return Err(TwoFactorError::NotForMachines);
        }
        let (store, cipher) = self.parts()?;
        match store.second_factor(&user.username).await? {
            Some(f) if f.confirmed => return Err(TwoFactorError::AlreadyEnabled),
            Some(f) => {
                if let Ok(secret) = self.open(store, cipher, &user.username, &f.secret).await {
                    return Ok(self.enrolment(&self.totp(&user.username, secret)?));
                }
                // Sealed with a key no longer configured: start over.
            }
            None => {}
        }
        use rand::RngCore;
        let mut secret = vec![0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let totp = self.totp(&user.username, secret.clone())?;
        match store
            .begin_second_factor(&user.username, &cipher.seal(&user.username, &secret))
            .await
        {
            Ok(()) => Ok(self.enrolment(&totp)),
            Err(StoreError::Conflict(_)) => Err(TwoFactorError::AlreadyEnabled),
            Err(e) => Err(e.into()),
        }
    }

    /// Confirm the enrolment in progress with a current code; answers the
    /// recovery codes (shown once, stored hashed).
    pub async fn confirm(&self, username: &str, code: &str) -> Result<Vec<String>, TwoFactorError> {
        let (store, cipher) = self.parts()?;
        let stored = match store.second_factor(username).await? {
            Some(f) if f.confirmed => return Err(TwoFactorError::AlreadyEnabled),
            Some(f) => f,
            None => return Err(TwoFactorError::NotEnrolling),
        };
        let secret = self.open(store, cipher, username, &stored.secret).await?;
        let totp = self.totp(username, secret)?;
        let step = matching_step(&totp, code, unix_secs()).ok_or(TwoFactorError::InvalidCode)?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let hashes = codes
            .iter()
            .map(|c| recovery_code_hash(username, &normalize_recovery_code(c)))
            .collect();
        match store
            .confirm_second_factor(username, step as i64, hashes)
            .await
        {
            Ok(()) => {
                tracing::info!(user = %username, "second factor enabled");
                Ok(codes)
            }
            // Confirmed meanwhile, or this very step was used: try again.
            Err(StoreError::NotFound(_)) => Err(TwoFactorError::InvalidCode),
            Err(e) => Err(e.into()),
        }
    }

    /// Check a code from the authenticator, or a recovery code, and use it
    /// up. A right authenticator code whose time step was used already is
    /// `CodeAlreadyUsed`; anything else that does not verify is
    /// `InvalidCode`, whatever the reason (wrong, spent, no second factor).
    pub async fn verify(&self, username: &str, code: &str) -> Result<(), TwoFactorError> {
        let (store, cipher) = self.parts()?;
        let code = code.trim();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            let stored = match store.second_factor(username).await? {
                Some(f) if f.confirmed => f,
                _ => return Err(TwoFactorError::InvalidCode),
            };
            let secret = self.open(store, cipher, username, &stored.secret).await?;
            let totp = self.totp(username, secret)?;
            let step =
                matching_step(&totp, code, unix_secs()).ok_or(TwoFactorError::InvalidCode)?;
            return match store.use_time_step(username, step as i64).await? {
                true => Ok(()),
                false => Err(TwoFactorError::CodeAlreadyUsed),
            };
        }
        let normalized = normalize_recovery_code(code);
        if normalized.len() != RECOVERY_CODE_CHARS {
            return Err(TwoFactorError::InvalidCode);
        }
        match store
            .use_recovery_code(username, &recovery_code_hash(username, &normalized))
            .await?
        {
            true => {
                tracing::info!(user = %username, "recovery code used");
                Ok(())
            }
            false => Err(TwoFactorError::InvalidCode),
        }
    }

    /// Decrypt a stored secret; one sealed with the previous key is sealed
    /// again with the current key on the way.
    async fn open(
        &self,
        store: &Store,
        cipher: &SecretCipher,
        username: &str,
        sealed: &str,
    ) -> Result<Vec<u8>, TwoFactorError> {
        let opened = cipher.open(username, sealed).map_err(|_| {
            tracing::error!(user = %username, "a second-factor secret does not decrypt with the configured key(s)");
            TwoFactorError::Undecryptable
        })?;
        if opened.stale {
            let fresh = cipher.seal(username, &opened.secret);
            store.reseal_second_factor(username, sealed, &fresh).await?;
        }
        Ok(opened.secret)
    }

    /// During a key rotation (`previous_encryption_key` set), seal every
    /// secret the previous key sealed with the current one, so the previous
    /// key can be dropped after this start. Answers how many were resealed.
    pub async fn reseal_all(&self) -> Result<usize, TwoFactorError> {
        let (store, cipher) = match self.parts() {
            Ok(parts) if parts.1.rotating() => parts,
            _ => return Ok(0),
        };
        let mut resealed = 0;
        for (username, sealed) in store.sealed_second_factors().await? {
            match cipher.open(&username, &sealed) {
                Ok(opened) if opened.stale => {
                    let fresh = cipher.seal(&username, &opened.secret);
                    if store
                        .reseal_second_factor(&username, &sealed, &fresh)
                        .await?
                    {
                        resealed += 1;
                    }
                }
                Ok(_) => {}
                Err(_) => tracing::warn!(
                    user = %username,
                    "second-factor secret opens with neither key; `gatehouse user reset-2fa` it"
                ),
            }
        }
        Ok(resealed)
    }

    /// Remove the user's second factor (the caller has checked who asks).
    pub async fn remove(&self, username: &str) -> Result<(), TwoFactorError> {
        let store = self.store.as_ref().ok_or(TwoFactorError::NotEnabled)?;
        match store.delete_second_factor(username).await {
            Ok(()) => {
                tracing::info!(user = %username, "second factor removed");
                Ok(())
            }
            Err(StoreError::NotFound(_)) => Err(TwoFactorError::NotEnabled),
            Err(e) => Err(e.into()),
        }
    }

    /// Unused recovery codes of the user.
    pub async fn recovery_codes_left(&self, username: &str) -> Result<i64, TwoFactorError> {
        let store = self.store.as_ref().ok_or(TwoFactorError::NotEnabled)?;
        Ok(store.recovery_codes_left(username).await?)
    }
}

fn unix_secs() -> u64 {
    crate::store::unix_now().max(0) as u64
}

/// The time step (of now, one before, one after) whose code is `code`,
/// compared in constant time.
fn matching_step(totp: &TOTP, code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 {
        return None;
    }
    let current = now / STEP_SECS;
    let mut found = None;
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = totp.generate(step * STEP_SECS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// Crockford's base32 alphabet, lower case (no i, l, o, u).
const RECOVERY_ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
const RECOVERY_CODE_CHARS: usize = 16;

/// A fresh recovery code: 80 random bits as `xxxx-xxxx-xxxx-xxxx`.
fn new_recovery_code() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    let mut out = String::with_capacity(19);
    for i in 0..RECOVERY_CODE_CHARS {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(RECOVERY_ALPHABET[rng.gen_range(0..RECOVERY_ALPHABET.len())] as char);
    }
    out
}

/// What the store keeps of a recovery code: SHA-256 over the user name and
/// the code, hex. Unkeyed on purpose, so a rotated encryption key does not
/// void recovery codes; 80 random bits are far beyond guessing offline.
fn recovery_code_hash(username: &str, code: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((username.len() as u64).to_le_bytes());
    h.update(username.as_bytes());
    h.update(code.as_bytes());
    hex::encode(h.finalize())
}

/// A recovery code as typed → as hashed: lower case, no dashes or spaces.
fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The `otpauth://` URL as an inline SVG QR code.
fn qr_svg(url: &str) -> String {
    use qrcode::render::svg;
    match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build();
            // Inline in HTML: drop the XML declaration.
            match svg.find("<svg") {
                Some(start) => svg[start..].to_owned(),
                None => svg,
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "QR code not rendered");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totp() -> TOTP {
        TOTP::new(
            Algorithm::SHA1,
            6,
            1,
            30,
            b"12345678901234567890".to_vec(),
            Some("Gatehouse".into()),
            "alice".into(),
        )
        .unwrap()
    }

    #[test]
    fn rfc6238_vector_and_one_step_of_drift() {
        let t = totp();
        // RFC 6238 appendix B, SHA-1, T = 59 s → 94287082 (8 digits) → 287082.
        assert_eq!(t.generate(59), "287082");
        let now = 59; // step 1
        assert_eq!(matching_step(&t, "287082", now), Some(1));
        assert_eq!(matching_step(&t, &t.generate(0), now), Some(0)); // one behind
        assert_eq!(matching_step(&t, &t.generate(60), now), Some(2)); // one ahead
        assert_eq!(matching_step(&t, &t.generate(90), now), None); // two ahead
        assert_eq!(matching_step(&t, &t.generate(600), 700), None); // long gone
        assert_eq!(matching_step(&t, "", now), None);
        assert_eq!(matching_step(&t, "28708", now), None);
        assert_eq!(matching_step(&t, "2870822", now), None);
    }

    #[test]
    fn otpauth_url_names_issuer_and_account() {
        let url = totp().get_url();
        assert!(url.starts_with("otpauth://totp/Gatehouse:alice?"), "{url}");
        assert!(
            url.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{url}"
        );
        assert!(url.contains("issuer=Gatehouse"), "{url}");
        let svg = qr_svg(&url);
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
    }

    #[test]
    fn recovery_codes_are_random_and_forgiving_to_type() {
        let a = new_recovery_code();
        let b = new_recovery_code();
        assert_ne!(a, b);
        assert_eq!(a.len(), 19);
        assert_eq!(a.matches('-').count(), 3);
        assert_eq!(normalize_recovery_code(&a).len(), RECOVERY_CODE_CHARS);
        assert_eq!(
            normalize_recovery_code(" AB12-cd34 EF56-gh78 "),
            "ab12cd34ef56gh78"
        );
        let h = recovery_code_hash("alice", "ab12cd34ef56gh78");
        assert_eq!(h.len(), 64);
        assert_ne!(h, recovery_code_hash("bob", "ab12cd34ef56gh78"));
        assert_ne!(h, recovery_code_hash("alice", "ab12cd34ef56gh79"));
    }
}
