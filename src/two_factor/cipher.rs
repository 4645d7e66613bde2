//! The key that protects TOTP secrets at rest, derived from
//! `two_factor.encryption_key`: XChaCha20-Poly1305 with the user name as
//! associated data, so a secret copied to another user's row does not
//! decrypt. During a key rotation `previous_encryption_key` still opens what
//! the old key sealed, so it can be sealed again with the new one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Shortest `two_factor.encryption_key` accepted.
pub const MIN_KEY_CHARS: usize = 32;

const VERSION: &str = "v1.";

/// Encrypts TOTP secrets (and decrypts those of the previous key).
#[derive(Clone)]
pub struct SecretCipher {
    aead: XChaCha20Poly1305,
    previous: Option<XChaCha20Poly1305>,
}

/// A secret as opened.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    pub secret: Vec<u8>,
    /// Sealed with the previous key: seal it again with the current one.
    pub stale: bool,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCipher(redacted)")
    }
}

/// The stored value cannot be decrypted with this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored secret does not decrypt with this encryption key")]
pub struct Undecryptable;

impl SecretCipher {
    /// Derive the keys from the configured passphrases.
    pub fn new(passphrase: &str, previous: Option<&str>) -> Self {
        SecretCipher {
            aead: aead(passphrase),
            previous: previous.map(aead),
        }
    }

    /// Is a previous key configured (a rotation in progress)?
    pub fn rotating(&self) -> bool {
        self.previous.is_some()
    }

    /// `v1.` + base64url(nonce ‖ ciphertext), bound to `username`.
    pub fn seal(&self, username: &str, secret: &[u8]) -> String {
        use rand::RngCore;
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: secret,
            aad: username.as_bytes(),
        };
        // Encryption fails only for messages beyond 256 GiB.
        let sealed = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{VERSION}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// The secret `seal` was given, if this key (or the previous one)
    /// sealed it for `username`.
    pub fn open(&self, username: &str, stored: &str) -> Result<Opened, Undecryptable> {
        let body = stored.strip_prefix(VERSION).ok_or(Undecryptable)?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| Undecryptable)?;
        if raw.len() < 24 {
            return Err(Undecryptable);
        }
        let (nonce, sealed) = raw.split_at(24);
        let try_with = |aead: &XChaCha20Poly1305| {
            let payload = Payload {
                msg: sealed,
                aad: username.as_bytes(),
            };
            aead.decrypt(XNonce::from_slice(nonce), payload).ok()
        };
        if let Some(secret) = try_with(&self.aead) {
            return Ok(Opened {
                secret,
                stale: false,
            });
        }
        match self.previous.as_ref().and_then(try_with) {
            Some(secret) => Ok(Opened {
                secret,
                stale: true,
            }),
            None => Err(Undecryptable),
        }
    }
}

fn aead(passphrase: &str) -> XChaCha20Poly1305 {
    let key = blake3::derive_key(
        "gatehouse 2026-11 two-factor secret encryption",
        passphrase.as_bytes(),
    );
    XChaCha20Poly1305::new(&key.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a passphrase of at least thirty-two characters";
    const B: &str = "another passphrase of at least thirty-two chars";

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_and_key() {
        let c = SecretCipher::new(A, None);
        let sealed = c.seal("alice", b"0123456789abcdefghij");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("0123456789"), "stored in clear: {sealed}");
        let opened = c.open("alice", &sealed).unwrap();
        assert_eq!(opened.secret, b"0123456789abcdefghij");
        assert!(!opened.stale);
        // Copied to another user's row, or read with another key: refused.
        assert_eq!(c.open("bob", &sealed), Err(Undecryptable));
        assert_eq!(
            SecretCipher::new(B, None).open("alice", &sealed),
            Err(Undecryptable)
        );
        // Two seals of one secret differ (fresh nonce each time).
        assert_ne!(sealed, c.seal("alice", b"0123456789abcdefghij"));
        // Garbage is an error, not a panic.
        for junk in ["", "v1.", "v1.!!!", "v1.AAAA", "v2.AAAA", "plain"] {
            assert_eq!(c.open("alice", junk), Err(Undecryptable), "{junk:?}");
        }
    }

    #[test]
    fn the_previous_key_opens_old_secrets_and_marks_them_stale() {
        let old = SecretCipher::new(A, None).seal("alice", b"secret");
        let rotating = SecretCipher::new(B, Some(A));
        assert!(rotating.rotating());
        let opened = rotating.open("alice", &old).unwrap();
        assert_eq!(
            (opened.secret.as_slice(), opened.stale),
            (&b"secret"[..], true)
        );
        let fresh = rotating.seal("alice", b"secret");
        assert!(!rotating.open("alice", &fresh).unwrap().stale);
        // The new key alone opens the re-sealed secret, not the old one.
        let done = SecretCipher::new(B, None);
        assert!(!done.rotating());
        assert!(done.open("alice", &fresh).is_ok());
        assert_eq!(done.open("alice", &old), Err(Undecryptable));
    }
}
