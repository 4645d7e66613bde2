//! Single sign-on for programs: `api/sso/info` (which providers, public)
//! and `oidc/backchannel-logout` (a provider ending its users' sessions).

use crate::app::Live;
use crate::portal::json::{error, no_store, store_down, STORE_DOWN};
use crate::portal::PortalState;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// The identity providers people may sign in with.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct SsoInfo {
    /// The provider the sign-in page sends everyone to, if any.
    auto_redirect: Option<String>,
    /// Whether any provider is configured.
    enabled: bool,
    providers: Vec<SsoProvider>,
}

/// An identity provider.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct SsoProvider {
    display_name: String,
    id: String,
    /// Where a browser starts signing in with it (`?rd=` for where to go
    /// afterwards).
    login_url: String,
}

/// `GET api/sso/info`: `{enabled, providers: [{id, display_name, login_url}]}`.
#[utoipa::path(get, path = "/api/sso/info", operation_id = "sso_info", tag = "auth", security(()),
    responses((status = 200, body = SsoInfo)))]
pub(in crate::portal) async fn info(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
) -> Response {
    let providers: Vec<SsoProvider> = live
        .sso
        .providers()
        .map(|p| SsoProvider {
            display_name: p.display_name.clone(),
            id: p.id.clone(),
            login_url: format!("{}/oidc/{}/authorize", s.prefix, p.id),
        })
        .collect();
    no_store(
        Json(SsoInfo {
            auto_redirect: live.sso.auto_redirect().map(str::to_owned),
            enabled: !providers.is_empty(),
            providers,
        })
        .into_response(),
    )
}

#[derive(Deserialize)]
pub(in crate::portal) struct LogoutTokenForm {
    #[serde(default)]
    logout_token: String,
}

/// `POST oidc/backchannel-logout` (OpenID Connect Back-Channel Logout 1.0):
/// a verified `logout_token` revokes that person's sessions from that
/// provider; every replica hears it through the change feed. 200 when done,
/// 400 `invalid_request` for a token that does not verify.
pub(in crate::portal) async fn backchannel_logout(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Form(form): Form<LogoutTokenForm>,
) -> Response {
    let notice = match live.sso.verify_logout_token(form.logout_token.trim()).await {
        Ok(n) => n,
        Err(e @ crate::sso::SsoError::Unreachable(_)) => {
            tracing::warn!(error = %e, "back-channel logout cannot be verified now");
            return error(
                &s,
                StatusCode::BAD_GATEWAY,
                "provider_unreachable",
                "the provider's keys cannot be fetched now; send the logout again",
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "back-channel logout refused");
            return error(
                &s,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the logout_token is not valid",
            );
        }
    };
    let Some(store) = &s.store else {
        return store_down(&s, STORE_DOWN);
    };
    match store
        .revoke_sso_sessions(
            &notice.provider,
            notice.subject.as_deref(),
            notice.sid.as_deref(),
        )
        .await
    {
        Ok(n) => {
            tracing::info!(provider = %notice.provider, sessions = n, "back-channel logout");
            // Every replica's cache (this one's too) drops them through the
            // change feed, within a second.
            no_store(StatusCode::OK.into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "back-channel logout cannot revoke");
            store_down(
                &s,
                "the sessions could not be revoked; send the logout again",
            )
        }
    }
}
