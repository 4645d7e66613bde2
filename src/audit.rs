//! The audit trail: who signed in or failed to, who changed what (before →
//! after), and which requests were refused.
//!
//! Owns [`AuditEvent`] (what happened, to whom, from where, with what
//! outcome), the action names ([`action`]), and [`AuditLog`]: every event
//! becomes a structured log line at once and a row of the store's
//! `audit_events` table soon after. Writing never blocks or fails the
//! request that caused it: events wait in a bounded buffer that one task
//! drains into the store in batches; what the buffer or the store cannot
//! take is counted in `gatehouse_audit_events_total{result="lost"}`.
//! Denials on the proxy path are counted in metrics, not stored per
//! request; with `audit.log_denials` they are also logged, sampled
//! ([`DenialLog`]).

use crate::metrics::{Metrics, SignInChannel};
use crate::session::Origin;
use crate::store::{unix_now, AuditRecord, Store};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The action names an event can carry (`action` in the API and table).
pub mod action {
    pub const SIGN_IN: &str = "sign_in";
    pub const SIGN_OUT: &str = "sign_out";
    pub const SESSIONS_REVOKE: &str = "sessions.revoke";
    pub const TWO_FACTOR_ENABLE: &str = "2fa.enable";
    pub const TWO_FACTOR_DISABLE: &str = "2fa.disable";
    pub const TWO_FACTOR_RESET: &str = "2fa.reset";
    pub const PASSWORD_CHANGE: &str = "password.change";
    pub const PASSWORD_RESET: &str = "password.reset";
    pub const API_KEY_CREATE: &str = "api_key.create";
    pub const API_KEY_REVOKE: &str = "api_key.revoke";
    pub const REGISTER: &str = "register";
    pub const USER_CREATE: &str = "user.create";
    pub const USER_UPDATE: &str = "user.update";
    pub const USER_DELETE: &str = "user.delete";
    pub const INVITATION_CREATE: &str = "invitation.create";
    pub const INVITATION_REVOKE: &str = "invitation.revoke";
}

/// How an audited attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Tried and failed (a wrong password, an expired link).
    Failure,
    /// Not allowed (a permission the actor lacks).
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// One security event, built by whoever saw it happen.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    action: &'static str,
    outcome: Outcome,
    actor: Option<String>,
    target: Option<String>,
    origin: Origin,
    details: serde_json::Map<String, serde_json::Value>,
}

impl AuditEvent {
    pub fn new(action: &'static str, outcome: Outcome) -> AuditEvent {
        AuditEvent {
            action,
            outcome,
            actor: None,
            target: None,
            origin: Origin::default(),
            details: serde_json::Map::new(),
        }
    }

    /// Who did it.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Whom it was done to (when not the actor).
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Where the request came from.
    pub fn origin(mut self, origin: &Origin) -> Self {
        self.origin = origin.clone();
        self
    }

    /// One more fact: a reason, a method, a change.
    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    pub fn action(&self) -> &'static str {
        self.action
    }

    /// The sign-in channel named by the `channel` detail, for metrics.
    fn channel(&self) -> Option<SignInChannel> {
        match self.details.get("channel")?.as_str()? {
            "page" => Some(SignInChannel::Page),
            "api" => Some(SignInChannel::Api),
            "basic" => Some(SignInChannel::Basic),
            "sso" => Some(SignInChannel::Sso),
            "setup" => Some(SignInChannel::Setup),
            _ => None,
        }
    }

    /// The row to store, stamped with the time.
    fn record(self) -> AuditRecord {
        AuditRecord {
            id: 0,
            at: unix_now(),
            actor: self.actor,
            action: self.action.to_owned(),
            target: self.target,
            ip: self.origin.ip.map(|ip| ip.to_string()),
            user_agent: self.origin.user_agent,
            outcome: self.outcome.as_str().to_owned(),
            details: serde_json::Value::Object(self.details).to_string(),
        }
    }
}

/// Write the structured log line of an event (target `gatehouse::audit`).
fn log_line(r: &AuditRecord) {
    tracing::info!(
        target: "gatehouse::audit",
        action = %r.action,
        outcome = %r.outcome,
        actor = r.actor.as_deref().unwrap_or(""),
        target_user = r.target.as_deref().unwrap_or(""),
        ip = r.ip.as_deref().unwrap_or(""),
        user_agent = r.user_agent.as_deref().unwrap_or(""),
        details = %r.details,
        "audit"
    );
}

/// Events waiting for the store at most; more are lost (and counted).
pub const BUFFER: usize = 4096;
/// Events written per transaction at most.
const BATCH: usize = 256;

/// Where events go: a log line now, the store soon. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    queue: Option<mpsc::Sender<AuditRecord>>,
    metrics: Arc<Metrics>,
    /// Events queued and not yet written (or given up on).
    unwritten: Arc<AtomicUsize>,
}

impl AuditLog {
    /// Write events to `store` from a task spawned on `runtime`.
    pub fn start(store: Store, metrics: Arc<Metrics>, runtime: &tokio::runtime::Handle) -> Self {
        let (queue, rx) = mpsc::channel(BUFFER);
        let unwritten = Arc::new(AtomicUsize::new(0));
        runtime.spawn(write_batches(store, rx, metrics.clone(), unwritten.clone()));
        AuditLog {
            queue: Some(queue),
            metrics,
            unwritten,
        }
    }

    /// Events recorded but not yet in the store (a graceful stop waits for
    /// them).
    pub fn unwritten(&self) -> usize {
        self.unwritten.load(Ordering::Acquire)
    }

    /// Log lines only (tests of parts that run without a store).
    pub fn log_only(metrics: Arc<Metrics>) -> Self {
        AuditLog {
            queue: None,
            metrics,
            unwritten: Default::default(),
        }
    }

    /// Record `event`: never waits, never fails.
    pub fn record(&self, event: AuditEvent) {
        if event.action == action::SIGN_IN {
            if let Some(channel) = event.channel() {
                self.metrics
                    .sign_in(channel, event.outcome == Outcome::Success);
            }
        }
        let record = event.record();
        log_line(&record);
        if let Some(queue) = &self.queue {
            self.unwritten.fetch_add(1, Ordering::AcqRel);
            if queue.try_send(record).is_err() {
                self.unwritten.fetch_sub(1, Ordering::AcqRel);
                self.metrics.audit_events(true, 1);
            }
        }
    }
}

/// Record `event` in `store` now (the CLI, which has no writer task).
pub async fn write_now(store: &Store, event: AuditEvent) -> Result<(), crate::store::StoreError> {
    let record = event.record();
    log_line(&record);
    store.append_audit_events(vec![record]).await
}

/// Drain `rx` into the store, a batch per transaction.
async fn write_batches(
    store: Store,
    mut rx: mpsc::Receiver<AuditRecord>,
    metrics: Arc<Metrics>,
    unwritten: Arc<AtomicUsize>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let n = batch.len() as u64;
        let written = store.append_audit_events(std::mem::take(&mut batch)).await;
        unwritten.fetch_sub(n as usize, Ordering::AcqRel);
        match written {
            Ok(()) => metrics.audit_events(false, n),
            Err(e) => {
                metrics.audit_events(true, n);
                tracing::warn!(error = %e, lost = n, "audit events not stored");
                // Give a failing store a moment rather than spin.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// `audit:` in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Events older than this are deleted.
    pub retention: Duration,
    /// Log refused proxy requests (sampled: [`DenialLog`]).
    pub log_denials: bool,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            retention: Duration::from_secs(90 * 86_400),
            log_denials: false,
        }
    }
}

/// A refused proxy request, as [`DenialLog`] writes it.
#[derive(Debug, Clone, Copy)]
pub struct Denied<'a> {
    pub status: u16,
    /// Why, in a word (`unauthenticated`, `forbidden`…).
    pub reason: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// Who asked, when known.
    pub user: Option<&'a str>,
    pub ip: Option<std::net::IpAddr>,
}

/// Sampled log lines for refused proxy requests: at most
/// [`DenialLog::PER_SECOND`] a second, and the count of those skipped said
/// with the next one written.
#[derive(Debug, Default)]
pub struct DenialLog {
    second: AtomicI64,
    written: AtomicU32,
    skipped: AtomicU32,
}

impl DenialLog {
    pub const PER_SECOND: u32 = 10;

    /// Log `denied`, unless this second's lines (`now`, unix seconds) are
    /// spent. Answers whether a line was written.
    pub fn log(&self, now: i64, denied: &Denied<'_>) -> bool {
        let Denied {
            status,
            reason,
            method,
            path,
            user,
            ip,
        } = *denied;
        if self.second.swap(now, Ordering::Relaxed) != now {
            self.written.store(0, Ordering::Relaxed);
        }
        if self.written.fetch_add(1, Ordering::Relaxed) >= Self::PER_SECOND {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let skipped = self.skipped.swap(0, Ordering::Relaxed);
        tracing::info!(
            target: "gatehouse::audit",
            action = "request.denied",
            status,
            reason,
            method,
            path,
            user = user.unwrap_or(""),
            ip = %ip.map(|i| i.to_string()).unwrap_or_default(),
            skipped_before = skipped,
            "audit"
        );
        true
    }
}

/// A point in time as people write it in a query or on the command line:
/// unix seconds (`1767225600`), RFC 3339 (`2026-01-01T00:00:00Z`, or a
/// date `2026-01-01`), or a duration back from `now` (`24h`, `7d`).
pub fn parse_time(text: &str, now: i64) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n);
    }
    let at = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(at(t));
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(&format!("{text}T00:00:00Z")) {
        return Ok(at(t));
    }
    match crate::config::parse_duration(text) {
        Ok(d) => Ok(now - d.as_secs() as i64),
        Err(_) => Err(format!(
            "`{text}` is not a time: use unix seconds, RFC 3339 (`2026-01-01T00:00:00Z`), a date, or a duration back from now (`24h`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_people_write_them() {
        let now = 1_767_225_600; // 2026-01-01T00:00:00Z
        assert_eq!(parse_time("1767225600", now), Ok(now));
        assert_eq!(parse_time("2026-01-01T00:00:00Z", now), Ok(now));
        assert_eq!(parse_time("2026-01-01", now), Ok(now));
        assert_eq!(parse_time("24h", now), Ok(now - 86_400));
        assert_eq!(parse_time(" 7d ", now), Ok(now - 7 * 86_400));
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("", now).is_err());
    }

    #[test]
    fn an_event_becomes_a_row_with_its_facts() {
        let origin = Origin {
            ip: "203.0.113.7".parse().ok(),
            user_agent: Some("curl/8".into()),
        };
        let r = AuditEvent::new(action::USER_UPDATE, Outcome::Success)
            .actor("admin")
            .target("bob")
            .origin(&origin)
            .detail("before", serde_json::json!({"role": "user"}))
            .detail("after", serde_json::json!({"role": "admin"}))
            .record();
        assert_eq!(r.action, "user.update");
        assert_eq!(r.outcome, "success");
        assert_eq!(
            (r.actor.as_deref(), r.target.as_deref()),
            (Some("admin"), Some("bob"))
        );
        assert_eq!(r.ip.as_deref(), Some("203.0.113.7"));
        let details: serde_json::Value = serde_json::from_str(&r.details).unwrap();
        assert_eq!(details["before"]["role"], "user");
        assert_eq!(details["after"]["role"], "admin");
        assert!(r.at > 0);
    }

    #[test]
    fn a_full_buffer_loses_events_and_counts_them() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let (queue, _rx) = mpsc::channel(1);
        let log = AuditLog {
            queue: Some(queue),
            metrics: metrics.clone(),
            unwritten: Default::default(),
        };
        for _ in 0..3 {
            log.record(AuditEvent::new(action::SIGN_IN, Outcome::Success));
        }
        // The one queued is waiting for the writer; the lost are not.
        assert_eq!(log.unwritten(), 1);
        let text = metrics.render();
        assert!(
            text.contains("gatehouse_audit_events_total{result=\"lost\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn denial_lines_are_sampled_per_second() {
        let log = DenialLog::default();
        let denied = Denied {
            status: 403,
            reason: "forbidden",
            method: "GET",
            path: "/x",
            user: None,
            ip: None,
        };
        let written = (0..25).filter(|_| log.log(100, &denied)).count();
        assert_eq!(written, DenialLog::PER_SECOND as usize);
        assert!(log.log(101, &denied), "a new second");
    }
}
