//! Every answer Gatehouse writes itself, built in exactly one place.
//!
//! A [`Denial`] (or an upstream failure) becomes a [`Reply`]: JSON with
//! `{"error", "message"}` for API clients; for browsers a login redirect or
//! an [`ErrorPage`], which says in plain words what happened, who is signed
//! in, when to try again, and offers the way out (sign in as someone else,
//! sign out, try again, home). Its template and the deployer's branding live
//! in [`templates`], shared with the portal's pages.

pub mod templates;

use crate::config::PortalSettings;
use crate::gate::{Denial, Unauthenticated};
use crate::policy::Access;
use crate::regulation::Banned;
use crate::request::{PathError, ReadError, TargetError};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::sync::Arc;
use std::time::Duration;

/// A complete response: status, headers, body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// The body of every JSON error: `{"error": code, "message": message}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// What happened, as a stable snake_case code (`invalid_credentials`).
    pub error: &'a str,
    /// The same, for people.
    pub message: &'a str,
}

/// Characters left as-is in a query parameter value.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/')
    .remove(b':');

/// Does the client want pages rather than JSON? (`Accept` has `text/html`
/// and the request is not an XHR.)
pub fn wants_html(headers: &HeaderMap) -> bool {
    let xhr = headers
        .get("x-requested-with")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"xmlhttprequest"));
    !xhr && headers
        .get_all(http::header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains("text/html")))
}

/// When to try again, in words, rounded up so that it is never too early:
/// "in 1 minute", "in 15 minutes", "in 2 hours", "in 3 days".
pub fn in_words(wait: Duration) -> String {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let minutes = secs.div_ceil(60).max(1);
    let (n, unit) = if minutes < 120 {
        (minutes, "minute")
    } else if secs.div_ceil(3600) < 48 {
        (secs.div_ceil(3600), "hour")
    } else {
        (secs.div_ceil(86_400), "day")
    };
    let s = if n == 1 { "" } else { "s" };
    format!("in {n} {unit}{s}")
}

/// One way out of an error page: a link.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WayOut {
    pub label: String,
    pub href: String,
}

/// A page that says in plain words what happened and offers the way out.
/// Every page also links to the home page ([`Responder::render`] adds it).
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub status: StatusCode,
    /// What happened, as a heading ("You don't have access to this page").
    pub heading: String,
    /// A sentence or two of explanation, for anyone.
    pub message: String,
    /// A secondary line for whoever will fix it (the permission needed).
    pub detail: Option<String>,
    /// Who the request was signed in as.
    pub signed_in_as: Option<String>,
    /// The ways out, the first drawn as a button.
    pub links: Vec<WayOut>,
}

impl ErrorPage {
    pub fn new(status: StatusCode, heading: &str, message: &str) -> Self {
        ErrorPage {
            status,
            heading: heading.to_owned(),
            message: message.to_owned(),
            detail: None,
            signed_in_as: None,
            links: Vec::new(),
        }
    }

    /// Adds a link (the first one added is the main way out).
    pub fn link(mut self, label: &str, href: impl Into<String>) -> Self {
        self.links.push(WayOut {
            label: label.to_owned(),
            href: href.into(),
        });
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn signed_in_as(mut self, who: Option<&str>) -> Self {
        self.signed_in_as = who.map(str::to_owned);
        self
    }
}

/// `text` as a sentence: a capital first letter and a full stop.
pub fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// Builds replies; knows the title, the portal's URLs, the Basic realm and
/// the page templates.
#[derive(Clone)]
pub struct Responder {
    title: String,
    /// `{public_url}{p}`.
    portal_url: String,
    /// `{public_url}/`.
    home_url: String,
    www_authenticate: HeaderValue,
    templates: Arc<minijinja::Environment<'static>>,
    favicon: Bytes,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("title", &self.title)
            .field("portal_url", &self.portal_url)
            .finish_non_exhaustive()
    }
}

/// How the client asked, for choosing the answer's shape.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub method: &'a Method,
    pub browser: bool,
    /// Where to come back to after login (already known to be allowed).
    pub return_to: Option<&'a str>,
}

/// What a page says of a request that could not be read, in plain words.
fn unreadable(e: &ReadError) -> &'static str {
    match e {
        ReadError::Path(PathError::DotSegment) => {
            "The address contains a “.” or “..” step, which could lead somewhere it shouldn't, so it was refused. Check the address and try again."
        }
        ReadError::Path(PathError::ControlCharacter) => {
            "The address contains characters that aren't allowed in a web address. Check the address and try again."
        }
        ReadError::Path(PathError::Encoding) | ReadError::Target(TargetError::Encoding) => {
            "The address contains characters that can't be read. Check the address and try again."
        }
        ReadError::Path(PathError::Semicolon) => {
            "The address contains a “;”, which this site doesn't accept. Check the address and try again."
        }
        ReadError::Path(PathError::NotAbsolute)
        | ReadError::Target(TargetError::Form | TargetError::Asterisk) => {
            "The request didn't name a page in a form this site accepts. Check the address and try again."
        }
        ReadError::OverrideMethod { .. } | ReadError::RewriteUrl { .. } => {
            "The request carried a header this site can't read safely. If a program or extension adds headers, turn it off and try again."
        }
    }
}

impl Responder {
    /// `public_url` has no trailing slash; `portal` holds the prefix and the
    /// branding.
    pub fn new(portal: &PortalSettings, public_url: &str) -> Result<Self, minijinja::Error> {
        let public_url = public_url.trim_end_matches('/');
        let title = &portal.title;
        let realm: String = title
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        let www = format!("Basic realm=\"{realm}\", charset=\"UTF-8\", Bearer");
        Ok(Responder {
            title: title.to_owned(),
            portal_url: format!("{public_url}{}", portal.prefix),
            home_url: format!("{public_url}/"),
            www_authenticate: HeaderValue::from_str(&www)
                .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"Gatehouse\", Bearer")),
            templates: Arc::new(templates::environment(portal, public_url)?),
            favicon: Bytes::from(templates::favicon_svg(templates::accent(portal))),
        })
    }

    /// The page templates, branded.
    pub fn templates(&self) -> &minijinja::Environment<'static> {
        &self.templates
    }

    /// The favicon (SVG), in the accent colour.
    pub fn favicon(&self) -> Bytes {
        self.favicon.clone()
    }

    /// `{public_url}{p}{path}`.
    pub fn portal_url(&self, path: &str) -> String {
        format!("{}{path}", self.portal_url)
    }

    /// `{public_url}{p}/login`, with `?rd=` when there is somewhere to return to.
    pub fn login_location(&self, return_to: Option<&str>) -> String {
        self.with_rd("/login", return_to)
    }

    /// `{public_url}{p}{path}`, with `?rd=` when there is somewhere to return to.
    fn with_rd(&self, path: &str, return_to: Option<&str>) -> String {
        match return_to {
            Some(rd) => format!(
                "{}?rd={}",
                self.portal_url(path),
                utf8_percent_encode(rd, QUERY_VALUE)
            ),
            None => self.portal_url(path),
        }
    }

    /// The answer to a denial.
    pub fn denial(&self, denial: &Denial, asker: &Asker<'_>) -> Reply {
        match denial {
            Denial::BadPath(e) if asker.browser => self.render(&ErrorPage::new(
                StatusCode::BAD_REQUEST,
                "This address can't be opened",
                unreadable(e),
            )),
            Denial::BadPath(e) => self.json(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
            Denial::Malformed(_) if asker.browser => self.render(
                &ErrorPage::new(
                    StatusCode::BAD_REQUEST,
                    "Your sign-in details can't be read",
                    "Your browser sent sign-in details in a form that can't be read. Sign in again; if this keeps happening, remove the password your browser saved for this site.",
                )
                .link("Sign in", self.login_location(asker.return_to)),
            ),
            Denial::Malformed(e) => self.json(
                StatusCode::BAD_REQUEST,
                "malformed_credentials",
                &e.to_string(),
            ),
            Denial::Unauthenticated(why) => self.unauthenticated(why, asker),
            Denial::TooManyAttempts(banned) => self.too_many_attempts(*banned, asker.browser),
            Denial::Forbidden { access, who, .. } if asker.browser => {
                self.render(&self.forbidden_page(access, who.as_deref(), asker.return_to))
            }
            Denial::Forbidden { access, .. } => {
                let message = match access {
                    Access::Permission(p) => {
                        format!("Your role doesn't include permission {p}, which this address requires.")
                    }
                    Access::Deny => "This address is closed to everyone.".to_owned(),
                    Access::Public | Access::Authenticated => {
                        "You may not open this address.".to_owned()
                    }
                };
                self.json(StatusCode::FORBIDDEN, "forbidden", &message)
            }
        }
    }

    /// The 403 page: what is missing, who is signed in, and the ways out
    /// (sign in as someone else and come back to `return_to`, sign out).
    pub fn forbidden_page(
        &self,
        access: &Access,
        who: Option<&str>,
        return_to: Option<&str>,
    ) -> ErrorPage {
        let page = match access {
            Access::Deny => ErrorPage::new(
                StatusCode::FORBIDDEN,
                "This page is closed",
                "This page can't be opened by anyone.",
            ),
            Access::Permission(p) => ErrorPage::new(
                StatusCode::FORBIDDEN,
                "You don't have access to this page",
                "Your role doesn't include the permission this page needs. Sign in as someone who has it, or ask an administrator for access.",
            )
            .detail(format!("Permission needed: {p}")),
            Access::Public | Access::Authenticated => ErrorPage::new(
                StatusCode::FORBIDDEN,
                "You don't have access to this page",
                "You may not open this page.",
            ),
        }
        .signed_in_as(who);
        match (who, access) {
            (None, Access::Deny) => page,
            (None, _) => page.link("Sign in", self.login_location(return_to)),
            (Some(_), Access::Deny) => page.link("Sign out", self.portal_url("/logout")),
            (Some(_), _) => page
                .link(
                    "Sign in as someone else",
                    self.with_rd("/logout", return_to),
                )
                .link("Sign out", self.portal_url("/logout")),
        }
    }

    fn unauthenticated(&self, why: &Unauthenticated, asker: &Asker<'_>) -> Reply {
        if let Unauthenticated::Rejected(crate::authn::AuthnError::Unavailable) = why {
            // Fail closed, but say it is us, not the user.
            let mut reply = if asker.browser {
                let page = ErrorPage::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in can't be checked right now",
                    "The sign-in service can't reach its user store at the moment. This is not your fault; try again in a few seconds.",
                );
                self.render(&match asker.return_to {
                    Some(here) => page.link("Try again", here),
                    None => page,
                })
            } else {
                self.json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "Credentials can't be checked right now. Try again shortly.",
                )
            };
            reply
                .headers
                .push((RETRY_AFTER, HeaderValue::from_static("5")));
            return reply;
        }
        if asker.browser {
            let status = if matches!(*asker.method, Method::GET | Method::HEAD) {
                StatusCode::FOUND
            } else {
                StatusCode::SEE_OTHER
            };
            let location = self.login_location(asker.return_to);
            let mut reply = self.render(
                &ErrorPage::new(
                    status,
                    "Sign in to continue",
                    "Taking you to the sign-in page.",
                )
                .link("Sign in", location.clone()),
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                reply.headers.push((LOCATION, v));
            }
            return reply;
        }
        let (code, message) = match why {
            Unauthenticated::Missing => ("unauthorized", "authentication required".to_owned()),
            Unauthenticated::Unsupported(e) => ("unauthorized", e.to_string()),
            Unauthenticated::Rejected(e) => (e.code(), e.to_string()),
        };
        let mut reply = self.json(StatusCode::UNAUTHORIZED, code, &message);
        reply
            .headers
            .push((WWW_AUTHENTICATE, self.www_authenticate.clone()));
        reply
    }

    /// 429 with `Retry-After`, for a banned user or address.
    pub fn too_many_attempts(&self, banned: Banned, browser: bool) -> Reply {
        let when = in_words(banned.retry_after);
        let mut reply = if browser {
            self.render(
                &ErrorPage::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed sign-in attempts",
                    &format!(
                        "Signing in is paused for this account or this network. Try again {when}."
                    ),
                )
                .link("Reset your password", self.portal_url("/reset")),
            )
        } else {
            self.json(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                &format!("Too many failed sign-in attempts. Try again {when}."),
            )
        };
        let secs = banned.retry_after.as_secs().max(1);
        reply.headers.push((RETRY_AFTER, HeaderValue::from(secs)));
        reply
    }

    /// The app did not answer: 504 (`status`) when it took too long, else
    /// 502. `retry` is the URL asked for, when it may be linked to.
    pub fn upstream_down(&self, status: StatusCode, browser: bool, retry: Option<&str>) -> Reply {
        let timeout = status == StatusCode::GATEWAY_TIMEOUT;
        if !browser {
            return if timeout {
                self.json(
                    status,
                    "upstream_timeout",
                    "The application behind Gatehouse took too long to answer. Try again shortly.",
                )
            } else {
                self.json(
                    StatusCode::BAD_GATEWAY,
                    "upstream_unavailable",
                    "The application behind Gatehouse isn't answering. Try again shortly.",
                )
            };
        }
        let page = if timeout {
            ErrorPage::new(
                status,
                "The application took too long",
                "The application behind this page took too long to answer. Try again in a moment.",
            )
        } else {
            ErrorPage::new(
                StatusCode::BAD_GATEWAY,
                "The application isn't answering",
                "The application behind this page isn't answering. It may be restarting; try again in a moment.",
            )
        };
        self.render(&match retry {
            Some(here) => page.link("Try again", here),
            None => page,
        })
    }

    /// A JSON error, or for a browser the page [`Responder::status_page`]
    /// words for `status`, with `message` as its detail.
    pub fn error(&self, status: StatusCode, code: &str, message: &str, browser: bool) -> Reply {
        if browser {
            self.render(&self.status_page(status).detail(sentence(message)))
        } else {
            self.json(status, code, message)
        }
    }

    /// The page for an error status in general, when nothing more is known.
    pub fn status_page(&self, status: StatusCode) -> ErrorPage {
        let (heading, message) = match status.as_u16() {
            401 => ("Sign in to continue", "This page is only for people who are signed in."),
            403 => ("You don't have access to this page", "You may not open this page."),
            404 => (
                "Page not found",
                "There's no page at this address. Check the address, or start again from the sign-in page.",
            ),
            405 => (
                "This page can't be used that way",
                "This address exists, but not for this kind of request.",
            ),
            409 => (
                "That can't be done right now",
                "Something changed in the meantime. Reload the page and try again.",
            ),
            413 => (
                "Too much was sent",
                "What was sent is larger than this page accepts.",
            ),
            415 | 422 => (
                "The form couldn't be read",
                "What was sent isn't in a form this page accepts. Go back, reload the page and try again.",
            ),
            429 => ("Too many attempts", "Wait a little, then try again."),
            502 | 504 => (
                "The application isn't answering",
                "The application behind this page isn't answering. It may be restarting; try again in a moment.",
            ),
            503 => (
                "Try again shortly",
                "This can't be done right now. Try again in a moment.",
            ),
            500..=599 => (
                "Something went wrong",
                "This request couldn't be finished. Try again; if it keeps happening, tell the site's administrator.",
            ),
            _ => (
                "This request can't be handled",
                "The request wasn't in a form this site accepts. Check the address and try again.",
            ),
        };
        let page = ErrorPage::new(status, heading, message);
        match status.as_u16() {
            401 | 404 => page.link("Sign in", self.portal_url("/login")),
            _ => page,
        }
    }

    /// `{"error": code, "message": message}`.
    pub fn json(&self, status: StatusCode, code: &str, message: &str) -> Reply {
        let body = ErrorBody {
            error: code,
            message,
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        Reply {
            status,
            headers: vec![
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body: Bytes::from(body),
        }
    }

    /// A page with a heading and a message, and the way home.
    pub fn page(&self, status: StatusCode, heading: &str, message: &str) -> Reply {
        self.render(&ErrorPage::new(status, heading, message))
    }

    /// `page` in the branded error template, with a last link home.
    pub fn render(&self, page: &ErrorPage) -> Reply {
        let mut links = page.links.clone();
        links.push(WayOut {
            label: "Go to the home page".to_owned(),
            href: self.home_url.clone(),
        });
        let ctx = minijinja::context! {
            status => page.status.as_u16(),
            heading => &page.heading,
            message => &page.message,
            detail => &page.detail,
            signed_in_as => &page.signed_in_as,
            links => links,
        };
        let html = self
            .templates
            .get_template("error.html")
            .and_then(|t| t.render(ctx));
        let (content_type, body) = match html {
            Ok(body) => ("text/html; charset=utf-8", body),
            Err(e) => {
                tracing::error!(error = %e, "the error page template failed");
                ("text/plain; charset=utf-8", format!("{}\n", page.heading))
            }
        };
        Reply {
            status: page.status,
            headers: vec![
                (CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    HeaderName::from_static("x-frame-options"),
                    HeaderValue::from_static("DENY"),
                ),
            ],
            body: Bytes::from(body),
        }
    }
}

impl axum::response::IntoResponse for Reply {
    fn into_response(self) -> axum::response::Response {
        let mut resp = (self.status, self.body).into_response();
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

/// Shared by every page Gatehouse renders.
pub const PAGE_CSS: &str = "*{box-sizing:border-box}body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f4f5f7;color:#1d2330}main{background:#fff;max-width:26rem;width:calc(100% - 2rem);padding:2rem 2.25rem;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06)}.brand{margin:0 0 1rem;font-weight:600;color:var(--accent);letter-spacing:.02em}h1{margin:0 0 .5rem;font-size:1.4rem}.code{color:#6b7280;font-size:.85rem;margin-bottom:0}code{background:#f1f2f6;padding:.1rem .3rem;border-radius:4px}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_detection() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(
            "accept",
            HeaderValue::from_static("text/html,application/xhtml+xml"),
        );
        assert!(wants_html(&h));
        h.insert(
            "x-requested-with",
            HeaderValue::from_static("XMLHttpRequest"),
        );
        assert!(!wants_html(&h));
    }

    fn portal(title: &str) -> PortalSettings {
        PortalSettings {
            prefix: "/_auth".into(),
            title: title.into(),
            password_login: true,
            logo_url: None,
            accent_color: None,
        }
    }

    #[test]
    fn login_location_encodes_rd() {
        let r = Responder::new(&portal("T"), "https://app.example.com/").unwrap();
        assert_eq!(
            r.login_location(Some("https://app.example.com/a b?x=1&y=2")),
            "https://app.example.com/_auth/login?rd=https://app.example.com/a%20b%3Fx%3D1%26y%3D2"
        );
    }

    #[test]
    fn pages_escape_their_text() {
        let r = Responder::new(&portal("<T>"), "https://a").unwrap();
        let page = r.page(StatusCode::FORBIDDEN, "x", "<script>");
        let body = std::str::from_utf8(&page.body).unwrap();
        assert!(body.contains("&lt;script&gt;") && !body.contains("<script>"));
        assert!(body.contains("&lt;T&gt;") && !body.contains("<T>"));
    }

    #[test]
    fn waits_in_words_round_up() {
        let words = |secs: u64| in_words(Duration::from_secs(secs));
        assert_eq!(words(0), "in 1 minute");
        assert_eq!(words(30), "in 1 minute");
        assert_eq!(words(60), "in 1 minute");
        assert_eq!(words(61), "in 2 minutes");
        assert_eq!(words(864), "in 15 minutes");
        assert_eq!(words(900), "in 15 minutes");
        assert_eq!(words(119 * 60), "in 119 minutes");
        assert_eq!(words(7200), "in 2 hours");
        assert_eq!(words(7201), "in 3 hours");
        assert_eq!(words(47 * 3600), "in 47 hours");
        assert_eq!(words(3 * 86_400), "in 3 days");
        assert_eq!(in_words(Duration::from_millis(899_500)), "in 15 minutes");
    }

    #[test]
    fn sentences_start_with_a_capital() {
        assert_eq!(
            sentence("the store does not answer"),
            "The store does not answer."
        );
        assert_eq!(sentence("Done!"), "Done!");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn every_page_links_home() {
        let r = Responder::new(&portal("T"), "https://app.example.com").unwrap();
        let page =
            r.render(&ErrorPage::new(StatusCode::BAD_GATEWAY, "h", "m").link("Try again", "/x"));
        // minijinja writes `/` in attributes as `&#x2f;`.
        let body = std::str::from_utf8(&page.body)
            .unwrap()
            .replace("&#x2f;", "/");
        let again = body.find("href=\"/x\"").unwrap();
        let home = body.find("href=\"https://app.example.com/\"").unwrap();
        assert!(again < home, "{body}");
    }
}
