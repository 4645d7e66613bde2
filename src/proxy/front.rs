//! What every proxied request goes through, on either path (the HTTP/1.1
//! relay and pingora-proxy for HTTP/2): reading its target, the forward-auth
//! and portal endpoints, the gate, the answer to a denial, the upstream
//! request's headers, the answer to a failed exchange, and the access log.

use super::portal_bridge;
use crate::app::{App, Live};
use crate::forward_auth::{self, Endpoints};
use crate::gate::{Admission, Denial, RequestView};
use crate::metrics::DecisionLabel;
use crate::request::{canonical_host, request_path, AlsoRead, ReadError, REWRITE_HEADERS};
use crate::respond::{wants_html, Asker, Reply};
use crate::upstream::headers::MethodOverride;
use crate::upstream::request::{Built, UpstreamRequest};
use http::{Method, StatusCode};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::ServerSession;
use pingora::{Error, ErrorSource, ErrorType, Result};
use std::net::IpAddr;
use std::sync::Arc;

/// The shared front of both proxy paths; one per worker.
pub struct Front {
    pub app: Arc<App>,
    verify: Endpoints,
    /// The portal's routes (`crate::portal::router`).
    portal: axum::Router,
}

/// A request the gate let through, with what its upstream headers need.
pub struct Admitted {
    /// The configuration snapshot it was decided and is rewritten with.
    pub live: Arc<Live>,
    pub admission: Admission,
}

/// What the front makes of a request.
pub enum Verdict {
    /// The gate let it through: relay it to the app.
    Proxy(Admitted),
    /// Answered here: a bad target, a forward-auth verdict, a denial.
    Reply(Reply),
    /// A portal page (`/_auth/...`).
    Portal,
}

/// The request's host: authority of an absolute URI, else the Host header.
pub fn host_header(req: &RequestHeader) -> &str {
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
pub fn peer_ip(session: &ServerSession) -> Option<IpAddr> {
    inet_ip(session.client_addr())
}

/// The IP of a socket address (`None` for a Unix socket or none at all).
pub fn inet_ip(addr: Option<&pingora::protocols::l4::socket::SocketAddr>) -> Option<IpAddr> {
    addr.and_then(|a| a.as_inet()).map(|a| a.ip())
}

/// Write a complete response, keeping the connection alive.
pub async fn write_reply(session: &mut ServerSession, reply: Reply) -> Result<()> {
    let mut resp = ResponseHeader::build(reply.status, Some(reply.headers.len() + 1))?;
    for (name, value) in reply.headers {
        resp.append_header(name, value)?;
    }
    resp.insert_header(http::header::CONTENT_LENGTH, reply.body.len())?;
    let head_only = session.req_header().method == Method::HEAD || reply.body.is_empty();
    session.write_response_header(Box::new(resp)).await?;
    if head_only {
        session.finish_body().await
    } else {
        session.write_response_body(reply.body, true).await
    }
}

/// How a failed exchange is answered: 504 when the app took too long to
/// answer, 502 when it could not be reached or broke off, 400 for a request that could
/// not be read, 0 when the client is gone.
fn failure_status(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        // An app that cannot be reached is down (502, even when the connect
        // timed out: the contract's "upstream down"); one that was reached
        // and then took too long is a 504.
        ErrorType::ReadTimedout | ErrorType::WriteTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            504
        }
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

impl Front {
    pub fn new(app: Arc<App>, portal: axum::Router) -> Self {
        let verify = Endpoints::new(&app.prefix);
        Front {
            app,
            verify,
            portal,
        }
    }

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

    /// Judge the request. `Some` when it may go upstream; `None` when it was
    /// answered here (a bad target, a forward-auth verdict, a portal page, a
    /// denial).
    pub async fn admit(&self, session: &mut ServerSession) -> Result<Option<Admitted>> {
        match self.decide(session.req_header(), peer_ip(session)).await {
            Verdict::Proxy(admitted) => Ok(Some(admitted)),
            Verdict::Reply(reply) => {
                write_reply(session, reply).await?;
                Ok(None)
            }
            Verdict::Portal => {
                self.app.metrics.request(DecisionLabel::Portal, None, 0.0);
                portal_bridge::serve(session, &self.app, &self.portal).await?;
                Ok(None)
            }
        }
    }

    /// What becomes of the request `req` from `peer`: proxied, answered
    /// here, or handed to the portal (which reads the request's body
    /// itself, so it is served on a pingora-core session).
    pub async fn decide(&self, req: &RequestHeader, peer: Option<IpAddr>) -> Verdict {
        let app = &self.app;
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
                return Verdict::Reply(app.responder.denial(&denial, &asker));
            }
        };
        if let Some(flavor) = self.verify.route(path) {
            let reply = forward_auth::answer(app, flavor, peer, &req.method, &req.headers).await;
            return Verdict::Reply(reply);
        }
        if app.is_portal_path(path) {
            return Verdict::Portal;
        }
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
            Ok(admission) => return Verdict::Proxy(Admitted { live, admission }),
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
        Verdict::Reply(app.responder.denial(&denial, &asker))
    }

    /// The request for the app (see `upstream::request`): what the client
    /// asked, with the admitted identity's headers, the consumed credential
    /// gone, and forwarding headers as a trusted proxy said or as Gatehouse
    /// sets them.
    pub fn upstream_request(
        &self,
        admitted: Option<&Admitted>,
        peer: Option<IpAddr>,
        asked: &RequestHeader,
        has_body: bool,
    ) -> Result<Built> {
        // Borrowed, not cloned: each clone of the shared `Arc` is an atomic
        // increment and decrement on a cache line every worker writes.
        let fallback;
        let live: &Live = match admitted {
            Some(a) => &a.live,
            None => {
                fallback = self.app.live();
                &fallback
            }
        };
        self.for_app(live, admitted, peer, asked, has_body).build()
    }

    /// The request for the app of an admitted plain request (no body, no
    /// upgrade, origin-form), written straight into `out`.
    pub fn write_upstream_request(
        &self,
        admitted: &Admitted,
        peer: Option<IpAddr>,
        asked: &RequestHeader,
        out: &mut Vec<u8>,
    ) {
        self.for_app(&admitted.live, Some(admitted), peer, asked, false)
            .write(out);
    }

    fn for_app<'a>(
        &self,
        live: &'a Live,
        admitted: Option<&'a Admitted>,
        peer: Option<IpAddr>,
        asked: &'a RequestHeader,
        has_body: bool,
    ) -> UpstreamRequest<'a> {
        let app = &self.app;
        UpstreamRequest {
            asked,
            host: host_header(asked),
            settings: &live.headers,
            identity: admitted.and_then(|a| a.admission.identity.as_deref()),
            consumed: admitted.and_then(|a| a.admission.consumed),
            cookie_name: &live.session.cookie_name,
            peer,
            trusted: peer.is_some_and(|ip| app.is_trusted_proxy(ip)),
            scheme: app.listener_scheme,
            has_body,
        }
    }

    /// One access-log event per request, at debug level (`RUST_LOG=gatehouse=debug`).
    pub fn log(&self, session: &ServerSession, admitted: Option<&Admitted>) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        self.log_request(session.req_header(), status, admitted);
    }

    /// The access-log event of `req`, answered with `status` (0: none).
    /// The query string is left out: it may carry tokens.
    pub fn log_request(&self, req: &RequestHeader, status: u16, admitted: Option<&Admitted>) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let identity = admitted.and_then(|a| a.admission.identity.as_deref());
        tracing::debug!(
            method = %req.method,
            path = req.uri.path(),
            status,
            user = identity.map(|i| i.subject.as_str()),
            auth_method = identity.map(|i| i.method.as_str()),
            "request"
        );
    }

    /// Answer a request whose exchange failed, if nothing was answered yet
    /// and the client is still there (see [`Front::failure`]). Returns the
    /// status (0: none).
    pub async fn fail(&self, session: &mut ServerSession, e: &Error) -> u16 {
        let answered = session.response_written().is_some();
        let (code, reply) = self.failure(session.req_header(), e, answered);
        if let Some(reply) = reply {
            session.set_keepalive(None);
            if let Err(write_err) = write_reply(session, reply).await {
                tracing::debug!(error = %write_err, "could not send the error response");
            }
        }
        code
    }

    /// The answer to a failed exchange of `req`: 502 when the app cannot be
    /// reached or broke off, 504 when it took too long, 400 for a request
    /// that could not be read; none once an answer has begun (`answered`)
    /// or when the client is gone. Counts and logs the failure once.
    pub fn failure(&self, req: &RequestHeader, e: &Error, answered: bool) -> (u16, Option<Reply>) {
        let status = failure_status(e);
        if status == 502 || status == 504 {
            self.app.metrics.upstream_error();
        }
        let code = if answered { 0 } else { status };
        if status >= 500 {
            tracing::warn!(status = code, error = %e, "request failed");
        } else {
            tracing::debug!(status = code, error = %e, "request ended early");
        }
        if code == 0 {
            return (0, None);
        }
        let browser = wants_html(&req.headers);
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
        let responder = &self.app.responder;
        let reply = match code {
            502 | 504 => {
                let retry = if browser {
                    self.original_url(req)
                } else {
                    None
                };
                responder.upstream_down(status, browser, retry.as_deref())
            }
            400 => responder.error(
                status,
                "bad_request",
                "the request could not be read",
                browser,
            ),
            _ => responder.error(status, "internal_error", "the request failed", browser),
        };
        (code, Some(reply))
    }
}
