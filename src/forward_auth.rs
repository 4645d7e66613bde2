//! Forward-auth: Gatehouse as the authentication server of another proxy.
//!
//! Traefik `forwardAuth` and Caddy `forward_auth` ask `GET {p}/verify` and
//! describe the client's request in `X-Forwarded-Method`, `-Proto`, `-Host`
//! and `-Uri`; nginx `auth_request` asks `GET {p}/verify/nginx` and describes
//! it in `X-Original-URL` and `X-Original-Method`. This module turns those
//! headers into a [`RequestView`] for the one [`Gate`](crate::gate::Gate) —
//! the same rules, roles and credentials as inline mode — and the outcome
//! into the answer each proxy understands:
//!
//! - allowed: 200 with every configured identity header (empty when unknown);
//! - denied: exactly what inline mode answers ([`Responder::denial`]), which
//!   Traefik and Caddy hand to the client as it is;
//! - for nginx, which accepts only 2xx, 401 and 403 from `auth_request`, a
//!   login redirect becomes 401 with the `Location` kept, any other 4xx
//!   becomes 403 (headers such as `Retry-After` kept), and 5xx stays 5xx, so
//!   nginx fails closed with a 500.
//!
//! The describing headers are believed only from `server.trusted_proxies`;
//! anyone else gets 400 `untrusted_forwarder` and the URL they claim is never
//! evaluated. The proxy replaces the identity headers it copies from the
//! answer; a `Remote_User`-style spelling it would pass on untouched makes
//! the verify request fail with 400 `spoofed_identity_header`.
//!
//! [`Responder::denial`]: crate::respond::Responder::denial

use crate::app::App;
use crate::gate::RequestView;
use crate::identity::Identity;
use crate::request::{canonical_host, AlsoRead, REWRITE_HEADERS};
use crate::respond::{wants_html, Asker, Reply};
use crate::upstream::headers::spoofed;
use crate::upstream::headers::HeaderSettings;
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use std::net::IpAddr;

/// Which proxy protocol a verify request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `{p}/verify`: Traefik and Caddy (`X-Forwarded-*`, answers as inline).
    Forwarded,
    /// `{p}/verify/nginx`: nginx `auth_request` (`X-Original-*`, 2xx/401/403).
    Nginx,
}

/// The verify paths under the portal prefix.
#[derive(Debug, Clone)]
pub struct Endpoints {
    verify: String,
    verify_nginx: String,
}

impl Endpoints {
    /// `prefix` is the portal prefix (`/_auth`).
    pub fn new(prefix: &str) -> Self {
        Endpoints {
            verify: format!("{prefix}/verify"),
            verify_nginx: format!("{prefix}/verify/nginx"),
        }
    }

    /// Is `path` a verify endpoint, and which?
    pub fn route(&self, path: &str) -> Option<Flavor> {
        if path == self.verify {
            Some(Flavor::Forwarded)
        } else if path == self.verify_nginx {
            Some(Flavor::Nginx)
        } else {
            None
        }
    }
}

static X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
static X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
static X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");

/// Why a verify request could not be evaluated (each a 400, or 405).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("forward-auth headers are believed only from server.trusted_proxies; {0} is not one")]
    Untrusted(String),
    #[error("the verify endpoint answers GET and HEAD")]
    Method,
    #[error("the proxy did not send `{0}`")]
    Missing(&'static HeaderName),
    #[error("`{header}` {why}")]
    Invalid {
        header: &'static HeaderName,
        why: &'static str,
    },
    #[error(
        "`{0}` poses as an identity header; the proxy cannot replace it, so the request is refused"
    )]
    Spoofed(String),
}

impl VerifyError {
    /// The `error` code of the JSON answer.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Untrusted(_) => "untrusted_forwarder",
            VerifyError::Method => "method_not_allowed",
            VerifyError::Missing(_) => "missing_forwarded_header",
            VerifyError::Invalid { .. } => "invalid_forwarded_header",
            VerifyError::Spoofed(_) => "spoofed_identity_header",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            VerifyError::Method => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The client's request as the proxy describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub method: Method,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `host[:port]` as sent.
    pub authority: Authority,
    /// The host without port, lowercase (what rules match).
    pub host: String,
    pub path_and_query: PathAndQuery,
}

impl Described {
    /// The URL the client asked for (the login page's `rd`).
    pub fn url(&self) -> String {
        format!(
            "{}://{}{}",
            self.scheme, self.authority, self.path_and_query
        )
    }
}

/// The one value of `name`; more than one is ambiguous.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &'static HeaderName,
) -> Result<Option<&'h str>, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(VerifyError::Invalid {
            header: name,
            why: "was sent more than once",
        });
    }
    first
        .to_str()
        .map(|v| Some(v.trim()))
        .map_err(|_| VerifyError::Invalid {
            header: name,
            why: "is not visible ASCII",
        })
}

fn required<'h>(headers: &'h HeaderMap, name: &'static HeaderName) -> Result<&'h str, VerifyError> {
    match single(headers, name)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(VerifyError::Missing(name)),
    }
}

fn method(headers: &HeaderMap, name: &'static HeaderName) -> Result<Method, VerifyError> {
    Method::from_bytes(required(headers, name)?.as_bytes()).map_err(|_| VerifyError::Invalid {
        header: name,
        why: "is not an HTTP method",
    })
}

fn scheme(value: &str, header: &'static HeaderName) -> Result<&'static str, VerifyError> {
    if value.eq_ignore_ascii_case("https") {
        Ok("https")
    } else if value.eq_ignore_ascii_case("http") {
        Ok("http")
    } else {
        Err(VerifyError::Invalid {
            header,
            why: "must be `http` or `https`",
        })
    }
}

fn authority(value: &str, header: &'static HeaderName) -> Result<Authority, VerifyError> {
    let invalid = |why| VerifyError::Invalid { header, why };
    if value.contains(',') {
        return Err(invalid("must name exactly one host"));
    }
    if value.contains('@') {
        return Err(invalid("must not carry user information"));
    }
    let parsed: Authority = value.parse().map_err(|_| invalid("is not a host[:port]"))?;
    if parsed.host().is_empty() {
        return Err(invalid("is not a host[:port]"));
    }
    Ok(parsed)
}

fn path_and_query(value: &str, header: &'static HeaderName) -> Result<PathAndQuery, VerifyError> {
    if !value.starts_with('/') {
        return Err(VerifyError::Invalid {
            header,
            why: "must be a path starting with `/`",
        });
    }
    value.parse().map_err(|_| VerifyError::Invalid {
        header,
        why: "is not a valid path and query",
    })
}

/// Read the client's request from the describing headers of `flavor`.
/// `default_scheme` stands in for a missing `X-Forwarded-Proto`.
pub fn describe(
    flavor: Flavor,
    headers: &HeaderMap,
    default_scheme: &'static str,
) -> Result<Described, VerifyError> {
    let (method, scheme, authority, path_and_query) = match flavor {
        Flavor::Forwarded => {
            let method = method(headers, &X_FORWARDED_METHOD)?;
            let scheme = match single(headers, &X_FORWARDED_PROTO)? {
                Some(p) if !p.is_empty() => scheme(p, &X_FORWARDED_PROTO)?,
                _ => default_scheme,
            };
            let host = required(headers, &X_FORWARDED_HOST)?;
            let authority = authority(host, &X_FORWARDED_HOST)?;
            let uri = required(headers, &X_FORWARDED_URI)?;
            (
                method,
                scheme,
                authority,
                path_and_query(uri, &X_FORWARDED_URI)?,
            )
        }
        Flavor::Nginx => {
            let method = method(headers, &X_ORIGINAL_METHOD)?;
            let url = required(headers, &X_ORIGINAL_URL)?;
            let invalid = |why| VerifyError::Invalid {
                header: &X_ORIGINAL_URL,
                why,
            };
            let uri: Uri = url
                .parse()
                .map_err(|_| invalid("is not an absolute http(s) URL"))?;
            let (Some(s), Some(a)) = (uri.scheme_str(), uri.authority()) else {
                return Err(invalid("is not an absolute http(s) URL"));
            };
            let scheme = scheme(s, &X_ORIGINAL_URL)?;
            let authority = authority(a.as_str(), &X_ORIGINAL_URL)?;
            let pq = uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"));
            if !pq.path().starts_with('/') {
                return Err(invalid("is not an absolute http(s) URL"));
            }
            (method, scheme, authority, pq)
        }
    };
    let host = canonical_host(authority.as_str()).into_owned();
    Ok(Described {
        method,
        scheme,
        authority,
        host,
        path_and_query,
    })
}

/// 200 with every configured identity header: the identity's values, or
/// empty ones on a public path, so a proxy that copies them overwrites
/// whatever the client sent.
fn granted(settings: &HeaderSettings, identity: Option<&Identity>) -> Reply {
    let empty = HeaderValue::from_static("");
    let headers = settings
        .names
        .iter()
        .map(|h| {
            let value = identity.map_or(&empty, |id| id.header_value(h.field));
            (h.name.clone(), value.clone())
        })
        .collect();
    Reply {
        status: StatusCode::OK,
        headers,
        body: Bytes::new(),
    }
}

/// nginx `auth_request` accepts 2xx, 401 and 403 only (anything else becomes
/// a 500): a login redirect becomes 401 keeping its `Location`, other 4xx
/// become 403 keeping their headers, 5xx stay.
pub fn for_nginx(mut reply: Reply) -> Reply {
    let status = reply.status;
    reply.status = match status.as_u16() {
        200..=299 | 401 | 403 | 500..=599 => status,
        300..=399 => StatusCode::UNAUTHORIZED,
        _ => StatusCode::FORBIDDEN,
    };
    reply
}

/// Answer one verify request. `peer` is the address of the connection
/// (the proxy); `method` and `headers` are the verify request's.
pub async fn answer(
    app: &App,
    flavor: Flavor,
    peer: Option<IpAddr>,
    method: &Method,
    headers: &HeaderMap,
) -> Reply {
    let reply = match evaluate(app, flavor, peer, method, headers).await {
        Ok(reply) => reply,
        Err(e) => {
            if let VerifyError::Untrusted(_) = e {
                tracing::warn!(error = %e, "forward-auth request refused");
            }
            let mut reply =
                app.responder
                    .error(e.status(), e.code(), &e.to_string(), wants_html(headers));
            if e == VerifyError::Method {
                reply
                    .headers
                    .push((http::header::ALLOW, HeaderValue::from_static("GET, HEAD")));
            }
            return reply;
        }
    };
    match flavor {
        Flavor::Forwarded => reply,
        Flavor::Nginx => for_nginx(reply),
    }
}

async fn evaluate(
    app: &App,
    flavor: Flavor,
    peer: Option<IpAddr>,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Reply, VerifyError> {
    if *method != Method::GET && *method != Method::HEAD {
        return Err(VerifyError::Method);
    }
    match peer {
        Some(ip) if app.is_trusted_proxy(ip) => {}
        Some(ip) => return Err(VerifyError::Untrusted(ip.to_string())),
        None => return Err(VerifyError::Untrusted("this connection".into())),
    }
    let default_scheme = match app.redirect.public_url().scheme() {
        "https" => "https",
        _ => "http",
    };
    let target = describe(flavor, headers, default_scheme)?;
    let view = RequestView {
        method: &target.method,
        host: &target.host,
        path: target.path_and_query.path(),
        headers,
        client_ip: app.client_ip(peer, headers),
        // The proxy passes the client's headers on to the app and Gatehouse
        // cannot remove them, so what they would make the app do is judged.
        also: AlsoRead {
            method_overrides: true,
            rewrite_headers: match flavor {
                Flavor::Forwarded => &REWRITE_HEADERS,
                // `X-Original-URL` is nginx's own description here.
                Flavor::Nginx => &REWRITE_HEADERS[1..],
            },
        },
    };
    let live = app.live();
    // The proxy overwrites the identity headers it copies from our answer,
    // but not `Remote_User`-style spellings, which many frameworks read as
    // the same variable. Gatehouse cannot strip them here: it refuses.
    if let Some(name) = spoofed(headers, &live.headers)
        .into_iter()
        .find(|name| name.as_str().contains('_'))
    {
        return Err(VerifyError::Spoofed(name.to_string()));
    }
    let denial = match live.gate.check(&view).await {
        Ok(admission) => return Ok(granted(&live.headers, admission.identity.as_deref())),
        Err(denial) => denial,
    };
    app.log_denial(&live, &denial, &target.method, view.path, view.client_ip);
    let browser = wants_html(headers);
    let return_to = if browser {
        app.redirect.validate(&target.url()).map(String::from)
    } else {
        None
    };
    let asker = Asker {
        method: &target.method,
        browser,
        return_to: return_to.as_deref(),
    };
    Ok(app.responder.denial(&denial, &asker))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn forwarded(pairs: &[(&str, &str)]) -> Result<Described, VerifyError> {
        describe(Flavor::Forwarded, &headers(pairs), "https")
    }

    fn nginx(pairs: &[(&str, &str)]) -> Result<Described, VerifyError> {
        describe(Flavor::Nginx, &headers(pairs), "https")
    }

    const TRAEFIK: [(&str, &str); 4] = [
        ("x-forwarded-method", "POST"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "App.Example.com:8000"),
        ("x-forwarded-uri", "/a/b?x=1&y=%20"),
    ];

    #[test]
    fn routes_only_the_two_verify_paths() {
        let e = Endpoints::new("/_auth");
        assert_eq!(e.route("/_auth/verify"), Some(Flavor::Forwarded));
        assert_eq!(e.route("/_auth/verify/nginx"), Some(Flavor::Nginx));
        for other in [
            "/_auth/verify/",
            "/_auth/verifyx",
            "/_auth/login",
            "/verify",
        ] {
            assert_eq!(e.route(other), None, "{other}");
        }
    }

    #[test]
    fn reads_traefik_and_caddy_headers() {
        let d = forwarded(&TRAEFIK).unwrap();
        assert_eq!(d.method, Method::POST);
        assert_eq!(d.host, "app.example.com");
        assert_eq!(d.path_and_query.path(), "/a/b");
        assert_eq!(d.url(), "http://App.Example.com:8000/a/b?x=1&y=%20");
    }

    #[test]
    fn a_missing_proto_is_the_public_urls() {
        let d = forwarded(
            &TRAEFIK[..1]
                .iter()
                .chain(&TRAEFIK[2..])
                .copied()
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(d.scheme, "https");
    }

    #[test]
    fn reads_nginx_headers() {
        let d = nginx(&[
            ("x-original-method", "GET"),
            ("x-original-url", "https://app.example.com/p?q=1"),
        ])
        .unwrap();
        assert_eq!(d.method, Method::GET);
        assert_eq!(d.host, "app.example.com");
        assert_eq!(d.url(), "https://app.example.com/p?q=1");
        let bare = nginx(&[
            ("x-original-method", "GET"),
            ("x-original-url", "http://[::1]:8080"),
        ])
        .unwrap();
        assert_eq!(bare.host, "[::1]");
        assert_eq!(bare.path_and_query.as_str(), "/");
    }

    #[test]
    fn malformed_descriptions_are_typed_errors() {
        let with = |name: &str, value: &str| {
            let mut pairs: Vec<(&str, &str)> = TRAEFIK
                .iter()
                .filter(|(k, _)| *k != name)
                .copied()
                .collect();
            pairs.push((name, value));
            forwarded(&pairs).unwrap_err().code()
        };
        assert_eq!(with("x-forwarded-uri", "a/b"), "invalid_forwarded_header");
        assert_eq!(
            with("x-forwarded-uri", "http://evil/"),
            "invalid_forwarded_header"
        );
        assert_eq!(with("x-forwarded-uri", ""), "missing_forwarded_header");
        assert_eq!(
            with("x-forwarded-host", "a.com, b.com"),
            "invalid_forwarded_header"
        );
        assert_eq!(
            with("x-forwarded-host", "u@a.com"),
            "invalid_forwarded_header"
        );
        assert_eq!(with("x-forwarded-host", "a b"), "invalid_forwarded_header");
        assert_eq!(with("x-forwarded-host", ":80"), "invalid_forwarded_header");
        assert_eq!(with("x-forwarded-proto", "ftp"), "invalid_forwarded_header");
        assert_eq!(
            with("x-forwarded-method", "G(T"),
            "invalid_forwarded_header"
        );
        let twice: Vec<_> = TRAEFIK
            .iter()
            .copied()
            .chain([("x-forwarded-host", "evil.com")])
            .collect();
        assert_eq!(
            forwarded(&twice).unwrap_err().code(),
            "invalid_forwarded_header"
        );
        assert_eq!(
            forwarded(&TRAEFIK[1..]).unwrap_err(),
            VerifyError::Missing(&X_FORWARDED_METHOD)
        );
        for url in ["/relative", "ftp://a/", "https://u:p@a/", "https:///x", "x"] {
            let e = nginx(&[("x-original-method", "GET"), ("x-original-url", url)]);
            assert_eq!(e.unwrap_err().code(), "invalid_forwarded_header", "{url}");
        }
        assert_eq!(
            nginx(&[("x-original-url", "https://a/")]).unwrap_err(),
            VerifyError::Missing(&X_ORIGINAL_METHOD)
        );
    }

    #[test]
    fn nginx_gets_only_the_codes_it_accepts() {
        let reply = |code: u16| Reply {
            status: StatusCode::from_u16(code).unwrap(),
            headers: vec![(http::header::RETRY_AFTER, HeaderValue::from_static("7"))],
            body: Bytes::new(),
        };
        for (from, to) in [
            (200, 200),
            (302, 401),
            (303, 401),
            (400, 403),
            (401, 401),
            (403, 403),
            (429, 403),
            (503, 503),
        ] {
            let out = for_nginx(reply(from));
            assert_eq!(out.status.as_u16(), to, "{from}");
            assert_eq!(out.headers.len(), 1, "headers are kept");
        }
    }
}
