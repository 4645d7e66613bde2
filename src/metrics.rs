//! Prometheus metrics with low-cardinality labels only (no users, no paths).
//!
//! Counters for every label combination that can happen are created up
//! front, so they read 0 before the first event and recording on the hot
//! path is an atomic increment, not a label lookup. Process metrics (RSS,
//! open file descriptors, CPU) come from `/proc`, gathered at scrape time.

use crate::identity::AuthMethod;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
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
const AUTH_METHODS: [&str; 5] = ["none", "session", "basic", "api_key", "jwt"];

/// Which (decision, auth_method) pairs can happen, so only they are shown:
/// an allowed request always has an identity, and only public and
/// forbidden answers can come with or without one.
fn can_happen(decision: usize, method: usize) -> bool {
    match DECISIONS[decision] {
        "allow" => method != 0,
        "public" | "forbidden" => true,
        _ => method == 0,
    }
}

fn method_index(m: Option<AuthMethod>) -> usize {
    match m {
        None => 0,
        Some(AuthMethod::Session) => 1,
        Some(AuthMethod::Basic) => 2,
        Some(AuthMethod::ApiKey) => 3,
        Some(AuthMethod::Jwt) => 4,
    }
}

/// Where a sign-in was tried: the sign-in page (and its second-factor
/// step), `api/login`, Basic (a password checked on the proxy path or at
/// `api/session`), single sign-on, or the setup page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInChannel {
    Page,
    Api,
    Basic,
    Sso,
    Setup,
}

const CHANNELS: [&str; 5] = ["page", "api", "basic", "sso", "setup"];

/// All of Gatehouse's metrics, in their own registry.
pub struct Metrics {
    registry: Registry,
    requests_vec: IntCounterVec,
    requests: Vec<Vec<Option<IntCounter>>>,
    decision_seconds: Histogram,
    cache: [IntCounter; 2],
    cache_hit_ratio: Gauge,
    upstream_errors: IntCounter,
    password_verifications: IntCounter,
    sso_sign_ins: IntCounterVec,
    sign_ins: [[IntCounter; 2]; 5],
    bans: [IntCounter; 2],
    store_seconds: Histogram,
    audit_events: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests_vec = IntCounterVec::new(
            Opts::new(
                "gatehouse_requests_total",
                "Requests by access decision and the credential that identified the caller \
                 (`none` when nobody was identified); portal requests are `decision=\"portal\"`",
            ),
            &["decision", "auth_method"],
        )?;
        let requests = (0..DECISIONS.len())
            .map(|d| {
                (0..AUTH_METHODS.len())
                    .map(|m| {
                        can_happen(d, m).then(|| {
                            requests_vec.with_label_values(&[DECISIONS[d], AUTH_METHODS[m]])
                        })
                    })
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
        let cache_hit_ratio = Gauge::new(
            "gatehouse_identity_cache_hit_ratio",
            "Share of credential checks served from the cache since start (0 to 1)",
        )?;
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
        let sign_ins_vec = IntCounterVec::new(
            Opts::new(
                "gatehouse_sign_ins_total",
                "Sign-ins by channel (page, api, basic, sso, setup) and result (success, failure)",
            ),
            &["channel", "result"],
        )?;
        let sign_ins = CHANNELS
            .map(|c| ["success", "failure"].map(|r| sign_ins_vec.with_label_values(&[c, r])));
        let bans_vec = IntCounterVec::new(
            Opts::new(
                "gatehouse_bans_total",
                "Bans for too many failed sign-ins, by what was banned (user or ip)",
            ),
            &["scope"],
        )?;
        let bans = ["user", "ip"].map(|scope| bans_vec.with_label_values(&[scope]));
        let store_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "gatehouse_store_query_seconds",
                "Time of each store operation (SQLite or PostgreSQL), queueing included",
            )
            .buckets(vec![
                0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                0.5, 1.0, 5.0,
            ]),
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
        let build_info = IntGaugeVec::new(
            Opts::new(
                "gatehouse_build_info",
                "Always 1; the labels say which Gatehouse is running",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(audit_events.clone()))?;
        registry.register(Box::new(sso_sign_ins.clone()))?;
        registry.register(Box::new(sign_ins_vec))?;
        registry.register(Box::new(bans_vec))?;
        registry.register(Box::new(password_verifications.clone()))?;
        registry.register(Box::new(requests_vec.clone()))?;
        registry.register(Box::new(decision_seconds.clone()))?;
        registry.register(Box::new(cache_vec))?;
        registry.register(Box::new(cache_hit_ratio.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(store_seconds.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry,
            requests_vec,
            requests,
            decision_seconds,
            cache,
            cache_hit_ratio,
            upstream_errors,
            password_verifications,
            sso_sign_ins,
            sign_ins,
            bans,
            store_seconds,
            audit_events,
        })
    }

    /// One request decided (`decision`), by whom (`method`: the credential
    /// that identified the caller, if any). Portal requests are counted but
    /// not timed.
    pub fn request(&self, decision: DecisionLabel, method: Option<AuthMethod>, seconds: f64) {
        let (d, m) = (decision as usize, method_index(method));
        match &self.requests[d][m] {
            Some(counter) => counter.inc(),
            None => self
                .requests_vec
                .with_label_values(&[DECISIONS[d], AUTH_METHODS[m]])
                .inc(),
        }
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

    /// A sign-in through `channel` succeeded or failed.
    pub fn sign_in(&self, channel: SignInChannel, success: bool) {
        self.sign_ins[channel as usize][usize::from(!success)].inc();
    }

    /// A user name (`ip: false`) or an address was banned.
    pub fn ban(&self, ip: bool) {
        self.bans[usize::from(ip)].inc();
    }

    /// The histogram the store observes each operation's time in.
    pub fn store_seconds(&self) -> Histogram {
        self.store_seconds.clone()
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
        let (hits, misses) = (self.cache[0].get(), self.cache[1].get());
        if hits + misses > 0 {
            self.cache_hit_ratio
                .set(hits as f64 / (hits + misses) as f64);
        }
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
