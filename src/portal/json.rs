//! The JSON API's answers: `{"error", "message"}` with a status, JSON
//! bodies read (415/400 on the wrong type or shape), `no-store`.

use crate::portal::sign_in::SignInFailure;
use crate::portal::PortalState;
use crate::respond::Reply;
use crate::two_factor::TwoFactorError;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

/// An answer that is only a status word (each endpoint names its words),
/// sometimes with a sentence for people.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct StatusOut {
    /// Absent when there is nothing to add.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<&'static str>,
    pub status: &'static str,
}

impl StatusOut {
    pub(in crate::portal) fn new(status: &'static str) -> Self {
        StatusOut {
            message: None,
            status,
        }
    }
}

/// `{"error", "message"}` with a status.
pub(in crate::portal) fn error(
    s: &PortalState,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    s.responder.json(status, code, message).into_response()
}

/// Parse a JSON body, or answer why not.
pub(in crate::portal) fn json_body<T: DeserializeOwned>(
    s: &PortalState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Reply> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let mime = v.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
        });
    if !is_json {
        return Err(s.responder.json(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        s.responder.json(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("the JSON body is not valid: {e}"),
        )
    })
}

pub(in crate::portal) fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// 503 `store_unavailable`: the store did not answer; `message` says what failed.
pub(in crate::portal) fn store_down(s: &PortalState, message: &str) -> Response {
    error(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        message,
    )
}

pub(in crate::portal) const STORE_DOWN: &str = "the store does not answer; try again shortly";

impl SignInFailure {
    /// The API's answer to a failed sign-in.
    pub(in crate::portal) fn into_json(self, s: &PortalState) -> Response {
        match self {
            SignInFailure::Invalid => error(
                s,
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the user name or password is wrong",
            ),
            SignInFailure::CodeAlreadyUsed => error(
                s,
                StatusCode::UNAUTHORIZED,
                "code_already_used",
                "that code was already used; wait for the next one from the authenticator app",
            ),
            SignInFailure::Disabled => error(
                s,
                StatusCode::UNAUTHORIZED,
                "account_disabled",
                "the account is disabled",
            ),
            SignInFailure::Banned(b) => s.responder.too_many_attempts(b, false).into_response(),
            SignInFailure::Unavailable => {
                store_down(s, "sign-in is unavailable right now; try again shortly")
            }
        }
    }
}

/// `{"error", "message"}` for a second-factor operation that did not happen.
pub(in crate::portal) fn two_factor_refused(s: &PortalState, e: &TwoFactorError) -> Response {
    let (status, code) = match e {
        TwoFactorError::NotConfigured => (StatusCode::NOT_IMPLEMENTED, "two_factor_not_configured"),
        TwoFactorError::NotForMachines => (StatusCode::FORBIDDEN, "two_factor_not_allowed"),
        TwoFactorError::AlreadyEnabled => (StatusCode::CONFLICT, "two_factor_already_enabled"),
        TwoFactorError::NotEnrolling => (StatusCode::CONFLICT, "two_factor_not_started"),
        TwoFactorError::NotEnabled => (StatusCode::CONFLICT, "two_factor_not_enabled"),
        TwoFactorError::InvalidCode => (StatusCode::BAD_REQUEST, "invalid_code"),
        TwoFactorError::CodeAlreadyUsed => (StatusCode::BAD_REQUEST, "code_already_used"),
        TwoFactorError::Undecryptable => {
            (StatusCode::SERVICE_UNAVAILABLE, "two_factor_unavailable")
        }
        TwoFactorError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
    };
    error(s, status, code, &e.to_string())
}
