//! The proxy path against an in-process upstream: streamed bodies both ways,
//! WebSocket upgrades, upstream connection reuse, and 502 when the app is down.

mod common;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "gh_upstreamTestKey0123456789abcdefABCDEFG";

/// An app that counts the TCP connections it accepts.
struct TestApp {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

async fn app(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    match req.uri().path() {
        "/count" => {
            let mut body = req.into_body();
            let mut n = 0usize;
            while let Some(frame) = body.frame().await {
                if let Some(d) = frame?.data_ref() {
                    n += d.len();
                }
            }
            Ok(hyper::Response::new(Full::new(Bytes::from(n.to_string()))))
        }
        "/big" => Ok(hyper::Response::new(Full::new(Bytes::from(vec![
            b'x';
            4 * 1024
                * 1024
        ])))),
        _ => Ok(hyper::Response::new(Full::new(Bytes::from_static(b"ok")))),
    }
}

async fn connection(stream: tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let mut is_ws = false;
    for _ in 0..50 {
        let n = stream.peek(&mut buf).await.unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
        if head.contains("\r\n\r\n") || n == 0 {
            is_ws = head.contains("upgrade: websocket");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    if is_ws {
        if let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await {
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_text() && ws.send(msg).await.is_err() {
                    break;
                }
            }
        }
        return;
    }
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service_fn(app))
        .await;
}

fn start_app() -> TestApp {
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let addr = serve_loopback(move |stream| {
        counter.fetch_add(1, Ordering::SeqCst);
        connection(stream)
    });
    TestApp { addr, connections }
}

fn gatehouse_for(upstream: &str) -> Gatehouse {
    Gatehouse::start(&format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}", threads: 2 }}
upstream: {{ url: "{upstream}" }}
rules:
  - {{ path: /open/**, policy: public }}
api_keys:
  - {{ name: k, hash: "{hash}", permissions: ["*"] }}
"#,
        hash = api_key_hash(KEY)
    ))
}

#[test]
fn request_and_response_bodies_stream_through() {
    let up = start_app();
    let g = gatehouse_for(&format!("http://{}", up.addr));
    let body = vec![7u8; 8 * 1024 * 1024];
    let r = client()
        .post(g.url("/count"))
        .header("x-api-key", KEY)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), (8 * 1024 * 1024).to_string());
    let r = client()
        .get(g.url("/big"))
        .header("x-api-key", KEY)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().unwrap().len(), 4 * 1024 * 1024);
}

#[test]
fn upstream_connections_are_reused() {
    let up = start_app();
    let g = gatehouse_for(&format!("http://{}", up.addr));
    let c = client();
    for _ in 0..50 {
        let r = c.get(g.url("/open/x")).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().unwrap(), "ok");
    }
    let opened = up.connections.load(Ordering::SeqCst);
    assert!(
        opened <= 2,
        "50 requests opened {opened} upstream connections"
    );
}

#[test]
fn websocket_upgrade_is_authenticated_then_proxied() {
    let up = start_app();
    let g = gatehouse_for(&format!("http://{}", up.addr));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut ws, resp) = websocket(g.port, Some(KEY))
            .await
            .expect("upgrade through gatehouse");
        assert_eq!(resp.status(), 101);
        ws.send(Message::text("hello")).await.unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed, Message::text("hello"));

        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let anonymous = format!("ws://127.0.0.1:{}/ws", g.port)
            .into_client_request()
            .unwrap();
        match tokio_tungstenite::connect_async(anonymous).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401)
            }
            other => panic!("anonymous upgrade was not refused: {other:?}"),
        }
    });
}

#[test]
fn upstream_down_is_a_502_not_a_hang() {
    let dead = free_port();
    let g = gatehouse_for(&format!("http://127.0.0.1:{dead}"));
    let r = client()
        .get(g.url("/x"))
        .header("x-api-key", KEY)
        .send()
        .unwrap();
    assert_eq!(r.status(), 502);
    let body: serde_json::Value = serde_json::from_str(&r.text().unwrap()).unwrap();
    assert_eq!(body["error"], "upstream_unavailable");
    let r = client()
        .get(g.url("/x"))
        .header("x-api-key", KEY)
        .header("accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().unwrap().contains("<html"));
    // Authentication still comes first: no credential, no upstream attempt.
    assert_eq!(client().get(g.url("/x")).send().unwrap().status(), 401);
}
