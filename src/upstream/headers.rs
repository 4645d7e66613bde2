//! Strip spoofable identity headers, then inject the verified identity.
//!
//! A client-sent copy of any configured identity header is removed whatever
//! its case and whether it uses `_` or `-` (some frameworks fold both into
//! the same CGI-style variable), before Gatehouse sets its own.

use crate::credentials::{CredentialSource, X_API_KEY};
use crate::identity::{Identity, IdentityField};
use crate::request::same_header;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName};

/// One identity header: its name, the spelling sent on the wire, its field.
#[derive(Debug, Clone)]
pub struct IdentityHeader {
    pub name: HeaderName,
    /// As configured (`Remote-User`), as static bytes ([`interned`]), so
    /// inserting the header upstream neither copies nor touches a reference
    /// count shared by every worker thread.
    pub wire_name: bytes::Bytes,
    pub field: IdentityField,
}

/// The upstream identity headers, in configured order.
#[derive(Debug, Clone)]
pub struct HeaderSettings {
    pub names: Vec<IdentityHeader>,
    pub pass_credentials: bool,
    pub method_override: MethodOverride,
}

/// What happens to `X-HTTP-Method-Override` and kin (`headers.method_override`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MethodOverride {
    /// Removed before proxying: the app sees the method that was judged.
    #[default]
    Strip,
    /// Kept; the request must pass as the overriding method too.
    Judge,
}

static COOKIE_WIRE: bytes::Bytes = bytes::Bytes::from_static(b"Cookie");

/// `name` as a `&'static str`, leaked once per distinct name for the life of
/// the process (configured header names: a handful, whatever the reloads).
pub fn interned(name: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// Names in `headers` that spoof a configured identity header.
pub fn spoofed<'h>(headers: &'h HeaderMap, settings: &HeaderSettings) -> Vec<&'h HeaderName> {
    headers
        .keys()
        .filter(|k| {
            settings
                .names
                .iter()
                .any(|h| same_header(k.as_str(), h.name.as_str()))
        })
        .collect()
}

/// The request mutations for one upstream request, applied through a
/// callback-free interface so it works on any header container.
pub trait HeaderSink {
    fn remove(&mut self, name: &HeaderName);
    /// Set `name` (spelled `wire_name` on the wire) to `value`.
    fn set(&mut self, name: &HeaderName, wire_name: &bytes::Bytes, value: http::HeaderValue);
    fn headers(&self) -> &HeaderMap;
}

/// The `Cookie` header without cookie `name`; `None` when nothing remains.
fn cookies_without(headers: &HeaderMap, name: &str) -> Option<String> {
    let kept: Vec<&str> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split_once('=').map_or(*pair, |(k, _)| k) != name)
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Strip every spoofed identity header, inject `identity`'s values (all of
/// them, empty when unknown), and drop the consumed credential (for the
/// session: just that cookie).
pub fn apply(
    sink: &mut impl HeaderSink,
    settings: &HeaderSettings,
    identity: Option<&Identity>,
    consumed: Option<CredentialSource>,
    cookie_name: &str,
) {
    let doomed: Vec<HeaderName> = spoofed(sink.headers(), settings)
        .into_iter()
        .cloned()
        .collect();
    for name in &doomed {
        sink.remove(name);
    }
    if let Some(id) = identity {
        for h in &settings.names {
            sink.set(&h.name, &h.wire_name, id.header_value(h.field).clone());
        }
    }
    if !settings.pass_credentials {
        match consumed {
            Some(CredentialSource::Authorization) => sink.remove(&AUTHORIZATION),
            Some(CredentialSource::ApiKeyHeader) => sink.remove(&X_API_KEY),
            Some(CredentialSource::SessionCookie) => {
                let rest = cookies_without(sink.headers(), cookie_name);
                sink.remove(&COOKIE);
                if let Some(v) = rest.and_then(|r| http::HeaderValue::from_str(&r).ok()) {
                    sink.set(&COOKIE, &COOKIE_WIRE, v);
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_session_cookie_is_removed() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, "a=1; gatehouse_session=x".parse().unwrap());
        h.append(COOKIE, "b=2".parse().unwrap());
        assert_eq!(
            cookies_without(&h, "gatehouse_session").as_deref(),
            Some("a=1; b=2")
        );
        let mut only = HeaderMap::new();
        only.append(COOKIE, "gatehouse_session=x".parse().unwrap());
        assert_eq!(cookies_without(&only, "gatehouse_session"), None);
    }

    #[test]
    fn names_are_interned_once() {
        let a = interned("Remote-User-Interned-Test");
        let b = interned(&String::from("Remote-User-Interned-Test"));
        assert_eq!(a, "Remote-User-Interned-Test");
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn underscore_and_case_variants_are_the_same_header() {
        assert!(same_header("remote_user", "remote-user"));
        assert!(same_header("remote-user", "remote-user"));
        assert!(!same_header("remote-users", "remote-user"));
        assert!(!same_header("remote-usex", "remote-user"));
    }
}
