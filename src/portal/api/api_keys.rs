//! `api/me/api-keys`: the caller's stored API keys: list, create
//! (narrowed to a subset of the caller's permissions), revoke. The account
//! page creates and revokes through [`create_own_key`] and
//! [`revoke_own_key`] too.

use crate::accounts::api_keys::{
    check_api_key, create_api_key, expires_after, ApiKeyError, CreatedApiKey, NewApiKey,
};
use crate::app::Live;
use crate::audit::{action, AuditEvent, Outcome};
use crate::identity::Identity;
use crate::portal::context::{AccountReader, AccountWriter};
use crate::portal::json::{error, json_body, no_store, store_down, STORE_DOWN};
use crate::portal::PortalState;
use crate::respond::ErrorBody;
use crate::session::Origin;
use crate::store::{unix_now, StoreError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// A new key acting as `owner`, narrowed to a subset of the owner's own
/// permissions (`None`: all of them).
pub(in crate::portal) async fn create_own_key(
    s: &PortalState,
    origin: &Origin,
    owner: &Identity,
    name: &str,
    permissions: Option<&[String]>,
    expires_at: Option<i64>,
) -> Result<CreatedApiKey, ApiKeyError> {
    let new = NewApiKey {
        name,
        owner: &owner.subject,
        permissions,
        within: Some(&owner.permissions),
        expires_at,
    };
    let store = s.require_store()?;
    let created = create_api_key(store, new).await?;
    s.audit.record(
        AuditEvent::new(action::API_KEY_CREATE, Outcome::Success)
            .actor(&owner.subject)
            .origin(origin)
            .detail("key_id", created.stored.id)
            .detail("name", created.stored.name.clone()),
    );
    Ok(created)
}

/// Revoke `owner`'s key `id` everywhere (this replica's cache at once,
/// the others through the change feed). `NotFound` when `owner` has no
/// such live key.
pub(in crate::portal) async fn revoke_own_key(
    s: &PortalState,
    origin: &Origin,
    live: &Live,
    owner: &Identity,
    id: i64,
) -> Result<(), StoreError> {
    let store = s.require_store()?;
    let sha256 = store.revoke_api_key(id, Some(&owner.subject)).await?;
    live.gate.authenticator().invalidate_revoked(&sha256);
    s.audit.record(
        AuditEvent::new(action::API_KEY_REVOKE, Outcome::Success)
            .actor(&owner.subject)
            .origin(origin)
            .detail("key_id", id),
    );
    Ok(())
}

/// Unix seconds as RFC 3339 (`2030-01-01T00:00:00Z`).
pub(in crate::portal) fn rfc3339(t: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64),
    )
    .to_string()
}

/// A stored API key as the API shows it (never the key itself).
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct ApiKeyOut {
    id: i64,
    name: String,
    /// The permissions the key is narrowed to; null: its owner's.
    permissions: Option<Vec<String>>,
    expires_at: Option<String>,
    created_at: String,
}

pub(in crate::portal) fn key_json(k: &crate::store::StoredApiKey) -> ApiKeyOut {
    ApiKeyOut {
        id: k.id,
        name: k.name.clone(),
        permissions: k.permissions.clone(),
        expires_at: k.expires_at.map(rfc3339),
        created_at: rfc3339(k.created_at),
    }
}

/// Live API keys.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct ApiKeyList {
    pub api_keys: Vec<ApiKeyOut>,
}

/// A key just created: the stored key, and the key itself (shown once).
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct CreatedKeyOut {
    #[serde(flatten)]
    stored: ApiKeyOut,
    /// The key, for `X-API-Key` or `Authorization: Bearer`; never shown again.
    key: String,
}

/// `GET api/me/api-keys`: the caller's live keys (never the keys themselves).
#[utoipa::path(get, path = "/api/me/api-keys", operation_id = "list_own_api_keys", tag = "account",
    responses((status = 200, body = ApiKeyList),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: an API key, or an external issuer's token",
            body = ErrorBody)))]
pub(in crate::portal) async fn list_keys(
    State(s): State<Arc<PortalState>>,
    AccountReader { identity, .. }: AccountReader,
) -> Response {
    let Some(store) = &s.store else {
        return store_down(&s, STORE_DOWN);
    };
    match store.list_api_keys(Some(&identity.subject)).await {
        Ok(keys) => no_store(
            Json(ApiKeyList {
                api_keys: keys.iter().map(key_json).collect(),
            })
            .into_response(),
        ),
        Err(_) => store_down(&s, STORE_DOWN),
    }
}

/// A key to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct NewKeyRequest {
    /// 1-128 letters, digits, `_`, `-`, `.`, `@`; default `api`.
    name: Option<String>,
    /// A subset of the caller's permissions; none: all of them.
    permissions: Option<Vec<String>>,
    /// Lifetime (`30d`, `12h`, or seconds); none: until revoked.
    #[schema(schema_with = lifetime_schema)]
    expires_in: Option<serde_json::Value>,
}

/// `expires_in`: a duration (`30d`) or a number of seconds, or null.
fn lifetime_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            )
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}

/// `POST api/me/api-keys`: a new key acting as the caller, narrowed to a
/// subset of the caller's permissions; the key is in this answer only.
#[utoipa::path(post, path = "/api/me/api-keys", operation_id = "create_api_key",
    tag = "account", request_body = NewKeyRequest,
    responses((status = 201, body = CreatedKeyOut),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden` (an API key), `permission_not_allowed`, \
            `csrf_failed`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody)))]
pub(in crate::portal) async fn create_key(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    AccountWriter { identity, .. }: AccountWriter,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: NewKeyRequest = match json_body(&s, &headers, &body) {
        Ok(r) => r,
        Err(reply) => return reply.into_response(),
    };
    let bad = |msg: &str| error(&s, StatusCode::BAD_REQUEST, "invalid_request", msg);
    let refused = |e: ApiKeyError| match e {
        ApiKeyError::InvalidName => bad("`name` must be 1-128 letters, digits, `_`, `-`, `.`, `@`"),
        ApiKeyError::InvalidPermission(p) => {
            bad(&format!("`{p}` is not a permission like `posts:read`"))
        }
        ApiKeyError::NotAllowed(p) => error(
            &s,
            StatusCode::FORBIDDEN,
            "permission_not_allowed",
            &format!("you do not hold `{p}`, so your key cannot either"),
        ),
        ApiKeyError::InvalidLifetime => {
            bad("`expires_in` must be a positive number of seconds or a duration like `30d`")
        }
        ApiKeyError::Store(_) => store_down(&s, STORE_DOWN),
    };
    let name = req.name.unwrap_or_else(|| "api".into());
    // The key is narrowed to a subset of the caller's own permissions.
    let within = Some(&identity.permissions);
    if let Err(e) = check_api_key(&name, req.permissions.as_deref(), within) {
        return refused(e);
    }
    let lifetime = match &req.expires_in {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::String(d)) => Some(d.clone()),
        Some(_) => return refused(ApiKeyError::InvalidLifetime),
    };
    let expires_at = match lifetime.map(|l| expires_after(&l, unix_now())).transpose() {
        Ok(at) => at,
        Err(e) => return refused(e),
    };
    let permissions = req.permissions.as_deref();
    match create_own_key(&s, &origin, &identity, &name, permissions, expires_at).await {
        Ok(created) => {
            let body = CreatedKeyOut {
                stored: key_json(&created.stored),
                key: created.key,
            };
            let mut resp = no_store(Json(body).into_response());
            *resp.status_mut() = StatusCode::CREATED;
            resp
        }
        Err(e) => refused(e),
    }
}

/// `DELETE api/me/api-keys/{id}`: revoke one of the caller's keys.
#[utoipa::path(delete, path = "/api/me/api-keys/{id}", operation_id = "revoke_own_api_key",
    tag = "account",
    params(("id" = i64, Path, description = "the key's id")),
    responses((status = 204, description = "revoked"),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`, `csrf_failed`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(in crate::portal) async fn delete_key(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    AccountWriter { live, identity }: AccountWriter,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error(&s, StatusCode::NOT_FOUND, "not_found", "no such API key");
    };
    match revoke_own_key(&s, &origin, &live, &identity, id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(crate::store::StoreError::NotFound(_)) => {
            error(&s, StatusCode::NOT_FOUND, "not_found", "no such API key")
        }
        Err(_) => store_down(&s, STORE_DOWN),
    }
}
