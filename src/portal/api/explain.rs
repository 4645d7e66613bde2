//! `api/explain`: what the server would answer a request, and why — the
//! same [`Explainer`] as `gatehouse explain`, on the live policy, users and
//! roles, for `policy:explain`.

use crate::gate::explain::{ExplainError, Explainer, Explanation, Question, RuleMatch};
use crate::portal::context::{Administrator, ExplainsPolicy};
use crate::portal::json::{error, no_store, store_down};
use crate::portal::PortalState;
use crate::request::AlsoRead;
use crate::respond::ErrorBody;
use crate::upstream::headers::MethodOverride;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// The request to explain.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(in crate::portal) struct ExplainParams {
    /// Any HTTP method; default `GET`.
    method: Option<String>,
    /// A path (`/a?b`, on `public_url`'s host) or an http(s) URL.
    url: Option<String>,
    /// Decide as this user (config file or store); default: anonymous.
    user: Option<String>,
}

/// A rule a reading of the request matched.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct RuleOut {
    /// `rules[3]` or `default`.
    name: String,
    /// Its methods and path patterns (`GET,HEAD /api/**`).
    pattern: String,
    /// `public`, `authenticated`, `permission posts:write` or `deny`.
    requires: String,
}

impl From<&RuleMatch> for RuleOut {
    fn from(r: &RuleMatch) -> Self {
        RuleOut {
            name: r.name.clone(),
            pattern: r.pattern.clone(),
            requires: r.requires.clone(),
        }
    }
}

/// The user the request was judged as.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct ExplainedUser {
    username: String,
    role: String,
    /// The role's permissions (none while disabled).
    permissions: Vec<String>,
    /// `enabled` or `disabled` (a disabled user's credentials are refused).
    status: &'static str,
    /// `config` or `store`.
    source: &'static str,
}

/// What the server would answer, and why.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct ExplainOut {
    /// Upper case, as judged.
    method: String,
    /// Lower case, without port.
    host: String,
    /// The path as read (decoded once, `//` merged); null when unreadable.
    path: Option<String>,
    /// Further readings (`GET /a` for a HEAD), each of which must pass too.
    also_read: Vec<String>,
    /// The pattern of the rule that decided; null for an unreadable
    /// request or a portal path.
    rule: Option<String>,
    /// That rule's name (`rules[3]`, `default`).
    rule_name: Option<String>,
    /// Every rule the readings matched, the canonical reading's first.
    rules: Vec<RuleOut>,
    /// `allow` or `deny`.
    decision: &'static str,
    /// The status the server answers with (200: passed on to the upstream
    /// or the portal, which answers for itself).
    status: u16,
    /// `public`, `allowed` or `portal` when allowed; else the `error` code
    /// of the server's answer: `unauthorized`, `account_disabled`,
    /// `forbidden`, `invalid_path`, `invalid_request_target`, ….
    reason: String,
    /// The same, for people.
    message: String,
    /// Null for anonymous.
    user: Option<ExplainedUser>,
    /// The permissions the matched rules require.
    permissions_needed: Vec<String>,
}

impl From<Explanation> for ExplainOut {
    fn from(e: Explanation) -> Self {
        ExplainOut {
            method: e.method,
            host: e.host,
            path: e.path,
            also_read: e.also_read,
            rule: e.rule.as_ref().map(|r| r.pattern.clone()),
            rule_name: e.rule.as_ref().map(|r| r.name.clone()),
            rules: e.rules.iter().map(RuleOut::from).collect(),
            decision: e.outcome.as_str(),
            status: e.status,
            reason: e.reason,
            message: e.message,
            user: e.user.map(|u| ExplainedUser {
                username: u.username,
                role: u.role,
                permissions: u.permissions,
                status: if u.enabled { "enabled" } else { "disabled" },
                source: if u.declared { "config" } else { "store" },
            }),
            permissions_needed: e.permissions_needed,
        }
    }
}

fn bad(field: &'static str, message: String) -> Response {
    let body = serde_json::json!({"error": "invalid_request", "message": message, "field": field});
    no_store((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

/// `GET api/explain?method=&url=&user=`.
#[utoipa::path(get, path = "/api/explain", operation_id = "explain_request",
    tag = "admin", params(ExplainParams),
    responses((status = 200, description = "the answer the server would give, and why \
            (also when that answer is a 400 for an unreadable path)", body = ExplainOut),
        (status = 400, description = "`invalid_request`: no `url`, or a `method` that is \
            not one, naming the `field`", body = ErrorBody),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `policy:explain`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user", body = ErrorBody),
        (status = 503, description = "`store_unavailable`", body = ErrorBody)))]
pub(in crate::portal) async fn explain(
    State(s): State<Arc<PortalState>>,
    who: Administrator<ExplainsPolicy>,
    Query(q): Query<ExplainParams>,
) -> Response {
    let Some(url) = q.url.as_deref().filter(|u| !u.trim().is_empty()) else {
        return bad("url", "`url` is required: a path or an http(s) URL".into());
    };
    let live = &who.live;
    let gate = &live.gate;
    let headers = HeaderMap::new();
    let explainer = Explainer {
        policy: gate.policy(),
        reading: gate.read_settings(),
        also: AlsoRead {
            method_overrides: live.headers.method_override == MethodOverride::Judge,
            rewrite_headers: &[],
        },
        directory: gate.authenticator().directory(),
        store: s.store.as_ref(),
        public_host: s.redirect.public_url().host_str().unwrap_or_default(),
        portal_prefix: &s.prefix,
    };
    let question = Question {
        method: q.method.as_deref().unwrap_or("GET"),
        url,
        user: q.user.as_deref(),
        headers: &headers,
    };
    match explainer.explain(&question).await {
        Ok(e) => no_store(Json(ExplainOut::from(e)).into_response()),
        Err(e @ ExplainError::Method(_)) => bad("method", e.to_string()),
        Err(e @ ExplainError::NoSuchUser(_)) => no_store(error(
            &s,
            StatusCode::NOT_FOUND,
            "not_found",
            &e.to_string(),
        )),
        Err(e @ ExplainError::Unavailable(_)) => store_down(&s, &e.to_string()),
    }
}
