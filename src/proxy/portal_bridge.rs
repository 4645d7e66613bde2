//! Hands a Pingora session to the portal's axum `Router` and writes its
//! answer back: the seam between the data plane and the web handlers.

use super::front::{peer_ip, write_reply};
use crate::app::App;
use crate::portal::ClientIp;
use crate::respond::{wants_html, Reply};
use bytes::BytesMut;
use http::StatusCode;
use pingora::protocols::http::ServerSession;
use pingora::Result;
use tower::ServiceExt;

/// Largest request body a portal endpoint accepts.
const MAX_PORTAL_BODY: usize = 1024 * 1024;

pub async fn serve(session: &mut ServerSession, app: &App, portal: &axum::Router) -> Result<()> {
    let mut body = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > MAX_PORTAL_BODY {
            let reply = app.responder.error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "request bodies for the portal are limited to 1 MiB",
                wants_html(&session.req_header().headers),
            );
            session.set_keepalive(None);
            return write_reply(session, reply).await;
        }
        body.extend_from_slice(&chunk);
    }
    let peer = peer_ip(session);
    let head = session.req_header();
    let client = ClientIp(app.client_ip(peer, &head.headers));
    let mut request = http::Request::builder()
        .method(head.method.clone())
        .uri(head.uri.clone())
        .version(head.version)
        .extension(app.live())
        .extension(client);
    if let Some(headers) = request.headers_mut() {
        headers.extend(head.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let reply = match request.body(axum::body::Body::from(body.freeze())) {
        Ok(req) => {
            let response = match portal.clone().oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let mut headers = Vec::with_capacity(parts.headers.len());
            let mut last = None;
            for (name, value) in parts.headers {
                if name.is_some() {
                    last = name;
                }
                if let Some(n) = &last {
                    headers.push((n.clone(), value));
                }
            }
            Reply {
                status: parts.status,
                headers,
                body: bytes,
            }
        }
        Err(_) => app.responder.error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request could not be read",
            wants_html(&head.headers),
        ),
    };
    write_reply(session, reply).await
}
