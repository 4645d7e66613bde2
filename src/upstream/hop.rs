//! Hop-by-hop headers (RFC 9110 §7.6.1): what one connection says about
//! itself, which is not passed on, in either direction. Message
//! framing is the relay's own: a request body without a length goes up
//! chunked, and a response delimited by the app closing its connection goes
//! down chunked, so the client's connection can stay open.

use super::headers::HeaderSink;
use http::header::HOST;
use http::header::{
    CONNECTION, CONTENT_LENGTH, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use pingora::http::{RequestHeader, ResponseHeader};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// Headers about one connection, never passed on as they came (RFC 9110
/// §7.6.1, and the proxy ones of RFC 9110 §11.7); `Transfer-Encoding`
/// is re-made for the next hop, `Upgrade` re-made for an allowed upgrade.
/// (A `static`: a `const` array would be built and dropped at every use.)
static HOP_BY_HOP: [HeaderName; 10] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    HTTP2_SETTINGS,
    PROXY_AUTHORIZATION,
    PROXY_AUTHENTICATE,
];

/// [`HOP_BY_HOP`] as text, for names read off the wire (a unit test keeps
/// the two lists the same).
static HOP_BY_HOP_TEXT: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Whether the header named `name` (any case, as bytes off the wire) is
/// hop-by-hop: the relay's own reading of answers checks the same list.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    HOP_BY_HOP_TEXT
        .iter()
        .any(|hop| hop.len() == name.len() && name.eq_ignore_ascii_case(hop.as_bytes()))
}

/// Names a `Connection` header lists beyond `keep-alive` and `close` (lower
/// case; at most 32 honoured), and whether it names `upgrade`. The usual
/// `Connection: keep-alive` allocates nothing.
fn nominated(headers: &HeaderMap) -> (Vec<HeaderName>, bool) {
    let mut upgrade = false;
    let names = headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| {
            upgrade |= t.eq_ignore_ascii_case(b"upgrade");
            !(t.is_empty()
                || t.eq_ignore_ascii_case(b"keep-alive")
                || t.eq_ignore_ascii_case(b"close"))
        })
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .take(32)
        .collect();
    (names, upgrade)
}

/// Whether any header would be removed: most answers carry none, and then
/// nothing is allocated or touched.
fn any_hop_header(headers: &HeaderMap) -> bool {
    // One pass over the few names present, no hashing.
    headers.keys().any(|name| HOP_BY_HOP.contains(name))
}

/// An upgrade the app may be asked for: anything but a switch to another
/// HTTP (`h2c`, `HTTP/2.0`), whose later requests would reach the app
/// through the tunnel without the gate ever seeing them.
fn allowed_upgrade(value: &[u8]) -> bool {
    value.split(|b| *b == b',').all(|token| {
        let token = token.trim_ascii();
        let another_http = token.eq_ignore_ascii_case(b"h2c")
            || token
                .get(..5)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"http/"));
        !token.is_empty() && !another_http
    })
}

/// What the client's connection headers say of its own hop: which headers
/// are not passed on, and the upgrade asked for, if the app may be asked.
pub struct ClientHop {
    nominated: Vec<HeaderName>,
    /// The `Upgrade` value to send on: named in `Connection` (RFC 9110
    /// §7.8), in HTTP/1.1, and allowed.
    pub upgrade: Option<HeaderValue>,
}

impl ClientHop {
    pub fn read(req: &RequestHeader) -> Self {
        if !req.headers.contains_key(CONNECTION) {
            return ClientHop {
                nominated: Vec::new(),
                upgrade: None,
            };
        }
        let (nominated, names_upgrade) = nominated(&req.headers);
        let upgrade = (req.version == Version::HTTP_11 && names_upgrade)
            .then(|| req.headers.get(UPGRADE).cloned())
            .flatten()
            .filter(|v| allowed_upgrade(v.as_bytes()));
        ClientHop { nominated, upgrade }
    }

    /// Whether the header `name` stays on the client's hop (`Host` cannot
    /// be nominated away).
    pub fn drops(&self, name: &HeaderName) -> bool {
        HOP_BY_HOP.contains(name) || (self.nominated.contains(name) && *name != HOST)
    }

    /// Frame the upstream request (`chunked`: a body without a length)
    /// and ask for the upgrade; `true` when one is asked for.
    pub fn finish(self, headers: &mut impl HeaderSink, chunked: bool) -> bool {
        if chunked {
            headers.add(&TRANSFER_ENCODING, &HeaderValue::from_static("chunked"));
        }
        let Some(protocol) = self.upgrade else {
            return false;
        };
        headers.add(&CONNECTION, &HeaderValue::from_static("Upgrade"));
        headers.add(&UPGRADE, &protocol);
        true
    }
}

/// The response as it goes to the client: hop-by-hop headers removed (but
/// those of a `101 Switching Protocols`), and a body that ends when the app
/// closes its connection sent chunked to an HTTP/1.1 client. `complete`:
/// the app's response has no body left to read.
pub fn response(resp: &mut ResponseHeader, method: &Method, client: Version, complete: bool) {
    let status = resp.status.as_u16();
    if status == 101 {
        return;
    }
    if any_hop_header(&resp.headers) {
        for name in nominated(&resp.headers).0 {
            if name != TRANSFER_ENCODING && name != CONTENT_LENGTH {
                resp.remove_header(&name);
            }
        }
        // Transfer-Encoding stays: it frames the body as it is sent on.
        for name in HOP_BY_HOP.iter().filter(|n| **n != TRANSFER_ENCODING) {
            resp.remove_header(name);
        }
    }
    if client != Version::HTTP_11 {
        return;
    }
    // Gatehouse speaks HTTP/1.1 to this client, whatever the app spoke.
    resp.set_version(Version::HTTP_11);
    let bodiless = *method == Method::HEAD || matches!(status, 100..=199 | 204 | 304);
    if !bodiless
        && !complete
        && !resp.headers.contains_key(TRANSFER_ENCODING)
        && !resp.headers.contains_key(CONTENT_LENGTH)
    {
        let _ = resp.insert_header(TRANSFER_ENCODING, "chunked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn names_read_off_the_wire_are_checked_against_the_same_list() {
        let names: Vec<&str> = HOP_BY_HOP.iter().map(HeaderName::as_str).collect();
        assert_eq!(names, HOP_BY_HOP_TEXT);
        assert!(is_hop_by_hop(b"Transfer-Encoding"));
        assert!(is_hop_by_hop(b"TE"));
        assert!(!is_hop_by_hop(b"Tex"));
        assert!(!is_hop_by_hop(b"Content-Length"));
    }

    /// The request as `request::build` would pass it: without the headers
    /// the client's hop keeps, framed, upgraded.
    fn request(r: &mut RequestHeader, has_body: bool) -> bool {
        let hop = ClientHop::read(r);
        let (mut parts, ()) = http::Request::new(()).into_parts();
        for (name, value) in r.headers.iter().filter(|(n, _)| !hop.drops(n)) {
            parts.headers.append(name.clone(), value.clone());
        }
        let chunked = has_body && !parts.headers.contains_key(CONTENT_LENGTH);
        let upgrade = hop.finish(&mut parts.headers, chunked);
        *r = RequestHeader::from(parts);
        upgrade
    }

    #[test]
    fn hop_headers_and_nominated_ones_do_not_go_up() {
        let mut r = req(&[
            ("Connection", "keep-alive, X-Secret"),
            ("X-Secret", "1"),
            ("Keep-Alive", "5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Proxy-Authorization", "Basic eA=="),
            ("Accept", "*/*"),
        ]);
        assert!(!request(&mut r, false));
        let names: Vec<&str> = r.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["accept"]);
    }

    #[test]
    fn host_cannot_be_nominated_away() {
        let mut r = req(&[("Host", "app"), ("Connection", "host")]);
        request(&mut r, false);
        assert_eq!(r.headers["host"], "app");
    }

    #[test]
    fn websocket_and_other_upgrades_pass_but_not_to_another_http() {
        let mut r = req(&[("Connection", "Upgrade"), ("Upgrade", "websocket")]);
        assert!(request(&mut r, false));
        assert_eq!(r.headers["upgrade"], "websocket");
        assert_eq!(r.headers["connection"], "Upgrade");
        for refused in ["h2c", "HTTP/2.0", "websocket, h2c"] {
            let mut r = req(&[
                ("Connection", "Upgrade, HTTP2-Settings"),
                ("Upgrade", refused),
            ]);
            r.append_header("HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA")
                .unwrap();
            assert!(!request(&mut r, false), "{refused}");
            assert!(r.headers.get("upgrade").is_none(), "{refused}");
            assert!(r.headers.get("http2-settings").is_none(), "{refused}");
        }
    }

    #[test]
    fn a_body_without_length_goes_up_chunked() {
        let mut r = req(&[("Transfer-Encoding", "chunked")]);
        request(&mut r, true);
        let mut r2 = req(&[("Upgrade", "websocket")]);
        assert!(!request(&mut r2, false), "not named in Connection");
        assert_eq!(r.headers["transfer-encoding"], "chunked");
        let mut r = req(&[("Content-Length", "3"), ("Connection", "close")]);
        request(&mut r, true);
        assert!(r.headers.get("transfer-encoding").is_none());
    }

    #[test]
    fn responses_lose_hop_headers_and_close_delimited_bodies_are_chunked() {
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.append_header("Connection", "X-Up-Hop").unwrap();
        resp.append_header("X-Up-Hop", "1").unwrap();
        resp.append_header("Keep-Alive", "timeout=5").unwrap();
        resp.set_version(Version::HTTP_10);
        response(&mut resp, &Method::GET, Version::HTTP_11, false);
        assert!(resp.headers.get("x-up-hop").is_none());
        assert!(resp.headers.get("keep-alive").is_none());
        assert_eq!(resp.headers["transfer-encoding"], "chunked");
        assert_eq!(resp.version, Version::HTTP_11);

        let mut head = ResponseHeader::build(200, None).unwrap();
        response(&mut head, &Method::HEAD, Version::HTTP_11, false);
        assert!(head.headers.get("transfer-encoding").is_none());
    }
}
