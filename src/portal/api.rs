//! The portal's JSON API for programs: sign in for a token, sign out
//! (revoking the token or session used), who am I, and the public keys.
//!
//! Bodies are JSON only; a wrong content type is 415 and a malformed body
//! 400, each with the usual `{"error", "message"}`.

use super::{ClientIp, PortalState};
use crate::app::Live;
use crate::authn::AuthnError;
use crate::credentials::CredentialSource;
use crate::directory::UserRecord;
use crate::gate::AuthFailure;
use crate::identity::{AuthMethod, Identity, Revocation};
use crate::respond::Reply;
use crate::store::{unix_now, PendingPurpose};
use crate::two_factor::TwoFactorError;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::sync::Arc;

/// `{"error", "message"}` with a status.
pub(super) fn error(s: &PortalState, status: StatusCode, code: &str, message: &str) -> Response {
    s.responder.json(status, code, message).into_response()
}

/// Parse a JSON body, or answer why not.
pub(super) fn json_body<T: DeserializeOwned>(
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

pub(super) fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    /// A TOTP code or a recovery code, for accounts with a second factor.
    two_factor_code: Option<String>,
}

/// The `user` object of `api/login` and the body of `api/me`.
fn user_json(
    id: Option<i64>,
    identity: &Identity,
    auth_method: &str,
    two_factor_enabled: bool,
) -> serde_json::Value {
    let permissions: Vec<String> = identity.permissions.iter().map(|p| p.to_string()).collect();
    serde_json::json!({
        "id": id,
        "username": identity.subject,
        "email": identity.email,
        "name": identity.name,
        "type": identity.kind.as_str(),
        "role": identity.role,
        "permissions": permissions,
        "two_factor_enabled": two_factor_enabled,
        "auth_method": auth_method,
    })
}

/// The stored id of a user (`None` for users declared in the config file).
async fn stored_id(s: &PortalState, username: &str) -> Option<i64> {
    let store = s.store.as_ref()?;
    store.user(username).await.ok().flatten().map(|u| u.id)
}

/// `POST api/login`: name (or e-mail) and password → a signed token.
pub(super) async fn login(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
    let user = match sign_in(&live, login, password, ip).await {
        Ok(u) => u,
        Err(failure) => {
            if failure == SignInFailure::Invalid && !code.is_empty() {
                // Look the second factor up anyway, so the time taken does
                // not tell a wrong password from a wrong code.
                let _ = live.two_factor.is_enabled(login).await;
            }
            return failure.into_response(&s);
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
                return failure.into_response(&s);
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
        Err(_) => return SignInFailure::Unavailable.into_response(&s),
    };
    signed_in(&live, &user.username).await;
    let authn = live.gate.authenticator();
    let now = unix_now();
    let issued = match authn.tokens().issue(&user, now) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot issue a token");
            return error(
                &s,
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
    let identity = authn.directory().identity_of(&user, AuthMethod::Jwt);
    let id = stored_id(&s, &user.username).await;
    let expires_at = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(issued.expires_at.max(0) as u64),
    )
    .to_string();
    no_store(
        Json(serde_json::json!({
            "token": issued.token,
            "token_type": "Bearer",
            "expires_at": expires_at,
            "expires_in": issued.expires_at - now,
            "user": user_json(id, &identity, "jwt", two_factor_enabled),
        }))
        .into_response(),
    )
}

/// Why a sign-in did not succeed, answered the same way by page and API.
#[derive(Debug, PartialEq)]
pub(super) enum SignInFailure {
    /// Wrong name, password or code (never says which).
    Invalid,
    Disabled,
    Banned(crate::regulation::Banned),
    Unavailable,
}

impl SignInFailure {
    fn into_response(self, s: &PortalState) -> Response {
        match self {
            SignInFailure::Invalid => error(
                s,
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the user name or password is wrong",
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

/// Check a name (or e-mail) and password under regulation: a banned user
/// or address is refused before any password work; a wrong password
/// counts against both. The count is cleared only once every factor is
/// in ([`signed_in`]), so a known password does not reset code guessing.
pub(super) async fn sign_in(
    live: &Live,
    login: &str,
    password: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<UserRecord, SignInFailure> {
    let authn = live.gate.authenticator();
    let regulator = live.gate.regulator();
    // Regulate by the name typed; an e-mail maps to its user's name so both
    // spellings share one count.
    let username = match authn.find_login(login).await {
        Ok(Some(u)) => u.username,
        Ok(None) => login.to_owned(),
        Err(_) => return Err(SignInFailure::Unavailable),
    };
    regulator
        .check(&username, ip)
        .map_err(SignInFailure::Banned)?;
    match authn.verify_password(&username, password).await {
        Ok(user) => Ok(user),
        Err(AuthnError::InvalidCredentials) => {
            regulator.failed(&username, ip).await;
            Err(SignInFailure::Invalid)
        }
        Err(AuthnError::Disabled) => Err(SignInFailure::Disabled),
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed for a reason of ours");
            Err(SignInFailure::Unavailable)
        }
    }
}

/// A second-factor step under regulation, like a password: refused while
/// the user or address is banned, counted when the code is wrong.
async fn regulated<T>(
    live: &Live,
    username: &str,
    ip: Option<std::net::IpAddr>,
    attempt: impl std::future::Future<Output = Result<T, TwoFactorError>>,
) -> Result<T, SignInFailure> {
    let regulator = live.gate.regulator();
    regulator
        .check(username, ip)
        .map_err(SignInFailure::Banned)?;
    match attempt.await {
        Ok(done) => Ok(done),
        Err(TwoFactorError::InvalidCode) => {
            regulator.failed(username, ip).await;
            Err(SignInFailure::Invalid)
        }
        Err(e) => {
            tracing::error!(error = %e, user = %username, "second factor cannot be checked");
            Err(SignInFailure::Unavailable)
        }
    }
}

/// Check a second-factor code (TOTP or recovery), regulated.
pub(super) async fn check_code(
    live: &Live,
    username: &str,
    code: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<(), SignInFailure> {
    regulated(live, username, ip, live.two_factor.verify(username, code)).await
}

/// Confirm `username`'s enrolment with a code; answers the recovery codes.
/// Password-only credentials cached here stop working at once (other
/// replicas hear it through the change feed).
pub(super) async fn turn_on_second_factor(
    live: &Live,
    username: &str,
    code: &str,
) -> Result<Vec<String>, TwoFactorError> {
    let codes = live.two_factor.confirm(username, code).await?;
    live.gate.authenticator().invalidate_user(username);
    Ok(codes)
}

/// [`turn_on_second_factor`] while signing in, regulated like a password.
pub(super) async fn turn_on_at_sign_in(
    live: &Live,
    username: &str,
    code: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<Vec<String>, SignInFailure> {
    regulated(
        live,
        username,
        ip,
        turn_on_second_factor(live, username, code),
    )
    .await
}

/// The signed-in user proves they are at the keyboard before a sensitive
/// change: a current code when given, else the password (both regulated).
/// `None` when neither was sent.
pub(super) async fn reauthenticate(
    live: &Live,
    username: &str,
    code: &str,
    password: &str,
    ip: Option<std::net::IpAddr>,
) -> Option<Result<(), SignInFailure>> {
    Some(match (code.trim(), password) {
        ("", "") => return None,
        ("", password) => sign_in(live, username, password, ip).await.map(|_| ()),
        (code, _) => check_code(live, username, code, ip).await,
    })
}

/// Every factor is in: forget the user's failed attempts.
pub(super) async fn signed_in(live: &Live, username: &str) {
    live.gate.regulator().succeeded(username).await;
}

/// The identity behind the request's credential, or the answer to send.
async fn who(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
) -> Result<(Arc<Identity>, CredentialSource), Response> {
    match live.gate.identify(headers, ip).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(unauthorized(s, "unauthorized", "authentication required")),
        Err(AuthFailure::Unauthenticated(crate::gate::Unauthenticated::Rejected(
            AuthnError::Unavailable,
        ))) => Err(store_down(
            s,
            "credentials cannot be checked right now; try again shortly",
        )),
        Err(failure) => {
            let denial: crate::gate::Denial = failure.into();
            let asker = crate::respond::Asker {
                method: &http::Method::GET,
                browser: false,
                return_to: None,
            };
            Err(s.responder.denial(&denial, &asker).into_response())
        }
    }
}

fn unauthorized(s: &PortalState, code: &str, message: &str) -> Response {
    let mut resp = error(s, StatusCode::UNAUTHORIZED, code, message);
    if let Some(v) = s.responder.www_authenticate() {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// `GET api/me`.
pub(super) async fn me(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let (identity, _) = match who(&s, &live, &headers, ip).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
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
    no_store(
        Json(user_json(
            id,
            &identity,
            identity.method.as_str(),
            two_factor_enabled,
        ))
        .into_response(),
    )
}

/// `POST api/logout`: revoke the token or session the request came with.
pub(super) async fn logout(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let (identity, source) = match who(&s, &live, &headers, ip).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
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
            if !super::login::proven_same_origin(&s, &headers) {
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
        _ => return no_store(
            Json(serde_json::json!({
                "status": "nothing_to_revoke",
                "message": "Basic credentials and API keys are not sessions; nothing was revoked",
            }))
            .into_response(),
        ),
    };
    if let Err(e) = revoked {
        tracing::error!(error = %e, "cannot revoke");
        return store_down(&s, "signing out failed; try again shortly");
    }
    if let Some(handle) = &identity.revocation {
        live.gate.authenticator().invalidate_revoked(handle.key());
    }
    tracing::info!(user = %identity.subject, "signed out");
    let mut resp = no_store(Json(serde_json::json!({"status": "logged_out"})).into_response());
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

/// `GET .well-known/jwks.json`.
pub(super) async fn jwks(Extension(live): Extension<Arc<Live>>) -> Response {
    let mut resp = Json(live.gate.authenticator().tokens().jwks().clone()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// The identity for an account endpoint: a person or machine signed in by
/// session, token or password — not an API key (keys do not mint keys).
/// Cookie-authenticated writes must come from our own origin.
pub(super) async fn account_owner(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
    writes: bool,
) -> Result<Arc<Identity>, Response> {
    let (identity, source) = who(s, live, headers, ip).await?;
    if identity.method == AuthMethod::ApiKey {
        return Err(error(
            s,
            StatusCode::FORBIDDEN,
            "forbidden",
            "API keys cannot manage API keys; sign in as the user",
        ));
    }
    if !identity.is_local_account() {
        return Err(error(
            s,
            StatusCode::FORBIDDEN,
            "forbidden",
            "tokens of external issuers have no account here",
        ));
    }
    if writes
        && source == CredentialSource::SessionCookie
        && !super::login::proven_same_origin(s, headers)
    {
        return Err(error(
            s,
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "cross-site requests may not change your account",
        ));
    }
    Ok(identity)
}

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

/// 503 `store_unavailable`: the store did not answer; `message` says what failed.
pub(super) fn store_down(s: &PortalState, message: &str) -> Response {
    error(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        message,
    )
}

pub(super) const STORE_DOWN: &str = "the store does not answer; try again shortly";

/// `GET api/me/api-keys`: the caller's live keys (never the keys themselves).
pub(super) async fn list_keys(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let identity = match account_owner(&s, &live, &headers, ip, false).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
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
pub(super) struct NewKeyRequest {
    name: Option<String>,
    permissions: Option<Vec<String>>,
    /// Lifetime (`30d`, `12h`, or seconds); none: until revoked.
    expires_in: Option<serde_json::Value>,
}

/// `POST api/me/api-keys`: a new key acting as the caller, narrowed to a
/// subset of the caller's permissions; the key is in this answer only.
pub(super) async fn create_key(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let identity = match account_owner(&s, &live, &headers, ip, true).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let req: NewKeyRequest = match json_body(&s, &headers, &body) {
        Ok(r) => r,
        Err(reply) => return reply.into_response(),
    };
    let bad = |msg: &str| error(&s, StatusCode::BAD_REQUEST, "invalid_request", msg);
    let name = req.name.unwrap_or_else(|| "api".into());
    if !crate::config::valid_name(&name) {
        return bad("`name` must be 1-128 letters, digits, `_`, `-`, `.`, `@`");
    }
    if let Some(list) = &req.permissions {
        for p in list {
            match p.parse::<crate::permission::Permission>() {
                Err(_) => return bad(&format!("`{p}` is not a permission like `posts:read`")),
                Ok(perm) if !identity.permissions.allows(&perm) => {
                    return error(
                        &s,
                        StatusCode::FORBIDDEN,
                        "permission_not_allowed",
                        &format!("you do not hold `{p}`, so your key cannot either"),
                    )
                }
                Ok(_) => {}
            }
        }
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
    let key = crate::authn::generate_api_key();
    let hash = crate::authn::api_key_hash(&key);
    let created = store
        .create_api_key(
            &name,
            &identity.subject,
            hash.trim_start_matches("sha256:"),
            req.permissions.as_deref(),
            expires_at,
        )
        .await;
    match created {
        Ok(stored) => {
            let mut body = key_json(&stored);
            body["key"] = serde_json::Value::String(key);
            let mut resp = no_store(Json(body).into_response());
            *resp.status_mut() = StatusCode::CREATED;
            resp
        }
        Err(_) => store_down(&s, STORE_DOWN),
    }
}

/// `DELETE api/me/api-keys/{id}`: revoke one of the caller's keys.
pub(super) async fn delete_key(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let identity = match account_owner(&s, &live, &headers, ip, true).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
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
