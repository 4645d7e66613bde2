//! `api/login` (name and password for a token), `api/token` (a signed-in
//! browser's session for a token), `api/session` (Basic credentials for a
//! session cookie), `api/logout` (revoke the token or session used),
//! `api/me`, and the public keys (`jwks.json`).

use crate::app::Live;
use crate::credentials::CredentialSource;
use crate::identity::{AuthMethod, Identity, Revocation};
use crate::portal::context::Caller;
use crate::portal::csrf::proven_same_origin;
use crate::portal::json::{error, json_body, no_store, store_down, StatusOut, STORE_DOWN};
use crate::portal::sign_in::{
    audit_sign_in, audit_sign_out, check_code, sign_in, signed_in, start_session, Channel,
    SignInFailure,
};
use crate::portal::PortalState;
use crate::respond::ErrorBody;
use crate::session::Origin;
use crate::store::{unix_now, PendingPurpose};
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// A name (or e-mail address) and password, for a token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::portal) struct LoginRequest {
    /// The user name; or send `email`.
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    /// A TOTP code or a recovery code, for accounts with a second factor.
    two_factor_code: Option<String>,
}

/// Who the caller is: the `user` of `api/login` and `api/token`, the body
/// of `api/me` and `api/session` (those two with `sso`).
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct UserInfo {
    /// How this request proved it: `session`, `jwt`, `api_key` or `basic`.
    auth_method: &'static str,
    email: Option<String>,
    /// The stored id; null for users of the config file and for subjects of
    /// external issuers.
    id: Option<i64>,
    name: Option<String>,
    permissions: Vec<String>,
    role: Option<String>,
    /// The identity provider the session came from, if single sign-on
    /// (`api/me` and `api/session` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<SsoOrigin>)]
    sso: Option<Option<SsoOrigin>>,
    two_factor_enabled: bool,
    /// `user` (a person) or `api` (a machine).
    #[serde(rename = "type")]
    kind: &'static str,
    username: String,
}

/// The identity provider a session came from.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct SsoOrigin {
    display_name: Option<String>,
    provider: String,
}

/// A signed token, as `api/login` and `api/token` answer it.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct TokenOut {
    /// RFC 3339.
    expires_at: String,
    /// Seconds from now.
    expires_in: i64,
    /// An EdDSA JWT, to send as `Authorization: Bearer`.
    token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    user: UserInfo,
}

/// The `user` object of `api/login` and the body of `api/me`.
fn user_json(
    id: Option<i64>,
    identity: &Identity,
    auth_method: &'static str,
    two_factor_enabled: bool,
) -> UserInfo {
    UserInfo {
        auth_method,
        email: identity.email.clone(),
        id,
        name: identity.name.clone(),
        permissions: identity.permissions.iter().map(|p| p.to_string()).collect(),
        role: identity.role.clone(),
        sso: None,
        two_factor_enabled,
        kind: identity.kind.as_str(),
        username: identity.subject.clone(),
    }
}

/// The stored id of a user (`None` for users declared in the config file).
async fn stored_id(s: &PortalState, username: &str) -> Option<i64> {
    let store = s.store.as_ref()?;
    store.user(username).await.ok().flatten().map(|u| u.id)
}

/// `POST api/login`: name (or e-mail) and password → a signed token.
#[utoipa::path(post, path = "/api/login", operation_id = "login",
    tag = "auth", request_body = LoginRequest,
    security(()),
    responses((status = 200, description = "signed in", body = TokenOut),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`invalid_credentials` (also for a wrong code), \
            `account_disabled`, `two_factor_required` (send `two_factor_code`), \
            `code_already_used` (the right password and a code already used)", body = ErrorBody),
        (status = 403, description = "`two_factor_enrolment_required`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody)))]
pub(in crate::portal) async fn login(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = origin.ip;
    let req: LoginRequest = match json_body(&s, &headers, &body) {
        Ok(r) => r,
        Err(reply) => return reply.into_response(),
    };
    let login = req
        .username
        .as_deref()
        .or(req.email.as_deref())
        .map(str::trim)
        .unwrap_or("");
    let password = req.password.as_deref().unwrap_or("");
    if login.is_empty() || password.is_empty() {
        return error(
            &s,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`username` (or `email`) and `password` are required",
        );
    }
    let code = req.two_factor_code.as_deref().map(str::trim).unwrap_or("");
    let failed = |reason: &str| audit_sign_in(&s, &origin, login, Channel::Api, Some(reason));
    let user = match sign_in(&live, login, password, ip).await {
        Ok(u) => u,
        Err(failure) => {
            failed(failure.reason());
            if failure == SignInFailure::Invalid && !code.is_empty() {
                // Look the second factor up anyway, so the time taken does
                // not tell a wrong password from a wrong code.
                let _ = live.two_factor.is_enabled(login).await;
            }
            return failure.into_json(&s);
        }
    };
    let two_factor_enabled = match live.two_factor.owed(&user).await {
        Ok(None) => false,
        Ok(Some(PendingPurpose::Verify)) if code.is_empty() => {
            return error(
                &s,
                StatusCode::UNAUTHORIZED,
                "two_factor_required",
                "this account uses two-factor authentication: send `two_factor_code` (a code from the authenticator app, or a recovery code)",
            )
        }
        Ok(Some(PendingPurpose::Verify)) => {
            if let Err(failure) = check_code(&live, &user.username, code, ip).await {
                let reason = match failure {
                    SignInFailure::Invalid => "invalid_code",
                    ref other => other.reason(),
                };
                failed(reason);
                return failure.into_json(&s);
            }
            true
        }
        Ok(Some(PendingPurpose::Enrol)) => {
            return error(
                &s,
                StatusCode::FORBIDDEN,
                "two_factor_enrolment_required",
                "your role requires two-factor authentication: sign in on the portal's sign-in page once to set it up",
            )
        }
        Err(_) => return SignInFailure::Unavailable.into_json(&s),
    };
    signed_in(&live, &user.username).await;
    audit_sign_in(&s, &origin, &user.username, Channel::Api, None);
    token_answer(&s, &live, &user, two_factor_enabled).await
}

/// A signed token for `user`, answered as `api/login` and `api/token` do.
async fn token_answer(
    s: &PortalState,
    live: &Live,
    user: &crate::directory::UserRecord,
    two_factor_enabled: bool,
) -> Response {
    let authn = live.gate.authenticator();
    let now = unix_now();
    let issued = match authn.tokens().issue(user, now) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot issue a token");
            return error(
                s,
                StatusCode::SERVICE_UNAVAILABLE,
                "token_unavailable",
                "tokens cannot be issued right now",
            );
        }
    };
    if let Some(store) = &s.store {
        if let Err(e) = store.record_login(&user.username, now).await {
            tracing::debug!(error = %e, "last login not recorded");
        }
    }
    tracing::info!(user = %user.username, "token issued");
    let identity = authn.directory().identity_of(user, AuthMethod::Jwt);
    let id = stored_id(s, &user.username).await;
    let expires_at = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(issued.expires_at.max(0) as u64),
    )
    .to_string();
    no_store(
        Json(TokenOut {
            expires_at,
            expires_in: issued.expires_at - now,
            token: issued.token,
            token_type: "Bearer",
            user: user_json(id, &identity, "jwt", two_factor_enabled),
        })
        .into_response(),
    )
}

/// `POST api/token`: the signed-in browser's session (same origin) → a
/// signed token, as `api/login` answers; for single-page apps whose user
/// signed in on the pages or through single sign-on.
#[utoipa::path(post, path = "/api/token", operation_id = "create_token", tag = "auth",
    security(("session_cookie" = [])),
    responses((status = 200, body = TokenOut),
        (status = 400, description = "`session_required`: not the session cookie",
            body = ErrorBody),
        (status = 401, description = "no session, or its account is gone", body = ErrorBody),
        (status = 403, description = "`csrf_failed`: not from a page of the same origin",
            body = ErrorBody)))]
pub(in crate::portal) async fn token(
    State(s): State<Arc<PortalState>>,
    headers: HeaderMap,
    Caller {
        live,
        identity,
        source,
    }: Caller,
) -> Response {
    if source != CredentialSource::SessionCookie {
        return error(
            &s,
            StatusCode::BAD_REQUEST,
            "session_required",
            "send the session cookie of a signed-in browser (programs use `api/login`)",
        );
    }
    if !proven_same_origin(&s, &headers) {
        return error(
            &s,
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "a token is only handed to pages of the same origin",
        );
    }
    let user = match live
        .gate
        .authenticator()
        .find_login(&identity.subject)
        .await
    {
        Ok(Some(u)) if u.username == identity.subject => u,
        Ok(_) => {
            return error(
                &s,
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the session's account no longer exists",
            )
        }
        Err(_) => return SignInFailure::Unavailable.into_json(&s),
    };
    let two_factor_enabled = live
        .two_factor
        .is_enabled(&user.username)
        .await
        .unwrap_or(false);
    token_answer(&s, &live, &user, two_factor_enabled).await
}

/// `POST api/session` with `Authorization: Basic`: the portal's sign-in step
/// (regulated like the page), then a session cookie, as the sign-in page
/// sets it, and the user as `api/me` shows it — for clients that sign in
/// once, then use the cookie. A person with a second factor is refused
/// (401 `two_factor_required`), as Basic is on protected requests.
#[utoipa::path(post, path = "/api/session", operation_id = "create_session", tag = "auth",
    security(("basic" = [])),
    responses((status = 200, description = "signed in; `Set-Cookie` carries the session",
            body = UserInfo),
        (status = 400, description = "`malformed_credentials`", body = ErrorBody),
        (status = 401, description = "no Basic credentials, `invalid_credentials`, \
            `account_disabled`, `two_factor_required`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody)))]
pub(in crate::portal) async fn session(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
) -> Response {
    let ip = origin.ip;
    use crate::credentials::Credential;
    use crate::gate::{Denial, Unauthenticated};
    let api_client = crate::respond::Asker {
        method: &http::Method::POST,
        browser: false,
        return_to: None,
    };
    let basic = match crate::credentials::extract(&headers, &live.session.cookie_name) {
        Ok(found) => found.into_iter().find_map(|c| match c {
            Credential::Basic(b) => Some(b),
            _ => None,
        }),
        Err(e) => {
            return s
                .responder
                .denial(&Denial::Malformed(e), &api_client)
                .into_response()
        }
    };
    let Some(basic) = basic else {
        let missing = Denial::Unauthenticated(Unauthenticated::Missing);
        return s.responder.denial(&missing, &api_client).into_response();
    };
    let user = match sign_in(&live, &basic.username, &basic.password, ip).await {
        Ok(u) => u,
        Err(failure) => {
            let reason = failure.reason();
            audit_sign_in(&s, &origin, &basic.username, Channel::Basic, Some(reason));
            return failure.into_json(&s);
        }
    };
    match live.two_factor.owed(&user).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            let reason = Some("two_factor_required");
            audit_sign_in(&s, &origin, &user.username, Channel::Basic, reason);
            let e = crate::authn::AuthnError::SecondFactorRequired;
            return error(&s, StatusCode::UNAUTHORIZED, e.code(), &e.to_string());
        }
        Err(_) => return SignInFailure::Unavailable.into_json(&s),
    }
    signed_in(&live, &user.username).await;
    let Some(cookie) = start_session(&s, &live, &user.username, &origin, Channel::Basic).await
    else {
        return store_down(
            &s,
            "a session cannot be started right now; try again shortly",
        );
    };
    if let Some(store) = &s.store {
        if let Err(e) = store.record_login(&user.username, unix_now()).await {
            tracing::debug!(error = %e, "last login not recorded");
        }
    }
    let identity = live
        .gate
        .authenticator()
        .directory()
        .identity_of(&user, AuthMethod::Session);
    let id = stored_id(&s, &user.username).await;
    let mut body = user_json(id, &identity, AuthMethod::Session.as_str(), false);
    body.sso = Some(None);
    let mut resp = no_store(Json(body).into_response());
    if let Ok(c) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

/// `GET api/me`.
#[utoipa::path(get, path = "/api/me", operation_id = "me", tag = "account",
    responses((status = 200, body = UserInfo),
        (status = 401, description = "no or bad credentials", body = ErrorBody)))]
pub(in crate::portal) async fn me(
    State(s): State<Arc<PortalState>>,
    Caller { live, identity, .. }: Caller,
) -> Response {
    // An external issuer's subject is not one of our users, whatever its name.
    let (id, two_factor_enabled) = match identity.is_local_account() {
        true => (
            stored_id(&s, &identity.subject).await,
            live.two_factor
                .is_enabled(&identity.subject)
                .await
                .unwrap_or(false),
        ),
        false => (None, false),
    };
    let mut body = user_json(id, &identity, identity.method.as_str(), two_factor_enabled);
    body.sso = Some(match (&identity.revocation, &s.store) {
        (Some(Revocation::Session(hash)), Some(store)) => match store.session(hash).await {
            Ok(Some(record)) => record.sso.map(|sso| SsoOrigin {
                display_name: live
                    .sso
                    .provider(&sso.provider)
                    .map(|p| p.display_name.clone()),
                provider: sso.provider,
            }),
            _ => None,
        },
        _ => None,
    });
    no_store(Json(body).into_response())
}

/// `POST api/logout`: revoke the token or session the request came with.
#[utoipa::path(post, path = "/api/logout", operation_id = "logout", tag = "auth",
    responses((status = 200, description = "revoked (with a session cookie, the cookie \
            is cleared): `logged_out`; Basic credentials and API keys: `nothing_to_revoke`",
            body = StatusOut),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`csrf_failed`", body = ErrorBody)))]
pub(in crate::portal) async fn logout(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    headers: HeaderMap,
    Caller {
        live,
        identity,
        source,
    }: Caller,
) -> Response {
    let Some(store) = &s.store else {
        return store_down(&s, STORE_DOWN);
    };
    let mut set_cookie = None;
    let revoked = match (&identity.revocation, source) {
        (Some(Revocation::Token(jti)), _) => {
            let expires = identity
                .expires_at
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(unix_now() + 86_400, |d| d.as_secs() as i64);
            store.revoke_token(jti, expires).await
        }
        (Some(Revocation::Session(hash)), CredentialSource::SessionCookie) => {
            if !proven_same_origin(&s, &headers) {
                return error(
                    &s,
                    StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "cross-site requests may not sign you out",
                );
            }
            set_cookie = Some(crate::session::clear_session_cookie(&live.session));
            store.revoke_session(hash).await
        }
        _ => {
            return no_store(
                Json(StatusOut {
                    message: Some(
                        "Basic credentials and API keys are not sessions; nothing was revoked",
                    ),
                    status: "nothing_to_revoke",
                })
                .into_response(),
            )
        }
    };
    if let Err(e) = revoked {
        tracing::error!(error = %e, "cannot revoke");
        return store_down(&s, "signing out failed; try again shortly");
    }
    if let Some(handle) = &identity.revocation {
        live.gate.authenticator().invalidate_revoked(handle.key());
    }
    audit_sign_out(&s, &origin, &identity.subject, "api");
    let mut resp = no_store(Json(StatusOut::new("logged_out")).into_response());
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

/// `GET .well-known/jwks.json`.
pub(in crate::portal) async fn jwks(Extension(live): Extension<Arc<Live>>) -> Response {
    let mut resp = Json(live.gate.authenticator().tokens().jwks().clone()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}
