//! The portal: everything Gatehouse answers itself under the prefix.
//!
//! An axum `Router`, called in-process by the proxy for paths under
//! `portal.prefix`, so handlers use ordinary extractors while the hot path
//! stays pure Pingora. Today: health, readiness, info and the sign-in page.

use crate::redirect::RedirectPolicy;
use crate::respond::{Responder, PAGE_CSS};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

/// What the portal handlers share.
pub struct PortalState {
    pub title: String,
    pub prefix: String,
    pub redirect: RedirectPolicy,
    pub responder: Responder,
    /// Checked by `readyz`.
    pub store: Option<crate::store::Store>,
}

/// The portal's routes, nested under the prefix.
pub fn router(state: Arc<PortalState>) -> Router {
    let prefix = state.prefix.clone();
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/info", get(info))
        .route("/login", get(login_page));
    Router::new()
        .nest(&prefix, routes)
        .fallback(not_found)
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({"status": "ok"})),
    )
}

/// Ready while the store answers.
async fn readyz(State(s): State<Arc<PortalState>>) -> Response {
    let store_ok = match &s.store {
        Some(store) => store.ping().await.is_ok(),
        None => true,
    };
    let (status, body) = if store_ok {
        (StatusCode::OK, serde_json::json!({"status": "ready"}))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "store_unavailable", "message": "the store does not answer"}),
        )
    };
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

async fn info(State(s): State<Arc<PortalState>>) -> impl IntoResponse {
    Json(serde_json::json!({
        "name": "gatehouse",
        "version": env!("CARGO_PKG_VERSION"),
        "title": s.title,
        "portal_prefix": s.prefix,
        "public_url": s.redirect.public_url().as_str(),
    }))
}

async fn not_found(State(s): State<Arc<PortalState>>) -> Response {
    let reply = s.responder.json(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such portal endpoint",
    );
    (reply.status, reply.body).into_response()
}

#[derive(Deserialize)]
struct LoginQuery {
    rd: Option<String>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Placeholder sign-in page: the form-based login arrives with stored sessions.
async fn login_page(
    State(s): State<Arc<PortalState>>,
    Query(q): Query<LoginQuery>,
) -> impl IntoResponse {
    let target = q.rd.as_deref().and_then(|rd| s.redirect.validate(rd));
    let back = match &target {
        Some(url) => format!(
            "<p>You were on your way to <code>{}</code>.</p>",
            escape(url.as_str())
        ),
        None => String::new(),
    };
    let title = escape(&s.title);
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Sign in · {title}</title><style>{PAGE_CSS}</style></head><body><main>\
<p class=\"brand\">{title}</p><h1>Sign in required</h1>{back}\
<p>This page accepts HTTP credentials: send <code>Authorization: Basic …</code> \
with your user name and password, or an API key in <code>X-API-Key</code>.</p>\
<p>For example: <code>curl -u USER:PASSWORD URL</code></p></main></body></html>"
    );
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Html(body),
    )
}
