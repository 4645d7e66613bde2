//! The JSON API for the caller's second factor: `POST api/me/2fa` (start
//! enrolling: secret, `otpauth://` URL, QR code as SVG), `POST
//! api/me/2fa/confirm` (turn it on with a code → recovery codes) and
//! `DELETE api/me/2fa` (turn it off with a code or the password).

use crate::app::Live;
use crate::audit::action;
use crate::directory::UserRecord;
use crate::identity::Identity;
use crate::portal::context::AccountWriter;
use crate::portal::json::{error, json_body, no_store, two_factor_refused};
use crate::portal::sign_in::{reauthenticate, turn_on_second_factor, SignInFailure};
use crate::portal::PortalState;
use crate::respond::ErrorBody;
use crate::session::Origin;
use crate::two_factor::TwoFactorError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// An enrolment begun: the secret to put in an authenticator app.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct EnrolmentOut {
    /// Always false: `api/me/2fa/confirm` turns it on.
    confirmed: bool,
    /// The secret as an `otpauth://totp/...` URL.
    otpauth_url: String,
    /// The URL as a QR code, an `<svg>` element.
    qr_svg: String,
    /// Base32, for typing in by hand.
    secret: String,
}

/// The second factor turned on, and the recovery codes (shown once).
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct ConfirmedOut {
    /// Single-use codes for when the authenticator is lost.
    recovery_codes: Vec<String>,
    two_factor_enabled: bool,
}

/// Whether the second factor is on.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct TwoFactorStatus {
    pub two_factor_enabled: bool,
}

/// The account owner's user record (they may turn 2FA on or off).
async fn user_record(
    s: &PortalState,
    live: &Live,
    identity: &Identity,
) -> Result<UserRecord, Response> {
    match live
        .gate
        .authenticator()
        .find_login(&identity.subject)
        .await
    {
        Ok(Some(user)) => Ok(user),
        _ => Err(two_factor_refused(s, &TwoFactorError::Unavailable)),
    }
}

/// `POST api/me/2fa`.
#[utoipa::path(post, path = "/api/me/2fa", operation_id = "enrol_two_factor", tag = "account",
    responses((status = 200, description = "enrolment begun; confirm it with a code",
            body = EnrolmentOut),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`, `csrf_failed`, `two_factor_not_allowed` \
            (machines)", body = ErrorBody),
        (status = 409, description = "`two_factor_already_enabled`", body = ErrorBody),
        (status = 501, description = "`two_factor_not_configured`", body = ErrorBody)))]
pub(in crate::portal) async fn enrol(
    State(s): State<Arc<PortalState>>,
    AccountWriter { live, identity }: AccountWriter,
) -> Response {
    let user = match user_record(&s, &live, &identity).await {
        Ok(user) => user,
        Err(resp) => return resp,
    };
    match live.two_factor.begin(&user).await {
        Ok(e) => no_store(
            Json(EnrolmentOut {
                confirmed: false,
                otpauth_url: e.otpauth_url,
                qr_svg: e.qr_svg,
                secret: e.secret,
            })
            .into_response(),
        ),
        Err(e) => two_factor_refused(&s, &e),
    }
}

/// A code from the authenticator app (or, to turn it off, a recovery code
/// or the password instead).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct CodeRequest {
    code: Option<String>,
    password: Option<String>,
}

/// `POST api/me/2fa/confirm` with `{code}`.
#[utoipa::path(post, path = "/api/me/2fa/confirm", operation_id = "confirm_two_factor",
    tag = "account", request_body = CodeRequest,
    responses((status = 200, description = "on", body = ConfirmedOut),
        (status = 400, description = "`invalid_request`, `invalid_code`", body = ErrorBody),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`, `csrf_failed`", body = ErrorBody),
        (status = 409, description = "`two_factor_not_started`, `two_factor_already_enabled`",
            body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody)))]
pub(in crate::portal) async fn confirm(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    AccountWriter { live, identity }: AccountWriter,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = user_record(&s, &live, &identity).await {
        return resp;
    }
    let req: CodeRequest = match json_body(&s, &headers, &body) {
        Ok(req) => req,
        Err(reply) => return reply.into_response(),
    };
    let Some(code) = req.code.as_deref().map(str::trim).filter(|c| !c.is_empty()) else {
        return error(
            &s,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`code` (the 6 digits the authenticator app shows) is required",
        );
    };
    match turn_on_second_factor(&live, &identity.subject, code).await {
        Ok(codes) => {
            s.audit_own(action::TWO_FACTOR_ENABLE, &identity.subject, &origin);
            no_store(
                Json(ConfirmedOut {
                    recovery_codes: codes,
                    two_factor_enabled: true,
                })
                .into_response(),
            )
        }
        Err(e) => two_factor_refused(&s, &e),
    }
}

/// `DELETE api/me/2fa` with `{code}` or `{password}`.
#[utoipa::path(delete, path = "/api/me/2fa", operation_id = "disable_two_factor",
    tag = "account", request_body = CodeRequest,
    responses((status = 200, description = "off", body = TwoFactorStatus),
        (status = 400, description = "`invalid_request`: neither `code` nor `password`",
            body = ErrorBody),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`, `csrf_failed`, `invalid_credentials` \
            (wrong code or password), `two_factor_required_for_role`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody)))]
pub(in crate::portal) async fn disable(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    AccountWriter { live, identity }: AccountWriter,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = origin.ip;
    let user = match user_record(&s, &live, &identity).await {
        Ok(user) => user,
        Err(resp) => return resp,
    };
    let req: CodeRequest = match json_body(&s, &headers, &body) {
        Ok(req) => req,
        Err(reply) => return reply.into_response(),
    };
    if live.two_factor.required_for(&user) {
        return error(
            &s,
            StatusCode::FORBIDDEN,
            "two_factor_required_for_role",
            "your role requires two-factor authentication; an administrator can reset it",
        );
    }
    match live.two_factor.is_enabled(&identity.subject).await {
        // Already off: at most an unconfirmed enrolment to drop.
        Ok(false) => {
            let _ = live.two_factor.remove(&identity.subject).await;
            let off = TwoFactorStatus {
                two_factor_enabled: false,
            };
            return no_store(Json(off).into_response());
        }
        Ok(true) => {}
        Err(e) => return two_factor_refused(&s, &e),
    }
    let code = req.code.as_deref().unwrap_or("");
    let password = req.password.as_deref().unwrap_or("");
    match reauthenticate(&live, &identity.subject, code, password, ip).await {
        None => {
            return error(
                &s,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "send a current `code` or your `password`",
            )
        }
        Some(Ok(())) => {}
        Some(Err(SignInFailure::Banned(b))) => {
            return s.responder.too_many_attempts(b, false).into_response()
        }
        Some(Err(SignInFailure::Unavailable)) => {
            return two_factor_refused(&s, &TwoFactorError::Unavailable)
        }
        Some(Err(_)) => {
            return error(
                &s,
                StatusCode::FORBIDDEN,
                "invalid_credentials",
                "the code or password is wrong",
            )
        }
    }
    match live.two_factor.remove(&identity.subject).await {
        Ok(()) => {
            s.audit_own(action::TWO_FACTOR_DISABLE, &identity.subject, &origin);
            let off = TwoFactorStatus {
                two_factor_enabled: false,
            };
            no_store(Json(off).into_response())
        }
        Err(e) => two_factor_refused(&s, &e),
    }
}
