//! The identity headers: their settings, and which client headers spoof
//! them. A client-sent copy of any configured identity header is left
//! behind whatever its case and whether it uses `_` or `-` (some frameworks
//! fold both into the same CGI-style variable); `request` then adds
//! Gatehouse's own.

use crate::identity::{Identity, IdentityField};
use crate::request::same_header;
use http::header::COOKIE;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::sync::atomic::{AtomicU64, Ordering};

/// One identity header: its name and its field.
#[derive(Debug, Clone)]
pub struct IdentityHeader {
    /// Made from static bytes ([`static_name`]), so copying it into each
    /// upstream request neither allocates nor touches a reference count
    /// shared by every worker thread.
    pub name: HeaderName,
    pub field: IdentityField,
}

/// The upstream identity headers, in configured order.
#[derive(Debug, Clone)]
pub struct HeaderSettings {
    pub names: Vec<IdentityHeader>,
    pub pass_credentials: bool,
    pub method_override: MethodOverride,
    /// Tells this set of names from every other one built in this process
    /// (an identity keeps its header lines for one set: `Identity::header_lines`).
    pub set: u64,
}

impl HeaderSettings {
    /// A number no other header set built in this process has.
    pub fn new_set() -> u64 {
        static SETS: AtomicU64 = AtomicU64::new(1);
        SETS.fetch_add(1, Ordering::Relaxed)
    }
}

/// Each identity header of `id` under `settings`, added to `sink` one by one.
fn add_each(sink: &mut impl HeaderSink, id: &Identity, settings: &HeaderSettings) {
    for h in &settings.names {
        sink.add(&h.name, id.header_value(h.field));
    }
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

/// A configured header name, made from a `&'static str` leaked once per
/// distinct name for the life of the process (a handful, whatever the
/// reloads). `None` when it is not a header name.
pub fn static_name(name: &str) -> Option<HeaderName> {
    let lower = name.to_ascii_lowercase();
    HeaderName::from_bytes(lower.as_bytes()).ok()?;
    Some(HeaderName::from_static(interned(&lower)))
}

/// `name` as a `&'static str`, leaked once per distinct name.
fn interned(name: &str) -> &'static str {
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

/// Where a request's headers are added: a header map (pingora-core's
/// sessions), or bytes on their way to the wire (the relay's plain requests).
pub trait HeaderSink {
    fn add(&mut self, name: &HeaderName, value: &HeaderValue);

    /// The identity headers of `id` under `settings`.
    fn add_identity(&mut self, id: &Identity, settings: &HeaderSettings)
    where
        Self: Sized,
    {
        add_each(self, id, settings);
    }
}

impl HeaderSink for HeaderMap {
    fn add(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.append(name.clone(), value.clone());
    }
}

impl HeaderSink for Vec<u8> {
    fn add(&mut self, name: &HeaderName, value: &HeaderValue) {
        write_line(self, name.as_str().as_bytes(), value.as_bytes());
    }

    /// One copy of the lines the identity keeps rendered (writing nine
    /// headers line by line was most of a cached credential's extra cost).
    fn add_identity(&mut self, id: &Identity, settings: &HeaderSettings) {
        let lines = id.header_lines(settings.set, |id| {
            let mut lines = Vec::new();
            add_each(&mut lines, id, settings);
            lines
        });
        self.extend_from_slice(&lines);
    }
}

/// One HTTP/1.1 header line, `name: value` and CRLF.
pub fn write_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Whether `name` spoofs a configured identity header (any case, `_` for `-`).
pub fn spoofs(name: &HeaderName, settings: &HeaderSettings) -> bool {
    settings
        .names
        .iter()
        .any(|h| same_header(name.as_str(), h.name.as_str()))
}

/// Names in `headers` that spoof a configured identity header.
pub fn spoofed<'h>(headers: &'h HeaderMap, settings: &HeaderSettings) -> Vec<&'h HeaderName> {
    headers.keys().filter(|k| spoofs(k, settings)).collect()
}

/// The `Cookie` header without cookie `name`; `None` when nothing remains.
pub fn cookies_without(headers: &HeaderMap, name: &str) -> Option<String> {
    // Nothing is allocated when no other cookie remains (a request carrying
    // only the session cookie, the usual case).
    let mut kept = String::new();
    let pairs = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim_ascii);
    for pair in pairs {
        if pair.is_empty() || pair.split_once('=').map_or(pair, |(k, _)| k) == name {
            continue;
        }
        if !kept.is_empty() {
            kept.push_str("; ");
        }
        kept.push_str(pair);
    }
    (!kept.is_empty()).then_some(kept)
}

/// Header settings naming `names`, credentials not passed on, overrides
/// stripped (for tests).
#[cfg(test)]
pub(crate) fn settings_naming(names: &[(&'static str, IdentityField)]) -> HeaderSettings {
    HeaderSettings {
        names: names
            .iter()
            .map(|(name, field)| IdentityHeader {
                name: HeaderName::from_static(name),
                field: *field,
            })
            .collect(),
        pass_credentials: false,
        method_override: MethodOverride::Strip,
        set: HeaderSettings::new_set(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{AuthMethod, UserKind};
    use crate::permission::PermissionSet;

    fn written(id: &Identity, settings: &HeaderSettings) -> String {
        let mut out = Vec::new();
        out.add_identity(id, settings);
        String::from_utf8(out).unwrap()
    }

    /// An identity keeps its rendered lines for the first header set that
    /// asked; any other set gets its own lines, and so does a copy made
    /// with another method.
    #[test]
    fn identity_lines_are_kept_for_one_header_set_only() {
        let alice = Identity::new(
            "alice".into(),
            None,
            None,
            UserKind::User,
            Some("admin".into()),
            PermissionSet::default(),
            AuthMethod::Session,
            None,
        );
        let first = settings_naming(&[
            ("x-user", IdentityField::User),
            ("x-method", IdentityField::Method),
        ]);
        let second = settings_naming(&[("remote-groups", IdentityField::Groups)]);
        let mut map = HeaderMap::new();
        map.add_identity(&alice, &first);
        assert_eq!(map.get("x-user").unwrap(), "alice");
        for _ in 0..2 {
            assert_eq!(
                written(&alice, &first),
                "x-user: alice\r\nx-method: session\r\n"
            );
            assert_eq!(written(&alice, &second), "remote-groups: admin\r\n");
        }
        let by_token = alice.with_method(AuthMethod::Jwt);
        assert_eq!(
            written(&by_token, &first),
            "x-user: alice\r\nx-method: jwt\r\n"
        );
        assert_eq!(
            written(&alice, &first),
            "x-user: alice\r\nx-method: session\r\n"
        );
    }

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
        let a = interned("remote-user-interned-test");
        let b = interned(&String::from("remote-user-interned-test"));
        assert_eq!(a, "remote-user-interned-test");
        assert!(std::ptr::eq(a, b));
        assert_eq!(
            static_name("Remote-User-Interned-Test").unwrap(),
            "remote-user-interned-test"
        );
        assert!(static_name("Remote User").is_none());
    }

    #[test]
    fn underscore_and_case_variants_are_the_same_header() {
        assert!(same_header("remote_user", "remote-user"));
        assert!(same_header("remote-user", "remote-user"));
        assert!(!same_header("remote-users", "remote-user"));
        assert!(!same_header("remote-usex", "remote-user"));
    }
}
