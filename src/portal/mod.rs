//! The portal: everything Gatehouse answers itself under the prefix.
//!
//! An axum `Router`, called in-process by the proxy for paths under
//! `portal.prefix`, so handlers use ordinary extractors while the hot path
//! stays pure Pingora: health, readiness, info, the sign-in, `2fa`,
//! account and setup pages, and the JSON API for tokens, API keys and
//! second factors.

mod account;
mod api;
mod api_two_factor;
mod login;
mod second_factor;
mod setup;

use crate::redirect::RedirectPolicy;
use crate::respond::Responder;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use std::sync::Arc;

/// The client's address (after trusted proxies), as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

/// What the portal handlers share.
pub struct PortalState {
    pub title: String,
    pub prefix: String,
    pub redirect: RedirectPolicy,
    pub responder: Responder,
    /// Checked by `readyz`; keeps sessions.
    pub store: Option<crate::store::Store>,
    pub templates: minijinja::Environment<'static>,
}

/// The page templates, compiled into the binary.
pub fn templates() -> Result<minijinja::Environment<'static>, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.add_template("base.html", include_str!("../../templates/base.html"))?;
    env.add_template("login.html", include_str!("../../templates/login.html"))?;
    env.add_template("logout.html", include_str!("../../templates/logout.html"))?;
    env.add_template("setup.html", include_str!("../../templates/setup.html"))?;
    env.add_template(
        "two_factor.html",
        include_str!("../../templates/two_factor.html"),
    )?;
    env.add_template(
        "recovery_codes.html",
        include_str!("../../templates/recovery_codes.html"),
    )?;
    env.add_template("account.html", include_str!("../../templates/account.html"))?;
    Ok(env)
}

/// The portal's routes, nested under the prefix.
pub fn router(state: Arc<PortalState>) -> Router {
    let prefix = state.prefix.clone();
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/info", get(info))
        .route("/login", get(login::login_page).post(login::login_submit))
        .route(
            "/logout",
            get(login::logout_page).post(login::logout_submit),
        )
        .route("/setup", get(setup::setup_page).post(setup::setup_submit))
        .route(
            "/2fa",
            get(second_factor::code_form).post(second_factor::code_submit),
        )
        .route("/account", get(account::show))
        .route("/account/2fa", post(account::enrol))
        .route("/account/2fa/confirm", post(account::confirm))
        .route("/account/2fa/disable", post(account::disable))
        .route("/api/login", post(api::login))
        .route("/api/logout", post(api::logout))
        .route("/api/me", get(api::me))
        .route(
            "/api/me/api-keys",
            get(api::list_keys).post(api::create_key),
        )
        .route("/api/me/api-keys/{id}", delete(api::delete_key))
        .route(
            "/api/me/2fa",
            post(api_two_factor::enrol).delete(api_two_factor::disable),
        )
        .route("/api/me/2fa/confirm", post(api_two_factor::confirm))
        .route("/.well-known/jwks.json", get(api::jwks));
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
    s.responder
        .json(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such portal endpoint",
        )
        .into_response()
}
