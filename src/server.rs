//! Assembling and running the Pingora server from a validated config.
//!
//! One single-threaded proxy service per worker (the HTTP/1.1 relay of
//! `proxy`), each with its own `SO_REUSEPORT` listener and so its own
//! upstream connection pool: nothing
//! crosses threads on the request path, while the credential cache (in the
//! shared [`App`]) is common to all workers. SIGTERM is Pingora's graceful
//! shutdown with `server.grace_period`, which [`GracefulStop`] ends as soon
//! as the requests in flight are done (see `tests/shutdown.rs`).

use crate::accounts::admin::setup_is_open;
use crate::app::App;
use crate::audit::AuditLog;
use crate::config::UpstreamTarget;
use crate::metrics::Metrics;
use crate::portal::{self, PortalState};
use crate::proxy::InFlight;
use crate::settings::Config;
use crate::store::{Store, StoredUser};
use crate::tokens::{KeyMaterial, TokenService};
use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::TcpSocketOptions;
use pingora::server::configuration::ServerConf;
use pingora::server::{
    RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch, UnixShutdownSignalWatch,
};
use pingora::services::background::{background_service, BackgroundService};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::signal::unix::Signal;

/// Serves an axum app on a listener bound before the server starts.
struct AxumTask {
    name: &'static str,
    listener: Mutex<Option<TcpListener>>,
    metrics: Option<Arc<Metrics>>,
}

#[async_trait]
impl BackgroundService for AxumTask {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let listener = self.listener.lock().ok().and_then(|mut l| l.take());
        let Some(listener) = listener else { return };
        let result = match &self.metrics {
            Some(m) => crate::metrics::serve(listener, m.clone()).await,
            None => crate::upstream::echo::serve(listener).await,
        };
        if let Err(e) = result {
            tracing::error!(task = self.name, error = %e, "background listener failed");
        }
    }
}

/// Pingora's signals (SIGTERM graceful, SIGINT fast, SIGQUIT upgrade), and
/// on SIGTERM a log line saying what the stop waits for and a watcher that
/// exits as soon as it is done, instead of sleeping the whole grace period.
struct GracefulStop {
    in_flight: InFlight,
    audit: AuditLog,
    grace: Duration,
}

/// How long nothing must be in flight before the process exits: a request
/// whose connection was accepted just before the listeners closed is read
/// (and counted) within it.
const SETTLE: Duration = Duration::from_millis(200);

#[async_trait]
impl ShutdownSignalWatch for GracefulStop {
    async fn recv(&self) -> ShutdownSignal {
        let signal = UnixShutdownSignalWatch.recv().await;
        if let ShutdownSignal::GracefulTerminate = signal {
            let n = self.in_flight.count();
            tracing::info!(
                in_flight = n,
                grace_period_seconds = self.grace.as_secs(),
                "SIGTERM: no new connections; draining {n} connection(s)"
            );
            let (in_flight, audit, grace) =
                (self.in_flight.clone(), self.audit.clone(), self.grace);
            std::thread::spawn(move || exit_when_drained(&in_flight, &audit, grace));
        }
        signal
    }
}

/// Exit (status 0) once no request has been in flight for [`SETTLE`] and
/// the audit trail is written; past the grace period, Pingora ends the rest.
fn exit_when_drained(in_flight: &InFlight, audit: &AuditLog, grace: Duration) {
    let deadline = Instant::now() + grace;
    let mut idle_since: Option<Instant> = None;
    while Instant::now() < deadline {
        if in_flight.count() == 0 && audit.unwritten() == 0 {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= SETTLE {
                tracing::info!("drained; exiting");
                std::process::exit(0);
            }
        } else {
            idle_since = None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    tracing::warn!(
        in_flight = in_flight.count(),
        "grace period over; cutting what is still in flight"
    );
}

/// Pingora counts the grace period in whole seconds: round up, so that
/// `grace_period: 500ms` gives requests in flight a second, not none.
fn whole_seconds(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `listen` as worker `n` spells it: the port with `n` leading zeros
/// (`127.0.0.1:8080`, `127.0.0.1:08080`, …). The same socket address, but a
/// different text, which is what Pingora keys its listening sockets by.
fn worker_address(listen: &str, n: usize) -> String {
    match listen.rsplit_once(':') {
        Some((host, port)) => format!("{host}:{}{port}", "0".repeat(n)),
        None => listen.to_owned(),
    }
}

fn bind(addr: &str, what: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr} for {what}: {e}"))
}

/// Users may live in the config file or in the store, not both.
fn check_clashes(stored: &[StoredUser], config: &Config) -> Result<(), String> {
    let clashes: Vec<&str> = stored
        .iter()
        .map(|u| u.record.username.as_str())
        .filter(|name| config.directory.users.contains_key(*name))
        .collect();
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "users declared in the config also exist in the store: {} (a name lives in one place)",
            clashes.join(", ")
        ))
    }
}

/// Start Gatehouse and serve until a signal stops it. Returns only on a
/// start-up error; a clean shutdown exits the process. With `config_path`,
/// SIGHUP or a change of the file reloads roles, rules, users, API keys,
/// header names and cache settings.
pub fn run(config: Config, config_path: Option<PathBuf>) -> Result<(), String> {
    let metrics = Arc::new(Metrics::new().map_err(|e| e.to_string())?);
    let echo = match config.upstream.target {
        UpstreamTarget::Echo => Some(bind("127.0.0.1:0", "the echo upstream")?),
        UpstreamTarget::Http { .. } => None,
    };
    let echo_addr = echo.as_ref().and_then(|l| l.local_addr().ok());
    let metrics_listener = config
        .server
        .metrics_listen
        .map(|a| bind(&a.to_string(), "metrics"))
        .transpose()?;
    let listen = config.server.listen.to_string();
    // Fail with a clear message now rather than inside Pingora's start-up.
    drop(bind(&listen, "the proxy")?);
    let threads = config.server.threads;
    let grace = whole_seconds(config.server.grace_period);
    let tls = config.server.tls.clone();
    let public_url = config.public_url.to_string();

    // The store lives on a runtime of its own (see `store`).
    let store_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("gatehouse-store")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the store runtime: {e}"))?;
    let store = store_runtime
        .block_on(Store::open(&config.store_url))
        .map_err(|e| format!("store.url: {e}"))?
        .on_runtime(store_runtime.handle().clone())
        .timed_by(metrics.store_seconds());
    let stored = store_runtime
        .block_on(store.list_users())
        .map_err(|e| e.to_string())?;
    check_clashes(&stored, &config)?;
    let first_change = store_runtime
        .block_on(store.last_change_id())
        .map_err(|e| e.to_string())?;
    let tokens = store_runtime.block_on(token_service(&config, &store))?;
    let smtp = config.smtp.clone();
    let mail_templates = config.mail_templates.clone();
    let retention = config.audit.retention;
    let app = App::new(
        config,
        metrics.clone(),
        echo_addr,
        Some(store.clone()),
        Arc::new(tokens),
        Some(store_runtime.handle().clone()),
    )?;
    let audit = AuditLog::start(store.clone(), metrics.clone(), store_runtime.handle());
    let portal = portal::router(Arc::new(PortalState {
        title: app.title.clone(),
        prefix: app.prefix.clone(),
        password_login: app.password_login,
        redirect: app.redirect.clone(),
        responder: app.responder.clone(),
        store: Some(store.clone()),
        metrics: metrics.clone(),
        mail: Arc::new(mail_templates),
        audit: audit.clone(),
    }));
    store_runtime.block_on(app.regulator().sync());
    match store_runtime.block_on(app.live().two_factor.reseal_all()) {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            resealed = n,
            "second-factor secrets moved to the new encryption key; previous_encryption_key can go"
        ),
        Err(e) => return Err(format!("two_factor.previous_encryption_key: {e}")),
    }
    let issuers = app.issuers().clone();
    store_runtime.spawn(async move { issuers.prefetch().await });
    store_runtime.spawn(follow_changes(store.clone(), app.clone(), first_change));
    let keep = app
        .regulator()
        .settings()
        .find_time
        .max(std::time::Duration::from_secs(3600));
    store_runtime.spawn(housekeeping(store.clone(), keep, retention));
    send_mail(&store_runtime, &store, smtp)?;
    if let Some(path) = config_path {
        // Registered now, so a SIGHUP right after start cannot kill the process.
        let hangup = {
            let _in_runtime = store_runtime.enter();
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| format!("cannot watch SIGHUP: {e}"))?
        };
        store_runtime.spawn(watch_config(path, hangup, app.clone(), store));
    }

    let run_dir = std::env::temp_dir().join(format!("gatehouse-{}", std::process::id()));
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
    let conf = ServerConf {
        threads: 1,
        work_stealing: false,
        grace_period_seconds: Some(grace),
        graceful_shutdown_timeout_seconds: Some(grace.max(1)),
        pid_file: run_dir.join("gatehouse.pid").display().to_string(),
        upgrade_sock: run_dir.join("upgrade.sock").display().to_string(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    // One single-threaded service per worker, each with its own upstream pool
    // and its own SO_REUSEPORT socket (the kernel spreads connections).
    // Pingora keys listening sockets by the address *text* and hands a second
    // service on the same text the first one's descriptor, so N owners closed
    // one socket N times at SIGTERM. Each worker gets its own spelling of the
    // same address (see `worker_address`), so each binds and closes its own.
    let in_flight = InFlight::default();
    for worker in 0..threads {
        let mut service = pingora::services::listening::Service::new(
            format!("gatehouse worker {worker}"),
            crate::proxy::worker(
                &server.configuration,
                app.clone(),
                portal.clone(),
                &in_flight,
            ),
        );
        service.threads = Some(1);
        let mut sock = TcpSocketOptions::default();
        sock.so_reuseport = Some(threads > 1);
        let address = worker_address(&listen, worker);
        match &tls {
            Some(t) => {
                let mut settings = TlsSettings::intermediate(
                    &t.cert_path.display().to_string(),
                    &t.key_path.display().to_string(),
                )
                .map_err(|e| format!("server.tls: {e}"))?;
                settings.enable_h2();
                service.add_tls_with_settings(&address, Some(sock), settings);
            }
            None => service.add_tcp_with_settings(&address, sock),
        }
        server.add_service(service);
    }
    if let Some(listener) = echo {
        server.add_service(background_service(
            "echo upstream",
            AxumTask {
                name: "echo",
                listener: Mutex::new(Some(listener)),
                metrics: None,
            },
        ));
    }
    if let Some(listener) = metrics_listener {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!("metrics on http://{addr}/metrics");
        }
        server.add_service(background_service(
            "metrics",
            AxumTask {
                name: "metrics",
                listener: Mutex::new(Some(listener)),
                metrics: Some(metrics),
            },
        ));
    }
    tracing::info!(%listen, workers = threads, %public_url, "gatehouse listening");
    let _keep_store_runtime = store_runtime;
    server.run(RunArgs {
        shutdown_signal: Box::new(GracefulStop {
            in_flight,
            audit,
            grace: Duration::from_secs(grace),
        }),
    });
    std::process::exit(0)
}

/// The token service: configured keys, else the store's generated key
/// (made on first start, shared by every replica, kept across restarts).
async fn token_service(config: &Config, store: &Store) -> Result<TokenService, String> {
    if !config.tokens.keys.is_empty() {
        return Ok(TokenService::new(
            &config.tokens,
            config.tokens.keys.clone(),
        ));
    }
    let mut stored = store.signing_keys().await.map_err(|e| e.to_string())?;
    if stored.is_empty() {
        let (kid, pem) = KeyMaterial::generate().map_err(|e| e.to_string())?;
        store
            .add_first_signing_key(&kid, &pem)
            .await
            .map_err(|e| e.to_string())?;
        stored = store.signing_keys().await.map_err(|e| e.to_string())?;
        tracing::info!("generated a token signing key (kept in the store; configure tokens.keys to manage keys yourself)");
    }
    let keys = stored
        .iter()
        .map(|(kid, pem)| {
            KeyMaterial::from_private_pem(kid, pem)
                .map_err(|e| format!("stored signing key `{kid}` {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TokenService::new(&config.tokens, keys))
}

/// Deliver the outbox through `smtp`, or say once that mail waits.
fn send_mail(
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    smtp: Option<crate::mail::SmtpSettings>,
) -> Result<(), String> {
    match smtp {
        Some(smtp) => {
            let sender =
                crate::mail::Sender::new(store.clone(), &smtp).map_err(|e| format!("smtp: {e}"))?;
            tracing::info!(server = %smtp.describe(), "mail goes out through SMTP");
            runtime.spawn(sender.run());
        }
        None => match runtime.block_on(store.unsent_mail_count()) {
            Ok(n) if n > 0 => tracing::warn!(
                waiting = n,
                "mail is not configured (no `smtp` section): mail waits in the outbox until it is"
            ),
            _ => tracing::info!(
                "mail is not configured (no `smtp` section): mail waits in the outbox until it is"
            ),
        },
    }
    Ok(())
}

/// Delete expired sessions, revoked tokens past their expiry, ended bans,
/// failures and feed entries nobody can need any more, and audit events
/// older than `retention`.
async fn housekeeping(store: Store, keep: std::time::Duration, retention: std::time::Duration) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = crate::store::unix_now();
        // `keep` is at least regulation's find_time, and at least an hour:
        // feed entries that old were read by every live replica.
        if let Err(e) = store.purge(now, now - keep.as_secs() as i64).await {
            tracing::debug!(error = %e, "housekeeping failed");
        }
        match store
            .prune_audit_events(now - retention.as_secs() as i64)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "audit events past audit.retention deleted"),
            Err(e) => tracing::debug!(error = %e, "audit pruning failed"),
        }
    }
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reload on SIGHUP, and when the file's modification time changes.
async fn watch_config(path: PathBuf, mut hangup: Signal, app: Arc<App>, store: Store) {
    let mut seen = modified(&path);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        let why = tokio::select! {
            _ = hangup.recv() => "SIGHUP",
            _ = tick.tick() => {
                let now = modified(&path);
                // A missing file (mid-replace, or removed) is not a new config.
                if now.is_none() || now == seen {
                    continue;
                }
                seen = now;
                "file changed"
            }
        };
        reload(&path, &app, &store, why).await;
    }
}

/// Load, validate and swap in a new configuration; keep the old one on any error.
async fn reload(path: &Path, app: &App, store: &Store, why: &str) {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            let errors: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            tracing::error!(trigger = why, errors = ?errors, "reload refused: the new configuration is invalid; keeping the running one");
            return;
        }
    };
    let clash = match store.list_users().await {
        Ok(stored) => check_clashes(&stored, &config),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = clash {
        tracing::error!(trigger = why, error = %e, "reload refused; keeping the running configuration");
        return;
    }
    app.reload(&config);
    tracing::info!(trigger = why, "configuration reloaded (roles, rules, users, api_keys, headers, cache; other sections apply at restart)");
}

/// Whether the setup page is open, so that its opening again (every user
/// disabled or deleted, here or anywhere) is logged as a warning.
struct SetupWatch {
    open: Option<bool>,
}

impl SetupWatch {
    async fn new(store: &Store, app: &App) -> Self {
        let live = app.live();
        let open = setup_is_open(live.gate.authenticator().directory(), store)
            .await
            .ok();
        SetupWatch { open }
    }

    /// After a change of users: warn when setup has just opened.
    async fn check(&mut self, store: &Store, app: &App) {
        let live = app.live();
        let directory = live.gate.authenticator().directory();
        let Ok(open) = setup_is_open(directory, store).await else {
            return;
        };
        if open && self.open == Some(false) {
            tracing::warn!(
                setup = %format!("{}/setup", app.prefix),
                "no enabled user remains: the setup page is open again, and anyone who reaches it can create an administrator; add or enable a user (gatehouse user add / enable)"
            );
        }
        self.open = Some(open);
    }
}

/// How often each replica reads the store's change feed.
const CHANGE_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Apply changes made anywhere (this replica, another one, the CLI) to the
/// local cache: a disabled user or changed role takes effect within a poll.
async fn follow_changes(store: Store, app: Arc<App>, mut last: i64) {
    let mut tick = tokio::time::interval(CHANGE_POLL);
    let mut failing = false;
    let mut setup = SetupWatch::new(&store, &app).await;
    loop {
        tick.tick().await;
        match store.changes_since(last).await {
            Ok(changes) => {
                if failing {
                    tracing::info!("store change feed is back");
                    failing = false;
                }
                let mut users_changed = false;
                for change in changes {
                    last = change.id;
                    let live = app.live();
                    let authn = live.gate.authenticator();
                    match change.kind.as_str() {
                        "user" => {
                            authn.invalidate_user(&change.subject);
                            users_changed = true;
                        }
                        "session" | "token" | "apikey" => authn.invalidate_revoked(&change.subject),
                        "ban" => app.regulator().sync().await,
                        _ => {}
                    }
                }
                if users_changed {
                    setup.check(&store, &app).await;
                }
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "cannot read the store change feed");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::whole_seconds;
    use std::time::Duration;

    #[test]
    fn each_worker_spells_the_listen_address_its_own_way() {
        use super::worker_address;
        let spelled: Vec<String> = (0..3).map(|n| worker_address("0.0.0.0:8080", n)).collect();
        assert_eq!(spelled, ["0.0.0.0:8080", "0.0.0.0:08080", "0.0.0.0:008080"]);
        assert_eq!(worker_address("[::1]:443", 1), "[::1]:0443");
        for text in &spelled {
            use std::net::ToSocketAddrs;
            let addr = text.to_socket_addrs().unwrap().next().unwrap();
            assert_eq!(addr, "0.0.0.0:8080".parse().unwrap(), "{text}");
        }
    }

    #[test]
    fn grace_periods_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(500)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(5)), 5);
        assert_eq!(whole_seconds(Duration::from_millis(5001)), 6);
    }
}
