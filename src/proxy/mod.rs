//! The proxy path, in the order a request meets it: the [`Front`] judges
//! and rewrites every request (`front`); HTTP/1.1 is relayed by [`Relay`]
//! (`relay`: plain requests with its own HTTP/1.1 code, `wire`; the rest on
//! pingora-core's sessions, `session`; `pool` for upstream connections);
//! HTTP/2 goes through pingora-proxy (`h2`).
//! Portal paths are handed to the portal's router (`portal_bridge`), and
//! requests in flight are counted for a graceful stop (`in_flight`).

mod front;
mod h2;
mod in_flight;
mod pool;
mod portal_bridge;
mod relay;
mod session;
mod wire;

pub use front::Front;
pub use in_flight::InFlight;
pub use relay::Relay;

use crate::app::App;
use pingora::server::configuration::ServerConf;
use std::sync::Arc;

/// One worker's proxy: the relay, with its own HTTP/2 fallback, both
/// counting their requests in `in_flight`.
pub fn worker(
    conf: &Arc<ServerConf>,
    app: Arc<App>,
    portal: axum::Router,
    in_flight: &InFlight,
) -> Relay {
    let front = Arc::new(Front::new(app, portal));
    let h2 = pingora::proxy::http_proxy(conf, h2::H2Proxy::new(front.clone(), in_flight.worker()));
    Relay::new(front, in_flight.worker(), h2)
}
