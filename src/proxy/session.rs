//! Requests that are not plain (a body, an upgrade, `Expect`, HTTP/1.0,
//! the portal, a head pingora-core must refuse), served on pingora-core's
//! HTTP/1.1 sessions: the client's body streams up while the app's answer
//! streams down, in one `select!` loop, with no channels and no spawned
//! task. The relay (`super::relay`) hands each such request over with the
//! bytes it has read, and takes the connection back after it.

use super::front::{inet_ip, write_reply, Admitted};
use super::relay::{idempotent, Relay, KEEPALIVE_IDLE, WRITE_TIMEOUT};
use crate::upstream::hop;
use bytes::BytesMut;
use http::{Method, StatusCode};
use pingora::http::RequestHeader;
use pingora::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora::protocols::http::v1::server::HttpSession as ClientSession;
use pingora::protocols::http::{HttpTask, ServerSession};
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use pingora::{Error, ErrorType, Result};

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

/// Hand the connection back for its next request, if it can serve one.
async fn finish(session: ServerSession) -> Option<(Stream, Option<BytesMut>)> {
    match session.finish().await {
        Ok(Some(stream)) => Some(stream.into_parts()),
        _ => None,
    }
}

/// Relay one admitted request to the app and its answer back; `true`
/// when the client's connection can serve another request.
async fn forward(relay: &Relay, client: &mut ClientSession, admitted: &Admitted) -> Result<bool> {
    let has_body = !client.is_body_empty();
    let may_retry = idempotent(&client.req_header().method) && !has_body;
    let peer = &relay.front.app.upstream.peer;
    let mut pooled = relay.pool.take_idle();
    loop {
        let reused = pooled.is_some();
        let stream = match pooled.take() {
            Some(stream) => stream,
            None => relay.pool.connect(peer).await.map_err(upstream)?,
        };
        let mut app = UpstreamSession::new(stream);
        app.read_timeout = peer.options.read_timeout;
        app.write_timeout = Some(peer.options.write_timeout.unwrap_or(WRITE_TIMEOUT));
        let peer = inet_ip(client.client_addr());
        let built =
            relay
                .front
                .upstream_request(Some(admitted), peer, client.req_header(), has_body)?;
        match exchange(client, &mut app, Box::new(built.header), built.upgrade).await {
            Ok(ended) => {
                if ended.upstream_reusable {
                    app.respect_keepalive();
                    if let Some(stream) = app.reuse().await {
                        relay.pool.put_back(stream);
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

/// Serve one HTTP/1.1 request on `session` (whose first bytes may have
/// been read already: its pipelined prefix); the connection and any bytes
/// read past the request come back when it can serve another.
pub(super) async fn serve(
    relay: &Relay,
    mut session: ServerSession,
    shutdown: &ShutdownWatch,
) -> Option<(Stream, Option<BytesMut>)> {
    match session.read_request().await {
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
    let _counted = relay.in_flight.enter();
    if *shutdown.borrow() || relay.stopping() {
        session.set_keepalive(None);
    } else if session.get_keepalive().is_some() {
        session.set_keepalive(Some(KEEPALIVE_IDLE.as_secs()));
    }
    session.set_write_timeout(Some(WRITE_TIMEOUT));
    // Requests sent before the previous answer arrived are answered in
    // order (RFC 9112 §9.3.2), as nginx does.
    session.set_pipelining_enabled(true);
    let front = &relay.front;
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
            return finish(session).await;
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
    let reusable = match forward(relay, client, &admitted).await {
        Ok(reusable) => reusable,
        Err(e) => {
            front.fail(&mut session, &e).await;
            false
        }
    };
    front.log(&session, Some(&admitted));
    if reusable {
        finish(session).await
    } else {
        session.shutdown().await;
        None
    }
}
