//! `App`: everything a running Gatehouse shares across workers, compiled
//! from a validated [`Config`]. The parts a reload replaces (policy, users,
//! keys, roles, header names, cache, the password rule) sit in [`Live`] behind an `ArcSwap`:
//! a request takes one snapshot and keeps it to the end, so a reload never
//! splits a request between two configurations and drops no connection.

use crate::authn::{Authenticator, AuthnServices};
use crate::config::{UpstreamSettings, UpstreamTarget};
use crate::gate::Gate;
use crate::metrics::Metrics;
use crate::redirect::RedirectPolicy;
use crate::regulation::Regulator;
use crate::respond::Responder;
use crate::settings::Config;
use crate::sso::Sso;
use crate::store::Store;
use crate::tokens::external::TrustedIssuers;
use crate::tokens::TokenService;
use crate::two_factor::TwoFactor;
use crate::upstream::headers::HeaderSettings;
use arc_swap::ArcSwap;
use ipnet::IpNet;
use pingora::upstreams::peer::HttpPeer;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What lives across reloads: signing keys, fetched JWKS, bans.
#[derive(Clone)]
struct Shared {
    authn: AuthnServices,
    regulator: Arc<Regulator>,
}

fn compile_live(config: &Config, shared: &Shared) -> Live {
    let two_factor = Arc::new(TwoFactor::new(
        config.two_factor.clone(),
        shared.authn.store.clone(),
    ));
    let authn = Authenticator::new(
        Arc::new(config.directory.clone()),
        config.cache.ttl,
        config.cache.max_entries,
        shared.authn.clone(),
        config.session.idle_timeout,
        two_factor.clone(),
    );
    Live {
        two_factor,
        gate: Gate::new(
            config.policy.clone(),
            authn,
            shared.authn.metrics.clone(),
            config.session.cookie_name.clone(),
            shared.regulator.clone(),
            config.paths,
        ),
        headers: config.headers.clone(),
        session: config.session.clone(),
        passwords: config.passwords.clone(),
        registration: config.registration.clone(),
        sso: Arc::new(Sso::new(
            config.sso.clone(),
            &format!(
                "{}{}/oidc/callback",
                config.public_url.as_str().trim_end_matches('/'),
                config.portal.prefix
            ),
        )),
        log_denials: config.audit.log_denials,
    }
}

/// Where and how to reach the upstream, resolved once at start.
#[derive(Debug, Clone)]
pub struct UpstreamPeer {
    /// Cloned for every request (cheaper than building one).
    pub peer: HttpPeer,
}

impl UpstreamPeer {
    fn new(addr: SocketAddr, tls: bool, sni: String, settings: &UpstreamSettings) -> Self {
        let mut peer = HttpPeer::new(addr, tls, sni);
        peer.options.connection_timeout = Some(settings.connect_timeout);
        peer.options.read_timeout = settings.read_timeout;
        UpstreamPeer { peer }
    }
}

/// The reloadable part of the configuration, compiled.
pub struct Live {
    pub gate: Gate,
    /// Who owes a second factor, and checking it.
    pub two_factor: Arc<TwoFactor>,
    pub headers: HeaderSettings,
    pub session: crate::session::SessionSettings,
    /// What a new password must be, how long a reset link lives (`passwords:`).
    pub passwords: crate::accounts::users::PasswordPolicy,
    /// Who may create their own account (`registration:`).
    pub registration: crate::accounts::registration::RegistrationSettings,
    /// Single sign-on providers (discovered on first use, again after a reload).
    pub sso: Arc<Sso>,
    /// Log refused proxy requests, sampled (`audit.log_denials`).
    pub log_denials: bool,
}

/// Shared state of a running Gatehouse.
pub struct App {
    live: ArcSwap<Live>,
    shared: Shared,
    pub responder: Responder,
    pub metrics: Arc<Metrics>,
    /// The portal's page title.
    pub title: String,
    /// The sign-in page shows the password form.
    pub password_login: bool,
    /// Users, sessions and keys (absent only in tests of the proxy alone).
    pub store: Option<Store>,
    pub redirect: RedirectPolicy,
    /// `/_auth`
    pub prefix: String,
    pub upstream: UpstreamPeer,
    pub trusted_proxies: Vec<IpNet>,
    /// `https` when the listener itself speaks TLS.
    pub listener_scheme: &'static str,
    /// Sampled log lines of refused requests (`audit.log_denials`).
    denials: crate::audit::DenialLog,
}

impl App {
    /// `echo_addr` is where the built-in echo app listens, when configured.
    /// `tokens` holds the signing keys (configured, or the store's);
    /// `background` runs JWKS fetches.
    pub fn new(
        config: Config,
        metrics: Arc<Metrics>,
        echo_addr: Option<SocketAddr>,
        store: Option<Store>,
        tokens: Arc<TokenService>,
        background: Option<tokio::runtime::Handle>,
    ) -> Result<Arc<App>, String> {
        let upstream = match (&config.upstream.target, echo_addr) {
            (UpstreamTarget::Echo, Some(addr)) => {
                UpstreamPeer::new(addr, false, String::new(), &config.upstream)
            }
            (UpstreamTarget::Echo, None) => return Err("the echo upstream is not running".into()),
            (UpstreamTarget::Http { addr, tls, host }, _) => {
                UpstreamPeer::new(*addr, *tls, host.clone(), &config.upstream)
            }
        };
        let public = config.public_url.as_str().trim_end_matches('/').to_owned();
        let responder =
            Responder::new(&config.portal, &public).map_err(|e| format!("page templates: {e}"))?;
        let shared = Shared {
            authn: AuthnServices {
                metrics: metrics.clone(),
                store: store.clone(),
                tokens,
                issuers: Arc::new(TrustedIssuers::new(
                    config.trusted_issuers.clone(),
                    background,
                )),
            },
            regulator: Arc::new(
                Regulator::new(config.regulation.clone(), store.clone()).counting(metrics.clone()),
            ),
        };
        let live = compile_live(&config, &shared);
        Ok(Arc::new(App {
            live: ArcSwap::from_pointee(live),
            shared,
            responder,
            metrics,
            title: config.portal.title.clone(),
            password_login: config.portal.password_login,
            store,
            redirect: config.redirect,
            prefix: config.portal.prefix,
            upstream,
            trusted_proxies: config.server.trusted_proxies,
            listener_scheme: if config.server.tls.is_some() {
                "https"
            } else {
                "http"
            },
            denials: Default::default(),
        }))
    }

    /// Log a refused request when `audit.log_denials` is on (sampled: see
    /// [`crate::audit::DenialLog`]); counting it is the gate's job.
    pub fn log_denial(
        &self,
        live: &Live,
        denial: &crate::gate::Denial,
        method: &http::Method,
        path: &str,
        ip: Option<IpAddr>,
    ) {
        if !live.log_denials {
            return;
        }
        let (status, reason) = denial.status_and_reason();
        let denied = crate::audit::Denied {
            status,
            reason,
            method: method.as_str(),
            path,
            user: None,
            ip,
        };
        self.denials.log(crate::store::unix_now(), &denied);
    }

    /// The current reloadable state; hold it for the whole request.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Swap in the reloadable parts of `config`. Identities cached under the
    /// old configuration are dropped with it (a fresh cache comes along).
    pub fn reload(&self, config: &Config) {
        let live = compile_live(config, &self.shared);
        self.live.store(Arc::new(live));
    }

    pub fn regulator(&self) -> &Arc<Regulator> {
        &self.shared.regulator
    }

    pub fn issuers(&self) -> &Arc<TrustedIssuers> {
        &self.shared.authn.issuers
    }

    /// Is `path` answered by the portal?
    pub fn is_portal_path(&self, path: &str) -> bool {
        path.strip_prefix(self.prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// The client's address: the peer's, or — when the peer is a trusted
    /// proxy — the nearest untrusted hop of `X-Forwarded-For`.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &http::HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self.is_trusted_proxy(peer) {
            return Some(peer);
        }
        // Walk the hops right to left (nearest first), without collecting.
        let mut leftmost = None;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.rsplit(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok());
        for hop in hops {
            if !self.is_trusted_proxy(hop) {
                return Some(hop);
            }
            leftmost = Some(hop);
        }
        leftmost.or(Some(peer))
    }

    /// Are `X-Forwarded-*` headers from `ip` believed?
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        // An IPv4 peer on a dual-stack listener shows up as `::ffff:a.b.c.d`.
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}
