//! `api/openapi.json`: the OpenAPI 3.1 document of the JSON API, generated
//! from the handlers' `#[utoipa::path]` attributes and the types they read
//! and answer, so it cannot drift from them. [`ApiDoc`] lists every path
//! (`tests/openapi.rs` checks it against the router); the security schemes
//! are the credentials Gatehouse reads; the server is the configured prefix,
//! filled in per request.

use crate::app::Live;
use crate::portal::api::{
    accounts, api_keys, audit, auth, explain, password, sessions, sso, two_factor, users,
};
use crate::portal::json::no_store;
use crate::portal::PortalState;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi};

/// The name of the session cookie's security scheme.
const SESSION_COOKIE: &str = "session_cookie";

/// The document, without its server (that is the configured prefix).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse",
        version = env!("CARGO_PKG_VERSION"),
        description = "The JSON API of the Gatehouse portal. Paths are relative to the \
            portal prefix (the server below). Bodies are JSON; errors are \
            `{\"error\": \"<code>\", \"message\": \"…\"}` (`ErrorBody`), \
            and answers carry `Cache-Control: no-store`."
    ),
    paths(
        auth::login,
        auth::logout,
        auth::session,
        auth::token,
        auth::me,
        password::change,
        two_factor::enrol,
        two_factor::confirm,
        two_factor::disable,
        api_keys::list_keys,
        api_keys::create_key,
        api_keys::delete_key,
        sessions::list,
        sessions::revoke_others,
        sessions::revoke_one,
        accounts::register,
        accounts::registration_status,
        accounts::activation_resend,
        accounts::password_reset,
        accounts::password_reset_confirm,
        accounts::list_invitations,
        accounts::invite,
        accounts::revoke_invitation,
        sso::info,
        users::list_users,
        users::create_user,
        users::get_user,
        users::patch_user,
        users::delete_user,
        users::user_sessions,
        users::sign_out_user,
        users::reset_two_factor,
        users::user_api_keys,
        users::revoke_user_api_keys,
        users::revoke_user_api_key,
        users::roles,
        audit::list,
        explain::explain,
        document,
    ),
    modifiers(&SecuritySchemes),
    security(("basic" = []), ("bearer" = []), ("api_key" = []), ("session_cookie" = [])),
    tags(
        (name = "auth", description = "Signing in and out, tokens, single sign-on"),
        (name = "account", description = "The caller's own account"),
        (name = "registration", description = "Registration, activation, password reset"),
        (name = "admin", description = "Administration: users, invitations, roles, audit, explain"),
        (name = "meta", description = "This document"),
    )
)]
pub(in crate::portal) struct ApiDoc;

/// The credentials Gatehouse reads, as security schemes.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("A user name and password (`Authorization: Basic`)."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A token from `api/login` or `api/token` (EdDSA, verified with \
                         `.well-known/jwks.json` under the prefix), a token of a trusted \
                         external issuer, or an API key.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (`api/me/api-keys`). Keys cannot change their owner's account.",
            ))),
        );
        components.add_security_scheme(SESSION_COOKIE, session_cookie("gatehouse_session"));
    }
}

/// The session cookie called `name` (`session.cookie_name`).
fn session_cookie(name: &str) -> SecurityScheme {
    SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
        name,
        "The session of a browser signed in on the portal's pages, by single sign-on or \
         `api/session`. Changes made with it must come from the same origin.",
    )))
}

/// `GET api/openapi.json`: the document, with the configured prefix as its
/// server and the configured session cookie.
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapi_document",
    tag = "meta", security(()),
    responses((status = 200, description = "this OpenAPI 3.1 document", body = Object)))]
pub(in crate::portal) async fn document(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
) -> Response {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![Server::new(&s.prefix)]);
    if let Some(components) = doc.components.as_mut() {
        let cookie = session_cookie(&live.session.cookie_name);
        components.add_security_scheme(SESSION_COOKIE, cookie);
    }
    no_store(Json(doc).into_response())
}
