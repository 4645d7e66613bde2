//! The request the app receives, built in one pass over the client's:
//! every header that may pass is copied (a reference count, not the bytes),
//! the rest left behind — the client's hop-by-hop headers, spoofed identity
//! headers, the credential Gatehouse consumed, method overrides, and
//! forwarding headers from anyone but a trusted proxy — and then
//! Gatehouse's own are added: the identity, `X-Forwarded-*`, `X-Real-IP`,
//! the framing and the upgrade. Nothing is looked up or removed twice, and
//! no header-case map is kept (header names are case-insensitive; they go
//! out in the canonical spelling).

use super::forwarding::{is_method_override, is_untrusted_forwarding, to_origin_form};
use super::headers::{cookies_without, spoofs, HeaderSettings, HeaderSink, MethodOverride};
use super::hop::ClientHop;
use crate::credentials::{CredentialSource, X_API_KEY};
use crate::identity::Identity;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Version};
use pingora::http::RequestHeader;
use pingora::Result;
use std::net::IpAddr;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Everything the upstream request depends on.
pub struct UpstreamRequest<'a> {
    /// The request as the client sent it.
    pub asked: &'a RequestHeader,
    /// The host the client asked for (authority, else `Host`).
    pub host: &'a str,
    pub settings: &'a HeaderSettings,
    /// Who the gate admitted (`None`: anonymous on a public path).
    pub identity: Option<&'a Identity>,
    /// The header whose credential the gate used.
    pub consumed: Option<CredentialSource>,
    pub cookie_name: &'a str,
    /// The connection's other end, and whether it is a trusted proxy.
    pub peer: Option<IpAddr>,
    pub trusted: bool,
    /// `http` or `https`: how the client reached Gatehouse.
    pub scheme: &'static str,
    /// Whether the client sends a body.
    pub has_body: bool,
}

/// The built request, and whether it asks the app for an upgrade.
pub struct Built {
    pub header: RequestHeader,
    pub upgrade: bool,
}

impl UpstreamRequest<'_> {
    /// Whether the client's header `name` is left behind. Trusted
    /// `X-Forwarded-For` is taken apart here too: it is re-sent with the
    /// peer appended.
    fn leaves_behind(&self, name: &HeaderName, hop: &ClientHop) -> bool {
        if hop.drops(name) || spoofs(name, self.settings) {
            return true;
        }
        if !self.settings.pass_credentials {
            let consumed = match self.consumed {
                Some(CredentialSource::Authorization) => name == AUTHORIZATION,
                Some(CredentialSource::ApiKeyHeader) => name == X_API_KEY,
                Some(CredentialSource::SessionCookie) => name == COOKIE,
                None => false,
            };
            if consumed {
                return true;
            }
        }
        if self.settings.method_override == MethodOverride::Strip
            && is_method_override(name.as_str())
        {
            return true;
        }
        *name == X_FORWARDED_FOR || (!self.trusted && is_untrusted_forwarding(name.as_str()))
    }

    /// The request for the app, as a header for pingora-core's sessions.
    pub fn build(&self) -> Result<Built> {
        let asked = self.asked;
        let mut headers =
            HeaderMap::with_capacity(asked.headers.len() + self.settings.names.len() + 6);
        let upgrade = self.headers(&mut headers);
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.method = asked.method.clone();
        parts.version = Version::HTTP_11;
        parts.headers = headers;
        let mut header = RequestHeader::from(parts);
        // The target as received (the gate judged it), in origin-form.
        let raw = asked.raw_path();
        let same_as_uri = asked
            .uri
            .path_and_query()
            .is_some_and(|pq| pq.as_str().as_bytes() == raw);
        if same_as_uri {
            header.set_uri(asked.uri.clone());
        } else {
            header.set_raw_path(raw)?;
            to_origin_form(&mut header)?;
        }
        Ok(Built { header, upgrade })
    }

    /// The request for the app, written as it goes on the wire, for a
    /// request whose target is in origin-form and which has no body nor
    /// upgrade (the relay's plain requests): no header map is built.
    pub fn write(&self, out: &mut Vec<u8>) {
        let asked = self.asked;
        out.extend_from_slice(asked.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(asked.raw_path());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        self.headers(out);
        out.extend_from_slice(b"\r\n");
    }

    /// Add the request's headers to `out`; `true` when it asks the app for
    /// an upgrade.
    fn headers(&self, out: &mut impl HeaderSink) -> bool {
        let asked = self.asked;
        let hop = ClientHop::read(asked);
        let mut chain = String::new();
        // Which of the client's headers Gatehouse's own would have replaced.
        let (mut proto, mut host, mut length) = (false, false, false);
        for (name, value) in &asked.headers {
            if !self.leaves_behind(name, &hop) {
                out.add(name, value);
                proto |= *name == X_FORWARDED_PROTO;
                host |= *name == X_FORWARDED_HOST;
                length |= *name == CONTENT_LENGTH;
            } else if *name == X_FORWARDED_FOR && self.trusted {
                if let Ok(v) = value.to_str() {
                    if !chain.is_empty() {
                        chain.push_str(", ");
                    }
                    chain.push_str(v);
                }
            }
        }
        if self.consumed == Some(CredentialSource::SessionCookie) && !self.settings.pass_credentials
        {
            let rest = cookies_without(&asked.headers, self.cookie_name)
                .and_then(|r| HeaderValue::from_str(&r).ok());
            if let Some(rest) = rest {
                out.add(&COOKIE, &rest);
            }
        }
        if let Some(id) = self.identity {
            out.add_identity(id, self.settings);
        }
        if let Some(ip) = self.peer {
            let ip = address_text(ip);
            if !self.trusted {
                out.add(&X_REAL_IP, &ip);
            }
            if chain.is_empty() {
                out.add(&X_FORWARDED_FOR, &ip);
            } else {
                chain.push_str(", ");
                chain.push_str(ip.to_str().unwrap_or_default());
                out.add(&X_FORWARDED_FOR, &header_text(chain));
            }
        } else if !chain.is_empty() {
            out.add(&X_FORWARDED_FOR, &header_text(chain));
        }
        // A trusted proxy's forwarding headers stand; anyone else's were
        // left behind, and Gatehouse says what it saw.
        if !proto {
            out.add(&X_FORWARDED_PROTO, &HeaderValue::from_static(self.scheme));
        }
        if !host && !self.host.is_empty() {
            if let Ok(host) = HeaderValue::from_str(self.host) {
                out.add(&X_FORWARDED_HOST, &host);
            }
        }
        hop.finish(out, self.has_body && !length)
    }
}

/// An address as header text. IPv4 is written by hand: the `Display`
/// machinery (padding, alignment) costs more than the rest of the header.
fn address_text(ip: IpAddr) -> HeaderValue {
    match ip {
        IpAddr::V4(v4) => {
            let mut text = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                if octet >= 100 {
                    text.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    text.push(char::from(b'0' + octet / 10 % 10));
                }
                text.push(char::from(b'0' + octet % 10));
            }
            header_text(text)
        }
        IpAddr::V6(_) => header_text(ip.to_string()),
    }
}

/// A header value of text Gatehouse made (addresses, lists of them),
/// taking the string's buffer as it is.
fn header_text(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{AuthMethod, IdentityField, UserKind};
    use crate::permission::PermissionSet;
    use crate::upstream::headers::settings_naming;

    fn asked(method: &str, target: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build(method, target.as_bytes(), None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    /// Header lines, sorted: the order differs (a map groups names), the
    /// lines must not.
    fn lines(text: &str) -> Vec<String> {
        let mut lines: Vec<String> = text
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn written_and_built_requests_carry_the_same_headers() {
        let settings = settings_naming(&[
            ("x-forwarded-user", IdentityField::User),
            ("x-forwarded-groups", IdentityField::Groups),
        ]);
        let id = Identity::new(
            "alice".into(),
            None,
            None,
            UserKind::User,
            Some("admin".into()),
            PermissionSet::default(),
            AuthMethod::Session,
            None,
        );
        let cases = [
            (
                asked(
                    "GET",
                    "/a?b=c",
                    &[
                        ("Host", "app.test"),
                        ("Cookie", "gatehouse_session=s; theme=dark"),
                        ("X-Forwarded-User", "mallory"),
                        ("X_Forwarded_User", "mallory"),
                        ("X-Forwarded-For", "6.6.6.6"),
                        ("X-Forwarded-Proto", "gopher"),
                        ("X-HTTP-Method-Override", "DELETE"),
                        ("TE", "trailers"),
                        ("Accept", "a"),
                        ("Accept", "b"),
                    ],
                ),
                Some(CredentialSource::SessionCookie),
                false,
            ),
            (
                asked(
                    "DELETE",
                    "/x",
                    &[
                        ("Host", "app.test"),
                        ("Authorization", "Bearer t"),
                        ("X-Forwarded-For", "1.1.1.1"),
                        ("X-Forwarded-Proto", "https"),
                        ("X-Forwarded-Host", "front.test"),
                    ],
                ),
                Some(CredentialSource::Authorization),
                true,
            ),
        ];
        for (req, consumed, trusted) in &cases {
            let upstream = UpstreamRequest {
                asked: req,
                host: "app.test",
                settings: &settings,
                identity: Some(&id),
                consumed: *consumed,
                cookie_name: "gatehouse_session",
                peer: Some("10.0.0.7".parse().unwrap()),
                trusted: *trusted,
                scheme: "http",
                has_body: false,
            };
            let built = upstream.build().unwrap().header;
            let mut from_map = Vec::new();
            for (name, value) in &built.headers {
                from_map.add(name, value);
            }
            let mut written = Vec::new();
            upstream.write(&mut written);
            let written = String::from_utf8(written).unwrap();
            let (line, rest) = written.split_once("\r\n").unwrap();
            assert_eq!(
                line,
                format!(
                    "{} {} HTTP/1.1",
                    req.method,
                    req.uri.path_and_query().unwrap()
                )
            );
            assert!(written.ends_with("\r\n\r\n"));
            assert_eq!(
                lines(rest),
                lines(&String::from_utf8(from_map).unwrap()),
                "{req:?}"
            );
            assert!(!rest.contains("mallory") && !rest.contains("Override"));
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "9.99.199.200",
            "::1",
            "fe80::1:2",
        ] {
            let parsed: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(address_text(parsed), parsed.to_string().as_str(), "{ip}");
        }
    }
}
