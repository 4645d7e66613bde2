//! Prometheus metrics with low-cardinality labels only (no users, no paths).
//!
//! Counters for every label combination are created up front, so recording
//! on the hot path is an atomic increment, not a label lookup.

use crate::identity::AuthMethod;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The decision label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionLabel {
    Allow,
    Public,
    Unauthenticated,
    Forbidden,
    BadRequest,
    Portal,
    Regulated,
}

const DECISIONS: [&str; 7] = [
    "allow",
    "public",
    "unauthenticated",
    "forbidden",
    "bad_request",
    "portal",
    "regulated",
];
const METHODS: [&str; 5] = ["none", "session", "basic", "api_key", "jwt"];

fn method_index(m: Option<AuthMethod>) -> usize {
    match m {
        None => 0,
        Some(AuthMethod::Session) => 1,
        Some(AuthMethod::Basic) => 2,
        Some(AuthMethod::ApiKey) => 3,
        Some(AuthMethod::Jwt) => 4,
    }
}

/// All of Gatehouse's metrics, in their own registry.
pub struct Metrics {
    registry: Registry,
    requests: Vec<Vec<IntCounter>>,
    decision_seconds: Histogram,
    cache: [IntCounter; 2],
    upstream_errors: IntCounter,
    password_verifications: IntCounter,
    sso_sign_ins: IntCounterVec,
    audit_events: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests_vec = IntCounterVec::new(
            Opts::new(
                "gatehouse_requests_total",
                "Requests by decision and credential method",
            ),
            &["decision", "method"],
        )?;
        let requests = DECISIONS
            .iter()
            .map(|d| {
                METHODS
                    .iter()
                    .map(|m| requests_vec.with_label_values(&[d, m]))
                    .collect()
            })
            .collect();
        let decision_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "gatehouse_auth_decision_seconds",
                "Time from request to access decision (credential verification included)",
            )
            .buckets(vec![
                0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.01,
                0.025, 0.05, 0.1, 0.5,
            ]),
        )?;
        let cache_vec = IntCounterVec::new(
            Opts::new("gatehouse_identity_cache_total", "Credential cache lookups"),
            &["result"],
        )?;
        let cache = [
            cache_vec.with_label_values(&["hit"]),
            cache_vec.with_label_values(&["miss"]),
        ];
        let upstream_errors = IntCounter::new(
            "gatehouse_upstream_errors_total",
            "Requests that failed to reach the upstream or broke while proxying",
        )?;
        let password_verifications = IntCounter::new(
            "gatehouse_password_verifications_total",
            "argon2 verifications run (cache misses on password credentials, dummy hashes included)",
        )?;
        let sso_sign_ins = IntCounterVec::new(
            Opts::new(
                "gatehouse_sso_sign_ins_total",
                "Single sign-on attempts by provider and outcome",
            ),
            &["provider", "outcome"],
        )?;
        let audit_events = IntCounterVec::new(
            Opts::new(
                "gatehouse_audit_events_total",
                "Audit events by fate: `written` to the store, or `lost` (buffer full or store down)",
            ),
            &["result"],
        )?;
        for result in ["written", "lost"] {
            audit_events.with_label_values(&[result]);
        }
        registry.register(Box::new(audit_events.clone()))?;
        registry.register(Box::new(sso_sign_ins.clone()))?;
        registry.register(Box::new(password_verifications.clone()))?;
        registry.register(Box::new(requests_vec))?;
        registry.register(Box::new(decision_seconds.clone()))?;
        registry.register(Box::new(cache_vec))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            decision_seconds,
            cache,
            upstream_errors,
            password_verifications,
            sso_sign_ins,
            audit_events,
        })
    }

    pub fn request(&self, decision: DecisionLabel, method: Option<AuthMethod>, seconds: f64) {
        self.requests[decision as usize][method_index(method)].inc();
        if decision != DecisionLabel::Portal {
            self.decision_seconds.observe(seconds);
        }
    }

    pub fn cache(&self, hit: bool) {
        self.cache[usize::from(!hit)].inc();
    }

    /// A single sign-on finished with `outcome` (`success`, `refused`,
    /// `forbidden`, `invalid_token`, `unreachable`, `expired`, `error`).
    /// Provider ids come from the config, so the label set is bounded.
    pub fn sso_sign_in(&self, provider: &str, outcome: &str) {
        self.sso_sign_ins
            .with_label_values(&[provider, outcome])
            .inc();
    }

    /// `n` audit events written to the store (`lost: false`) or lost.
    pub fn audit_events(&self, lost: bool, n: u64) {
        let result = if lost { "lost" } else { "written" };
        self.audit_events.with_label_values(&[result]).inc_by(n);
    }

    pub fn password_verification(&self) {
        self.password_verifications.inc();
    }

    pub fn upstream_error(&self) {
        self.upstream_errors.inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Serve `/metrics` on an already-bound listener.
pub async fn serve(
    listener: std::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
) -> std::io::Result<()> {
    use axum::routing::get;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    m.render(),
                )
            }
        }),
    );
    axum::serve(listener, app).await
}
