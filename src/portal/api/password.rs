//! `POST api/me/password`: the caller changes their own password
//! (`{old_password, new_password}`; an account without a password, signed in
//! through single sign-on, omits the old one).

use crate::identity::Revocation;
use crate::portal::context::AccountWriter;
use crate::portal::json::{error, json_body, no_store, store_down, STORE_DOWN};
use crate::portal::password::{change_password, PasswordChange, PasswordChangeFailure};
use crate::portal::sign_in::SignInFailure;
use crate::portal::PortalState;
use crate::respond::ErrorBody;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// The password now and the new one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct PasswordRequest {
    /// Omitted by an account without a password (signed in through single
    /// sign-on).
    old_password: Option<String>,
    new_password: Option<String>,
}

/// The password changed.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct PasswordChanged {
    /// How many of the caller's other sessions ended.
    other_sessions_ended: u64,
    /// `password_changed`.
    status: &'static str,
}

/// `POST api/me/password`: 200 `{status: "password_changed"}`; the caller's
/// other sessions and every token issued before end. 400 `weak_password`
/// (the message names the rule), 401 `invalid_credentials` for a wrong old
/// password (counted like a failed sign-in; 429 once banned), 409
/// `read_only_user` for users of the config file.
#[utoipa::path(post, path = "/api/me/password", operation_id = "change_password",
    tag = "account", request_body = PasswordRequest,
    responses((status = 200, body = PasswordChanged),
        (status = 400, description = "`invalid_request`, `weak_password`", body = ErrorBody),
        (status = 401, description = "no or bad credentials; `invalid_credentials`: the old \
            password is wrong", body = ErrorBody),
        (status = 403, description = "`forbidden`, `csrf_failed`", body = ErrorBody),
        (status = 409, description = "`read_only_user`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody)))]
pub(in crate::portal) async fn change(
    State(s): State<Arc<PortalState>>,
    origin: crate::session::Origin,
    AccountWriter { live, identity }: AccountWriter,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: PasswordRequest = match json_body(&s, &headers, &body) {
        Ok(r) => r,
        Err(reply) => return reply.into_response(),
    };
    let Some(new_password) = req.new_password.as_deref().filter(|p| !p.is_empty()) else {
        return error(
            &s,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`new_password` is required",
        );
    };
    // The session this request came with stays signed in.
    let keep_session = match &identity.revocation {
        Some(Revocation::Session(hash)) => Some(hash.as_str()),
        _ => None,
    };
    let change = PasswordChange {
        username: &identity.subject,
        old_password: req.old_password.as_deref().unwrap_or(""),
        new_password,
        keep_session,
    };
    match change_password(&s, &live, change, &origin).await {
        Ok(ended) => no_store(
            Json(PasswordChanged {
                other_sessions_ended: ended,
                status: "password_changed",
            })
            .into_response(),
        ),
        Err(PasswordChangeFailure::ReadOnly) => error(
            &s,
            StatusCode::CONFLICT,
            "read_only_user",
            "this user is declared in the configuration file; its password is changed there",
        ),
        Err(PasswordChangeFailure::OldPasswordRequired) => error(
            &s,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`old_password` is required",
        ),
        Err(PasswordChangeFailure::Weak(_)) => error(
            &s,
            StatusCode::BAD_REQUEST,
            "weak_password",
            &format!("a new password needs {}", live.passwords.rule()),
        ),
        Err(PasswordChangeFailure::SignIn(SignInFailure::Invalid)) => error(
            &s,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the old password is wrong",
        ),
        Err(PasswordChangeFailure::SignIn(failure)) => failure.into_json(&s),
        Err(PasswordChangeFailure::Unavailable) => store_down(&s, STORE_DOWN),
    }
}
