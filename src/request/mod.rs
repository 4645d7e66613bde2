//! How a request is read: the one canonical reading of a request's method,
//! host and path that the gate, forward-auth and `explain` all judge, plus
//! every other reading an app behind Gatehouse could make of the same bytes.
//!
//! An auth proxy is only as strong as the gap between how it reads a request
//! and how the app does. Where apps differ (path parameters after `;`, an
//! encoded `/`, HEAD served by the GET handler, method-override headers,
//! rewrite headers such as `X-Original-URL`), the request is judged under
//! *every* reading and must pass all of them.
//!
//! - [`target`]: the request-target's form (RFC 9112 §3.2), refused unless
//!   origin-form, absolute-form, or `*` for OPTIONS;
//! - [`path`]: percent-decoding once, `\` as `/`, `//` merged, dot segments
//!   refused (also behind `;` or a second encoding), the readings with and
//!   without path parameters and with an encoded `/` kept;
//! - [`host`]: lower case, without port or trailing dot;
//! - this file: [`RequestReading`], the product of all of them.

pub mod host;
pub mod path;
#[doc(hidden)]
pub mod reference;
pub mod target;

pub use host::canonical_host;
pub use path::{read_path, PathError, PathReading, Semicolons};
pub use target::{classify_target, request_path, TargetError, TargetForm};

use http::{HeaderMap, HeaderName, Method};
use std::borrow::Cow;

/// Headers by which apps let a POST act as another method.
pub static METHOD_OVERRIDE_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// Headers by which apps (Symfony, IIS URL Rewrite) route to another path.
pub static REWRITE_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
];

/// Is `name` (lower case, as `HeaderName`s are) `wanted`, reading `_` as `-`?
/// Some frameworks fold both spellings into one CGI-style variable.
pub fn same_header(name: &str, wanted: &str) -> bool {
    name.len() == wanted.len()
        && name
            .bytes()
            .zip(wanted.bytes())
            .all(|(a, b)| a == b || (a == b'_' && b == b'-'))
}

/// Values of every header in `headers` that is one of `names`, in any spelling.
fn values_of<'h>(
    headers: &'h HeaderMap,
    names: &'h [HeaderName],
) -> impl Iterator<Item = &'h [u8]> + 'h {
    headers
        .iter()
        .filter(move |(k, _)| names.iter().any(|n| same_header(k.as_str(), n.as_str())))
        .map(|(_, v)| v.as_bytes())
}

/// Which headers the app will still see, and so must be judged as readings.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlsoRead {
    /// Method-override headers reach the app (kept by `headers.method_override:
    /// judge`, or forward-auth, where Gatehouse cannot remove them).
    pub method_overrides: bool,
    /// `X-Original-URL` / `X-Rewrite-URL` reach the app (from a trusted proxy,
    /// or forward-auth) and are judged as further paths.
    pub rewrite_headers: &'static [HeaderName],
}

/// How request paths are read; from `paths:` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadSettings {
    pub semicolons: Semicolons,
}

/// Why a request could not be read (each a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("`{header}` is not an HTTP method")]
    OverrideMethod { header: String },
    #[error("`{header}` is not a path or an http(s) URL")]
    RewriteUrl { header: String },
}

impl ReadError {
    /// The `error` code of the JSON answer.
    pub fn code(&self) -> &'static str {
        match self {
            ReadError::Target(_) => "invalid_request_target",
            ReadError::Path(_) => "invalid_path",
            ReadError::OverrideMethod { .. } => "invalid_method_override",
            ReadError::RewriteUrl { .. } => "invalid_rewrite_url",
        }
    }
}

/// A request as the policy judges it: one host, and every (method, path)
/// pair the app might act on. The first pair is the canonical reading.
#[derive(Debug, Clone)]
pub struct RequestReading<'a> {
    pub host: Cow<'a, str>,
    method: Method,
    path: Cow<'a, str>,
    /// Further methods (HEAD's GET, overriding methods); usually empty.
    more_methods: Vec<Method>,
    /// Further paths (without parameters, with `%2F` kept, rewrite headers).
    more_paths: Vec<String>,
}

/// `HEAD` is read as `GET` too: most frameworks run the GET handler for it.
fn push_method(first: &Method, more: &mut Vec<Method>, m: Method) {
    if m != *first && !more.contains(&m) {
        more.push(m);
    }
}

impl<'a> RequestReading<'a> {
    /// Read `method`, `host` (Host header or authority, as received) and
    /// `path` (no query; `*` for an asterisk-form OPTIONS).
    pub fn new(
        method: &Method,
        host: &'a str,
        path: &'a str,
        headers: &HeaderMap,
        also: AlsoRead,
        settings: ReadSettings,
    ) -> Result<Self, ReadError> {
        let (path, mut more_paths) = if path == "*" {
            (Cow::Borrowed("*"), Vec::new())
        } else {
            read_path(path, settings.semicolons)?.into_parts()
        };
        let mut more_methods = Vec::new();
        if *method == Method::HEAD {
            more_methods.push(Method::GET);
        }
        if also.method_overrides {
            for value in values_of(headers, &METHOD_OVERRIDE_HEADERS) {
                let upper = value.to_ascii_uppercase();
                let m = Method::from_bytes(upper.trim_ascii())
                    .ok()
                    .filter(|_| !upper.trim_ascii().is_empty())
                    .ok_or_else(|| ReadError::OverrideMethod {
                        header: String::from_utf8_lossy(value).into_owned(),
                    })?;
                if m == Method::HEAD {
                    push_method(method, &mut more_methods, Method::GET);
                }
                push_method(method, &mut more_methods, m);
            }
        }
        for value in values_of(headers, also.rewrite_headers) {
            let bad = || ReadError::RewriteUrl {
                header: String::from_utf8_lossy(value).into_owned(),
            };
            let text = std::str::from_utf8(value).map_err(|_| bad())?.trim();
            let rewritten = match classify_target(text.as_bytes()).map_err(|_| bad())? {
                TargetForm::Origin { path, .. } | TargetForm::Absolute { path, .. } => path,
                TargetForm::Asterisk => return Err(bad()),
            };
            let (first, more) = read_path(rewritten, settings.semicolons)?.into_parts();
            for p in std::iter::once(first.into_owned()).chain(more) {
                if p != path && !more_paths.contains(&p) {
                    more_paths.push(p);
                }
            }
        }
        Ok(RequestReading {
            host: canonical_host(host),
            method: method.clone(),
            path,
            more_methods,
            more_paths,
        })
    }

    /// The canonical method (as sent).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The canonical path: decoded once, `\` as `/`, `//` merged.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Is there more than the canonical reading?
    pub fn is_ambiguous(&self) -> bool {
        !(self.more_methods.is_empty() && self.more_paths.is_empty())
    }

    /// Every (method, path) the app might act on; the canonical one first.
    pub fn pairs(&self) -> impl Iterator<Item = (&Method, &str)> + '_ {
        let methods = std::iter::once(&self.method).chain(&self.more_methods);
        methods.flat_map(move |m| {
            std::iter::once(self.path.as_ref())
                .chain(self.more_paths.iter().map(String::as_str))
                .map(move |p| (m, p))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(method: &str, path: &str, headers: &[(&str, &str)], also: AlsoRead) -> Vec<String> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let m: Method = method.parse().unwrap();
        let r = RequestReading::new(
            &m,
            "App.Example.com.:80",
            path,
            &h,
            also,
            Default::default(),
        )
        .unwrap();
        assert_eq!(r.host, "app.example.com");
        r.pairs().map(|(m, p)| format!("{m} {p}")).collect()
    }

    #[test]
    fn head_is_also_read_as_get() {
        assert_eq!(
            read("HEAD", "/a", &[], AlsoRead::default()),
            ["HEAD /a", "GET /a"]
        );
        assert_eq!(read("GET", "/a", &[], AlsoRead::default()), ["GET /a"]);
    }

    #[test]
    fn overrides_are_read_only_when_they_reach_the_app() {
        let h = [
            ("x-http-method-override", "delete"),
            ("x_method_override", "PUT"),
        ];
        assert_eq!(read("POST", "/a", &h, AlsoRead::default()), ["POST /a"]);
        let also = AlsoRead {
            method_overrides: true,
            ..Default::default()
        };
        assert_eq!(
            read("POST", "/a", &h, also),
            ["POST /a", "DELETE /a", "PUT /a"]
        );
    }

    #[test]
    fn rewrite_headers_are_further_paths() {
        let also = AlsoRead {
            rewrite_headers: &REWRITE_HEADERS,
            ..Default::default()
        };
        let h = [
            ("x-original-url", "/admin;x"),
            ("x-rewrite-url", "http://h/b?q"),
        ];
        assert_eq!(
            read("GET", "/", &h, also),
            ["GET /", "GET /admin;x", "GET /admin", "GET /b"]
        );
    }

    #[test]
    fn unreadable_overrides_and_rewrites_are_refused() {
        let mut h = HeaderMap::new();
        h.insert("x-http-method", "DE LETE".parse().unwrap());
        h.insert("x-original-url", "admin".parse().unwrap());
        let m = Method::POST;
        let all = AlsoRead {
            method_overrides: true,
            rewrite_headers: &REWRITE_HEADERS,
        };
        assert!(matches!(
            RequestReading::new(&m, "h", "/", &h, all, Default::default()),
            Err(ReadError::OverrideMethod { .. })
        ));
        h.remove("x-http-method");
        assert!(matches!(
            RequestReading::new(&m, "h", "/", &h, all, Default::default()),
            Err(ReadError::RewriteUrl { .. })
        ));
    }
}
