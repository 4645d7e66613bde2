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
use super::headers::{cookies_without, spoofs, HeaderSettings, MethodOverride};
use super::hop::ClientHop;
use crate::credentials::{CredentialSource, X_API_KEY};
use crate::identity::Identity;
use http::header::{AUTHORIZATION, COOKIE};
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

    /// The request for the app.
    pub fn build(&self) -> Result<Built> {
        let asked = self.asked;
        let hop = ClientHop::read(asked);
        let mut headers =
            HeaderMap::with_capacity(asked.headers.len() + self.settings.names.len() + 6);
        let mut chain = String::new();
        for (name, value) in &asked.headers {
            if !self.leaves_behind(name, &hop) {
                headers.append(name.clone(), value.clone());
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
                headers.append(COOKIE, rest);
            }
        }
        if let Some(id) = self.identity {
            for h in &self.settings.names {
                headers.append(h.name.clone(), id.header_value(h.field).clone());
            }
        }
        if let Some(ip) = self.peer {
            let ip = address_text(ip);
            if !self.trusted {
                headers.append(X_REAL_IP.clone(), ip.clone());
            }
            if chain.is_empty() {
                headers.append(X_FORWARDED_FOR.clone(), ip);
            } else {
                chain.push_str(", ");
                chain.push_str(ip.to_str().unwrap_or_default());
                headers.append(X_FORWARDED_FOR.clone(), header_text(chain));
            }
        } else if !chain.is_empty() {
            headers.append(X_FORWARDED_FOR.clone(), header_text(chain));
        }
        if !(self.trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
            headers.insert(
                X_FORWARDED_PROTO.clone(),
                HeaderValue::from_static(self.scheme),
            );
        }
        if !(self.trusted && headers.contains_key(&X_FORWARDED_HOST)) {
            if let Ok(host) = HeaderValue::from_str(self.host) {
                if !self.host.is_empty() {
                    headers.insert(X_FORWARDED_HOST.clone(), host);
                }
            }
        }
        let upgrade = hop.finish(&mut headers, self.has_body);
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
    use super::address_text;

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
