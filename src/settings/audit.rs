//! `audit:`: how long the audit trail is kept and whether refused proxy
//! requests are logged, checked into [`AuditSettings`].

use crate::audit::AuditSettings;
use crate::config::raw;
use crate::config::Checker;

pub(super) fn audit(c: &mut Checker, raw: raw::RawAudit) -> AuditSettings {
    let d = AuditSettings::default();
    let retention = c.duration("audit.retention", raw.retention.as_deref(), d.retention);
    if retention.as_secs() < 3600 {
        c.err("audit.retention", "must be at least one hour");
    }
    AuditSettings {
        retention,
        log_denials: raw.log_denials.unwrap_or(d.log_denials),
    }
}
