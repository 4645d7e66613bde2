//! The `admin` pages: the users list (search, filters, paging), creating a
//! user, and one user's page — change role, status, type, address, name or
//! password; disable or enable; sign out everywhere; reset the second
//! factor; revoke API keys; delete. Server-rendered, usable without
//! JavaScript, every form CSRF-protected. Seeing them needs `users:get`;
//! every action needs `users:manage` and goes through the same [`Admin`]
//! operations as `api/users` (and so the audit trail). After a change the
//! browser is sent back to the user's page (`?done=…` says what happened),
//! so a reload never repeats it.

use crate::accounts::admin::{
    authorize, Admin, AdminError, AdminNeed, ManagedUser, NewUserInput, UserFilter, UserPatch,
};
use crate::app::Live;
use crate::identity::Identity;
use crate::policy::Access;
use crate::portal::api::api_keys::rfc3339;
use crate::portal::csrf::{csrf_ok, csrf_token};
use crate::portal::html::{csrf_refused, page, see_other};
use crate::portal::pages::account::session_user_for;
use crate::portal::{ClientIp, PortalState};
use crate::session::Origin;
use crate::store::unix_now;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;
use std::sync::Arc;

/// `GET admin/users` query.
#[derive(Deserialize, Default)]
pub(in crate::portal) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    page: String,
}

/// `GET admin/users/{id}` query: what was just done.
#[derive(Deserialize, Default)]
pub(in crate::portal) struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// The create and edit forms.
#[derive(Deserialize, Default)]
pub(in crate::portal) struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    password: String,
}

/// Forms with nothing but the CSRF token (and, for keys, which one).
#[derive(Deserialize)]
pub(in crate::portal) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    confirm: String,
}

/// Who may see or act, or the answer: a sign-in for nobody, 403 for the
/// wrong permission.
async fn administrator(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
    need: AdminNeed,
    back: &str,
) -> Result<Arc<Identity>, Response> {
    let identity = session_user_for(s, live, headers, ip, back).await?;
    match authorize(&identity, need) {
        Ok(()) => Ok(identity),
        Err(_) => {
            let here = s.public(back);
            let page = s.responder.forbidden_page(
                &Access::Permission(need.permission()),
                Some(&identity.shown_as()),
                Some(&here),
            );
            Err(s.responder.render(&page).into_response())
        }
    }
}

fn unavailable(s: &PortalState) -> Response {
    s.responder
        .page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "The user administration cannot be shown right now. Try again shortly.",
        )
        .into_response()
}

fn not_found(s: &PortalState) -> Response {
    s.responder
        .page(
            StatusCode::NOT_FOUND,
            "No such user",
            "There is no such user: it may have been deleted.",
        )
        .into_response()
}

fn admin_for<'a>(live: &'a Live, store: &'a crate::store::Store, who: &'a Identity) -> Admin<'a> {
    Admin {
        store,
        directory: live.gate.authenticator().directory(),
        passwords: &live.passwords,
        actor: &who.subject,
        reach: Some(&who.permissions),
    }
}

/// A user as the pages show one.
fn user_ctx(u: &ManagedUser) -> minijinja::Value {
    let r = &u.record;
    let key = u.id.map_or_else(|| r.username.clone(), |id| id.to_string());
    minijinja::context! {
        id => u.id, href => utf8_percent_encode(&key, NON_ALPHANUMERIC).to_string(),
        username => &r.username, email => &r.email, name => &r.name,
        kind => r.kind.as_str(), role => &r.role, status => r.status.as_str(),
        read_only => u.read_only,
        created_at => u.created_at.map(rfc3339),
        last_login_at => u.last_login_at.map(rfc3339),
    }
}

fn roles(live: &Live) -> Vec<String> {
    live.gate
        .authenticator()
        .directory()
        .roles
        .iter()
        .map(|(name, _)| name.clone())
        .collect()
}

/// `{prefix}/admin/users?…` for another page of the same list.
fn list_url(s: &PortalState, q: &ListQuery, page: i64) -> String {
    let enc = |v: &str| utf8_percent_encode(v, NON_ALPHANUMERIC).to_string();
    format!(
        "{}/admin/users?q={}&type={}&status={}&role={}&page={page}",
        s.prefix,
        enc(&q.q),
        enc(&q.kind),
        enc(&q.status),
        enc(&q.role)
    )
}

/// `GET admin`: the users list.
pub(in crate::portal) async fn home(State(s): State<Arc<PortalState>>) -> Response {
    see_other(&format!("{}/admin/users", s.prefix), &[])
}

/// `GET admin/users`.
pub(in crate::portal) async fn users(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let who = match administrator(
        &s,
        &live,
        &headers,
        ip,
        AdminNeed::ReadUsers,
        "/admin/users",
    )
    .await
    {
        Ok(who) => who,
        Err(resp) => return resp,
    };
    let Some(store) = &s.store else {
        return unavailable(&s);
    };
    let admin = admin_for(&live, store, &who);
    let parsed = UserFilter::parse(
        Some(&q.q),
        Some(&q.kind),
        Some(&q.status),
        Some(&q.role),
        Some(&q.page),
        None,
    );
    let (filter, error) = match parsed {
        Ok(f) => (f, None),
        Err(e) => (UserFilter::default(), Some(e.to_string())),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let (list, total) = match admin.list(&filter).await {
        Ok(found) => found,
        Err(_) => return unavailable(&s),
    };
    let pages = ((total + filter.per_page - 1) / filter.per_page).max(1);
    let (csrf, set) = csrf_token(&s, &live, &headers);
    let ctx = minijinja::context! {
        title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix, csrf => csrf,
        me => &who.subject,
        can_manage => authorize(&who, AdminNeed::ManageUsers).is_ok(),
        users => list.iter().map(user_ctx).collect::<Vec<_>>(),
        total => total, page => filter.page, pages => pages,
        prev => (filter.page > 1).then(|| list_url(&s, &q, filter.page - 1)),
        next => (filter.page < pages).then(|| list_url(&s, &q, filter.page + 1)),
        q => &q.q, kind => &q.kind, status => &q.status, role => &q.role,
        roles => roles(&live), error => error,
    };
    page(&s, status, "admin_users.html", ctx, set.as_slice())
}

/// What the user's page shows besides the user.
#[derive(Default)]
struct UserView<'a> {
    notice: Option<&'static str>,
    error: Option<String>,
    /// The create form, filled in again after an error.
    form: Option<&'a UserForm>,
}

/// The words for `?done=…`.
fn done_notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "created" => "User created.",
        "updated" => "Saved.",
        "signed_out" => "Signed out everywhere.",
        "two_factor_reset" => "Two-factor authentication reset: they sign in with the password alone, or enrol anew if their role requires it.",
        "keys_revoked" => "API keys revoked.",
        _ => return None,
    })
}

/// Render one user's page (or the create form when `user` is none).
async fn user_page(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    who: &Identity,
    user: Option<&ManagedUser>,
    status: StatusCode,
    view: UserView<'_>,
) -> Response {
    let Some(store) = &s.store else {
        return unavailable(s);
    };
    let admin = admin_for(live, store, who);
    let (mut sessions, mut keys, mut two_factor) = (Vec::new(), Vec::new(), false);
    if let Some(u) = user {
        let idle = live.session.idle_timeout.as_secs() as i64;
        let name = u.username();
        let found = (
            admin.sessions(name, unix_now(), idle).await,
            admin.api_keys(name).await,
            live.two_factor.is_enabled(name).await,
        );
        let (Ok((_, s_list)), Ok((_, k_list)), Ok(on)) = found else {
            return unavailable(s);
        };
        sessions = s_list
            .iter()
            .map(|r| {
                minijinja::context! {
                    created_at => rfc3339(r.created_at), last_seen_at => rfc3339(r.last_seen_at),
                    ip => &r.ip, user_agent => &r.user_agent,
                    sso_provider => r.sso.as_ref().map(|s| s.provider.as_str()),
                }
            })
            .collect::<Vec<_>>();
        keys = k_list
            .iter()
            .map(|k| {
                minijinja::context! {
                    id => k.id, name => &k.name,
                    permissions => k.permissions.as_ref().map(|p| p.join(" ")),
                    expires_at => k.expires_at.map(rfc3339), created_at => rfc3339(k.created_at),
                }
            })
            .collect::<Vec<_>>();
        two_factor = on;
    }
    let (csrf, set) = csrf_token(s, live, headers);
    let form = view.form.map(|f| {
        minijinja::context! {
            username => &f.username, email => &f.email, name => &f.name,
            kind => &f.kind, role => &f.role, status => &f.status,
        }
    });
    let ctx = minijinja::context! {
        title => &s.title, css => crate::respond::PAGE_CSS, prefix => &s.prefix, csrf => csrf,
        me => &who.subject,
        can_manage => authorize(who, AdminNeed::ManageUsers).is_ok(),
        user => user.map(user_ctx), form => form,
        sessions => sessions, api_keys => keys, two_factor_enabled => two_factor,
        roles => roles(live), password_rule => live.passwords.rule(),
        notice => view.notice, error => view.error,
    };
    page(s, status, "admin_user.html", ctx, set.as_slice())
}

/// `GET admin/users/new`: the create form.
pub(in crate::portal) async fn new_user(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let back = "/admin/users/new";
    let who = match administrator(&s, &live, &headers, ip, AdminNeed::ManageUsers, back).await {
        Ok(who) => who,
        Err(resp) => return resp,
    };
    let view = UserView::default();
    user_page(&s, &live, &headers, &who, None, StatusCode::OK, view).await
}

/// `GET admin/users/{id}`.
pub(in crate::portal) async fn show_user(
    State(s): State<Arc<PortalState>>,
    Extension(live): Extension<Arc<Live>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(done): Query<DoneQuery>,
) -> Response {
    let back = format!(
        "/admin/users/{}",
        utf8_percent_encode(&id, NON_ALPHANUMERIC)
    );
    let who = match administrator(&s, &live, &headers, ip, AdminNeed::ReadUsers, &back).await {
        Ok(who) => who,
        Err(resp) => return resp,
    };
    let Some(store) = &s.store else {
        return unavailable(&s);
    };
    let user = match admin_for(&live, store, &who).find(&id).await {
        Ok(u) => u,
        Err(AdminError::NotFound) => return not_found(&s),
        Err(_) => return unavailable(&s),
    };
    let view = UserView {
        notice: done_notice(&done.done),
        ..UserView::default()
    };
    user_page(&s, &live, &headers, &who, Some(&user), StatusCode::OK, view).await
}

/// The checks every action shares: the CSRF token, then `users:manage`.
async fn acting(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
    csrf: &str,
) -> Result<Arc<Identity>, Response> {
    if !csrf_ok(s, headers, csrf) {
        return Err(csrf_refused(s));
    }
    administrator(s, live, headers, ip, AdminNeed::ManageUsers, "/admin/users").await
}

/// Back to the user's page, saying what was done.
fn done(s: &PortalState, user: &ManagedUser, what: &str) -> Response {
    let key = user
        .id
        .map_or_else(|| user.username().to_owned(), |id| id.to_string());
    let key = utf8_percent_encode(&key, NON_ALPHANUMERIC);
    see_other(&format!("{}/admin/users/{key}?done={what}", s.prefix), &[])
}

fn text(v: &str) -> Option<String> {
    Some(v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// An operation refused: the page again with the reason, or a page of its
/// own when the user is gone or the store is down.
async fn refused(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
    who: &Identity,
    id: Option<&str>,
    form: Option<&UserForm>,
    e: AdminError,
) -> Response {
    let status = match &e {
        AdminError::NotFound => return not_found(s),
        AdminError::Unavailable(_) => return unavailable(s),
        AdminError::Invalid { .. } => StatusCode::BAD_REQUEST,
        AdminError::NoSuchKey => StatusCode::NOT_FOUND,
        AdminError::Outranked(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::CONFLICT,
    };
    let Some(store) = &s.store else {
        return unavailable(s);
    };
    let user = match id {
        Some(id) => match admin_for(live, store, who).find(id).await {
            Ok(u) => Some(u),
            Err(_) => return not_found(s),
        },
        None => None,
    };
    let view = UserView {
        error: Some(e.to_string()),
        form,
        ..UserView::default()
    };
    user_page(s, live, headers, who, user.as_ref(), status, view).await
}

/// `POST admin/users`: create.
pub(in crate::portal) async fn create_user(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Form(form): Form<UserForm>,
) -> Response {
    let ip = origin.ip;
    let who = match acting(&s, &live, &headers, ip, &form.csrf).await {
        Ok(who) => who,
        Err(resp) => return resp,
    };
    let Some(store) = &s.store else {
        return unavailable(&s);
    };
    let input = NewUserInput {
        username: form.username.clone(),
        email: text(&form.email),
        name: text(&form.name),
        kind: text(&form.kind),
        role: text(&form.role),
        status: text(&form.status),
        password: Some(form.password.clone()).filter(|p| !p.is_empty()),
    };
    match admin_for(&live, store, &who).create(input).await {
        Ok((user, event)) => {
            s.audit.record(event.origin(&origin));
            done(&s, &user, "created")
        }
        Err(e) => refused(&s, &live, &headers, &who, None, Some(&form), e).await,
    }
}

/// `POST admin/users/{id}`: save the edit form (empty password: unchanged).
pub(in crate::portal) async fn update_user(
    State(s): State<Arc<PortalState>>,
    origin: Origin,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<UserForm>,
) -> Response {
    let ip = origin.ip;
    let who = match acting(&s, &live, &headers, ip, &form.csrf).await {
        Ok(who) => who,
        Err(resp) => return resp,
    };
    let Some(store) = &s.store else {
        return unavailable(&s);
    };
    // Only what the form sent: the status buttons send the status alone.
    let patch = UserPatch {
        role: text(&form.role),
        status: text(&form.status),
        kind: text(&form.kind),
        email: (!form.username.is_empty()).then(|| text(&form.email)),
        name: (!form.username.is_empty()).then(|| text(&form.name)),
        password: Some(form.password.clone()).filter(|p| !p.is_empty()),
    };
    match admin_for(&live, store, &who).update(&id, patch).await {
        Ok((user, event)) => {
            s.audit.record(event.origin(&origin));
            live.gate.authenticator().invalidate_user(user.username());
            done(&s, &user, "updated")
        }
        Err(e) => refused(&s, &live, &headers, &who, Some(&id), None, e).await,
    }
}

/// The buttons of a user's page.
#[derive(Debug, Clone, Copy)]
enum Action {
    Delete,
    SignOut,
    ResetTwoFactor,
    RevokeKeys,
}

async fn act(
    s: &PortalState,
    live: &Live,
    origin: &Origin,
    headers: &HeaderMap,
    id: &str,
    form: &ActionForm,
    action: Action,
) -> Response {
    let who = match acting(s, live, headers, origin.ip, &form.csrf).await {
        Ok(who) => who,
        Err(resp) => return resp,
    };
    let Some(store) = &s.store else {
        return unavailable(s);
    };
    let admin = admin_for(live, store, &who);
    let authn = live.gate.authenticator();
    let outcome = match action {
        Action::Delete if form.confirm != "yes" => Err(AdminError::Invalid {
            field: "confirm",
            message: "Tick the box to confirm the deletion.".into(),
        }),
        Action::Delete => admin.delete(id).await.map(|(u, e)| (u, e, "deleted")),
        Action::SignOut => admin
            .sign_out(id)
            .await
            .map(|(u, _, e)| (u, e, "signed_out")),
        Action::ResetTwoFactor => admin
            .reset_two_factor(id)
            .await
            .map(|(u, e)| (u, e, "two_factor_reset")),
        Action::RevokeKeys => {
            let only = form.key.trim().parse::<i64>().ok();
            admin.revoke_api_keys(id, only).await.map(|(u, hashes, e)| {
                for hash in &hashes {
                    authn.invalidate_revoked(hash);
                }
                (u, e, "keys_revoked")
            })
        }
    };
    match outcome {
        Ok((user, event, what)) => {
            s.audit.record(event.origin(origin));
            authn.invalidate_user(user.username());
            if what == "deleted" {
                see_other(&format!("{}/admin/users", s.prefix), &[])
            } else {
                done(s, &user, what)
            }
        }
        Err(e) => refused(s, live, headers, &who, Some(id), None, e).await,
    }
}

macro_rules! action_handler {
    ($name:ident, $action:expr) => {
        pub(in crate::portal) async fn $name(
            State(s): State<Arc<PortalState>>,
            origin: Origin,
            Extension(live): Extension<Arc<Live>>,
            headers: HeaderMap,
            Path(id): Path<String>,
            Form(form): Form<ActionForm>,
        ) -> Response {
            act(&s, &live, &origin, &headers, &id, &form, $action).await
        }
    };
}

action_handler!(delete_user, Action::Delete);
action_handler!(sign_out_user, Action::SignOut);
action_handler!(reset_two_factor, Action::ResetTwoFactor);
action_handler!(revoke_keys, Action::RevokeKeys);
