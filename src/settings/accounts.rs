//! `registration:`: who may create their own account, checked into
//! [`RegistrationSettings`].

use crate::accounts::registration::{RegistrationMode, RegistrationSettings};
use crate::config::raw;
use crate::config::Checker;
use crate::directory::Roles;

pub(super) fn registration(
    c: &mut Checker,
    raw: raw::RawRegistration,
    roles: &Roles,
) -> RegistrationSettings {
    let d = RegistrationSettings::default();
    let mode = match raw.mode.as_deref() {
        None => d.mode,
        Some(m) => RegistrationMode::parse(m).unwrap_or_else(|| {
            c.err(
                "registration.mode",
                format!("`{m}` must be `closed`, `open` or `invite`"),
            );
            d.mode
        }),
    };
    let default_role = raw.default_role.unwrap_or(d.default_role);
    if !roles.contains(&default_role) {
        c.err(
            "registration.default_role",
            format!("role `{default_role}` is not defined under `roles`"),
        );
    }
    let activation_ttl = c.duration(
        "registration.activation_ttl",
        raw.activation_ttl.as_deref(),
        d.activation_ttl,
    );
    let invitation_ttl = c.duration(
        "registration.invitation_ttl",
        raw.invitation_ttl.as_deref(),
        d.invitation_ttl,
    );
    for (key, ttl) in [
        ("registration.activation_ttl", activation_ttl),
        ("registration.invitation_ttl", invitation_ttl),
    ] {
        if ttl.as_secs() < 60 {
            c.err(key, "must be at least one minute");
        }
    }
    RegistrationSettings {
        mode,
        default_role,
        activation_ttl,
        invitation_ttl,
    }
}
