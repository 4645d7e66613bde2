//! The built-in echo app (`upstream.url: "echo:"`): answers every request
//! with the request it received, as JSON. It listens on a loopback port and
//! is reached through the normal proxy path, so the demo and tests exercise
//! exactly what a real app would see.

use axum::body::Bytes;
use axum::extract::Request;
use axum::response::{IntoResponse, Json};
use axum::Router;
use serde_json::{json, Map, Value};

async fn echo(req: Request) -> impl IntoResponse {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&v);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(v));
            }
        }
    }
    Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_bytes": body.len(),
        "body": String::from_utf8_lossy(&body[..body.len().min(4096)]),
    }))
}

/// The echo app as a router.
pub fn router() -> Router {
    Router::new().fallback(echo)
}

/// Serve the echo app on an already-bound listener until the process ends.
pub async fn serve(listener: std::net::TcpListener) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(listener, router()).await
}
