//! HTTP/2 (TLS, negotiated by ALPN) on pingora-proxy's `ProxyHttp`: the
//! [`Front`] decides and rewrites, pingora-proxy streams. HTTP/1.1 never
//! comes here: the relay (`super::relay`) serves it.

use super::front::{peer_ip, Admitted, Front};
use super::in_flight::{InFlightGuard, WorkerInFlight};
use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;

/// One worker's HTTP/2 proxy.
pub struct H2Proxy {
    front: Arc<Front>,
    in_flight: WorkerInFlight,
}

impl H2Proxy {
    pub fn new(front: Arc<Front>, in_flight: WorkerInFlight) -> Self {
        H2Proxy { front, in_flight }
    }
}

/// Per-request state.
pub struct RequestCtx {
    admitted: Option<Admitted>,
    _in_flight: InFlightGuard,
}

#[async_trait]
impl ProxyHttp for H2Proxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx {
            admitted: None,
            _in_flight: self.in_flight.enter(),
        }
    }

    /// No downstream modules: Pingora's default adds a (disabled) compression
    /// module whose per-request context costs allocations on every request.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        ctx.admitted = self.front.admit(session).await?;
        Ok(ctx.admitted.is_none())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        Ok(Box::new(self.front.app.upstream.peer.clone()))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        let peer = peer_ip(session);
        // pingora-proxy has framed the request and removed its hop-by-hop
        // headers already; the built request replaces its copy whole.
        let built =
            self.front
                .upstream_request(ctx.admitted.as_ref(), peer, upstream_request, false)?;
        *upstream_request = built.header;
        Ok(())
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Self::CTX) {
        self.front.log(session, ctx.admitted.as_ref());
    }

    /// Failures are logged once, by `fail_to_proxy`, with Gatehouse's fields.
    fn suppress_error_log(&self, _session: &Session, _ctx: &Self::CTX, _error: &Error) -> bool {
        true
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut Self::CTX,
    ) -> FailToProxy {
        FailToProxy {
            error_code: self.front.fail(session, e).await,
            can_reuse_downstream: false,
        }
    }
}
