//! The HTTP/1.1 proxy path: a relay written on pingora-core, one per
//! worker. It reads each request of a connection, lets the [`Front`] judge
//! it, and relays it to the app over a pooled connection ([`UpstreamPool`]);
//! HTTP/2 connections are handed to pingora-proxy ([`H2Proxy`]).
//!
//! Plain requests — HTTP/1.1 without a body, an upgrade or `Expect`, which
//! is nearly every request a proxy sees — are read, judged and relayed here
//! with Gatehouse's own HTTP/1.1 code ([`wire`]): one copy of the head, no
//! session objects, the app's answer passed on as it comes. Every other
//! request goes to pingora-core's sessions (`session`), which read it again
//! from the same bytes and hand the connection back when done.
//!
//! Its duties, each tested in `tests/relay.rs`: bodies of any length both
//! ways (`Content-Length`, chunked, or ended by the app closing), an answer
//! the app gives before the whole upload is read, `Expect: 100-continue`,
//! upgrades (101, then bytes both ways until either side closes), CONNECT
//! refused, timeouts (connect, read, write, keep-alive idle), one retry on a
//! fresh connection when a pooled one turns out dead and the request can be
//! safely sent again, 502 and 504, the app's request cancelled when the
//! client goes away, and hop-by-hop headers ([`crate::upstream::hop`]).

use super::front::{inet_ip, Admitted, Front, Verdict};
use super::h2::H2Proxy;
use super::in_flight::WorkerInFlight;
use super::pool::UpstreamPool;
use super::session;
use super::wire::{self, Chunks, Framing, RequestHead, ResponseRead};
use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use http::Method;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::http::RequestHeader;
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use pingora::{Error, ErrorType};
use std::future::{poll_fn, Future};
use std::net::IpAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::timeout;

/// How long a client connection may sit idle between requests.
pub(super) const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// How long a client may take to send a request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one write to the client or to the app may wait.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest request or answer head read here; a longer request goes to
/// pingora-core (which refuses it), a longer answer is a 502.
const MAX_HEAD: usize = 64 * 1024;
/// How much is read at a time.
const READ_SIZE: usize = 16 * 1024;
/// Bytes of the app's body copied behind its head into one write.
const COALESCE: usize = 16 * 1024;

/// One worker's HTTP/1.1 relay (and its HTTP/2 fallback).
pub struct Relay {
    pub(super) front: Arc<Front>,
    pub(super) pool: UpstreamPool,
    pub(super) in_flight: WorkerInFlight,
    h2: Arc<HttpProxy<H2Proxy>>,
    stopping: AtomicBool,
    stop: Notify,
}

/// Methods whose request may be sent twice without changing the outcome
/// (RFC 9110 §9.2.2).
pub(super) fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// A client connection's buffers, kept from one request to the next.
struct Connection {
    stream: Stream,
    peer: Option<IpAddr>,
    /// Bytes read from the client and not yet served.
    read: BytesMut,
    /// What goes out to the client next.
    out: Vec<u8>,
    /// The request for the app.
    request: Vec<u8>,
    /// Bytes read from the app.
    app_read: BytesMut,
}

/// How a plain exchange with the app ended badly.
enum Broken {
    /// The app: answered with a 502 or 504 unless the answer has begun.
    /// `retry`: nothing reached the app's answer or the client, so a
    /// request that may be sent twice can go again on a new connection.
    App { error: Box<Error>, retry: bool },
    /// The client went away or could not be written to.
    Client,
}

fn app_error(etype: ErrorType, why: &'static str, retry: bool) -> Broken {
    Broken::App {
        error: Error::explain(etype, why).into_up(),
        retry,
    }
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

    pub(super) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Serve an HTTP/1.1 connection until either side ends it.
    async fn serve_connection(&self, stream: Stream, shutdown: &ShutdownWatch) {
        let digest = stream.get_socket_digest();
        let peer = inet_ip(digest.as_deref().and_then(|d| d.peer_addr()));
        let mut conn = Connection {
            stream,
            peer,
            read: BytesMut::with_capacity(READ_SIZE),
            out: Vec::with_capacity(1024),
            request: Vec::with_capacity(1024),
            app_read: BytesMut::new(),
        };
        let mut idle = false;
        loop {
            let head = loop {
                match wire::read_request(&conn.read) {
                    RequestHead::Partial if conn.read.len() < MAX_HEAD => {}
                    RequestHead::Partial => break RequestHead::Other,
                    head => break head,
                }
                // Once stopping, a connection waiting for its next request
                // is closed at once.
                let waiting = idle && conn.read.is_empty();
                if waiting && self.stopping() {
                    return;
                }
                let limit = if waiting {
                    KEEPALIVE_IDLE
                } else {
                    HEAD_TIMEOUT
                };
                conn.read.reserve(READ_SIZE);
                let read = tokio::select! {
                    biased;
                    read = within(limit, conn.stream.read_buf(&mut conn.read)) => read,
                    _ = self.stop.notified(), if waiting => return,
                };
                match read {
                    Some(Ok(n)) if n > 0 => {}
                    // Closed, broken or silent: nothing to answer.
                    _ => return,
                }
            };
            idle = true;
            // Counted from the verdict on: a stop waits for it.
            let counted = self.in_flight.enter();
            let plain = match head {
                RequestHead::Plain { req, len, close } => {
                    match self.front.decide(&req, conn.peer).await {
                        // The portal reads bodies and writes its pages
                        // through a pingora-core session.
                        Verdict::Portal => None,
                        verdict => Some((req, len, close, verdict)),
                    }
                }
                _ => None,
            };
            let Some((req, len, close, verdict)) = plain else {
                // Read again there, from the bytes read here (and counted there).
                drop(counted);
                match self.serve_session(conn.stream, conn.read, shutdown).await {
                    Some((stream, read)) => {
                        conn.stream = stream;
                        conn.read = read;
                        continue;
                    }
                    None => return,
                }
            };
            conn.read.advance(len);
            let close = close || *shutdown.borrow() || self.stopping();
            let reusable = match verdict {
                Verdict::Proxy(admitted) => {
                    self.relay_plain(&mut conn, &req, &admitted, close).await
                }
                Verdict::Reply(reply) => {
                    conn.out.clear();
                    wire::write_reply(&mut conn.out, &reply, req.method == Method::HEAD, close);
                    let sent = write_all(&mut conn.stream, &conn.out).await;
                    self.front.log_request(&req, reply.status.as_u16(), None);
                    sent
                }
                Verdict::Portal => false,
            };
            drop(counted);
            if !reusable || close {
                let _ = conn.stream.shutdown().await;
                return;
            }
        }
    }

    /// Serve one request on a pingora-core session, starting from the bytes
    /// already read; the connection and the bytes read past the request
    /// come back when it can serve another.
    async fn serve_session(
        &self,
        stream: Stream,
        read: BytesMut,
        shutdown: &ShutdownWatch,
    ) -> Option<(Stream, BytesMut)> {
        let mut session = ServerSession::new_http1(stream);
        if !read.is_empty() {
            session.set_pipelined_prefix(read);
        }
        let (stream, rest) = session::serve(self, session, shutdown).await?;
        Some((
            stream,
            rest.unwrap_or_else(|| BytesMut::with_capacity(READ_SIZE)),
        ))
    }

    /// Relay an admitted plain request to the app and its answer back;
    /// `true` when the client's connection can serve another request.
    async fn relay_plain(
        &self,
        conn: &mut Connection,
        req: &RequestHeader,
        admitted: &Admitted,
        close: bool,
    ) -> bool {
        let front = &self.front;
        conn.request.clear();
        front.write_upstream_request(admitted, conn.peer, req, &mut conn.request);
        let peer = &front.app.upstream.peer;
        let mut pooled = self.pool.take_idle();
        loop {
            let reused = pooled.is_some();
            let mut app = match pooled.take() {
                Some(stream) => stream,
                None => match self.pool.connect(peer).await {
                    Ok(stream) => stream,
                    Err(e) => return self.fail_plain(conn, req, &e.into_up()).await,
                },
            };
            let read_timeout = peer.options.read_timeout;
            match exchange(conn, &mut app, req, close, read_timeout).await {
                Ok((status, app_reusable)) => {
                    if app_reusable {
                        self.pool.put_back(app);
                    }
                    front.log_request(req, status, Some(admitted));
                    return true;
                }
                // A pooled connection the app closed just as it was taken:
                // nothing reached the app, so a request that may be sent
                // twice goes again, once, on a new connection.
                Err(Broken::App { retry: true, error }) if reused && idempotent(&req.method) => {
                    tracing::debug!(error = %error, "pooled upstream connection was dead; retrying on a new one");
                }
                // Nothing of the answer went to the client yet (a broken
                // body after its head ends the client's connection).
                Err(Broken::App { error, .. }) => {
                    return self.fail_plain(conn, req, &error).await;
                }
                Err(Broken::Client) => {
                    front.log_request(req, 0, Some(admitted));
                    return false;
                }
            }
        }
    }

    /// Answer a plain request whose exchange failed before any of the
    /// app's answer went to the client; the connection closes after it.
    async fn fail_plain(&self, conn: &mut Connection, req: &RequestHeader, error: &Error) -> bool {
        let (code, reply) = self.front.failure(req, error, false);
        if let Some(reply) = reply {
            conn.out.clear();
            wire::write_reply(&mut conn.out, &reply, req.method == Method::HEAD, true);
            write_all(&mut conn.stream, &conn.out).await;
        }
        self.front.log_request(req, code, None);
        false
    }
}

/// Run `io` within `limit`; `None` when it took longer. Most reads and
/// writes here are done at their first poll, and those arm no timer (a
/// timer costs a clock read and the timer wheel's lock, twice).
async fn within<F: Future>(limit: Duration, io: F) -> Option<F::Output> {
    let mut io = pin!(io);
    let first = poll_fn(|cx| {
        Poll::Ready(match io.as_mut().poll(cx) {
            Poll::Ready(done) => Some(done),
            Poll::Pending => None,
        })
    })
    .await;
    match first {
        Some(done) => Some(done),
        None => timeout(limit, io).await.ok(),
    }
}

/// Write all of `bytes` to `stream` within the write timeout; `None` when
/// it took longer.
async fn send(stream: &mut Stream, bytes: &[u8]) -> Option<std::io::Result<()>> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    within(WRITE_TIMEOUT, write).await
}

/// Write all of `bytes` to the client; `false` when it could not be.
async fn write_all(stream: &mut Stream, bytes: &[u8]) -> bool {
    matches!(send(stream, bytes).await, Some(Ok(())))
}

/// Read more of the app's answer into `app_read`, watching the client:
/// bytes it sends meanwhile are kept (a pipelined request); its closing
/// ends the exchange. `Ok(0)`: the app closed its connection.
async fn read_app(
    conn: &mut Connection,
    app: &mut Stream,
    read_timeout: Option<Duration>,
) -> Result<usize, Broken> {
    let Connection {
        stream,
        read,
        app_read,
        ..
    } = conn;
    app_read.reserve(READ_SIZE);
    let from_app = async {
        match read_timeout {
            Some(limit) => within(limit, app.read_buf(app_read)).await,
            None => Some(app.read_buf(app_read).await),
        }
    };
    tokio::pin!(from_app);
    loop {
        let watch = read.len() < MAX_HEAD;
        if watch {
            read.reserve(READ_SIZE);
        }
        tokio::select! {
            biased;
            got = &mut from_app => {
                return match got {
                    Some(Ok(n)) => Ok(n),
                    Some(Err(_)) => Err(app_error(ErrorType::ReadError, "reading the app's answer", true)),
                    None => Err(app_error(ErrorType::ReadTimedout, "the app did not answer in time", false)),
                };
            }
            got = stream.read_buf(read), if watch => {
                if !matches!(got, Ok(n) if n > 0) {
                    return Err(Broken::Client);
                }
            }
        }
    }
}

/// Send the plain request `req` (written for the app in `conn.request`) to the app and pass its answer on: the
/// answer's status and whether the app's connection can be reused.
async fn exchange(
    conn: &mut Connection,
    app: &mut Stream,
    req: &RequestHeader,
    close: bool,
    read_timeout: Option<Duration>,
) -> Result<(u16, bool), Broken> {
    match send(app, &conn.request).await {
        Some(Ok(())) => {}
        Some(Err(_)) => {
            return Err(app_error(ErrorType::WriteError, "writing to the app", true));
        }
        None => {
            return Err(app_error(
                ErrorType::WriteTimedout,
                "writing to the app",
                false,
            ));
        }
    }
    let head_request = req.method == Method::HEAD;
    conn.app_read.clear();
    // Interim answers (103 Early Hints) go on before the final one.
    let mut interim_sent = false;
    let head = loop {
        conn.out.clear();
        match wire::read_response(&conn.app_read, head_request, close, &mut conn.out) {
            ResponseRead::Head(head) if head.status == 101 => {
                return Err(app_error(
                    ErrorType::InvalidHTTPHeader,
                    "the app switched protocols unasked",
                    false,
                ));
            }
            ResponseRead::Head(head) if (100..200).contains(&head.status) => {
                conn.app_read.advance(head.len);
                if !write_all(&mut conn.stream, &conn.out).await {
                    return Err(Broken::Client);
                }
                interim_sent = true;
                continue;
            }
            ResponseRead::Head(head) => break head,
            ResponseRead::Invalid => {
                return Err(app_error(
                    ErrorType::InvalidHTTPHeader,
                    "the app's answer is malformed",
                    false,
                ));
            }
            ResponseRead::Partial if conn.app_read.len() >= MAX_HEAD => {
                return Err(app_error(
                    ErrorType::InvalidHTTPHeader,
                    "the app's answer head is too long",
                    false,
                ));
            }
            ResponseRead::Partial => {}
        }
        match read_app(conn, app, read_timeout).await {
            Ok(0) => {
                let nothing = conn.app_read.is_empty() && !interim_sent;
                return Err(app_error(
                    ErrorType::ConnectionClosed,
                    "the app closed its connection",
                    nothing,
                ));
            }
            Ok(_) => {}
            Err(Broken::App { error, retry }) => {
                return Err(Broken::App {
                    error,
                    retry: retry && conn.app_read.is_empty() && !interim_sent,
                });
            }
            Err(client) => return Err(client),
        }
    };
    conn.app_read.advance(head.len);
    let status = head.status;
    let done = pass_body(conn, app, head.framing, read_timeout).await?;
    Ok((status, head.keep_alive && done && conn.app_read.is_empty()))
}

/// Pass the app's body on after its head (waiting in `conn.out`), as
/// `framing` says; `true` when it ended where its framing says (the app's
/// connection is then clean for another request).
async fn pass_body(
    conn: &mut Connection,
    app: &mut Stream,
    framing: Framing,
    read_timeout: Option<Duration>,
) -> Result<bool, Broken> {
    let mut chunks = Chunks::default();
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    let mut head_sent = false;
    loop {
        // How many of the bytes read go on, how many belong to this body,
        // and whether it ends with them.
        let (pass, used, ended) = match framing {
            Framing::Empty => (0, 0, true),
            Framing::Length(_) => {
                let take = left.min(conn.app_read.len() as u64);
                left -= take;
                (take as usize, take as usize, left == 0)
            }
            Framing::Chunked => match chunks.follow(&conn.app_read) {
                Ok(f) => (f.pass, f.used, f.ended),
                // Once the head is out, the client's connection is all
                // that can end.
                Err(_) if head_sent => return Err(Broken::Client),
                Err(_) => {
                    return Err(app_error(
                        ErrorType::InvalidHTTPHeader,
                        "the app's chunked body is malformed",
                        false,
                    ))
                }
            },
            Framing::UntilClose => {
                let all = conn.app_read.len();
                (all, all, false)
            }
        };
        let body = &conn.app_read[..pass];
        if framing == Framing::UntilClose {
            if !body.is_empty() {
                wire::write_chunk(&mut conn.out, body);
            }
        } else if conn.out.len() + body.len() <= COALESCE {
            // A small answer goes out in one write, head and body.
            conn.out.extend_from_slice(body);
        } else {
            if !write_all(&mut conn.stream, &conn.out).await
                || !write_all(&mut conn.stream, body).await
            {
                return Err(Broken::Client);
            }
            conn.out.clear();
            head_sent = true;
        }
        conn.app_read.advance(used);
        if ended && framing == Framing::Chunked {
            // The empty trailer section.
            conn.out.extend_from_slice(b"\r\n");
        }
        if !conn.out.is_empty() {
            if !write_all(&mut conn.stream, &conn.out).await {
                return Err(Broken::Client);
            }
            conn.out.clear();
            head_sent = true;
        }
        if ended {
            return Ok(true);
        }
        match read_app(conn, app, read_timeout).await {
            Ok(0) if framing == Framing::UntilClose => {
                return if write_all(&mut conn.stream, b"0\r\n\r\n").await {
                    Ok(false)
                } else {
                    Err(Broken::Client)
                };
            }
            Ok(0) => return Err(Broken::Client),
            Ok(_) => {}
            // The app broke off mid-body: the client's connection ends
            // too, so the client sees the answer is incomplete.
            Err(_) => return Err(Broken::Client),
        }
    }
}

#[async_trait]
impl ServerApp for Relay {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.h2, stream, shutdown).await;
        }
        self.serve_connection(stream, shutdown).await;
        None
    }

    async fn cleanup(&self) {
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
