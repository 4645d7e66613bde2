//! The keys that protect second factors at rest, both derived from
//! `two_factor.encryption_key`: one encrypts TOTP secrets
//! (XChaCha20-Poly1305, the user name as associated data, so a secret copied
//! to another user's row does not decrypt), one hashes recovery codes
//! (keyed BLAKE3, so a copy of the database alone cannot test guesses).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Shortest `two_factor.encryption_key` accepted.
pub const MIN_KEY_CHARS: usize = 32;

const VERSION: &str = "v1.";

/// Encrypts TOTP secrets and hashes recovery codes.
#[derive(Clone)]
pub struct SecretCipher {
    aead: XChaCha20Poly1305,
    code_key: [u8; 32],
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
    /// Derive both keys from the configured passphrase.
    pub fn new(passphrase: &str) -> Self {
        let enc = blake3::derive_key(
            "gatehouse 2026-11 two-factor secret encryption",
            passphrase.as_bytes(),
        );
        let code_key = blake3::derive_key(
            "gatehouse 2026-11 recovery code hashing",
            passphrase.as_bytes(),
        );
        SecretCipher {
            aead: XChaCha20Poly1305::new(&enc.into()),
            code_key,
        }
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

    /// The secret `seal` was given, if this key sealed it for `username`.
    pub fn open(&self, username: &str, stored: &str) -> Result<Vec<u8>, Undecryptable> {
        let body = stored.strip_prefix(VERSION).ok_or(Undecryptable)?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| Undecryptable)?;
        if raw.len() < 24 {
            return Err(Undecryptable);
        }
        let (nonce, sealed) = raw.split_at(24);
        let payload = Payload {
            msg: sealed,
            aad: username.as_bytes(),
        };
        self.aead
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| Undecryptable)
    }

    /// What the store keeps of a recovery code: keyed BLAKE3, hex.
    pub fn code_hash(&self, username: &str, code: &str) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.code_key);
        h.update(&(username.len() as u64).to_le_bytes());
        h.update(username.as_bytes());
        h.update(code.as_bytes());
        h.finalize().to_hex().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_and_key() {
        let c = SecretCipher::new("a passphrase of at least thirty-two characters");
        let sealed = c.seal("alice", b"0123456789abcdefghij");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("0123456789"), "stored in clear: {sealed}");
        assert_eq!(c.open("alice", &sealed).unwrap(), b"0123456789abcdefghij");
        // Copied to another user's row, or read with another key: refused.
        assert_eq!(c.open("bob", &sealed), Err(Undecryptable));
        let other = SecretCipher::new("another passphrase of at least thirty-two chars");
        assert_eq!(other.open("alice", &sealed), Err(Undecryptable));
        // Two seals of one secret differ (fresh nonce each time).
        assert_ne!(sealed, c.seal("alice", b"0123456789abcdefghij"));
        // Garbage is an error, not a panic.
        for junk in ["", "v1.", "v1.!!!", "v1.AAAA", "v2.AAAA", "plain"] {
            assert_eq!(c.open("alice", junk), Err(Undecryptable), "{junk:?}");
        }
    }

    #[test]
    fn recovery_code_hashes_depend_on_key_and_user() {
        let c = SecretCipher::new("a passphrase of at least thirty-two characters");
        let other = SecretCipher::new("another passphrase of at least thirty-two chars");
        let h = c.code_hash("alice", "abcd");
        assert_eq!(h, c.code_hash("alice", "abcd"));
        assert_ne!(h, c.code_hash("bob", "abcd"));
        assert_ne!(h, other.code_hash("alice", "abcd"));
        assert_eq!(h.len(), 64);
    }
}
