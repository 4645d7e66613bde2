//! HTTP/1.1 on the wire, for the relay's plain requests: a request head read
//! into a [`RequestHeader`] when it is plain ([`RequestHead::Plain`]: HTTP/1.1,
//! origin-form, no body, no upgrade, no `Expect`), the app's answer head
//! read and written on for the client without its hop-by-hop headers
//! ([`read_response`]), Gatehouse's own answers written ([`write_reply`]),
//! and a chunked body followed to its end ([`Chunks`]). Anything out of the
//! ordinary is left to pingora-core's sessions, which read it again from the
//! same bytes.

use crate::respond::Reply;
use crate::upstream::headers::write_line;
use crate::upstream::hop::is_hop_by_hop;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};
use pingora::http::RequestHeader;
use std::mem::MaybeUninit;

/// Most headers a plain request or an answer may have; more go to
/// pingora-core (requests) or are refused (answers).
const MAX_HEADERS: usize = 100;

/// Whether header name `name` is `lower` in any case. Inlined, so that each
/// comparison with a constant name starts with its length (left to the
/// compiler, a change elsewhere once made it a call per header per name:
/// 1,400 instructions more per request).
#[inline(always)]
fn is(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len() && name.eq_ignore_ascii_case(lower)
}

/// The comma-separated tokens of a header value, trimmed, empty ones left out.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// What a client's bytes hold. (Unboxed: boxing the header would cost an
/// allocation on every request, for a value that lives on the stack briefly.)
#[allow(clippy::large_enum_variant)]
pub enum RequestHead {
    /// Not a whole head yet.
    Partial,
    /// A plain request, its head `len` bytes long; `close`: the client
    /// asked to close the connection after it.
    Plain {
        req: RequestHeader,
        len: usize,
        close: bool,
    },
    /// Anything else (a body, an upgrade, `Expect`, HTTP/1.0, a target
    /// not in origin-form, a malformed head): pingora-core's to read.
    Other,
}

fn offset(base: &[u8], part: &[u8]) -> (usize, usize) {
    let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
    (start, start + part.len())
}

/// Room for the headers httparse finds, left uninitialised: zeroing room
/// for [`MAX_HEADERS`] on every request cost more than parsing them.
fn header_room<'b>() -> [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS] {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

/// Read the request head at the start of `buf`.
pub fn read_request(buf: &[u8]) -> RequestHead {
    let mut room = header_room();
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(buf, &mut room) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return RequestHead::Partial,
        Err(_) => return RequestHead::Other,
    };
    let (Some(method), Some(target), Some(1)) = (parsed.method, parsed.path, parsed.version) else {
        return RequestHead::Other;
    };
    if !target.starts_with('/') {
        return RequestHead::Other;
    }
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return RequestHead::Other;
    };
    let mut close = false;
    let mut host = false;
    let mut length = false;
    for h in parsed.headers.iter() {
        let name = h.name.as_bytes();
        if is(name, b"transfer-encoding") || is(name, b"expect") || is(name, b"upgrade") {
            return RequestHead::Other;
        } else if is(name, b"content-length") {
            // `Content-Length: 0`, once, is no body; any other is pingora-core's.
            if length || h.value != b"0" {
                return RequestHead::Other;
            }
            length = true;
        } else if is(name, b"host") {
            if host {
                return RequestHead::Other;
            }
            host = true;
        } else if is(name, b"connection") {
            for token in tokens(h.value) {
                if is(token, b"close") {
                    close = true;
                } else if !is(token, b"keep-alive") {
                    // Nominated headers: pingora-core's session path.
                    return RequestHead::Other;
                }
            }
        }
    }
    let target = offset(buf, target.as_bytes());
    // One copy of the head; the target and values are slices of it.
    let head = Bytes::copy_from_slice(&buf[..len]);
    let Ok(uri) = Uri::from_maybe_shared(head.slice(target.0..target.1)) else {
        return RequestHead::Other;
    };
    let mut map = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(h.name.as_bytes()) else {
            return RequestHead::Other;
        };
        let (start, end) = offset(buf, h.value);
        let Ok(value) = HeaderValue::from_maybe_shared(head.slice(start..end)) else {
            return RequestHead::Other;
        };
        map.append(name, value);
    }
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    parts.headers = map;
    RequestHead::Plain {
        req: RequestHeader::from(parts),
        len,
        close,
    }
}

fn write_status(out: &mut Vec<u8>, code: u16, reason: &[u8]) {
    out.extend_from_slice(b"HTTP/1.1 ");
    let digits = [
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ];
    out.extend_from_slice(&digits);
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
}

/// Write Gatehouse's own answer (with its body unless `head_only`);
/// `close`: the connection closes after it.
pub fn write_reply(out: &mut Vec<u8>, reply: &Reply, head_only: bool, close: bool) {
    let status = reply.status;
    write_status(
        out,
        status.as_u16(),
        status.canonical_reason().unwrap_or("").as_bytes(),
    );
    for (name, value) in &reply.headers {
        write_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let length = reply.body.len().to_string();
    write_line(out, b"content-length", length.as_bytes());
    if close {
        write_line(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&reply.body);
    }
}

/// How the body of the app's answer is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Ended by the app closing its connection: sent on chunked.
    UntilClose,
}

/// The head of the app's answer.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    /// Bytes of the head.
    pub len: usize,
    pub framing: Framing,
    /// The app keeps its connection open after this answer.
    pub keep_alive: bool,
}

/// What the app's bytes hold.
#[derive(Debug)]
pub enum ResponseRead {
    Partial,
    Head(ResponseHead),
    /// Not an answer a proxy may pass on (malformed, conflicting lengths).
    Invalid,
}

/// Read the app's answer head at the start of `buf` and, when whole, write
/// it as it goes to the client into `out`: HTTP/1.1, without hop-by-hop
/// headers nor those the app's `Connection` names; a body delimited by the
/// app closing goes chunked; `close` adds `Connection: close`. `head`: the
/// request was HEAD (no body follows, whatever the headers say).
pub fn read_response(buf: &[u8], head: bool, close: bool, out: &mut Vec<u8>) -> ResponseRead {
    let mut room = header_room();
    let mut parsed = httparse::Response::new(&mut []);
    let read = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        buf,
        &mut room,
    );
    let len = match read {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return ResponseRead::Partial,
        Err(_) => return ResponseRead::Invalid,
    };
    let (Some(version), Some(status)) = (parsed.version, parsed.code) else {
        return ResponseRead::Invalid;
    };
    let mut keep_alive = version == 1;
    let mut nominated: [&[u8]; 16] = [b""; 16];
    let mut named = 0;
    let mut chunked = None;
    let mut length: Option<u64> = None;
    for h in parsed.headers.iter() {
        let name = h.name.as_bytes();
        if is(name, b"connection") {
            for token in tokens(h.value) {
                if is(token, b"close") {
                    keep_alive = false;
                } else if !is(token, b"keep-alive") && named < nominated.len() {
                    nominated[named] = token;
                    named += 1;
                }
            }
        } else if is(name, b"transfer-encoding") {
            // The last coding says whether the body is chunked.
            chunked = Some(
                tokens(h.value)
                    .last()
                    .is_some_and(|coding| is(coding, b"chunked")),
            );
        } else if is(name, b"content-length") {
            let Some(n) = std::str::from_utf8(h.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
            else {
                return ResponseRead::Invalid;
            };
            if length.is_some_and(|seen| seen != n) {
                return ResponseRead::Invalid;
            }
            length = Some(n);
        }
    }
    let framing = if head || matches!(status, 100..=199 | 204 | 304) {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            // Another coding last: only the app's closing ends the body,
            // and it could not be sent on chunked without changing it.
            (Some(false), _) => return ResponseRead::Invalid,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::UntilClose,
        }
    };
    if framing == Framing::UntilClose {
        keep_alive = false;
    }
    write_status(out, status, parsed.reason.unwrap_or("").as_bytes());
    for h in parsed.headers.iter() {
        let name = h.name.as_bytes();
        let framing_header = is(name, b"transfer-encoding") || is(name, b"content-length");
        let dropped = if framing_header {
            // The body goes on as it came (chunked stays chunked), but a
            // length beside chunked framing is not passed on.
            is(name, b"content-length") && framing == Framing::Chunked
        } else {
            is_hop_by_hop(name) || nominated[..named].iter().any(|n| is(name, n))
        };
        if !dropped {
            write_line(out, name, h.value);
        }
    }
    if framing == Framing::UntilClose {
        write_line(out, b"transfer-encoding", b"chunked");
    }
    if close {
        write_line(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    ResponseRead::Head(ResponseHead {
        status,
        len,
        framing,
        keep_alive,
    })
}

/// Follows a chunked body through the bytes passed on, to find where it
/// ends (after the last chunk and the trailer section). Trailers are not
/// passed on: the body goes on with an empty trailer section. Strict: every
/// line ends in CRLF.
#[derive(Debug, Default)]
pub struct Chunks {
    state: ChunkState,
}

/// What [`Chunks::follow`] made of some bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Followed {
    /// How many of them, from the start, go on (the trailers do not).
    pub pass: usize,
    /// How many of them belong to the body.
    pub used: usize,
    /// The body ended with them: the final CRLF is for the caller to send.
    pub ended: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// At the start of a size line.
    #[default]
    SizeStart,
    /// In the size's hex digits (so far: the value, and how many digits).
    Size(u64, u8),
    /// In a chunk extension.
    Extension(u64),
    /// After the size line's CR.
    SizeLf(u64),
    /// In a chunk's data: bytes left.
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final CRLF).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    FinalLf,
    Done,
}

/// The chunked framing is broken.
#[derive(Debug, PartialEq, Eq)]
pub struct BadChunk;

impl Chunks {
    /// Follow `bytes`.
    pub fn follow(&mut self, bytes: &[u8]) -> Result<Followed, BadChunk> {
        use ChunkState::*;
        let in_trailers = |state| {
            matches!(
                state,
                TrailerStart | TrailerLine | TrailerLf | FinalLf | Done
            )
        };
        let mut pass = if in_trailers(self.state) {
            Some(0)
        } else {
            None
        };
        let mut i = 0;
        while i < bytes.len() && self.state != Done {
            if let Data(left) = self.state {
                let take = left.min((bytes.len() - i) as u64);
                i += take as usize;
                self.state = if take == left {
                    DataCr
                } else {
                    Data(left - take)
                };
                continue;
            }
            let b = bytes[i];
            i += 1;
            self.state = match (self.state, b) {
                (SizeStart, _) => Size(u64::from(hex(b).ok_or(BadChunk)?), 1),
                (Size(n, digits), _) if hex(b).is_some() => {
                    if digits >= 15 {
                        return Err(BadChunk);
                    }
                    Size(n * 16 + u64::from(hex(b).unwrap_or(0)), digits + 1)
                }
                (Size(n, _) | Extension(n), b'\r') => SizeLf(n),
                (Size(_, _) | Extension(_), b'\n') => return Err(BadChunk),
                (Size(n, _), b';' | b' ' | b'\t') | (Extension(n), _) => Extension(n),
                (SizeLf(0), b'\n') => {
                    pass = Some(i);
                    TrailerStart
                }
                (SizeLf(n), b'\n') => Data(n),
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => SizeStart,
                (TrailerStart, b'\r') => FinalLf,
                (TrailerLine, b'\r') => TrailerLf,
                (TrailerStart | TrailerLine, b'\n') => return Err(BadChunk),
                (TrailerStart | TrailerLine, _) => TrailerLine,
                (TrailerLf, b'\n') => TrailerStart,
                (FinalLf, b'\n') => Done,
                _ => return Err(BadChunk),
            };
        }
        Ok(Followed {
            pass: pass.unwrap_or(i),
            used: i,
            ended: self.state == Done,
        })
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Write `data` as one chunk (a body the app ends by closing, sent on
/// chunked); the empty chunk ends the body.
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(raw: &str) -> Option<(RequestHeader, usize, bool)> {
        match read_request(raw.as_bytes()) {
            RequestHead::Plain { req, len, close } => Some((req, len, close)),
            _ => None,
        }
    }

    #[test]
    fn a_plain_request_is_read_with_its_headers_and_target() {
        let raw = "GET /a/b?c=d HTTP/1.1\r\nHost: app\r\nX-API-Key: k\r\nConnection: keep-alive\r\n\r\nGET /next";
        let (req, len, close) = plain(raw).unwrap();
        assert_eq!(len, raw.len() - "GET /next".len());
        assert!(!close);
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.raw_path(), b"/a/b?c=d");
        assert_eq!(req.headers["x-api-key"], "k");
        assert_eq!(req.headers["host"], "app");
        let (_, _, close) = plain("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        assert!(close);
    }

    #[test]
    fn every_header_up_to_the_limit_is_read_and_more_go_elsewhere() {
        let head = |n: usize| {
            let lines: String = (0..n).map(|i| format!("X-H{i}: v{i}\r\n")).collect();
            format!("GET / HTTP/1.1\r\n{lines}\r\n")
        };
        let (req, _, _) = plain(&head(MAX_HEADERS)).unwrap();
        assert_eq!(req.headers.len(), MAX_HEADERS);
        for i in [0, MAX_HEADERS / 2, MAX_HEADERS - 1] {
            assert_eq!(
                req.headers[format!("x-h{i}").as_str()],
                format!("v{i}").as_str()
            );
        }
        assert!(matches!(
            read_request(head(MAX_HEADERS + 1).as_bytes()),
            RequestHead::Other
        ));
        let answer = |n: usize| {
            let lines: String = (0..n).map(|i| format!("X-H{i}: v{i}\r\n")).collect();
            format!("HTTP/1.1 200 OK\r\n{lines}Content-Length: 0\r\n\r\n")
        };
        let (read, out) = response(&answer(MAX_HEADERS - 1), false, false);
        assert!(matches!(read, ResponseRead::Head(_)));
        assert!(out.contains("X-H98: v98\r\n"), "{out}");
        let (read, _) = response(&answer(MAX_HEADERS), false, false);
        assert!(matches!(read, ResponseRead::Invalid));
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert!(matches!(
            read_request(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            RequestHead::Partial
        ));
    }

    #[test]
    fn anything_but_a_plain_request_is_left_to_pingora() {
        for raw in [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: keep-alive, X-Secret\r\n\r\n",
            "PUT / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "GET http://app/ HTTP/1.1\r\n\r\n",
            "CONNECT app:443 HTTP/1.1\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "GET /a b HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(read_request(raw.as_bytes()), RequestHead::Other),
                "{raw:?}"
            );
        }
        assert!(plain("POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_some());
    }

    fn response(raw: &str, head: bool, close: bool) -> (ResponseRead, String) {
        let mut out = Vec::new();
        let read = read_response(raw.as_bytes(), head, close, &mut out);
        (read, String::from_utf8(out).unwrap())
    }

    #[test]
    fn answers_lose_hop_headers_and_keep_the_rest_as_written() {
        let (read, out) = response(
            "HTTP/1.1 200 Fine\r\nX-Up: 1\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 2\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
            false,
            false,
        );
        let ResponseRead::Head(head) = read else {
            panic!("{read:?}")
        };
        assert_eq!(head.framing, Framing::Length(2));
        assert!(head.keep_alive);
        assert_eq!(
            head.len,
            out.len()
                + "Connection: keep-alive, X-Hop\r\nX-Hop: 2\r\nKeep-Alive: timeout=5\r\n".len()
                - "HTTP/1.1 200 Fine\r\n".len()
                + "HTTP/1.1 200 Fine\r\n".len()
        );
        assert_eq!(
            out,
            "HTTP/1.1 200 Fine\r\nX-Up: 1\r\nContent-Length: 2\r\n\r\n"
        );
    }

    #[test]
    fn framing_follows_the_answer_and_the_request() {
        let framing = |raw: &str, head: bool| match response(raw, head, false).0 {
            ResponseRead::Head(h) => Some((h.framing, h.keep_alive)),
            _ => None,
        };
        // (answer, to a HEAD request, its framing, the app's connection kept)
        let cases = [
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                false,
                Framing::Chunked,
                true,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", false, Framing::UntilClose, false),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
                true,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.1 304 Not Modified\r\n\r\n",
                false,
                Framing::Empty,
                true,
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
                false,
                Framing::Length(1),
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
                false,
                Framing::Length(1),
                false,
            ),
        ];
        for (raw, head, expected, keep_alive) in cases {
            assert_eq!(framing(raw, head), Some((expected, keep_alive)), "{raw:?}");
        }
        for invalid in [
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
        ] {
            assert_eq!(framing(invalid, false), None, "{invalid:?}");
        }
        let (_, out) = response(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            false,
            true,
        );
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        let (_, out) = response("HTTP/1.0 200 OK\r\n\r\n", false, false);
        assert_eq!(out, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
    }

    #[test]
    fn chunked_bodies_end_after_the_last_chunk_without_their_trailers() {
        let body = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let last_chunk = body.len() - "X-Trailer: 1\r\n\r\nNEXT".len();
        let end = body.len() - 4;
        let mut whole = Chunks::default();
        assert_eq!(
            whole.follow(body),
            Ok(Followed {
                pass: last_chunk,
                used: end,
                ended: true
            })
        );
        // Byte by byte: the same end, and nothing of the trailers passed.
        let mut bytewise = Chunks::default();
        let mut passed = 0;
        let mut ended_at = None;
        for i in 0..body.len() {
            let f = bytewise.follow(&body[i..=i]).unwrap();
            passed += f.pass;
            if f.ended && ended_at.is_none() {
                ended_at = Some(i);
            }
        }
        assert_eq!(ended_at, Some(end - 1));
        assert_eq!(passed, last_chunk);
        let mut no_trailers = Chunks::default();
        let f = no_trailers.follow(b"0\r\n\r\n").unwrap();
        assert_eq!((f.pass, f.used, f.ended), (3, 5, true));
        let mut unfinished = Chunks::default();
        let f = unfinished.follow(b"5\r\nhel").unwrap();
        assert_eq!((f.pass, f.used, f.ended), (6, 6, false));
        for bad in [
            b"x\r\n".as_slice(),
            b"4\nWiki\r\n",
            b"4\r\nWikiXX",
            b"0\r\n\n",
            b"4;a\nWiki",
            b"ffffffffffffffffff\r\n",
        ] {
            assert_eq!(Chunks::default().follow(bad), Err(BadChunk), "{bad:?}");
        }
    }

    #[test]
    fn replies_carry_their_length_and_close_when_asked() {
        let reply = Reply {
            status: http::StatusCode::UNAUTHORIZED,
            headers: vec![(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic"),
            )],
            body: Bytes::from_static(b"{}"),
        };
        let mut out = Vec::new();
        write_reply(&mut out, &reply, false, true);
        assert_eq!(
            out,
            b"HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Basic\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".as_slice()
        );
        let mut head = Vec::new();
        write_reply(&mut head, &reply, true, false);
        assert!(head.ends_with(b"content-length: 2\r\n\r\n"));
    }
}
