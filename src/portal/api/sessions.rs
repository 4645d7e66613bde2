//! `api/me/sessions`: your own sessions — where and when each started,
//! when it was last used, which one is this — and revoking one, or all but
//! this one. The account page lists them through [`own_sessions`] too; the
//! admin API shows anyone's with [`session_out`].

use crate::app::Live;
use crate::audit::{action, AuditEvent, Outcome};
use crate::identity::{Identity, Revocation};
use crate::portal::api::api_keys::rfc3339;
use crate::portal::context::{AccountReader, AccountWriter};
use crate::portal::json::{error, no_store, store_down, STORE_DOWN};
use crate::portal::PortalState;
use crate::respond::ErrorBody;
use crate::session::Origin;
use crate::store::{unix_now, SessionRecord, StoreError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A session as the API shows it.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct SessionOut {
    /// The session's handle (the SHA-256 of its secret id, which is never
    /// shown).
    id: String,
    created_at: String,
    last_seen_at: String,
    expires_at: String,
    /// The client's address when it started.
    ip: Option<String>,
    user_agent: Option<String>,
    /// The identity provider it came from, for single sign-on.
    sso_provider: Option<String>,
    /// The session this request came with.
    current: bool,
}

/// Sessions, newest first.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct SessionList {
    pub sessions: Vec<SessionOut>,
}

/// `r` as the API shows it; `current` is the caller's own session hash.
pub(in crate::portal) fn session_out(r: &SessionRecord, current: Option<&str>) -> SessionOut {
    SessionOut {
        id: r.id_hash.clone(),
        created_at: rfc3339(r.created_at),
        last_seen_at: rfc3339(r.last_seen_at),
        expires_at: rfc3339(r.expires_at),
        ip: r.ip.clone(),
        user_agent: r.user_agent.clone(),
        sso_provider: r.sso.as_ref().map(|s| s.provider.clone()),
        current: current == Some(r.id_hash.as_str()),
    }
}

/// The caller's own session, when they came with one.
pub(in crate::portal) fn current_session(identity: &Identity) -> Option<&str> {
    match &identity.revocation {
        Some(Revocation::Session(hash)) => Some(hash),
        _ => None,
    }
}

/// `identity`'s usable sessions, newest first.
pub(in crate::portal) async fn own_sessions(
    s: &PortalState,
    live: &Live,
    identity: &Identity,
) -> Result<Vec<SessionRecord>, StoreError> {
    let store = s.require_store()?;
    let now = unix_now();
    let idle = live.session.idle_timeout.as_secs() as i64;
    let all = store.user_sessions(&identity.subject, now).await?;
    Ok(all.into_iter().filter(|r| r.is_live(now, idle)).collect())
}

/// Revoke `identity`'s session `only`, or all but the current one; on the
/// audit trail, and out of this replica's cache at once.
pub(in crate::portal) async fn revoke_own(
    s: &PortalState,
    live: &Live,
    origin: &Origin,
    identity: &Identity,
    only: Option<&str>,
) -> Result<u64, StoreError> {
    let store = s.require_store()?;
    let keep = if only.is_some() {
        None
    } else {
        current_session(identity)
    };
    let n = store
        .revoke_user_sessions(&identity.subject, only, keep)
        .await?;
    if n > 0 {
        live.gate.authenticator().invalidate_user(&identity.subject);
        s.audit.record(
            AuditEvent::new(action::SESSIONS_REVOKE, Outcome::Success)
                .actor(&identity.subject)
                .origin(origin)
                .detail("revoked", n)
                .detail("which", if only.is_some() { "one" } else { "others" }),
        );
    }
    Ok(n)
}

/// `GET api/me/sessions`: your usable sessions, this one marked `current`.
#[utoipa::path(get, path = "/api/me/sessions", operation_id = "list_own_sessions", tag = "account",
    responses((status = 200, body = SessionList),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: an API key, or an external issuer's token",
            body = ErrorBody)))]
pub(in crate::portal) async fn list(
    State(s): State<Arc<PortalState>>,
    AccountReader { live, identity }: AccountReader,
) -> Response {
    match own_sessions(&s, &live, &identity).await {
        Ok(records) => {
            let current = current_session(&identity);
            let sessions = records.iter().map(|r| session_out(r, current)).collect();
            no_store(Json(SessionList { sessions }).into_response())
        }
        Err(_) => store_down(&s, STORE_DOWN),
    }
}

/// `DELETE api/me/sessions/{id}`: sign one of your sessions out (this one
/// too, when named).
#[utoipa::path(delete, path = "/api/me/sessions/{id}", operation_id = "revoke_own_session",
    tag = "account",
    params(("id" = String, Path, description = "the session's `id`")),
    responses((status = 204, description = "signed out"),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`, `csrf_failed`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(in crate::portal) async fn revoke_one(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    AccountWriter { live, identity }: AccountWriter,
    Path(id): Path<String>,
) -> Response {
    match revoke_own(&s, &live, &origin, &identity, Some(&id)).await {
        Ok(0) => error(&s, StatusCode::NOT_FOUND, "not_found", "no such session"),
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => store_down(&s, STORE_DOWN),
    }
}

/// `DELETE api/me/sessions`: sign out every session but this one.
#[utoipa::path(delete, path = "/api/me/sessions", operation_id = "revoke_other_sessions",
    tag = "account",
    responses((status = 200, body = crate::portal::api::users::Revoked),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`, `csrf_failed`", body = ErrorBody)))]
pub(in crate::portal) async fn revoke_others(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    AccountWriter { live, identity }: AccountWriter,
) -> Response {
    match revoke_own(&s, &live, &origin, &identity, None).await {
        Ok(revoked) => no_store(Json(serde_json::json!({ "revoked": revoked })).into_response()),
        Err(_) => store_down(&s, STORE_DOWN),
    }
}
