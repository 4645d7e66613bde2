//! `passwords:`: the rule for new passwords and how long a reset link
//! lives, checked into a [`PasswordPolicy`].

use crate::accounts::users::{PasswordPolicy, MAX_PASSWORD_LEN};
use crate::config::raw;
use crate::config::Checker;

pub(super) fn passwords(c: &mut Checker, raw: raw::RawPasswords) -> PasswordPolicy {
    let d = PasswordPolicy::default();
    let least = PasswordPolicy::LEAST_MIN_LENGTH;
    let min_length = match raw.min_length {
        None => d.min_length,
        Some(n) if (least..=MAX_PASSWORD_LEN).contains(&n) => n,
        Some(n) => {
            c.err(
                "passwords.min_length",
                format!("{n} must be between {least} and {MAX_PASSWORD_LEN} characters"),
            );
            d.min_length
        }
    };
    let reset_ttl = c.duration("passwords.reset_ttl", raw.reset_ttl.as_deref(), d.reset_ttl);
    if reset_ttl.as_secs() < 60 {
        c.err("passwords.reset_ttl", "must be at least one minute");
    }
    PasswordPolicy {
        min_length,
        reset_ttl,
    }
}
