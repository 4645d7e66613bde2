//! `api/audit`: the audit trail, newest first, for `audit:get`.

use crate::audit::parse_time;
use crate::portal::api::api_keys::rfc3339;
use crate::portal::api::users::AdminErrorOut;
use crate::portal::context::{Administrator, ReadsAudit};
use crate::portal::json::{no_store, store_down, STORE_DOWN};
use crate::portal::PortalState;
use crate::respond::ErrorBody;
use crate::store::{unix_now, AuditQuery, AuditRecord};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Which events to answer.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(in crate::portal) struct AuditParams {
    /// Events with this user as actor or target.
    user: Option<String>,
    /// e.g. `sign_in`, `user.update`.
    action: Option<String>,
    /// From this time on: unix seconds, RFC 3339, a date, or a duration
    /// back from now (`24h`).
    since: Option<String>,
    /// Before this time (same forms as `since`).
    until: Option<String>,
    /// From 1.
    page: Option<String>,
    /// 1 to 500, default 100.
    per_page: Option<String>,
}

/// One security event.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct AuditEventOut {
    id: i64,
    at: String,
    actor: Option<String>,
    action: String,
    target: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    /// `success`, `failure` or `denied`.
    outcome: String,
    /// The reason, the change (before → after)…
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

impl From<AuditRecord> for AuditEventOut {
    fn from(r: AuditRecord) -> Self {
        AuditEventOut {
            id: r.id,
            at: rfc3339(r.at),
            actor: r.actor,
            action: r.action,
            target: r.target,
            ip: r.ip,
            user_agent: r.user_agent,
            outcome: r.outcome,
            details: serde_json::from_str(&r.details).unwrap_or_default(),
        }
    }
}

/// One page of events, newest first.
#[derive(Serialize, ToSchema)]
pub(in crate::portal) struct AuditPage {
    events: Vec<AuditEventOut>,
    /// How many events match in all.
    total: i64,
    page: i64,
    per_page: i64,
}

fn bad(field: &'static str, message: String) -> Response {
    let body = serde_json::json!({"error": "invalid_request", "message": message, "field": field});
    no_store((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

/// `GET api/audit?user=&action=&since=&until=&page=&per_page=`.
#[utoipa::path(get, path = "/api/audit", operation_id = "list_audit_events",
    tag = "admin", params(AuditParams),
    responses((status = 200, body = AuditPage),
        (status = 400, description = "`invalid_request`, naming the `field`", body = AdminErrorOut),
        (status = 401, description = "no or bad credentials", body = ErrorBody),
        (status = 403, description = "`forbidden`: needs `audit:get`", body = ErrorBody)))]
pub(in crate::portal) async fn list(
    State(s): State<Arc<PortalState>>,
    _who: Administrator<ReadsAudit>,
    Query(q): Query<AuditParams>,
) -> Response {
    let now = unix_now();
    let given = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let mut times = [None, None];
    for (slot, (field, value)) in times
        .iter_mut()
        .zip([("since", &q.since), ("until", &q.until)])
    {
        if let Some(v) = given(value) {
            match parse_time(&v, now) {
                Ok(t) => *slot = Some(t),
                Err(m) => return bad(field, m),
            }
        }
    }
    let number = |v: &Option<String>, default: i64, max: i64| match given(v) {
        None => Some(default),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n)),
    };
    let Some(page) = number(&q.page, 1, 1_000_000) else {
        return bad("page", "`page` is a whole number from 1".into());
    };
    let Some(per_page) = number(&q.per_page, 100, 500) else {
        return bad(
            "per_page",
            "`per_page` is a whole number from 1 to 500".into(),
        );
    };
    let Some(store) = &s.store else {
        return store_down(&s, STORE_DOWN);
    };
    let query = AuditQuery {
        user: given(&q.user),
        action: given(&q.action),
        since: times[0],
        until: times[1],
        offset: (page - 1) * per_page,
        limit: per_page,
    };
    match store.audit_events(query).await {
        Ok((events, total)) => {
            let events = events.into_iter().map(AuditEventOut::from).collect();
            let body = AuditPage {
                events,
                total,
                page,
                per_page,
            };
            no_store(Json(body).into_response())
        }
        Err(_) => store_down(&s, STORE_DOWN),
    }
}
