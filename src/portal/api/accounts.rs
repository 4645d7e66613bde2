//! Self-service accounts over JSON: `api/register`,
//! `api/registration-status`, `api/activation/resend`, `api/password-reset`
//! and its `confirm`, and the admins' `api/invitations`.

use crate::accounts::registration::{create_invitation, InvitationError, NewInvitation};
use crate::accounts::users::{check_email, AccountError};
use crate::app::Live;
use crate::audit::{action, AuditEvent, Outcome};
use crate::portal::context::{Administrator, ManagesUsers};
use crate::portal::json::{error, json_body, no_store};
use crate::portal::self_service::{
    confirm_reset, register as register_account, request_reset, resend_activation, Registered,
    Registration, SelfServiceError,
};
use crate::portal::{ClientIp, PortalState};
use crate::respond::Reply;
use crate::session::Origin;
use crate::store::{unix_now, AccountToken};
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;

/// The one JSON answer for each self-service failure.
pub(in crate::portal) fn refused(s: &PortalState, e: &SelfServiceError) -> Response {
    let (status, code, message) = match e {
        SelfServiceError::Closed => (
            StatusCode::FORBIDDEN,
            "registration_closed",
            "registration is closed; ask an administrator for an invitation".to_owned(),
        ),
        SelfServiceError::Taken => (
            StatusCode::CONFLICT,
            "registration_failed",
            "that user name or e-mail address cannot be used".to_owned(),
        ),
        SelfServiceError::Invalid(e @ AccountError::PasswordTooShort { .. })
        | SelfServiceError::Invalid(e @ AccountError::PasswordTooLong { .. }) => {
            (StatusCode::BAD_REQUEST, "weak_password", e.to_string())
        }
        SelfServiceError::Invalid(e) => (StatusCode::BAD_REQUEST, "invalid_request", e.to_string()),
        SelfServiceError::BadToken => (
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "this link is unknown, used already, or expired".to_owned(),
        ),
        SelfServiceError::EmailRequired => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`email` is required: the activation link is sent there".to_owned(),
        ),
        SelfServiceError::Banned(b) => {
            return s.responder.too_many_attempts(*b, false).into_response()
        }
        SelfServiceError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "this cannot be done right now; try again shortly".to_owned(),
        ),
    };
    error(s, status, code, &message)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct RegisterRequest {
    username: String,
    #[serde(default)]
    email: String,
    password: String,
    /// The token of an invitation link.
    invitation: Option<String>,
}

/// `POST api/register` → 201 `{status, is_admin}`.
pub(in crate::portal) async fn register(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: RegisterRequest = match json_body(&s, &headers, &body) {
        Ok(r) => r,
        Err(reply) => return reply.into_response(),
    };
    let r = Registration {
        username: &req.username,
        email: &req.email,
        password: &req.password,
        invitation: req.invitation.as_deref(),
    };
    match register_account(&s, &live, r, &origin).await {
        Ok(done) => {
            let (status, is_admin) = match done {
                Registered::Active { is_admin } => ("active", is_admin),
                Registered::PendingActivation => ("pending_activation", false),
            };
            let body = serde_json::json!({"status": status, "is_admin": is_admin});
            no_store((StatusCode::CREATED, Json(body)).into_response())
        }
        Err(e) => refused(&s, &e),
    }
}

/// `GET api/registration-status` → `{mode, enabled}`.
pub(in crate::portal) async fn registration_status(
    Extension(live): Extension<Arc<Live>>,
) -> Response {
    let mode = live.registration.mode;
    no_store(
        Json(serde_json::json!({"mode": mode.as_str(), "enabled": mode.is_enabled()}))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct EmailRequest {
    email: String,
}

/// The one answer to a request that must not tell whether an account exists.
fn sent_if_known() -> Response {
    no_store(
        Json(serde_json::json!({
            "status": "ok",
            "message": "If an account uses that address, a mail is on its way.",
        }))
        .into_response(),
    )
}

fn email_of(s: &PortalState, headers: &HeaderMap, body: &Bytes) -> Result<String, Reply> {
    let req: EmailRequest = json_body(s, headers, body)?;
    let email = req.email.trim().to_owned();
    if email.is_empty() || check_email(&email).is_err() {
        return Err(s.responder.json(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`email` must be an e-mail address",
        ));
    }
    Ok(email)
}

/// `POST api/password-reset {email}` → always 200, the same body.
pub(in crate::portal) async fn password_reset(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let email = match email_of(&s, &headers, &body) {
        Ok(e) => e,
        Err(reply) => return reply.into_response(),
    };
    match request_reset(&s, &live, &email, ip).await {
        Ok(()) => sent_if_known(),
        Err(e) => refused(&s, &e),
    }
}

/// `POST api/activation/resend {email}` → always 200, the same body.
pub(in crate::portal) async fn activation_resend(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let email = match email_of(&s, &headers, &body) {
        Ok(e) => e,
        Err(reply) => return reply.into_response(),
    };
    match resend_activation(&s, &live, &email, ip).await {
        Ok(()) => sent_if_known(),
        Err(e) => refused(&s, &e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct ResetConfirm {
    token: String,
    new_password: String,
}

/// `POST api/password-reset/confirm {token, new_password}`.
pub(in crate::portal) async fn password_reset_confirm(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: ResetConfirm = match json_body(&s, &headers, &body) {
        Ok(r) => r,
        Err(reply) => return reply.into_response(),
    };
    match confirm_reset(&s, &live, &req.token, &req.new_password, &origin).await {
        Ok(_) => no_store(Json(serde_json::json!({"status": "password_changed"})).into_response()),
        Err(e) => refused(&s, &e),
    }
}

fn invitation_json(t: &AccountToken) -> serde_json::Value {
    let at = |secs: i64| {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64),
        )
        .to_string()
    };
    serde_json::json!({
        "id": t.id,
        "email": t.email,
        "role": t.role,
        "created_by": t.created_by,
        "created_at": at(t.created_at),
        "expires_at": at(t.expires_at),
    })
}

/// `GET api/invitations`: the open ones.
pub(in crate::portal) async fn list_invitations(
    State(s): State<Arc<PortalState>>,
    _who: Administrator<ManagesUsers>,
) -> Response {
    let Some(store) = &s.store else {
        return refused(&s, &SelfServiceError::Unavailable);
    };
    match store.invitations(unix_now()).await {
        Ok(list) => {
            let items: Vec<_> = list.iter().map(invitation_json).collect();
            no_store(Json(serde_json::json!({"invitations": items})).into_response())
        }
        Err(e) => refused(&s, &e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct InvitationRequest {
    email: String,
    role: Option<String>,
    /// `7d`, `48h`…; default `registration.invitation_ttl`.
    expires_in: Option<String>,
}

/// `POST api/invitations {email, role?, expires_in?}` → 201, and the
/// invitation mailed (its link also in the answer, for the admin to pass on).
pub(in crate::portal) async fn invite(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    headers: HeaderMap,
    caller: Administrator<ManagesUsers>,
    body: Bytes,
) -> Response {
    let req: InvitationRequest = match json_body(&s, &headers, &body) {
        Ok(r) => r,
        Err(reply) => return reply.into_response(),
    };
    let live = &caller.live;
    let role = req
        .role
        .unwrap_or_else(|| live.registration.default_role.clone());
    let ttl = match req.expires_in.as_deref().map(crate::config::parse_duration) {
        None => live.registration.invitation_ttl,
        Some(Ok(d)) if d.as_secs() >= 60 => d,
        Some(_) => {
            return error(
                &s,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "`expires_in` must be a duration of at least a minute, like `7d`",
            )
        }
    };
    let Some(store) = &s.store else {
        return refused(&s, &SelfServiceError::Unavailable);
    };
    let register_url = s.public("/register");
    let asked = NewInvitation {
        email: &req.email,
        role: &role,
        ttl,
        created_by: &caller.identity.subject,
    };
    let roles = &live.gate.authenticator().directory().roles;
    match create_invitation(store, &s.mail, roles, &register_url, asked).await {
        Ok((token, link)) => {
            s.audit.record(
                AuditEvent::new(action::INVITATION_CREATE, Outcome::Success)
                    .actor(&caller.identity.subject)
                    .origin(&origin)
                    .detail("invitation", token.id.clone())
                    .detail("role", role.clone()),
            );
            let mut body = invitation_json(&token);
            body["link"] = serde_json::Value::String(link);
            no_store((StatusCode::CREATED, Json(body)).into_response())
        }
        Err(InvitationError::Invalid(m)) => {
            error(&s, StatusCode::BAD_REQUEST, "invalid_request", &m)
        }
        Err(InvitationError::Unavailable) => refused(&s, &SelfServiceError::Unavailable),
    }
}

/// `DELETE api/invitations/{id}`.
pub(in crate::portal) async fn revoke_invitation(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Path(id): Path<String>,
    caller: Administrator<ManagesUsers>,
) -> Response {
    let Some(store) = &s.store else {
        return refused(&s, &SelfServiceError::Unavailable);
    };
    match store.revoke_invitation(&id, unix_now()).await {
        Ok(true) => {
            s.audit.record(
                AuditEvent::new(action::INVITATION_REVOKE, Outcome::Success)
                    .actor(&caller.identity.subject)
                    .origin(&origin)
                    .detail("invitation", id.clone()),
            );
            no_store(Json(serde_json::json!({"status": "revoked"})).into_response())
        }
        Ok(false) => error(
            &s,
            StatusCode::NOT_FOUND,
            "not_found",
            "no open invitation has that id",
        ),
        Err(e) => refused(&s, &e.into()),
    }
}
