//! What each worker thread remembers of the credentials it saw last.
//!
//! A client repeats its credential on every request (a kept-alive
//! connection, an API client, a browser's cookie). Each thread keeps a small
//! direct-mapped table of the credentials it met, with the key naming each in
//! the identity cache (a keyed BLAKE3 hash, the largest single cost of a
//! cached request with a long credential: about 0.4 µs of 16 for a JWT) and
//! what the caller last learned of it (the authenticator keeps the identity,
//! with what it needs to tell whether it still holds). A credential found
//! there must equal the remembered one in every byte (compared in constant
//! time).
//!
//! The table holds the credentials themselves, as the connection buffers that
//! carried them do, at most [`SLOTS`] per thread and none longer than
//! [`LONGEST`] bytes; a slot's bytes are zeroed before it is reused and when
//! the table is dropped with its authenticator.

use rand::RngCore;
use std::cell::RefCell;
use std::fmt;
use thread_local::ThreadLocal;
use zeroize::Zeroize;

/// Slots per thread (a power of two).
pub const SLOTS: usize = 64;
/// Longer credentials are hashed every time (and never kept).
pub const LONGEST: usize = 1024;

/// A credential as the table sees it: its kind and up to two parts (Basic's
/// user name and password; one value for the others).
#[derive(Clone, Copy)]
pub struct Presented<'a> {
    pub kind: u8,
    pub first: &'a [u8],
    pub second: &'a [u8],
}

impl Presented<'_> {
    fn len(&self) -> usize {
        self.first.len() + self.second.len()
    }
}

struct Slot<V> {
    kind: u8,
    first: Vec<u8>,
    second: Vec<u8>,
    key: [u8; 32],
    known: Option<V>,
}

impl<V> Default for Slot<V> {
    fn default() -> Self {
        Slot {
            kind: 0,
            first: Vec::new(),
            second: Vec::new(),
            key: [0; 32],
            known: None,
        }
    }
}

impl<V> Slot<V> {
    fn holds(&self, p: &Presented<'_>) -> bool {
        // Lengths and kind are not secret (the request carried them); the
        // bytes are compared without an early exit.
        self.kind == p.kind
            && self.first.len() == p.first.len()
            && self.second.len() == p.second.len()
            && (differ(&self.first, p.first) | differ(&self.second, p.second)) == 0
    }

    fn keep(&mut self, p: &Presented<'_>, key: [u8; 32]) {
        self.first.zeroize();
        self.second.zeroize();
        self.kind = p.kind;
        self.first.extend_from_slice(p.first);
        self.second.extend_from_slice(p.second);
        self.key = key;
        self.known = None;
    }
}

impl<V> Drop for Slot<V> {
    fn drop(&mut self) {
        self.first.zeroize();
        self.second.zeroize();
        self.key.zeroize();
    }
}

/// The OR of the XOR of two equally long byte strings: zero only when they
/// are equal, in a time that depends on their length alone (no early exit;
/// the fold runs on whole vectors).
fn differ(a: &[u8], b: &[u8]) -> u8 {
    let acc = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(acc)
}

/// What a thread remembers of a credential: its cache key, and what was
/// last learned of it, if anything.
pub struct Recalled<V> {
    pub key: [u8; 32],
    pub known: Option<V>,
}

/// Per-thread tables of recent credentials (see the module doc); `V` is what
/// the caller remembers of each.
pub struct RecentCredentials<V: Send> {
    tables: ThreadLocal<RefCell<Vec<Slot<V>>>>,
    /// Mixed into a credential's slot (random, so which credentials share a
    /// slot is not known outside).
    seed: u64,
}

impl<V: Send> fmt::Debug for RecentCredentials<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecentCredentials(<redacted>)")
    }
}

impl<V: Send> Default for RecentCredentials<V> {
    fn default() -> Self {
        RecentCredentials {
            tables: ThreadLocal::new(),
            seed: rand::rngs::OsRng.next_u64(),
        }
    }
}

impl<V: Send + Clone> RecentCredentials<V> {
    /// What this thread remembers of `p`; its key is computed by `hash` (and
    /// remembered, with nothing known of it yet) when it was not there.
    pub fn recall(&self, p: Presented<'_>, hash: impl FnOnce() -> [u8; 32]) -> Recalled<V> {
        let Some(mut table) = self.table_for(&p) else {
            return Recalled {
                key: hash(),
                known: None,
            };
        };
        let slot = &mut table[self.slot_index(&p)];
        if slot.holds(&p) {
            return Recalled {
                key: slot.key,
                known: slot.known.clone(),
            };
        }
        let key = hash();
        slot.keep(&p, key);
        Recalled { key, known: None }
    }

    /// Remember `known` of `p` (whose key is `key`) on this thread.
    pub fn remember(&self, p: Presented<'_>, key: [u8; 32], known: V) {
        let Some(mut table) = self.table_for(&p) else {
            return;
        };
        let slot = &mut table[self.slot_index(&p)];
        if !slot.holds(&p) {
            slot.keep(&p, key);
        }
        slot.known = Some(known);
    }

    /// This thread's table, if `p` may be kept there (not too long).
    fn table_for(&self, p: &Presented<'_>) -> Option<std::cell::RefMut<'_, Vec<Slot<V>>>> {
        if p.len() > LONGEST {
            return None;
        }
        self.tables
            .get_or(|| RefCell::new((0..SLOTS).map(|_| Slot::default()).collect()))
            .try_borrow_mut()
            .ok()
    }

    /// The slot of `p`, from its kind, lengths and last bytes: cheap for a
    /// long token, and enough to spread tokens, keys, cookies and
    /// user-password pairs (a collision only costs a hash).
    fn slot_index(&self, p: &Presented<'_>) -> usize {
        let tail = |b: &[u8]| -> u64 {
            let mut w = [0u8; 8];
            let n = b.len().min(8);
            w[..n].copy_from_slice(&b[b.len() - n..]);
            u64::from_ne_bytes(w)
        };
        const MIX: u64 = 0x9e37_79b9_7f4a_7c15; // 2^64 / golden ratio
        let shape = u64::from(p.kind) | (p.first.len() as u64) << 8 | (p.second.len() as u64) << 32;
        let mut x = (self.seed ^ shape).wrapping_mul(MIX);
        x = (x ^ tail(p.first)).wrapping_mul(MIX);
        x = (x ^ tail(p.second)).wrapping_mul(MIX);
        // The top bits are the best mixed.
        (x >> (64 - SLOTS.trailing_zeros())) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    type Recent = RecentCredentials<&'static str>;

    fn p<'a>(kind: u8, first: &'a [u8], second: &'a [u8]) -> Presented<'a> {
        Presented {
            kind,
            first,
            second,
        }
    }

    /// The key of `p`, and whether it had to be computed.
    fn key(recent: &Recent, p: Presented<'_>, value: u8) -> ([u8; 32], bool) {
        let computed = Cell::new(false);
        let recalled = recent.recall(p, || {
            computed.set(true);
            [value; 32]
        });
        (recalled.key, computed.get())
    }

    #[test]
    fn a_repeated_credential_reuses_its_key_and_nothing_else_does() {
        let recent = Recent::default();
        assert_eq!(key(&recent, p(1, b"token-a", b""), 1), ([1; 32], true));
        assert_eq!(key(&recent, p(1, b"token-a", b""), 9), ([1; 32], false));
        // One byte apart, another kind, the same bytes split differently:
        // each is hashed for itself.
        assert_eq!(key(&recent, p(1, b"token-b", b""), 2), ([2; 32], true));
        assert_eq!(key(&recent, p(2, b"token-a", b""), 3), ([3; 32], true));
        assert_eq!(key(&recent, p(3, b"user", b":pw"), 4), ([4; 32], true));
        assert_eq!(key(&recent, p(3, b"user:", b"pw"), 5), ([5; 32], true));
        assert_eq!(key(&recent, p(3, b"user", b":pw"), 9), ([4; 32], false));
    }

    #[test]
    fn what_was_learned_goes_with_its_credential_only() {
        let recent = Recent::default();
        let alice = p(1, b"token-alice", b"");
        assert_eq!(recent.recall(alice, || [1; 32]).known, None);
        recent.remember(alice, [1; 32], "alice");
        assert_eq!(recent.recall(alice, || [9; 32]).known, Some("alice"));
        // Another credential learns nothing of it, even in its slot.
        let rival = (0..)
            .map(|i| format!("token-{i}"))
            .find(|t| recent.slot_index(&p(1, t.as_bytes(), b"")) == recent.slot_index(&alice))
            .unwrap_or_default();
        assert_eq!(
            recent.recall(p(1, rival.as_bytes(), b""), || [2; 32]).known,
            None
        );
        // Pushed out of its slot, alice is hashed again and known afresh.
        let again = recent.recall(alice, || [3; 32]);
        assert_eq!((again.key, again.known), ([3; 32], None));
        // Remembered from a thread that never saw it (a task moved threads).
        recent.remember(alice, [3; 32], "alice again");
        assert_eq!(recent.recall(alice, || [9; 32]).known, Some("alice again"));
    }

    #[test]
    fn long_credentials_are_never_kept() {
        let recent = Recent::default();
        let long = vec![b'x'; LONGEST + 1];
        assert!(key(&recent, p(1, &long, b""), 1).1);
        recent.remember(p(1, &long, b""), [1; 32], "long");
        assert!(key(&recent, p(1, &long, b""), 1).1);
        assert_eq!(recent.recall(p(1, &long, b""), || [1; 32]).known, None);
    }

    #[test]
    fn a_table_keeps_no_more_than_its_slots() {
        let recent = Recent::default();
        let tokens: Vec<String> = (0..10 * SLOTS).map(|i| format!("token-{i}")).collect();
        for t in &tokens {
            key(&recent, p(1, t.as_bytes(), b""), 1);
        }
        // Newest first: each slot still holds the last token it took.
        let kept = tokens
            .iter()
            .rev()
            .filter(|t| !key(&recent, p(1, t.as_bytes(), b""), 1).1)
            .count();
        assert!(kept > 0 && kept <= SLOTS, "{kept}");
    }

    #[test]
    fn differ_sees_a_difference_anywhere() {
        let a = b"0123456789abcdefghij".to_vec();
        assert_eq!(differ(&a, &a), 0);
        for i in 0..a.len() {
            let mut b = a.clone();
            b[i] ^= 0x20;
            assert_ne!(differ(&a, &b), 0, "byte {i}");
        }
    }
}
