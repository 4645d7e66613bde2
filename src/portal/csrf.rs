//! Cross-site request forgery: the double-submit CSRF cookie of the forms
//! and the same-origin proofs of cookie-authenticated JSON writes.

use crate::app::Live;
use crate::credentials::cookie_values;
use crate::portal::PortalState;
use crate::session::{self, SameSite};
use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

/// Name of the CSRF double-submit cookie.
const CSRF_COOKIE: &str = "gatehouse_csrf";

pub(in crate::portal) fn first_cookie<'h>(
    headers: &'h HeaderMap,
    name: &'h str,
) -> Option<&'h str> {
    cookie_values(headers, name).next()
}

/// The CSRF token already set, or a new one (with the header to set it).
pub(in crate::portal) fn csrf_token(
    s: &PortalState,
    live: &Live,
    headers: &HeaderMap,
) -> (String, Option<String>) {
    match first_cookie(headers, CSRF_COOKIE).filter(|t| t.len() == 43) {
        Some(t) => (t.to_owned(), None),
        None => {
            let t = session::random_id();
            let set = session::cookie(
                &live.session,
                CSRF_COOKIE,
                &t,
                3600,
                &s.prefix,
                SameSite::Strict,
            );
            (t.clone(), Some(set))
        }
    }
}

/// The request does not come from another site: its `Origin` (when sent)
/// is ours, and the browser does not call it cross-site.
pub(in crate::portal) fn same_origin(s: &PortalState, headers: &HeaderMap) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let ours = s.redirect.public_url().origin().ascii_serialization();
        if origin != ours {
            return false;
        }
    }
    headers
        .get("sec-fetch-site")
        .is_none_or(|v| v.as_bytes() != b"cross-site")
}

/// A cookie-authenticated JSON write proves it comes from our own pages:
/// `Origin` is ours, or — from a browser that sends no `Origin` —
/// `Sec-Fetch-Site` says `same-origin`. A request with neither is refused:
/// SameSite=Lax and the JSON content type already stop browsers, and this
/// holds even where they would not.
pub(in crate::portal) fn proven_same_origin(s: &PortalState, headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    if fetch_site.is_some_and(|site| site != b"same-origin") {
        return false;
    }
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            let ours = s.redirect.public_url().origin().ascii_serialization();
            origin.as_bytes() == ours.as_bytes()
        }
        None => fetch_site.is_some(),
    }
}

/// Form token equals cookie token, and the request comes from our own origin.
pub(in crate::portal) fn csrf_ok(s: &PortalState, headers: &HeaderMap, form_token: &str) -> bool {
    if !same_origin(s, headers) {
        return false;
    }
    match first_cookie(headers, CSRF_COOKIE) {
        Some(cookie) if !form_token.is_empty() => {
            bool::from(cookie.as_bytes().ct_eq(form_token.as_bytes()))
        }
        _ => false,
    }
}
