//! The HTTP/1.1 proxy path: a relay written on pingora-core, one per
//! worker. It reads a request, lets the [`Front`] judge it, and relays it to
//! the app over a pooled connection ([`UpstreamPool`]), streaming both
//! bodies at once; HTTP/2 connections are handed to pingora-proxy
//! ([`H2Proxy`]).
//!
//! Its duties, each tested in `tests/relay.rs`: bodies of any length both
//! ways (`Content-Length`, chunked, or ended by the app closing), an answer
//! the app gives before the whole upload is read, `Expect: 100-continue`,
//! upgrades (101, then bytes both ways until either side closes), CONNECT
//! refused, timeouts (connect, read, write, keep-alive idle), one retry on a
//! fresh connection when a pooled one turns out dead and the request can be
//! safely sent again, 502 and 504, the app's request cancelled when the
//! client goes away, and hop-by-hop headers ([`hop`]).

use super::front::{inet_ip, write_reply, Admitted, Front};
use super::h2::H2Proxy;
use super::in_flight::WorkerInFlight;
use super::pool::UpstreamPool;
use crate::upstream::hop;
use async_trait::async_trait;
use http::{Method, StatusCode};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::http::RequestHeader;
use pingora::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora::protocols::http::v1::server::HttpSession as ClientSession;
use pingora::protocols::http::v2::server::H2Options;
use pingora::protocols::http::{HttpTask, ServerSession};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use pingora::{Error, ErrorType, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long a client connection may sit idle between requests.
const KEEPALIVE_IDLE_SECS: u64 = 60;
/// How long one write to the client or to the app may wait.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// One worker's HTTP/1.1 relay (and its HTTP/2 fallback).
pub struct Relay {
    front: Arc<Front>,
    pool: UpstreamPool,
    in_flight: WorkerInFlight,
    h2: Arc<HttpProxy<H2Proxy>>,
    stopping: AtomicBool,
    stop: Notify,
}

/// Why an exchange with the app failed, and whether the request may be
/// sent again on a new connection.
struct Failed {
    error: Box<Error>,
    retry: bool,
}

fn upstream(e: Box<Error>) -> Box<Error> {
    e.into_up()
}

fn downstream(e: Box<Error>) -> Box<Error> {
    e.into_down()
}

/// Methods whose request may be sent twice without changing the outcome
/// (RFC 9110 §9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

impl Relay {
    pub fn new(front: Arc<Front>, in_flight: WorkerInFlight, h2: HttpProxy<H2Proxy>) -> Self {
        Relay {
            front,
            pool: UpstreamPool::new(),
            in_flight,
            h2: Arc::new(h2),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
        }
    }

    /// Hand the connection back for its next request, if it can serve one.
    async fn finish(session: ServerSession) -> Option<ReusedHttpStream> {
        let settings = HttpPersistentSettings::for_session(&session);
        match session.finish().await {
            Ok(Some(stream)) => Some(ReusedHttpStream::from_reusable_stream(stream, settings)),
            _ => None,
        }
    }

    /// Relay one admitted request to the app and its answer back; `true`
    /// when the client's connection can serve another request.
    async fn forward(&self, client: &mut ClientSession, admitted: &Admitted) -> Result<bool> {
        let has_body = !client.is_body_empty();
        let may_retry = idempotent(&client.req_header().method) && !has_body;
        let peer = &self.front.app.upstream.peer;
        let mut pooled = self.pool.take_idle();
        loop {
            let reused = pooled.is_some();
            let stream = match pooled.take() {
                Some(stream) => stream,
                None => self.pool.connect(peer).await.map_err(upstream)?,
            };
            let mut app = UpstreamSession::new(stream);
            app.read_timeout = peer.options.read_timeout;
            app.write_timeout = Some(peer.options.write_timeout.unwrap_or(WRITE_TIMEOUT));
            let peer = inet_ip(client.client_addr());
            let built =
                self.front
                    .upstream_request(Some(admitted), peer, client.req_header(), has_body)?;
            match exchange(client, &mut app, Box::new(built.header), built.upgrade).await {
                Ok(ended) => {
                    if ended.upstream_reusable {
                        app.respect_keepalive();
                        if let Some(stream) = app.reuse().await {
                            self.pool.put_back(stream);
                        }
                    }
                    return Ok(ended.client_reusable);
                }
                // A pooled connection the app closed just as it was taken:
                // nothing reached the app, so a request that may be sent
                // twice goes again, once, on a new connection.
                Err(failed) if failed.retry && reused && may_retry => {
                    tracing::debug!(error = %failed.error, "pooled upstream connection was dead; retrying on a new one");
                }
                Err(failed) => return Err(failed.error),
            }
        }
    }
}

/// What an exchange leaves for the two connections.
struct Exchanged {
    client_reusable: bool,
    upstream_reusable: bool,
}

/// Send `req` and stream the client's body up while streaming the app's
/// answer down, until both are done (or either side goes away).
async fn exchange(
    client: &mut ClientSession,
    app: &mut UpstreamSession,
    req: Box<RequestHeader>,
    upgrade_asked: bool,
) -> std::result::Result<Exchanged, Failed> {
    let method = req.method.clone();
    let client_version = client.req_header().version;
    // Nothing has reached the app or the client yet: a failure before the
    // app's first byte may be retried on a new connection.
    let fresh = |error: Box<Error>, app: &UpstreamSession, client: &ClientSession| Failed {
        retry: app.resp_header().is_none()
            && client.response_written().is_none()
            && matches!(
                error.etype(),
                ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
            ),
        error,
    };
    if let Err(e) = app.write_request_header(req).await {
        return Err(fresh(upstream(e), app, client));
    }
    let mut request_done = client.is_body_done();
    if request_done {
        if let Err(e) = app.finish_body().await {
            return Err(fresh(upstream(e), app, client));
        }
    }
    let mut response_done = false;
    let mut upgraded = false;
    let failed = |error: Box<Error>| Failed {
        error,
        retry: false,
    };
    while !(request_done && response_done) {
        tokio::select! {
            body = client.read_body_or_idle(request_done) => {
                match body.map_err(downstream).map_err(failed)? {
                    Some(bytes) => {
                        if upgraded {
                            app.maybe_upgrade_body_writer();
                        }
                        // A read can yield only chunk framing: no data. An
                        // empty chunk written up would end the body there.
                        if !bytes.is_empty() {
                            app.write_body(&bytes).await.map_err(upstream).map_err(failed)?;
                        }
                        if !upgraded && client.is_body_done() {
                            app.finish_body().await.map_err(upstream).map_err(failed)?;
                            request_done = true;
                        }
                    }
                    None => {
                        // The body ended; after an upgrade, the client closed.
                        if upgraded {
                            app.maybe_upgrade_body_writer();
                            response_done = true;
                        }
                        app.finish_body().await.map_err(upstream).map_err(failed)?;
                        request_done = true;
                    }
                }
            }
            task = app.read_response_task(), if !response_done => {
                let task = match task {
                    Ok(task) => task,
                    Err(e) => return Err(fresh(upstream(e), app, client)),
                };
                match task {
                    HttpTask::Header(mut header, end) => {
                        let status = header.status;
                        if status == StatusCode::SWITCHING_PROTOCOLS && !upgrade_asked {
                            return Err(failed(Error::explain(
                                ErrorType::InvalidHTTPHeader,
                                "the app switched protocols unasked",
                            ).into_up()));
                        }
                        hop::response(&mut header, &method, client_version, end);
                        client.write_response_header(header).await.map_err(downstream).map_err(failed)?;
                        if status == StatusCode::SWITCHING_PROTOCOLS {
                            upgraded = client.was_upgraded();
                            request_done = !upgraded;
                            response_done = !upgraded;
                        } else if !status.is_informational() && end {
                            client.finish_body().await.map_err(downstream).map_err(failed)?;
                            response_done = true;
                        }
                    }
                    HttpTask::Body(data, end) | HttpTask::UpgradedBody(data, end) => {
                        if let Some(data) = data.filter(|d| !d.is_empty()) {
                            client.write_body(&data).await.map_err(downstream).map_err(failed)?;
                        }
                        if end {
                            client.finish_body().await.map_err(downstream).map_err(failed)?;
                            response_done = true;
                            // An upgraded connection ends when either side does.
                            request_done |= upgraded;
                        }
                    }
                    HttpTask::Done => {
                        client.finish_body().await.map_err(downstream).map_err(failed)?;
                        response_done = true;
                    }
                    HttpTask::Trailer(_) => {}
                    HttpTask::Failed(e) => return Err(failed(upstream(e))),
                }
                // The app answered before reading the whole upload: the
                // client's connection closes after this answer (Pingora
                // turns keep-alive off), and the app's cannot be reused.
                if response_done && !request_done {
                    return Ok(Exchanged {
                        client_reusable: false,
                        upstream_reusable: false,
                    });
                }
            }
        }
    }
    Ok(Exchanged {
        client_reusable: !upgraded,
        upstream_reusable: !upgraded,
    })
}

#[async_trait]
impl HttpServerApp for Relay {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        if !matches!(session, ServerSession::H1(_)) {
            return self.h2.process_new_http(session, shutdown).await;
        }
        // Once stopping, a kept-alive connection takes no new request, and
        // one waiting for its next request is closed at once.
        if self.stopping.load(Ordering::Relaxed) {
            return None;
        }
        let read = tokio::select! {
            biased;
            read = session.read_request() => read,
            _ = self.stop.notified() => return None,
        };
        match read {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                if matches!(e.etype(), ErrorType::InvalidHTTPHeader) {
                    let _ = session.respond_error(400).await;
                }
                session.shutdown().await;
                return None;
            }
        }
        let _counted = self.in_flight.enter();
        if *shutdown.borrow() {
            session.set_keepalive(None);
        } else if session.get_keepalive().is_some() {
            session.set_keepalive(Some(KEEPALIVE_IDLE_SECS));
        }
        session.set_write_timeout(Some(WRITE_TIMEOUT));
        // Requests sent before the previous answer arrived are answered in
        // order (RFC 9112 §9.3.2), as nginx does.
        session.set_pipelining_enabled(true);
        let front = &self.front;
        if session.req_header().method == Method::CONNECT {
            let reply = front.app.responder.error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "CONNECT is not served",
                false,
            );
            session.set_keepalive(None);
            let _ = write_reply(&mut session, reply).await;
            front.log(&session, None);
            return None;
        }
        let admitted = match front.admit(&mut session).await {
            Ok(Some(admitted)) => admitted,
            Ok(None) => {
                front.log(&session, None);
                return Self::finish(session).await;
            }
            Err(e) => {
                front.fail(&mut session, &e).await;
                front.log(&session, None);
                return None;
            }
        };
        let ServerSession::H1(client) = &mut session else {
            return None;
        };
        let reusable = match self.forward(client, &admitted).await {
            Ok(reusable) => reusable,
            Err(e) => {
                front.fail(&mut session, &e).await;
                false
            }
        };
        front.log(&session, Some(&admitted));
        if reusable {
            Self::finish(session).await
        } else {
            session.shutdown().await;
            None
        }
    }

    fn h2_options(&self) -> Option<H2Options> {
        self.h2.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.h2.server_options()
    }

    async fn http_cleanup(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.stop.notify_waiters();
        self.h2.http_cleanup().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_methods_are_sent_twice() {
        for m in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"] {
            assert!(idempotent(&m.parse().unwrap()), "{m}");
        }
        for m in ["POST", "PATCH", "LOCK"] {
            assert!(!idempotent(&m.parse().unwrap()), "{m}");
        }
    }
}
