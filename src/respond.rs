//! Every answer Gatehouse writes itself, built in exactly one place.
//!
//! A [`Denial`] (or an upstream failure) becomes a [`Reply`]: JSON with
//! `{"error", "message"}` for API clients, a small HTML page or a login
//! redirect for browsers.

use crate::gate::{Denial, Unauthenticated};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

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

/// Builds replies; knows the title, the login URL and the Basic realm.
#[derive(Debug, Clone)]
pub struct Responder {
    title: String,
    login_url: String,
    www_authenticate: HeaderValue,
}

/// How the client asked, for choosing the answer's shape.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub method: &'a Method,
    pub browser: bool,
    /// Where to come back to after login (already known to be allowed).
    pub return_to: Option<&'a str>,
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Responder {
    /// `public_url` has no trailing slash; `prefix` is the portal prefix.
    pub fn new(title: &str, public_url: &str, prefix: &str) -> Self {
        let realm: String = title
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        let www = format!("Basic realm=\"{realm}\", charset=\"UTF-8\", Bearer");
        Responder {
            title: title.to_owned(),
            login_url: format!("{}{prefix}/login", public_url.trim_end_matches('/')),
            www_authenticate: HeaderValue::from_str(&www)
                .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"Gatehouse\", Bearer")),
        }
    }

    /// `{public_url}{p}/login`, with `?rd=` when there is somewhere to return to.
    pub fn login_location(&self, return_to: Option<&str>) -> String {
        match return_to {
            Some(rd) => format!(
                "{}?rd={}",
                self.login_url,
                utf8_percent_encode(rd, QUERY_VALUE)
            ),
            None => self.login_url.clone(),
        }
    }

    /// The answer to a denial.
    pub fn denial(&self, denial: &Denial, asker: &Asker<'_>) -> Reply {
        match denial {
            Denial::BadPath(e) => self.error(
                StatusCode::BAD_REQUEST,
                e.code(),
                &e.to_string(),
                asker.browser,
            ),
            Denial::Malformed(e) => self.error(
                StatusCode::BAD_REQUEST,
                "malformed_credentials",
                &e.to_string(),
                asker.browser,
            ),
            Denial::Unauthenticated(why) => self.unauthenticated(why, asker),
            Denial::TooManyAttempts(banned) => self.too_many_attempts(*banned, asker.browser),
            Denial::Forbidden { requirement, .. } => self.error(
                StatusCode::FORBIDDEN,
                "forbidden",
                &format!("you are not allowed here (requires {requirement})"),
                asker.browser,
            ),
        }
    }

    fn unauthenticated(&self, why: &Unauthenticated, asker: &Asker<'_>) -> Reply {
        if let Unauthenticated::Rejected(crate::authn::AuthnError::Unavailable) = why {
            // Fail closed, but say it is us, not the user.
            let mut reply = self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "credentials cannot be checked right now; try again shortly",
                asker.browser,
            );
            reply
                .headers
                .push((http::header::RETRY_AFTER, HeaderValue::from_static("5")));
            return reply;
        }
        if asker.browser {
            let status = if matches!(*asker.method, Method::GET | Method::HEAD) {
                StatusCode::FOUND
            } else {
                StatusCode::SEE_OTHER
            };
            let location = self.login_location(asker.return_to);
            let mut reply = self.page(
                status,
                "Sign in required",
                "Redirecting to the sign-in page.",
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
    pub fn too_many_attempts(&self, banned: crate::regulation::Banned, browser: bool) -> Reply {
        let secs = banned.retry_after.as_secs().max(1);
        let mut reply = self.error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            &format!("too many failed sign-in attempts; try again in {secs} seconds"),
            browser,
        );
        reply
            .headers
            .push((http::header::RETRY_AFTER, HeaderValue::from(secs)));
        reply
    }

    /// A JSON error or an HTML page, by client kind.
    pub fn error(&self, status: StatusCode, code: &str, message: &str, browser: bool) -> Reply {
        if browser {
            let heading = status.canonical_reason().unwrap_or("Error");
            self.page(status, heading, message)
        } else {
            self.json(status, code, message)
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

    /// A small self-contained HTML page.
    pub fn page(&self, status: StatusCode, heading: &str, message: &str) -> Reply {
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{code} {heading} · {title}</title><style>{css}</style></head><body><main>\
<p class=\"brand\">{title}</p><h1>{heading}</h1><p>{message}</p><p class=\"code\">HTTP {code}</p>\
</main></body></html>",
            code = status.as_u16(),
            heading = escape_html(heading),
            message = escape_html(message),
            title = escape_html(&self.title),
            css = PAGE_CSS,
        );
        Reply {
            status,
            headers: vec![
                (
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
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
pub const PAGE_CSS: &str = "*{box-sizing:border-box}body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f4f5f7;color:#1d2330}main{background:#fff;max-width:26rem;width:calc(100% - 2rem);padding:2rem 2.25rem;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06)}.brand{margin:0 0 1rem;font-weight:600;color:#4a5afc;letter-spacing:.02em}h1{margin:0 0 .5rem;font-size:1.4rem}.code{color:#6b7280;font-size:.85rem;margin-bottom:0}code{background:#f1f2f6;padding:.1rem .3rem;border-radius:4px}";

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

    #[test]
    fn login_location_encodes_rd() {
        let r = Responder::new("T", "https://app.example.com/", "/_auth");
        assert_eq!(
            r.login_location(Some("https://app.example.com/a b?x=1&y=2")),
            "https://app.example.com/_auth/login?rd=https://app.example.com/a%20b%3Fx%3D1%26y%3D2"
        );
    }

    #[test]
    fn pages_escape_their_text() {
        let r = Responder::new("<T>", "https://a", "/_auth");
        let page = r.page(StatusCode::FORBIDDEN, "x", "<script>");
        let body = std::str::from_utf8(&page.body).unwrap();
        assert!(body.contains("&lt;script&gt;") && !body.contains("<script>"));
    }
}
