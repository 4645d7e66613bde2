//! The Pingora `ProxyHttp` implementation: orchestration only.
//!
//! `request_filter` refuses request-targets no rule can judge, and answers
//! forward-auth verify requests, portal paths and denials itself (with
//! keep-alive responses written by hand); `upstream_request_filter` is the
//! only place the upstream request changes. Per-request state lives in
//! [`RequestCtx`].

mod in_flight;
mod portal_bridge;

pub use in_flight::InFlight;

use crate::app::{App, Live};
use crate::forward_auth::{self, Endpoints};
use crate::gate::{Admission, Denial, RequestView};
use crate::metrics::DecisionLabel;
use crate::request::{canonical_host, request_path, AlsoRead, ReadError, REWRITE_HEADERS};
use crate::respond::{wants_html, Asker, Reply};
use crate::upstream::forwarding;
use crate::upstream::headers::MethodOverride;
use crate::upstream::headers::{self, HeaderSink};
use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{ErrorSource, ErrorType};
use std::net::IpAddr;
use std::sync::Arc;

/// One worker's proxy; all workers share the same [`App`].
pub struct GatehouseProxy {
    app: Arc<App>,
    verify: Endpoints,
    /// The portal's routes (`crate::portal::router`).
    portal: axum::Router,
    in_flight: in_flight::WorkerInFlight,
}

impl GatehouseProxy {
    /// A worker's proxy; every request it answers counts in `in_flight`.
    pub fn new(app: Arc<App>, portal: axum::Router, in_flight: &InFlight) -> Self {
        let verify = Endpoints::new(&app.prefix);
        GatehouseProxy {
            app,
            verify,
            portal,
            in_flight: in_flight.worker(),
        }
    }
}

/// Per-request state.
pub struct RequestCtx {
    /// The configuration snapshot this request is decided and rewritten with.
    live: Option<Arc<Live>>,
    admission: Option<Admission>,
    _in_flight: in_flight::InFlightGuard,
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// The same names as static bytes, spelled as before on the wire (lower
/// case): Pingora's `insert_header` takes the wire spelling, and from a
/// `HeaderName` it copies it into a fresh allocation on every request.
static X_FORWARDED_FOR_WIRE: bytes::Bytes = bytes::Bytes::from_static(b"x-forwarded-for");
static X_FORWARDED_PROTO_WIRE: bytes::Bytes = bytes::Bytes::from_static(b"x-forwarded-proto");
static X_FORWARDED_HOST_WIRE: bytes::Bytes = bytes::Bytes::from_static(b"x-forwarded-host");
static X_REAL_IP_WIRE: bytes::Bytes = bytes::Bytes::from_static(b"x-real-ip");

/// The request's host: authority of an absolute URI, else the Host header.
fn host_header(req: &RequestHeader) -> &str {
    req.uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            req.headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("")
}

/// The address of the connection's other end (`None` on a Unix socket).
pub(crate) fn peer_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// Write a complete response, keeping the connection alive.
pub async fn write_reply(session: &mut Session, reply: Reply) -> Result<()> {
    let mut resp = ResponseHeader::build(reply.status, Some(reply.headers.len() + 1))?;
    for (name, value) in reply.headers {
        resp.append_header(name, value)?;
    }
    resp.insert_header(http::header::CONTENT_LENGTH, reply.body.len())?;
    let head_only = session.req_header().method == Method::HEAD || reply.body.is_empty();
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(reply.body), true).await?;
    }
    Ok(())
}

struct UpstreamHeaders<'a>(&'a mut RequestHeader);

impl HeaderSink for UpstreamHeaders<'_> {
    fn remove(&mut self, name: &HeaderName) {
        self.0.remove_header(name);
    }
    fn set(&mut self, _name: &HeaderName, wire_name: &bytes::Bytes, value: HeaderValue) {
        let _ = self.0.insert_header(wire_name.clone(), value);
    }
    fn headers(&self) -> &HeaderMap {
        &self.0.headers
    }
}

impl GatehouseProxy {
    /// The URL the user was asking for, if it is one we may send them back to.
    fn original_url(&self, req: &RequestHeader) -> Option<String> {
        let host = host_header(req);
        let allowed = self.app.redirect.host_allowed(&canonical_host(host));
        let public = self.app.redirect.public_url();
        let path_and_query = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let url = if allowed && !host.is_empty() {
            format!("{}://{host}{path_and_query}", public.scheme())
        } else {
            format!(
                "{}{}",
                public.as_str().trim_end_matches('/'),
                path_and_query
            )
        };
        self.app.redirect.validate(&url).map(String::from)
    }
}

#[async_trait]
impl ProxyHttp for GatehouseProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx {
            live: None,
            admission: None,
            _in_flight: self.in_flight.enter(),
        }
    }

    /// No downstream modules: Pingora's default adds a (disabled) compression
    /// module whose per-request context costs allocations on every request.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        let app = &self.app;
        let req = session.req_header();
        // The path comes from the target as received: Pingora reads a target
        // that is not origin- or absolute-form (`admin/x`) as `/`, yet
        // forwards it unchanged, and some apps route it to `/admin/x`.
        let path = match request_path(&req.method, req.raw_path()) {
            Ok(path) => path,
            Err(e) => {
                app.metrics.request(DecisionLabel::BadRequest, None, 0.0);
                let denial = Denial::BadPath(ReadError::Target(e));
                let asker = Asker {
                    method: &req.method,
                    browser: wants_html(&req.headers),
                    return_to: None,
                };
                let reply = app.responder.denial(&denial, &asker);
                write_reply(session, reply).await?;
                return Ok(true);
            }
        };
        if let Some(flavor) = self.verify.route(path) {
            let peer = peer_ip(session);
            let req = session.req_header();
            let reply = forward_auth::answer(app, flavor, peer, &req.method, &req.headers).await;
            write_reply(session, reply).await?;
            return Ok(true);
        }
        if app.is_portal_path(path) {
            app.metrics.request(DecisionLabel::Portal, None, 0.0);
            portal_bridge::serve(session, app, &self.portal).await?;
            return Ok(true);
        }
        let peer = peer_ip(session);
        let live = app.live();
        let also = AlsoRead {
            method_overrides: live.headers.method_override == MethodOverride::Judge,
            // Rewrite headers from a trusted proxy reach the app; anyone
            // else's are removed before proxying.
            rewrite_headers: if peer.is_some_and(|ip| app.is_trusted_proxy(ip)) {
                &REWRITE_HEADERS
            } else {
                &[]
            },
        };
        let view = RequestView {
            method: &req.method,
            host: host_header(req),
            path,
            headers: &req.headers,
            client_ip: app.client_ip(peer, &req.headers),
            also,
        };
        let denial = match live.gate.check(&view).await {
            Ok(admission) => {
                ctx.admission = Some(admission);
                ctx.live = Some(live);
                return Ok(false);
            }
            Err(denial) => denial,
        };
        app.log_denial(&live, &denial, &req.method, path, view.client_ip);
        let browser = wants_html(&req.headers);
        let return_to = if browser {
            self.original_url(req)
        } else {
            None
        };
        let asker = Asker {
            method: &req.method,
            browser,
            return_to: return_to.as_deref(),
        };
        let reply = app.responder.denial(&denial, &asker);
        write_reply(session, reply).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        Ok(Box::new(self.app.upstream.peer.clone()))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        let app = &self.app;
        let (identity, consumed) = match &ctx.admission {
            Some(a) => (a.identity.as_deref(), a.consumed),
            None => (None, None),
        };
        // Borrowed, not cloned: each clone of the shared `Arc` is an atomic
        // increment and decrement on a cache line every worker writes.
        let fallback;
        let live: &Live = match &ctx.live {
            Some(live) => live,
            None => {
                fallback = app.live();
                &fallback
            }
        };
        headers::apply(
            &mut UpstreamHeaders(upstream_request),
            &live.headers,
            identity,
            consumed,
            &live.session.cookie_name,
        );

        if live.headers.method_override == MethodOverride::Strip {
            forwarding::strip_method_overrides(upstream_request);
        }
        let peer = peer_ip(session);
        let trusted = peer.is_some_and(|ip| app.is_trusted_proxy(ip));
        if !trusted {
            forwarding::strip_untrusted(upstream_request);
        }
        if let Some(ip) = peer {
            let existing = upstream_request
                .headers
                .get(&X_FORWARDED_FOR)
                .and_then(|v| v.to_str().ok())
                .filter(|_| trusted);
            let value = match existing {
                Some(chain) => format!("{chain}, {ip}"),
                None => ip.to_string(),
            };
            upstream_request.insert_header(X_FORWARDED_FOR_WIRE.clone(), value)?;
            if !trusted {
                upstream_request.insert_header(X_REAL_IP_WIRE.clone(), ip.to_string())?;
            }
        }
        if !(trusted && upstream_request.headers.contains_key(&X_FORWARDED_PROTO)) {
            upstream_request.insert_header(
                X_FORWARDED_PROTO_WIRE.clone(),
                HeaderValue::from_static(app.listener_scheme),
            )?;
        }
        if !(trusted && upstream_request.headers.contains_key(&X_FORWARDED_HOST)) {
            let host = host_header(session.req_header()).to_owned();
            if host.is_empty() {
                upstream_request.remove_header(&X_FORWARDED_HOST);
            } else {
                upstream_request.insert_header(X_FORWARDED_HOST_WIRE.clone(), host)?;
            }
        }
        forwarding::to_origin_form(upstream_request)?;
        Ok(())
    }

    /// One access-log event per request, at debug level (`RUST_LOG=gatehouse=debug`).
    /// The query string is left out: it may carry tokens.
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Self::CTX) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let req = session.req_header();
        let identity = ctx.admission.as_ref().and_then(|a| a.identity.as_deref());
        tracing::debug!(
            method = %req.method,
            path = req.uri.path(),
            status = session.response_written().map_or(0, |r| r.status.as_u16()),
            user = identity.map(|i| i.subject.as_str()),
            auth_method = identity.map(|i| i.method.as_str()),
            "request"
        );
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
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code == 502
            || matches!(
                e.etype(),
                ErrorType::ConnectTimedout | ErrorType::ConnectRefused
            )
        {
            self.app.metrics.upstream_error();
        }
        if code > 0 {
            let req = session.req_header();
            let browser = wants_html(&req.headers);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
            let responder = &self.app.responder;
            let reply = match code {
                502 => {
                    let retry = if browser {
                        self.original_url(req)
                    } else {
                        None
                    };
                    responder.upstream_down(browser, retry.as_deref())
                }
                400 => responder.error(
                    status,
                    "bad_request",
                    "the request could not be read",
                    browser,
                ),
                _ => responder.error(status, "internal_error", "the request failed", browser),
            };
            if let Err(write_err) = write_reply(session, reply).await {
                tracing::debug!(error = %write_err, "could not send the error response");
            }
        }
        if code >= 500 {
            tracing::warn!(status = code, error = %e, "request failed");
        } else {
            tracing::debug!(status = code, error = %e, "request ended early");
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }
}
