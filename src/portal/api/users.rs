//! `api/users`, `api/roles`: administering users over JSON, through the
//! same [`Admin`] operations as the admin pages and `gatehouse user`.
//! Reading needs `users:get`, changing `users:manage` (the
//! [`Administrator`] extractor checks it); every change goes on the audit
//! trail and drops this replica's cached identities of the user at once
//! (the change feed tells the other replicas).

use crate::accounts::admin::{Admin, AdminError, ManagedUser, NewUserInput, UserFilter, UserPatch};
use crate::app::Live;
use crate::audit::AuditEvent;
use crate::portal::api::api_keys::{key_json, rfc3339, ApiKeyList};
use crate::portal::api::sessions::{session_out, SessionList};
use crate::portal::api::two_factor::TwoFactorStatus;
use crate::portal::context::{Administrator, ManagesUsers, ReadsUsers};
use crate::portal::json::{json_body, no_store, store_down, STORE_DOWN};
use crate::portal::PortalState;
use crate::respond::ErrorBody;
use crate::session::Origin;
use crate::store::unix_now;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// A user as the admin API shows one.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct UserOut {
    /// The stored id; null for users declared in the config file.
    id: Option<i64>,
    username: String,
    email: Option<String>,
    name: Option<String>,
    /// `user` (a person) or `api` (a machine).
    #[serde(rename = "type")]
    kind: &'static str,
    role: String,
    /// `enabled` or `disabled`.
    status: &'static str,
    /// `store`, or `config` for users declared in the config file.
    source: &'static str,
    /// Declared in the config file: changed there, not here.
    read_only: bool,
    created_at: Option<String>,
    updated_at: Option<String>,
    last_login_at: Option<String>,
}

impl From<&ManagedUser> for UserOut {
    fn from(u: &ManagedUser) -> Self {
        let r = &u.record;
        UserOut {
            id: u.id,
            username: r.username.clone(),
            email: r.email.clone(),
            name: r.name.clone(),
            kind: r.kind.as_str(),
            role: r.role.clone(),
            status: r.status.as_str(),
            source: if u.read_only { "config" } else { "store" },
            read_only: u.read_only,
            created_at: u.created_at.map(rfc3339),
            updated_at: u.updated_at.map(rfc3339),
            last_login_at: u.last_login_at.map(rfc3339),
        }
    }
}

/// One page of users.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct UserList {
    users: Vec<UserOut>,
    /// How many users match in all.
    total: i64,
    page: i64,
    per_page: i64,
}

/// Which users to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(in crate::portal) struct UserListQuery {
    /// Part of the user name, e-mail address or display name (any case).
    q: Option<String>,
    /// `user` or `api`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    kind: Option<String>,
    /// `enabled` or `disabled`.
    status: Option<String>,
    role: Option<String>,
    /// From 1.
    page: Option<String>,
    /// 1 to 200, default 50.
    per_page: Option<String>,
}

/// A user to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct CreateUser {
    username: String,
    email: Option<String>,
    name: Option<String>,
    /// `user` (default) or `api`.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Default `user`.
    role: Option<String>,
    /// `enabled` (default) or `disabled`.
    status: Option<String>,
    /// None: no password sign-in until one is set.
    password: Option<String>,
}

/// `null` as "clear it", absence as "leave it".
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A partial change of a user: only the fields sent change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct PatchUser {
    role: Option<String>,
    /// `enabled` or `disabled`.
    status: Option<String>,
    /// `user` or `api`.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// `null` removes the address.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    /// `null` removes the display name.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    name: Option<Option<String>>,
    /// A new password: every session of the user ends.
    password: Option<String>,
}

/// How many were revoked.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct Revoked {
    revoked: u64,
}

/// A role and its permissions.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct RoleOut {
    name: String,
    permissions: Vec<String>,
}

/// Every role of the configuration.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct RoleList {
    roles: Vec<RoleOut>,
}

/// An error of the admin API: `{"error", "message"}`, and the field at
/// fault for a 400.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct AdminErrorOut {
    error: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
}

/// The answer to an operation that did not happen.
pub(in crate::portal) fn admin_refused(s: &PortalState, e: &AdminError) -> Response {
    let (status, code, field) = match e {
        AdminError::NotFound | AdminError::NoSuchKey => (StatusCode::NOT_FOUND, "not_found", None),
        AdminError::ReadOnly => (StatusCode::CONFLICT, "read_only_user", None),
        AdminError::Outranked(_) => (StatusCode::FORBIDDEN, "forbidden", None),
        AdminError::Invalid { field, .. } => {
            (StatusCode::BAD_REQUEST, "invalid_request", Some(*field))
        }
        AdminError::Taken => (StatusCode::CONFLICT, "username_taken", None),
        AdminError::LastAdmin => (StatusCode::CONFLICT, "last_admin", None),
        AdminError::NoSecondFactor => (StatusCode::CONFLICT, "two_factor_not_enabled", None),
        AdminError::Unavailable(why) => {
            tracing::error!(error = %why, "an admin operation cannot reach the store");
            return store_down(s, STORE_DOWN);
        }
    };
    let body = AdminErrorOut {
        error: code,
        message: e.to_string(),
        field,
    };
    no_store((status, Json(body)).into_response())
}

fn ok<T: Serialize>(status: StatusCode, body: T) -> Response {
    no_store((status, Json(body)).into_response())
}

/// Record `event` from `origin`, and drop this replica's cached
/// identities of `username`.
fn done(s: &PortalState, live: &Live, origin: &Origin, event: AuditEvent, username: &str) {
    s.audit.record(event.origin(origin));
    live.gate.authenticator().invalidate_user(username);
}

/// The shared shape of every handler below: the store, the operation, its
/// answer or refusal.
macro_rules! with_admin {
    ($s:expr, $who:expr, |$admin:ident| $body:expr) => {{
        let Some(store) = $s.store.as_ref() else {
            return store_down(&$s, STORE_DOWN);
        };
        let $admin: Admin<'_> = $who.admin(store);
        match $body {
            Ok(resp) => resp,
            Err(e) => admin_refused(&$s, &e),
        }
    }};
}

/// `GET api/users`: one page of users, declared ones first.
#[utoipa::path(get, path = "/api/users", tag = "admin", params(UserListQuery),
    responses((status = 200, body = UserList),
        (status = 400, body = AdminErrorOut),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:get`", body = ErrorBody)))]
pub(in crate::portal) async fn list_users(
    State(s): State<Arc<PortalState>>,
    who: Administrator<ReadsUsers>,
    Query(q): Query<UserListQuery>,
) -> Response {
    with_admin!(s, who, |admin| async {
        let filter = UserFilter::parse(
            q.q.as_deref(),
            q.kind.as_deref(),
            q.status.as_deref(),
            q.role.as_deref(),
            q.page.as_deref(),
            q.per_page.as_deref(),
        )?;
        let (users, total) = admin.list(&filter).await?;
        let body = UserList {
            users: users.iter().map(UserOut::from).collect(),
            total,
            page: filter.page,
            per_page: filter.per_page,
        };
        Ok(ok(StatusCode::OK, body))
    }
    .await)
}

/// `POST api/users` → 201 and the user.
#[utoipa::path(post, path = "/api/users", tag = "admin", request_body = CreateUser,
    responses((status = 201, body = UserOut),
        (status = 400, body = AdminErrorOut),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:manage`; `csrf_failed`",
            body = ErrorBody),
        (status = 409, body = AdminErrorOut)))]
pub(in crate::portal) async fn create_user(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    who: Administrator<ManagesUsers>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: CreateUser = match json_body(&s, &headers, &body) {
        Ok(r) => r,
        Err(reply) => return reply.into_response(),
    };
    let input = NewUserInput {
        username: req.username,
        email: req.email,
        name: req.name,
        kind: req.kind,
        role: req.role,
        status: req.status,
        password: req.password,
    };
    with_admin!(s, who, |admin| async {
        let (user, event) = admin.create(input).await?;
        done(&s, &who.live, &origin, event, user.username());
        Ok(ok(StatusCode::CREATED, UserOut::from(&user)))
    }
    .await)
}

/// `GET api/users/{id}`: `{id}` is the stored id or the user name.
#[utoipa::path(get, path = "/api/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "stored id, or user name")),
    responses((status = 200, body = UserOut),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:get`", body = ErrorBody),
        (status = 404, body = AdminErrorOut)))]
pub(in crate::portal) async fn get_user(
    State(s): State<Arc<PortalState>>,
    who: Administrator<ReadsUsers>,
    Path(id): Path<String>,
) -> Response {
    with_admin!(s, who, |admin| async {
        let user = admin.find(&id).await?;
        Ok(ok(StatusCode::OK, UserOut::from(&user)))
    }
    .await)
}

/// `PATCH api/users/{id}`: change what is sent.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "admin", request_body = PatchUser,
    params(("id" = String, Path, description = "stored id, or user name")),
    responses((status = 200, body = UserOut),
        (status = 400, body = AdminErrorOut),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:manage`; `csrf_failed`",
            body = ErrorBody),
        (status = 404, body = AdminErrorOut),
        (status = 409, body = AdminErrorOut)))]
pub(in crate::portal) async fn patch_user(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    who: Administrator<ManagesUsers>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: PatchUser = match json_body(&s, &headers, &body) {
        Ok(r) => r,
        Err(reply) => return reply.into_response(),
    };
    let patch = UserPatch {
        role: req.role,
        status: req.status,
        kind: req.kind,
        email: req.email,
        name: req.name,
        password: req.password,
    };
    with_admin!(s, who, |admin| async {
        let (user, event) = admin.update(&id, patch).await?;
        done(&s, &who.live, &origin, event, user.username());
        Ok(ok(StatusCode::OK, UserOut::from(&user)))
    }
    .await)
}

/// `DELETE api/users/{id}` → 204.
#[utoipa::path(delete, path = "/api/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "stored id, or user name")),
    responses((status = 204, description = "deleted"),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:manage`; `csrf_failed`",
            body = ErrorBody),
        (status = 404, body = AdminErrorOut),
        (status = 409, body = AdminErrorOut)))]
pub(in crate::portal) async fn delete_user(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    who: Administrator<ManagesUsers>,
    Path(id): Path<String>,
) -> Response {
    with_admin!(s, who, |admin| async {
        let (user, event) = admin.delete(&id).await?;
        done(&s, &who.live, &origin, event, user.username());
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await)
}

/// `GET api/users/{id}/sessions`: the user's usable sessions.
#[utoipa::path(get, path = "/api/users/{id}/sessions", tag = "admin",
    params(("id" = String, Path, description = "stored id, or user name")),
    responses((status = 200, body = SessionList),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:get`", body = ErrorBody),
        (status = 404, body = AdminErrorOut)))]
pub(in crate::portal) async fn user_sessions(
    State(s): State<Arc<PortalState>>,
    who: Administrator<ReadsUsers>,
    Path(id): Path<String>,
) -> Response {
    let idle = who.live.session.idle_timeout.as_secs() as i64;
    with_admin!(s, who, |admin| async {
        let (_, sessions) = admin.sessions(&id, unix_now(), idle).await?;
        let sessions = sessions.iter().map(|r| session_out(r, None)).collect();
        Ok(ok(StatusCode::OK, SessionList { sessions }))
    }
    .await)
}

/// `DELETE api/users/{id}/sessions`: sign the user out everywhere.
#[utoipa::path(delete, path = "/api/users/{id}/sessions", tag = "admin",
    params(("id" = String, Path, description = "stored id, or user name")),
    responses((status = 200, body = Revoked),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:manage`; `csrf_failed`",
            body = ErrorBody),
        (status = 404, body = AdminErrorOut)))]
pub(in crate::portal) async fn sign_out_user(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    who: Administrator<ManagesUsers>,
    Path(id): Path<String>,
) -> Response {
    with_admin!(s, who, |admin| async {
        let (user, revoked, event) = admin.sign_out(&id).await?;
        done(&s, &who.live, &origin, event, user.username());
        Ok(ok(StatusCode::OK, Revoked { revoked }))
    }
    .await)
}

/// `POST api/users/{id}/reset-2fa`: remove the user's second factor.
#[utoipa::path(post, path = "/api/users/{id}/reset-2fa", tag = "admin",
    params(("id" = String, Path, description = "stored id, or user name")),
    responses((status = 200, body = TwoFactorStatus),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:manage`; `csrf_failed`",
            body = ErrorBody),
        (status = 404, body = AdminErrorOut),
        (status = 409, body = AdminErrorOut)))]
pub(in crate::portal) async fn reset_two_factor(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    who: Administrator<ManagesUsers>,
    Path(id): Path<String>,
) -> Response {
    with_admin!(s, who, |admin| async {
        let (user, event) = admin.reset_two_factor(&id).await?;
        done(&s, &who.live, &origin, event, user.username());
        let off = TwoFactorStatus {
            two_factor_enabled: false,
        };
        Ok(ok(StatusCode::OK, off))
    }
    .await)
}

/// `GET api/users/{id}/api-keys`: the user's live keys.
#[utoipa::path(get, path = "/api/users/{id}/api-keys", tag = "admin",
    params(("id" = String, Path, description = "stored id, or user name")),
    responses((status = 200, body = ApiKeyList),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:get`", body = ErrorBody),
        (status = 404, body = AdminErrorOut)))]
pub(in crate::portal) async fn user_api_keys(
    State(s): State<Arc<PortalState>>,
    who: Administrator<ReadsUsers>,
    Path(id): Path<String>,
) -> Response {
    with_admin!(s, who, |admin| async {
        let (_, keys) = admin.api_keys(&id).await?;
        let api_keys = keys.iter().map(key_json).collect();
        Ok(ok(StatusCode::OK, ApiKeyList { api_keys }))
    }
    .await)
}

/// `DELETE api/users/{id}/api-keys`: revoke every key of the user.
#[utoipa::path(delete, path = "/api/users/{id}/api-keys", tag = "admin",
    params(("id" = String, Path, description = "stored id, or user name")),
    responses((status = 200, body = Revoked),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:manage`; `csrf_failed`",
            body = ErrorBody),
        (status = 404, body = AdminErrorOut)))]
pub(in crate::portal) async fn revoke_user_api_keys(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    who: Administrator<ManagesUsers>,
    Path(id): Path<String>,
) -> Response {
    revoke_keys(&s, &origin, &who, &id, None).await
}

/// `DELETE api/users/{id}/api-keys/{key}`: revoke one key of the user.
#[utoipa::path(delete, path = "/api/users/{id}/api-keys/{key}", tag = "admin",
    params(("id" = String, Path, description = "stored id, or user name"),
        ("key" = i64, Path, description = "the key's id")),
    responses((status = 200, body = Revoked),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:manage`; `csrf_failed`",
            body = ErrorBody),
        (status = 404, body = AdminErrorOut)))]
pub(in crate::portal) async fn revoke_user_api_key(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    who: Administrator<ManagesUsers>,
    Path((id, key)): Path<(String, String)>,
) -> Response {
    let Ok(key) = key.parse::<i64>() else {
        return admin_refused(&s, &AdminError::NoSuchKey);
    };
    revoke_keys(&s, &origin, &who, &id, Some(key)).await
}

async fn revoke_keys(
    s: &PortalState,
    origin: &Origin,
    who: &Administrator<ManagesUsers>,
    id: &str,
    only: Option<i64>,
) -> Response {
    with_admin!(s, who, |admin| async {
        let (_, hashes, event) = admin.revoke_api_keys(id, only).await?;
        s.audit.record(event.origin(origin));
        let authn = who.live.gate.authenticator();
        for hash in &hashes {
            authn.invalidate_revoked(hash);
        }
        let revoked = hashes.len() as u64;
        Ok(ok(StatusCode::OK, Revoked { revoked }))
    }
    .await)
}

/// `GET api/roles`: every role and its permissions.
#[utoipa::path(get, path = "/api/roles", operation_id = "list_roles", tag = "admin",
    responses((status = 200, body = RoleList),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:get`", body = ErrorBody)))]
pub(in crate::portal) async fn roles(who: Administrator<ReadsUsers>) -> Response {
    let roles = who
        .live
        .gate
        .authenticator()
        .directory()
        .roles
        .iter()
        .map(|(name, perms)| RoleOut {
            name: name.clone(),
            permissions: perms.iter().map(ToString::to_string).collect(),
        })
        .collect();
    ok(StatusCode::OK, RoleList { roles })
}
