//! Self-service accounts over JSON: `api/register`,
//! `api/registration-status`, `api/activation/resend`, `api/password-reset`
//! and its `confirm`, and the admins' `api/invitations`.

use crate::accounts::registration::{create_invitation, InvitationError, NewInvitation};
use crate::accounts::users::{check_email, AccountError};
use crate::app::Live;
use crate::audit::{action, AuditEvent, Outcome};
use crate::portal::api::api_keys::rfc3339;
use crate::portal::context::{Administrator, ManagesUsers};
use crate::portal::json::{error, json_body, no_store, StatusOut};
use crate::portal::self_service::{
    confirm_reset, register as register_account, request_reset, resend_activation, Registered,
    Registration, SelfServiceError,
};
use crate::portal::{ClientIp, PortalState};
use crate::respond::{ErrorBody, Reply};
use crate::session::Origin;
use crate::store::{unix_now, AccountToken};
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

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

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct RegisterRequest {
    username: String,
    /// Required when accounts are activated by mail (mode `invite`).
    #[serde(default)]
    email: String,
    password: String,
    /// The token of an invitation link.
    invitation: Option<String>,
}

/// An account registered.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct RegisteredOut {
    /// True for the first account, which becomes an administrator.
    is_admin: bool,
    /// `active`, or `pending_activation` (a link is on its way by mail).
    status: &'static str,
}

/// Whether people may register.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct RegistrationStatus {
    /// Whether anyone may register without an invitation.
    enabled: bool,
    /// `registration.mode`: `closed`, `open` or `invite` (activated by mail).
    mode: &'static str,
}

/// `POST api/register` → 201 `{status, is_admin}`.
#[utoipa::path(post, path = "/api/register", operation_id = "register",
    tag = "registration", request_body = RegisterRequest,
    security(()),
    responses((status = 201, body = RegisteredOut),
        (status = 400, description = "`invalid_request`, `weak_password`, `invalid_token` \
            (invitation)", body = ErrorBody),
        (status = 403, description = "`registration_closed`", body = ErrorBody),
        (status = 409, description = "`registration_failed`: the name or address cannot be used",
            body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody)))]
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
            let body = RegisteredOut { is_admin, status };
            no_store((StatusCode::CREATED, Json(body)).into_response())
        }
        Err(e) => refused(&s, &e),
    }
}

/// `GET api/registration-status` → `{mode, enabled}`.
#[utoipa::path(get, path = "/api/registration-status", operation_id = "registration_status",
    tag = "registration", security(()),
    responses((status = 200, body = RegistrationStatus)))]
pub(in crate::portal) async fn registration_status(
    Extension(live): Extension<Arc<Live>>,
) -> Response {
    let mode = live.registration.mode;
    no_store(
        Json(RegistrationStatus {
            enabled: mode.is_enabled(),
            mode: mode.as_str(),
        })
        .into_response(),
    )
}

/// An e-mail address.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct EmailRequest {
    email: String,
}

/// The one answer to a request that must not tell whether an account exists.
fn sent_if_known() -> Response {
    no_store(
        Json(StatusOut {
            message: Some("If an account uses that address, a mail is on its way."),
            status: "ok",
        })
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
#[utoipa::path(post, path = "/api/password-reset", operation_id = "request_password_reset",
    tag = "registration",
    request_body = EmailRequest, security(()),
    responses((status = 200, description = "`ok`, whether or not an account uses the address",
            body = StatusOut),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody)))]
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
#[utoipa::path(post, path = "/api/activation/resend", operation_id = "resend_activation",
    tag = "registration",
    request_body = EmailRequest, security(()),
    responses((status = 200, description = "`ok`, whether or not an account waits for that \
            address", body = StatusOut),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody)))]
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

/// A new password, with the token of a reset link.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct ResetConfirm {
    token: String,
    new_password: String,
}

/// `POST api/password-reset/confirm {token, new_password}`.
#[utoipa::path(post, path = "/api/password-reset/confirm", operation_id = "confirm_password_reset",
    tag = "registration",
    request_body = ResetConfirm, security(()),
    responses((status = 200, description = "`password_changed`", body = StatusOut),
        (status = 400, description = "`invalid_request`, `weak_password`, `invalid_token`",
            body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody)))]
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
        Ok(_) => no_store(Json(StatusOut::new("password_changed")).into_response()),
        Err(e) => refused(&s, &e),
    }
}

/// An open invitation.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct InvitationOut {
    created_at: String,
    /// The administrator who sent it.
    created_by: Option<String>,
    email: Option<String>,
    expires_at: String,
    /// The handle to revoke it by.
    id: String,
    /// The registration link (only when just created).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    link: Option<String>,
    /// The role the new account gets.
    role: Option<String>,
}

/// The open invitations.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct InvitationList {
    invitations: Vec<InvitationOut>,
}

fn invitation_json(t: &AccountToken) -> InvitationOut {
    InvitationOut {
        created_at: rfc3339(t.created_at),
        created_by: t.created_by.clone(),
        email: t.email.clone(),
        expires_at: rfc3339(t.expires_at),
        id: t.id.clone(),
        link: None,
        role: t.role.clone(),
    }
}

/// `GET api/invitations`: the open ones.
#[utoipa::path(get, path = "/api/invitations", operation_id = "list_invitations", tag = "admin",
    responses((status = 200, body = InvitationList),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:manage`", body = ErrorBody)))]
pub(in crate::portal) async fn list_invitations(
    State(s): State<Arc<PortalState>>,
    _who: Administrator<ManagesUsers>,
) -> Response {
    let Some(store) = &s.store else {
        return refused(&s, &SelfServiceError::Unavailable);
    };
    match store.invitations(unix_now()).await {
        Ok(list) => {
            let invitations = list.iter().map(invitation_json).collect();
            no_store(Json(InvitationList { invitations }).into_response())
        }
        Err(e) => refused(&s, &e.into()),
    }
}

/// Whom to invite.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct InvitationRequest {
    email: String,
    role: Option<String>,
    /// `7d`, `48h`…; default `registration.invitation_ttl`.
    expires_in: Option<String>,
}

/// `POST api/invitations {email, role?, expires_in?}` → 201, and the
/// invitation mailed (its link also in the answer, for the admin to pass on).
#[utoipa::path(post, path = "/api/invitations", operation_id = "create_invitation",
    tag = "admin", request_body = InvitationRequest,
    responses((status = 201, description = "sent; `link` is in the answer", body = InvitationOut),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:manage`; `csrf_failed`",
            body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody)))]
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
            body.link = Some(link);
            no_store((StatusCode::CREATED, Json(body)).into_response())
        }
        Err(InvitationError::Invalid(m)) => {
            error(&s, StatusCode::BAD_REQUEST, "invalid_request", &m)
        }
        Err(InvitationError::Unavailable) => refused(&s, &SelfServiceError::Unavailable),
    }
}

/// `DELETE api/invitations/{id}`.
#[utoipa::path(delete, path = "/api/invitations/{id}", operation_id = "revoke_invitation",
    tag = "admin",
    params(("id" = String, Path, description = "the invitation's `id`")),
    responses((status = 200, description = "`revoked`", body = StatusOut),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `users:manage`; `csrf_failed`",
            body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
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
            no_store(Json(StatusOut::new("revoked")).into_response())
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
