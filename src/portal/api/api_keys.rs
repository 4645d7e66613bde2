//! `api/me/api-keys`: the caller's stored API keys: list, create
//! (narrowed to a subset of the caller's permissions), revoke.

use crate::accounts::api_keys::{check_api_key, create_api_key, ApiKeyError, NewApiKey};
use crate::portal::context::{AccountReader, AccountWriter};
use crate::portal::json::{error, json_body, no_store, store_down, STORE_DOWN};
use crate::portal::PortalState;
use crate::store::unix_now;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;

fn key_json(k: &crate::store::StoredApiKey) -> serde_json::Value {
    let time = |t: i64| {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64),
        )
        .to_string()
    };
    serde_json::json!({
        "id": k.id,
        "name": k.name,
        "permissions": k.permissions,
        "expires_at": k.expires_at.map(time),
        "created_at": time(k.created_at),
    })
}

/// `GET api/me/api-keys`: the caller's live keys (never the keys themselves).
pub(in crate::portal) async fn list_keys(
    State(s): State<Arc<PortalState>>,
    AccountReader { identity, .. }: AccountReader,
) -> Response {
    let Some(store) = &s.store else {
        return store_down(&s, STORE_DOWN);
    };
    match store.list_api_keys(Some(&identity.subject)).await {
        Ok(keys) => no_store(
            Json(serde_json::json!({ "api_keys": keys.iter().map(key_json).collect::<Vec<_>>() }))
                .into_response(),
        ),
        Err(_) => store_down(&s, STORE_DOWN),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct NewKeyRequest {
    name: Option<String>,
    permissions: Option<Vec<String>>,
    /// Lifetime (`30d`, `12h`, or seconds); none: until revoked.
    expires_in: Option<serde_json::Value>,
}

/// `POST api/me/api-keys`: a new key acting as the caller, narrowed to a
/// subset of the caller's permissions; the key is in this answer only.
pub(in crate::portal) async fn create_key(
    State(s): State<Arc<PortalState>>,
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
        ApiKeyError::Store(_) => store_down(&s, STORE_DOWN),
    };
    let name = req.name.unwrap_or_else(|| "api".into());
    // The key is narrowed to a subset of the caller's own permissions.
    let within = Some(&identity.permissions);
    if let Err(e) = check_api_key(&name, req.permissions.as_deref(), within) {
        return refused(e);
    }
    let expires_at =
        match &req.expires_in {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => match n.as_u64() {
                Some(secs) if secs > 0 => Some(unix_now() + secs as i64),
                _ => return bad(
                    "`expires_in` must be a positive number of seconds or a duration like `30d`",
                ),
            },
            Some(serde_json::Value::String(d)) => match crate::config::parse_duration(d) {
                Ok(d) if !d.is_zero() => Some(unix_now() + d.as_secs() as i64),
                _ => return bad(
                    "`expires_in` must be a positive number of seconds or a duration like `30d`",
                ),
            },
            Some(_) => {
                return bad(
                    "`expires_in` must be a positive number of seconds or a duration like `30d`",
                )
            }
        };
    let Some(store) = &s.store else {
        return store_down(&s, STORE_DOWN);
    };
    let new = NewApiKey {
        name: &name,
        owner: &identity.subject,
        permissions: req.permissions.as_deref(),
        within,
        expires_at,
    };
    match create_api_key(store, new).await {
        Ok(created) => {
            let mut body = key_json(&created.stored);
            body["key"] = serde_json::Value::String(created.key);
            let mut resp = no_store(Json(body).into_response());
            *resp.status_mut() = StatusCode::CREATED;
            resp
        }
        Err(e) => refused(e),
    }
}

/// `DELETE api/me/api-keys/{id}`: revoke one of the caller's keys.
pub(in crate::portal) async fn delete_key(
    State(s): State<Arc<PortalState>>,
    AccountWriter { live, identity }: AccountWriter,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error(&s, StatusCode::NOT_FOUND, "not_found", "no such API key");
    };
    let Some(store) = &s.store else {
        return store_down(&s, STORE_DOWN);
    };
    match store.revoke_api_key(id, Some(&identity.subject)).await {
        Ok(sha256) => {
            live.gate.authenticator().invalidate_revoked(&sha256);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(crate::store::StoreError::NotFound(_)) => {
            error(&s, StatusCode::NOT_FOUND, "not_found", "no such API key")
        }
        Err(_) => store_down(&s, STORE_DOWN),
    }
}
