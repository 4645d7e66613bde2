//! Headers by which an app could be told something Gatehouse did not judge:
//! a different method (`X-HTTP-Method-Override`), a different path
//! (`X-Original-URL`, `X-Rewrite-URL`), a different client or host
//! (`Forwarded`, `X-Real-IP`, `X-Forwarded-*`), and an absolute-form target
//! some apps read differently from its origin-form path. What reaches the app
//! here is what the gate judged, or what a trusted proxy said.

use crate::request::{classify_target, same_header, TargetForm, METHOD_OVERRIDE_HEADERS};
use pingora::http::RequestHeader;
use pingora::Result;

/// Forwarding and rewrite headers believed only from `server.trusted_proxies`
/// (beside every `X-Forwarded-*`); Gatehouse sets `X-Forwarded-For`,
/// `-Proto`, `-Host` and `X-Real-IP` itself afterwards.
const UNTRUSTED: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-original-host",
    "x-host",
    "x-client-ip",
    "client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
];

/// A forwarding or rewrite header believed only from a trusted proxy.
pub(super) fn is_untrusted_forwarding(name: &str) -> bool {
    let forwarded_prefix = name.len() > 12 && same_header(&name[..12], "x-forwarded-");
    forwarded_prefix || UNTRUSTED.iter().any(|h| same_header(name, h))
}

/// `X-HTTP-Method-Override` and kin, in any spelling.
pub(super) fn is_method_override(name: &str) -> bool {
    METHOD_OVERRIDE_HEADERS
        .iter()
        .any(|h| same_header(name, h.as_str()))
}

/// Send an absolute-form target (`GET http://host/p`) as origin-form
/// (`GET /p`): Pingora has checked its authority against `Host`, and the
/// app then reads exactly the path the gate judged.
pub fn to_origin_form(req: &mut RequestHeader) -> Result<()> {
    let raw = req.raw_path();
    if raw.first() == Some(&b'/') || raw == b"*" {
        return Ok(());
    }
    let origin = match classify_target(raw) {
        Ok(TargetForm::Absolute { path, query, .. }) => match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        },
        _ => return Ok(()),
    };
    req.set_raw_path(origin.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_headers_are_forwarding_headers() {
        for name in [
            "forwarded",
            "x-real-ip",
            "x_real_ip",
            "x-original-url",
            "x-rewrite-url",
            "x-forwarded-port",
            "x_forwarded_prefix",
            "x-forwarded-for",
            "true-client-ip",
        ] {
            assert!(is_untrusted_forwarding(name), "{name}");
        }
        for name in ["x-forwarded", "accept", "forwarded-x", "x-request-id"] {
            assert!(!is_untrusted_forwarding(name), "{name}");
        }
        assert!(is_method_override("x_http_method_override"));
        assert!(!is_method_override("x-http-methods"));
    }

    #[test]
    fn absolute_form_is_sent_as_origin_form() {
        let mut req = RequestHeader::build("GET", b"http://app.example/a%2Fb;x?q=1", None).unwrap();
        to_origin_form(&mut req).unwrap();
        assert_eq!(req.raw_path(), b"/a%2Fb;x?q=1");
        let mut req = RequestHeader::build("GET", b"/p?q", None).unwrap();
        to_origin_form(&mut req).unwrap();
        assert_eq!(req.raw_path(), b"/p?q");
    }
}
