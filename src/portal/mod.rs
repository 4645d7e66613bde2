//! The portal: everything Gatehouse answers itself under the prefix.
//!
//! An axum `Router` (built by the server, called in-process by the proxy for
//! paths under `portal.prefix`), so handlers use ordinary extractors while
//! the hot path stays pure Pingora. Where things live:
//!
//! - `sign_in`: the domain steps shared by pages and API (password and
//!   second factor under regulation, re-authentication, starting a session);
//! - `password`: changing your own password (account page and API);
//! - `context`: who is asking (the caller's identity, the account owner);
//! - `csrf`: the forms' double-submit token and the same-origin proofs;
//! - `json` / `html`: the one error → answer map of the API and of the pages
//!   (and a browser gets a page for every error under the prefix);
//! - `pages/`: sign-in and sign-out, the `2fa` step, account, setup;
//! - `api/`: `auth` (login, logout, session, me, jwks), `api_keys`,
//!   `password`, `two_factor`, …; `openapi`, the document describing them
//!   all (`api/openapi.json`);
//! - this file: the routes, health, readiness, info and the favicon.

mod api;
mod context;
mod csrf;
mod html;
mod json;
mod pages;
mod password;
mod self_service;
mod sign_in;

use crate::audit::{AuditEvent, Outcome};
use crate::redirect::RedirectPolicy;
use crate::respond::Responder;
use crate::session::Origin;
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
    /// The sign-in page shows the password form (`portal.password_login`).
    pub password_login: bool,
    pub redirect: RedirectPolicy,
    /// Every answer's shape, and the page templates.
    pub responder: Responder,
    /// Checked by `readyz`; keeps sessions.
    pub store: Option<crate::store::Store>,
    /// Counts single sign-ons.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The mails the portal sends (built in, or from `smtp.templates_dir`).
    pub mail: Arc<crate::mail::MailTemplates>,
    /// Where security events go.
    pub audit: crate::audit::AuditLog,
}

impl PortalState {
    /// The store, or `Unavailable` when this portal runs without one.
    pub(crate) fn require_store(&self) -> Result<&crate::store::Store, crate::store::StoreError> {
        self.store
            .as_ref()
            .ok_or_else(|| crate::store::StoreError::Unavailable("no store".into()))
    }

    /// Put on the audit trail that `actor` did `action` to their own
    /// account from `origin`.
    pub(crate) fn audit_own(&self, action: &'static str, actor: &str, origin: &Origin) {
        self.audit.record(
            AuditEvent::new(action, Outcome::Success)
                .actor(actor)
                .origin(origin),
        );
    }

    /// `{public_url}{prefix}{path}`: a portal URL for mails and providers.
    pub(crate) fn public(&self, path: &str) -> String {
        format!(
            "{}{}{path}",
            self.redirect.public_url().as_str().trim_end_matches('/'),
            self.prefix
        )
    }
}

/// The portal's routes, nested under the prefix.
pub fn router(state: Arc<PortalState>) -> Router {
    let prefix = state.prefix.clone();
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/info", get(info))
        .route(
            "/login",
            get(pages::login::login_page).post(pages::login::login_submit),
        )
        .route(
            "/logout",
            get(pages::login::logout_page).post(pages::login::logout_submit),
        )
        .route(
            "/setup",
            get(pages::setup::setup_page).post(pages::setup::setup_submit),
        )
        .route(
            "/2fa",
            get(pages::second_factor::code_form).post(pages::second_factor::code_submit),
        )
        .route("/oidc/{id}/authorize", get(pages::sso::authorize))
        .route("/oidc/callback", get(pages::sso::callback))
        .route(
            "/oidc/backchannel-logout",
            post(api::sso::backchannel_logout),
        )
        .route("/api/sso/info", get(api::sso::info))
        .route("/api/token", post(api::auth::token))
        .route("/account", get(pages::account::show))
        .route("/account/2fa", post(pages::account::enrol))
        .route("/account/2fa/confirm", post(pages::account::confirm))
        .route("/account/2fa/disable", post(pages::account::disable))
        .route(
            "/account/password",
            post(pages::account::change_password_submit),
        )
        .route("/account/api-keys", post(pages::account::create_key))
        .route("/account/api-keys/revoke", post(pages::account::revoke_key))
        .route(
            "/account/sessions/revoke",
            post(pages::account::revoke_session),
        )
        .route("/api/session", post(api::auth::session))
        .route(
            "/register",
            get(pages::accounts::register_page).post(pages::accounts::register_submit),
        )
        .route(
            "/activate",
            get(pages::accounts::activate_page).post(pages::accounts::activate_submit),
        )
        .route(
            "/reset",
            get(pages::accounts::reset_page).post(pages::accounts::reset_submit),
        )
        .route(
            "/reset/confirm",
            post(pages::accounts::reset_confirm_submit),
        )
        .route("/admin", get(pages::admin::home))
        .route(
            "/admin/users",
            get(pages::admin::users).post(pages::admin::create_user),
        )
        .route("/admin/users/new", get(pages::admin::new_user))
        .route(
            "/admin/users/{id}",
            get(pages::admin::show_user).post(pages::admin::update_user),
        )
        .route("/admin/users/{id}/delete", post(pages::admin::delete_user))
        .route(
            "/admin/users/{id}/signout",
            post(pages::admin::sign_out_user),
        )
        .route(
            "/admin/users/{id}/reset-2fa",
            post(pages::admin::reset_two_factor),
        )
        .route(
            "/admin/users/{id}/api-keys/revoke",
            post(pages::admin::revoke_keys),
        )
        .route("/api/register", post(api::accounts::register))
        .route(
            "/api/registration-status",
            get(api::accounts::registration_status),
        )
        .route(
            "/api/activation/resend",
            post(api::accounts::activation_resend),
        )
        .route("/api/password-reset", post(api::accounts::password_reset))
        .route(
            "/api/password-reset/confirm",
            post(api::accounts::password_reset_confirm),
        )
        .route(
            "/api/invitations",
            get(api::accounts::list_invitations).post(api::accounts::invite),
        )
        .route(
            "/api/invitations/{id}",
            delete(api::accounts::revoke_invitation),
        )
        .route("/api/me/password", post(api::password::change))
        .route("/api/login", post(api::auth::login))
        .route("/api/logout", post(api::auth::logout))
        .route("/api/me", get(api::auth::me))
        .route(
            "/api/me/api-keys",
            get(api::api_keys::list_keys).post(api::api_keys::create_key),
        )
        .route("/api/me/api-keys/{id}", delete(api::api_keys::delete_key))
        .route(
            "/api/me/2fa",
            post(api::two_factor::enrol).delete(api::two_factor::disable),
        )
        .route("/api/me/2fa/confirm", post(api::two_factor::confirm))
        .route(
            "/api/me/sessions",
            get(api::sessions::list).delete(api::sessions::revoke_others),
        )
        .route("/api/me/sessions/{id}", delete(api::sessions::revoke_one))
        .route(
            "/api/users",
            get(api::users::list_users).post(api::users::create_user),
        )
        .route(
            "/api/users/{id}",
            get(api::users::get_user)
                .patch(api::users::patch_user)
                .delete(api::users::delete_user),
        )
        .route(
            "/api/users/{id}/sessions",
            get(api::users::user_sessions).delete(api::users::sign_out_user),
        )
        .route(
            "/api/users/{id}/reset-2fa",
            post(api::users::reset_two_factor),
        )
        .route(
            "/api/users/{id}/api-keys",
            get(api::users::user_api_keys).delete(api::users::revoke_user_api_keys),
        )
        .route(
            "/api/users/{id}/api-keys/{key}",
            delete(api::users::revoke_user_api_key),
        )
        .route("/api/roles", get(api::users::roles))
        .route("/api/audit", get(api::audit::list))
        .route("/api/explain", get(api::explain::explain))
        .route("/api/openapi.json", get(api::openapi::document))
        .route("/.well-known/jwks.json", get(api::auth::jwks))
        .route("/favicon.svg", get(favicon));
    Router::new()
        .nest(&prefix, routes)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            html::pages_for_browsers,
        ))
        .with_state(state)
}

/// The favicon every page links to: public, cached for a day.
async fn favicon(State(s): State<Arc<PortalState>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        s.responder.favicon(),
    )
        .into_response()
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
