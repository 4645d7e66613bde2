//! The relay's duties on the HTTP/1.1 proxy path, black-box: the real binary
//! between a raw client socket and an in-process upstream (raw tokio sockets
//! where the exact bytes matter, tokio-tungstenite for WebSocket).
//!
//! Covered: 64 MiB uploads (chunked and Content-Length) that must stream
//! rather than be buffered (Gatehouse's peak RSS is watched); an upstream that
//! answers before reading the body; `Expect: 100-continue`, authenticated and
//! not; `upstream.read_timeout` and slow streamed answers within it; an
//! upstream that closes idle keep-alive connections; which failed requests
//! are retried (never a POST); cancelling the upstream request when the
//! client leaves; close-delimited and trailer-carrying upstream bodies;
//! hop-by-hop headers both ways (RFC 9110 §7.6.1); WebSocket echo with a
//! 1 MiB binary message and a clean close; CONNECT refused; HEAD framing on
//! a kept-alive connection; 100 sequential and 10 pipelined requests on one
//! client connection.
//!
//! Covered elsewhere and not repeated: basic streamed bodies, upstream
//! connection reuse, the WebSocket upgrade's authentication and 502 for a
//! down upstream (`tests/upstream.rs`); `X-Forwarded-*` (`tests/reading.rs`,
//! `tests/inline.rs`).
//!
//! Time bounds here (client read timeouts, [`eventually`]) are liveness
//! limits for a stuck relay, never speed assertions.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "gh_relayTestKey0123456789abcdefABCDEFGHIJKL";

/// How long a client waits for any answer before calling the relay stuck.
const STUCK: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- messages

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The values of header `name` in a message head.
fn header_values(head: &str, name: &str) -> Vec<String> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
        .collect()
}

fn header(head: &str, name: &str) -> Option<String> {
    header_values(head, name).into_iter().next()
}

fn is_chunked(head: &str) -> bool {
    header_values(head, "transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(head: &str) -> Option<usize> {
    header(head, "content-length").map(|v| v.parse().expect("a numeric Content-Length"))
}

fn method(head: &str) -> &str {
    head.split(' ').next().unwrap_or("")
}

fn target(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

fn chunk_size(line: &str) -> usize {
    let hex = line.split(';').next().unwrap_or("").trim();
    usize::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("bad chunk size line {line:?}"))
}

/// A request head with the API key, `extra` being further header lines.
fn req(method: &str, path: &str, extra: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: t\r\nX-API-Key: {KEY}\r\n{extra}\r\n")
}

// ---------------------------------------------------------------- upstream

/// What an upstream saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    heads: Mutex<Vec<String>>,
    body_bytes: AtomicUsize,
    /// Set by a handler when the proxy closed the connection under it.
    closed: AtomicBool,
    /// Whatever a handler wants to tell the test.
    notes: Mutex<Vec<String>>,
}

impl Seen {
    /// How many request heads began with `start` (e.g. `"POST /drop "`).
    fn count(&self, start: &str) -> usize {
        let heads = self.heads.lock().unwrap();
        heads.iter().filter(|h| h.starts_with(start)).count()
    }

    /// The head of the last request whose line began with `start`.
    fn last(&self, start: &str) -> String {
        let heads = self.heads.lock().unwrap();
        heads
            .iter()
            .rev()
            .find(|h| h.starts_with(start))
            .cloned()
            .unwrap_or_else(|| panic!("the upstream never saw {start:?}"))
    }
}

struct Upstream {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

/// One upstream connection, read through a buffer.
struct Conn {
    s: tokio::net::TcpStream,
    buf: Vec<u8>,
    seen: Arc<Seen>,
}

impl Conn {
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = self.s.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn until(&mut self, delim: &[u8]) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(at) = find(&self.buf, delim) {
                let out = self.buf[..at].to_vec();
                self.buf.drain(..at + delim.len());
                return Ok(Some(out));
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// The next request head (recorded), or `None` when the peer closed
    /// between requests.
    async fn head(&mut self) -> io::Result<Option<String>> {
        let Some(head) = self.until(b"\r\n\r\n").await? else {
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&head).into_owned() + "\r\n\r\n";
        self.seen.heads.lock().unwrap().push(head.clone());
        Ok(Some(head))
    }

    async fn line(&mut self) -> io::Result<String> {
        let line = self
            .until(b"\r\n")
            .await?
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Read and drop `n` body bytes, counting them.
    async fn skip(&mut self, mut n: usize) -> io::Result<()> {
        loop {
            let take = n.min(self.buf.len());
            self.buf.drain(..take);
            self.seen.body_bytes.fetch_add(take, Ordering::SeqCst);
            n -= take;
            if n == 0 {
                return Ok(());
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Read (and count) the body `head` announces; returns its length.
    async fn body(&mut self, head: &str) -> io::Result<usize> {
        if is_chunked(head) {
            let mut total = 0;
            loop {
                let size = chunk_size(&self.line().await?);
                if size == 0 {
                    while !self.line().await?.is_empty() {}
                    return Ok(total);
                }
                self.skip(size).await?;
                self.line().await?;
                total += size;
            }
        }
        let n = content_length(head).unwrap_or(0);
        self.skip(n).await?;
        Ok(n)
    }

    async fn write(&mut self, data: impl AsRef<[u8]>) -> io::Result<()> {
        self.s.write_all(data.as_ref()).await
    }

    /// A whole response with a Content-Length body; `headers` are lines
    /// ending in CRLF.
    async fn respond(&mut self, status: &str, headers: &str, body: &[u8]) -> io::Result<()> {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{headers}\r\n",
            body.len()
        );
        self.write(head).await?;
        self.write(body).await
    }

    /// Read the body of `head` and answer 200 with the request target.
    async fn answer_target(&mut self, head: &str) -> io::Result<()> {
        self.body(head).await?;
        let t = target(head).to_owned();
        if method(head) == "HEAD" {
            let h = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", t.len());
            self.write(h).await
        } else {
            self.respond("200 OK", "", t.as_bytes()).await
        }
    }
}

/// A keep-alive app that answers every request with its target.
async fn echo_target(mut c: Conn) -> io::Result<()> {
    while let Some(head) = c.head().await? {
        c.answer_target(&head).await?;
    }
    Ok(())
}

/// An app that answers a request for `path` with the bytes `answer` and
/// closes, and every other request with its target.
fn answering(path: &'static str, answer: &'static str) -> Upstream {
    upstream(move |mut c| async move {
        while let Some(head) = c.head().await? {
            if target(&head) == path {
                c.write(answer).await?;
                return Ok(());
            }
            c.answer_target(&head).await?;
        }
        Ok(())
    })
}

/// Serve each accepted connection with `handler`, on a thread of its own.
fn upstream<F, Fut>(handler: F) -> Upstream
where
    F: Fn(Conn) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    let addr = serve_loopback(move |s| {
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let conn = Conn {
            s,
            buf: Vec::new(),
            seen: shared.clone(),
        };
        let fut = handler(conn);
        async move {
            let _ = fut.await;
        }
    });
    Upstream { addr, seen }
}

/// Gatehouse in front of `up`; `upstream_extra` continues the `upstream:`
/// mapping (e.g. `", read_timeout: 1s"`). Every path needs the API key.
fn gatehouse(up: &Upstream, upstream_extra: &str) -> Gatehouse {
    Gatehouse::start(&format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}", threads: 2 }}
upstream: {{ url: "http://{addr}"{upstream_extra} }}
api_keys:
  - {{ name: k, hash: "{hash}", permissions: ["*"] }}
"#,
        addr = up.addr,
        hash = api_key_hash(KEY)
    ))
}

// ---------------------------------------------------------------- client

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
    /// Trailer lines of a chunked body (empty when none came).
    trailers: String,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn header(&self, name: &str) -> Option<String> {
        header(&self.head, name)
    }
}

/// One client connection to Gatehouse, read through a buffer.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn new(g: &Gatehouse) -> Client {
        let s = TcpStream::connect(g.addr()).unwrap();
        s.set_read_timeout(Some(STUCK)).unwrap();
        Client { s, buf: Vec::new() }
    }

    fn send(&mut self, data: impl AsRef<[u8]>) {
        self.s.write_all(data.as_ref()).expect("send to gatehouse");
    }

    fn fill(&mut self) -> usize {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = self
            .s
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("no answer from gatehouse: {e}"));
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    fn until(&mut self, delim: &[u8]) -> Vec<u8> {
        loop {
            if let Some(at) = find(&self.buf, delim) {
                let out = self.buf[..at].to_vec();
                self.buf.drain(..at + delim.len());
                return out;
            }
            if self.fill() == 0 {
                panic!(
                    "gatehouse closed the connection mid-message; had {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    fn line(&mut self) -> String {
        String::from_utf8_lossy(&self.until(b"\r\n")).into_owned()
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            if self.fill() == 0 {
                panic!("the body ended after {} of {n} bytes", self.buf.len());
            }
        }
        self.buf.drain(..n).collect()
    }

    /// The next response (a 1xx too) to a request with `method`.
    fn response_to(&mut self, method: &str) -> Response {
        let head = String::from_utf8_lossy(&self.until(b"\r\n\r\n")).into_owned() + "\r\n\r\n";
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a response head: {head:?}"));
        let mut body = Vec::new();
        let mut trailers = String::new();
        if method == "HEAD" || status < 200 || status == 204 || status == 304 {
        } else if is_chunked(&head) {
            loop {
                let size = chunk_size(&self.line());
                if size == 0 {
                    loop {
                        let line = self.line();
                        if line.is_empty() {
                            break;
                        }
                        trailers += &line;
                        trailers += "\r\n";
                    }
                    break;
                }
                body.extend(self.take(size));
                assert_eq!(self.line(), "", "chunk data not followed by CRLF");
            }
        } else if let Some(n) = content_length(&head) {
            body = self.take(n);
        } else {
            while self.fill() > 0 {}
            body = std::mem::take(&mut self.buf);
        }
        Response {
            status,
            head,
            body,
            trailers,
        }
    }

    fn response(&mut self) -> Response {
        self.response_to("GET")
    }
}

/// A field of `/proc/<pid>/status`, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

// ---------------------------------------------------------------- tests

#[test]
fn uploads_of_64_mib_stream_through_without_being_buffered() {
    const MIB: usize = 1 << 20;
    const SIZE: usize = 64 * MIB;
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            let n = c.body(&head).await?;
            c.respond("200 OK", "", n.to_string().as_bytes()).await?;
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let before = proc_status_kib(g.pid(), "VmRSS");
    // Reset the peak (VmHWM) to the current RSS, so start-up does not count.
    let _ = std::fs::write(format!("/proc/{}/clear_refs", g.pid()), "5");
    let chunk = vec![b'u'; MIB];

    let mut c = Client::new(&g);
    c.send(req("POST", "/chunked", "Transfer-Encoding: chunked\r\n"));
    for _ in 0..SIZE / MIB {
        c.send(format!("{:x}\r\n", chunk.len()));
        c.send(&chunk);
        c.send("\r\n");
    }
    c.send("0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.text(), SIZE.to_string(), "the upstream's byte count");

    let mut c = Client::new(&g);
    c.send(req(
        "POST",
        "/sized",
        &format!("Content-Length: {SIZE}\r\n"),
    ));
    for _ in 0..SIZE / MIB {
        c.send(&chunk);
    }
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.text(), SIZE.to_string(), "the upstream's byte count");
    assert_eq!(up.seen.body_bytes.load(Ordering::SeqCst), 2 * SIZE);

    let peak = proc_status_kib(g.pid(), "VmHWM");
    let growth_mib = peak.saturating_sub(before) / 1024;
    assert!(
        growth_mib < 48,
        "gatehouse grew by {growth_mib} MiB while relaying 64 MiB uploads (RSS {before} KiB before, peak {peak} KiB)"
    );
}

/// A client whose chunk sizes, data and line ends arrive in separate reads
/// (a slow link does that): a read of framing alone carries no data, and the
/// relay must not pass it on as an empty chunk, which ends the body.
#[test]
fn a_chunked_upload_arriving_in_pieces_arrives_whole() {
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            let n = c.body(&head).await?;
            c.respond("200 OK", "", n.to_string().as_bytes()).await?;
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    c.s.set_nodelay(true).unwrap();
    c.send(req("POST", "/pieces", "Transfer-Encoding: chunked\r\n"));
    let pause = || std::thread::sleep(Duration::from_millis(30));
    for piece in ["a", "bcd", "efghij"] {
        pause();
        c.send(format!("{:x}\r\n", piece.len()));
        pause();
        c.send(piece);
        pause();
        c.send("\r\n");
    }
    pause();
    c.send("0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.text(), "10", "the upstream's byte count");
}

#[test]
fn an_upstream_answering_before_reading_the_body_is_relayed() {
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            if target(&head) != "/early" {
                c.answer_target(&head).await?;
                continue;
            }
            c.respond("413 Payload Too Large", "Connection: close\r\n", b"too big")
                .await?;
            c.s.shutdown().await?;
            // Lingering close, as servers do: drain what still comes so the
            // kernel does not reset the connection under the answer.
            let drain = async {
                while c.fill().await? > 0 {
                    c.buf.clear();
                }
                Ok::<_, io::Error>(())
            };
            let _ = tokio::time::timeout(Duration::from_secs(3), drain).await;
            return Ok(());
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    let size = 16 << 20;
    c.send(req(
        "POST",
        "/early",
        &format!("Content-Length: {size}\r\n"),
    ));
    let mut writer = c.s.try_clone().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![b'e'; 64 << 10];
        for _ in 0..size / chunk.len() {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let r = c.response();
    assert_eq!(r.status, 413, "{}", r.head);
    assert_eq!(r.text(), "too big");
    let _ = c.s.shutdown(Shutdown::Both);
    feeder.join().unwrap();

    let mut c = Client::new(&g);
    c.send(req("GET", "/after", ""));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.text(), "/after");
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            let expects =
                header(&head, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
            if expects {
                c.write("HTTP/1.1 100 Continue\r\n\r\n").await?;
            }
            let n = c.body(&head).await?;
            c.respond("200 OK", "", n.to_string().as_bytes()).await?;
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    c.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.send(req(
        "POST",
        "/expect",
        "Expect: 100-continue\r\nContent-Length: 11\r\n",
    ));
    let interim = c.response();
    assert_eq!(interim.status, 100, "{}", interim.head);
    c.send("hello world");
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.text(), "11");
    assert_eq!(up.seen.body_bytes.load(Ordering::SeqCst), 11);

    // Without credentials: a 401 and no 100, so the body is never sent.
    let mut c = Client::new(&g);
    c.send(
        "POST /anonymous HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
    );
    let r = c.response();
    assert_eq!(r.status, 401, "{}", r.head);
    assert_eq!(up.seen.count("POST /anonymous "), 0);
}

#[test]
fn an_upstream_slower_than_read_timeout_is_a_504() {
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            if target(&head) == "/slow" {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            c.answer_target(&head).await?;
        }
        Ok(())
    });
    let g = gatehouse(&up, ", read_timeout: 1s");
    let mut c = Client::new(&g);
    c.send(req("GET", "/slow", ""));
    let r = c.response();
    // A timeout is a 504, as nginx answers one; an app that cannot be
    // reached or breaks off is a 502.
    assert_eq!(r.status, 504, "{}", r.head);
    assert!(r.text().contains("upstream_timeout"), "{}", r.text());
    // A fast request still works.
    let mut c = Client::new(&g);
    c.send(req("GET", "/fast", ""));
    assert_eq!(c.response().text(), "/fast");
}

#[test]
fn a_slow_answer_streamed_within_read_timeout_arrives_whole() {
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            c.body(&head).await?;
            c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            // Five pauses, each well within the 1 s read timeout, together
            // longer than it.
            for i in 0..5 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let piece = format!("piece {i}\n");
                c.write(format!("{:x}\r\n{piece}\r\n", piece.len())).await?;
            }
            c.write("0\r\n\r\n").await?;
        }
        Ok(())
    });
    let g = gatehouse(&up, ", read_timeout: 1s");
    let mut c = Client::new(&g);
    c.send(req("GET", "/pieces", ""));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.text(), "piece 0\npiece 1\npiece 2\npiece 3\npiece 4\n");
}

#[test]
fn an_upstream_closing_idle_connections_causes_no_failures() {
    // Like a server with a 100 ms keep-alive timeout.
    let up = upstream(|mut c| async move {
        let mut first = true;
        loop {
            let head = if first {
                c.head().await?
            } else {
                match tokio::time::timeout(Duration::from_millis(100), c.head()).await {
                    Ok(head) => head?,
                    Err(_idle) => return Ok(()),
                }
            };
            let Some(head) = head else { return Ok(()) };
            first = false;
            c.answer_target(&head).await?;
        }
    });
    let g = gatehouse(&up, "");
    let http = client();
    for i in 0..10 {
        std::thread::sleep(Duration::from_millis(300));
        let r = http
            .get(g.url(&format!("/get/{i}")))
            .header("x-api-key", KEY)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(r.text().unwrap(), format!("/get/{i}"));
    }
    std::thread::sleep(Duration::from_millis(300));
    let r = http
        .post(g.url("/post"))
        .header("x-api-key", KEY)
        .body("data")
        .send()
        .unwrap();
    let status = r.status();
    assert_eq!(up.seen.count("POST /post "), 1, "the POST reached the app");
    assert_eq!(status, 200);
    assert!(
        up.seen.connections.load(Ordering::SeqCst) > 1,
        "the upstream never closed a connection: the test tested nothing"
    );
}

#[test]
fn a_request_the_upstream_drops_is_a_502_and_a_post_is_never_retried() {
    // Answers `/warm` (leaving a pooled connection); reads any other request
    // and closes without a word.
    let up = upstream(|mut c| async move {
        let mut served = 0;
        while let Some(head) = c.head().await? {
            if target(&head) != "/warm" {
                let line = head.lines().next().unwrap_or("").to_owned();
                let on = if served > 0 { "a reused" } else { "a new" };
                c.seen
                    .notes
                    .lock()
                    .unwrap()
                    .push(format!("{line} on {on} connection"));
                return Ok(());
            }
            c.answer_target(&head).await?;
            served += 1;
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let http = client();
    let send = |method: reqwest::Method, path: &str| {
        http.request(method, g.url(path))
            .header("x-api-key", KEY)
            .body(if path == "/drop" { "payload" } else { "" })
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(send(reqwest::Method::GET, "/warm"), 200);
    assert_eq!(send(reqwest::Method::GET, "/drop"), 502);
    let gets = up.seen.count("GET /drop ");
    assert!(
        (1..=2).contains(&gets),
        "the upstream saw the GET {gets} times"
    );

    assert_eq!(send(reqwest::Method::GET, "/warm"), 200);
    assert_eq!(send(reqwest::Method::POST, "/drop"), 502);
    assert_eq!(
        up.seen.count("POST /drop "),
        1,
        "the upstream saw the POST more than once"
    );
    // The POST failed on a pooled connection, where a retry was tempting.
    let notes = up.seen.notes.lock().unwrap().clone();
    assert!(
        notes.contains(&"POST /drop HTTP/1.1 on a reused connection".to_owned()),
        "{notes:?}"
    );
}

#[test]
fn a_client_leaving_mid_response_cancels_the_upstream_request() {
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            if target(&head) != "/endless" {
                c.answer_target(&head).await?;
                continue;
            }
            c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let chunk = format!("4000\r\n{}\r\n", "z".repeat(0x4000));
            loop {
                if c.write(&chunk).await.is_err() {
                    c.seen.closed.store(true, Ordering::SeqCst);
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    c.send(req("GET", "/endless", ""));
    while c.buf.len() < 64 * 1024 {
        assert!(c.fill() > 0, "the stream ended");
    }
    assert!(c.buf.starts_with(b"HTTP/1.1 200"));
    drop(c);
    eventually("the upstream seeing its connection closed", || {
        up.seen.closed.load(Ordering::SeqCst)
    });
    let mut c = Client::new(&g);
    c.send(req("GET", "/after", ""));
    assert_eq!(c.response().text(), "/after");
}

#[test]
fn a_close_delimited_upstream_body_arrives_whole() {
    let body: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    let sent = body.clone();
    let up = upstream(move |mut c| {
        let body = sent.clone();
        async move {
            if let Some(head) = c.head().await? {
                let version = if target(&head) == "/http10" {
                    "1.0"
                } else {
                    "1.1"
                };
                c.write(format!(
                    "HTTP/{version} 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
                ))
                .await?;
                c.write(&body).await?;
                c.s.shutdown().await?;
            }
            Ok(())
        }
    });
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    for path in ["/http10", "/http11"] {
        c.send(req("GET", path, ""));
        let r = c.response();
        assert_eq!(r.status, 200, "{path}: {}", r.head);
        assert_eq!(r.body.len(), body.len(), "{path}: {}", r.head);
        assert!(r.body == body, "{path}: the body changed on the way");
        // Today it is re-framed as chunked on a kept-alive connection, which
        // the next request then uses; a close-delimited answer ends it.
        if !is_chunked(&r.head) && content_length(&r.head).is_none() {
            c = Client::new(&g);
        }
    }
}

#[test]
fn hop_by_hop_request_headers_do_not_reach_the_upstream() {
    let up = upstream(echo_target);
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    c.send(req(
        "GET",
        "/hop",
        "Connection: keep-alive, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: 5\r\n\
         Proxy-Connection: keep-alive\r\nTE: trailers\r\n",
    ));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    let saw = up.seen.last("GET /hop ");
    for h in ["x-secret-hop", "keep-alive", "proxy-connection"] {
        assert!(
            header(&saw, h).is_none(),
            "{h} reached the upstream:\n{saw}"
        );
    }
    // TE: trailers is not forwarded either (today's choice; trailers are
    // not relayed, see the trailer test).
    assert_eq!(header(&saw, "te"), None, "{saw}");
}

/// A client's `Connection` header can name headers away from its own hop,
/// never Gatehouse's: what Gatehouse sets reaches the app, and a spoofed
/// copy does not.
#[test]
fn connection_cannot_name_gatehouses_own_headers_away() {
    let up = upstream(echo_target);
    // Nobody trusted: the test client is a stranger like any other.
    let g = Gatehouse::start(&format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}", trusted_proxies: [] }}
upstream: {{ url: "http://{addr}" }}
api_keys:
  - {{ name: k, hash: "{hash}", permissions: ["*"] }}
"#,
        addr = up.addr,
        hash = api_key_hash(KEY)
    ));
    let mut c = Client::new(&g);
    c.send(req(
        "GET",
        "/nominate",
        "Connection: keep-alive, X-Forwarded-For, Remote-User, X-Real-IP, Host\r\n\
         X-Forwarded-For: 6.6.6.6\r\nRemote-User: mallory\r\nX-Real-IP: 6.6.6.6\r\n\
         Remote_User: mallory\r\n",
    ));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    let saw = up.seen.last("GET /nominate ");
    assert_eq!(
        header_values(&saw, "x-forwarded-for"),
        ["127.0.0.1"],
        "{saw}"
    );
    assert_eq!(header_values(&saw, "x-real-ip"), ["127.0.0.1"], "{saw}");
    assert_eq!(header_values(&saw, "remote-user"), ["k"], "{saw}");
    // The same name spelled with `_`, not nominated: still a spoof.
    assert_eq!(header(&saw, "remote_user"), None, "{saw}");
    assert!(header(&saw, "host").is_some(), "{saw}");
}

#[test]
fn other_upgrades_pass_without_hop_by_hop_headers_but_h2c_does_not() {
    let up = upstream(echo_target);
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    c.send(req(
        "GET",
        "/upgrade-foo",
        "Connection: keep-alive, X-Secret-Hop, Upgrade\r\nX-Secret-Hop: 1\r\nKeep-Alive: 5\r\n\
         Proxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: foo\r\n",
    ));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    // The upgrade is asked for on the app's connection (`Connection:
    // Upgrade`); nothing else the client's Connection named comes along.
    let saw = up.seen.last("GET /upgrade-foo ");
    for h in ["x-secret-hop", "keep-alive", "proxy-connection"] {
        assert!(
            header(&saw, h).is_none(),
            "{h} reached the upstream:\n{saw}"
        );
    }
    assert_eq!(header(&saw, "upgrade").as_deref(), Some("foo"), "{saw}");
    assert_eq!(
        header(&saw, "connection").as_deref(),
        Some("Upgrade"),
        "{saw}"
    );
    // An upgrade to another HTTP would carry requests the gate never sees.
    let mut c = Client::new(&g);
    c.send(req(
        "GET",
        "/upgrade-h2c",
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n",
    ));
    assert_eq!(c.response().status, 200);
    let saw = up.seen.last("GET /upgrade-h2c ");
    for h in ["upgrade", "http2-settings", "connection"] {
        assert!(
            header(&saw, h).is_none(),
            "{h} reached the upstream:\n{saw}"
        );
    }
}

#[test]
fn hop_by_hop_response_headers_do_not_reach_the_client() {
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            c.body(&head).await?;
            c.respond(
                "200 OK",
                "Connection: X-Up-Hop\r\nX-Up-Hop: 1\r\nKeep-Alive: timeout=5\r\n",
                b"body",
            )
            .await?;
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    c.send(req("GET", "/x", ""));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.text(), "body");
    assert_eq!(r.header("x-up-hop"), None, "{}", r.head);
    // The upstream's Keep-Alive speaks of its own connection, not Gatehouse's.
    assert_eq!(r.header("keep-alive"), None, "{}", r.head);
}

#[test]
fn a_chunked_answer_with_trailers_keeps_its_body_and_framing() {
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            c.body(&head).await?;
            if target(&head) != "/trailers" {
                c.respond("200 OK", "", target(&head).as_bytes()).await?;
                continue;
            }
            c.write(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n\
                 5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n",
            )
            .await?;
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    c.send(req("GET", "/trailers", "TE: trailers\r\n"));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.text(), "hello world");
    // HTTP/1.1 trailers are dropped (the body ends with an empty trailer
    // section), and so is the `Trailer` header that announced them.
    assert_eq!(r.trailers, "", "{}", r.head);
    assert_eq!(r.header("trailer"), None, "{}", r.head);
    // The framing held: the next answer on the connection reads cleanly.
    c.send(req("GET", "/next", ""));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.text(), "/next");
}

#[test]
fn websocket_messages_flow_both_ways_and_close_cleanly() {
    let up = upstream(|c| async move {
        let seen = c.seen.clone();
        let mut ws = tokio_tungstenite::accept_async(c.s)
            .await
            .map_err(io::Error::other)?;
        while let Some(msg) = ws.next().await {
            match msg.map_err(io::Error::other)? {
                Message::Text(t) if t == "push" => {
                    for i in 0..3 {
                        let m = Message::text(format!("push {i}"));
                        ws.send(m).await.map_err(io::Error::other)?;
                    }
                }
                m @ (Message::Text(_) | Message::Binary(_)) => {
                    ws.send(m).await.map_err(io::Error::other)?
                }
                Message::Close(_) => seen.closed.store(true, Ordering::SeqCst),
                _ => {}
            }
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut ws, resp) = websocket(g.port, Some(KEY))
            .await
            .expect("upgrade through gatehouse");
        assert_eq!(resp.status(), 101);
        let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let mut expected = Vec::new();
        for m in [
            Message::text("one"),
            Message::text("two"),
            Message::binary(big.clone()),
            Message::text("three"),
        ] {
            ws.send(m.clone()).await.unwrap();
            expected.push(m);
        }
        ws.send(Message::text("push")).await.unwrap();
        expected.extend((0..3).map(|i| Message::text(format!("push {i}"))));
        for want in expected {
            let got = tokio::time::timeout(STUCK, ws.next())
                .await
                .expect("a message in time")
                .expect("a message, not the end")
                .unwrap();
            assert!(
                got == want,
                "got {} bytes, not the expected message",
                got.len()
            );
        }
        ws.close(None).await.unwrap();
        let mut closed_back = false;
        loop {
            match tokio::time::timeout(STUCK, ws.next())
                .await
                .expect("the close handshake to finish")
            {
                Some(Ok(Message::Close(_))) => closed_back = true,
                Some(Ok(other)) => panic!("a message after Close: {other:?}"),
                Some(Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)) | None => break,
                Some(Err(e)) => panic!("the close was not clean: {e}"),
            }
        }
        assert!(closed_back, "the upstream's Close never came back");
    });
    assert!(
        up.seen.closed.load(Ordering::SeqCst),
        "the upstream saw no Close"
    );
}

#[test]
fn connect_is_refused_and_never_reaches_the_upstream() {
    let up = upstream(echo_target);
    let g = gatehouse(&up, "");
    let authority = up.addr.to_string();
    let mut c = Client::new(&g);
    c.send(format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nX-API-Key: {KEY}\r\n\r\n"
    ));
    let r = c.response();
    assert_eq!(r.status, 405, "{}", r.head);
    assert_eq!(up.seen.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn head_answers_have_no_body_and_the_connection_goes_on() {
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            match (method(&head), target(&head)) {
                ("HEAD", "/sized") => {
                    c.write("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
                        .await?
                }
                ("HEAD", "/chunked") => {
                    c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                        .await?
                }
                _ => c.answer_target(&head).await?,
            }
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    for path in ["/sized", "/chunked"] {
        c.send(req("HEAD", path, ""));
        let r = c.response_to("HEAD");
        assert_eq!(r.status, 200, "{path}: {}", r.head);
        if path == "/sized" {
            assert_eq!(r.header("content-length").as_deref(), Some("1234"));
        }
        // Any body bytes after the HEAD answer would be read as the next head.
        let next = format!("/after{path}");
        c.send(req("GET", &next, ""));
        let r = c.response();
        assert_eq!(r.status, 200, "{path}: {}", r.head);
        assert_eq!(r.text(), next);
    }
}

#[test]
fn a_hundred_sequential_requests_share_one_client_connection() {
    let up = upstream(echo_target);
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    for i in 0..100 {
        let path = format!("/seq/{i}");
        c.send(req("GET", &path, ""));
        let r = c.response();
        assert_eq!(r.status, 200, "request {i}: {}", r.head);
        assert_eq!(r.text(), path);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let up = upstream(echo_target);
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    let paths: Vec<String> = (0..10).map(|i| format!("/pipe/{i}")).collect();
    let batch: String = paths.iter().map(|p| req("GET", p, "")).collect();
    c.send(batch);
    for path in &paths {
        let r = c.response();
        assert_eq!(r.status, 200, "{path}: {}", r.head);
        assert_eq!(&r.text(), path);
    }
}

#[test]
fn pipelined_requests_of_both_paths_are_answered_in_order() {
    // Plain requests are relayed by Gatehouse's own code, the others
    // (bodies, nominated headers, HTTP/1.0) on pingora-core's sessions: one
    // connection hands over between them with the bytes read ahead.
    let up = upstream(echo_target);
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    let batch = [
        req("GET", "/one", ""),
        req("POST", "/two", "Content-Length: 5\r\n") + "hello",
        req("GET", "/three", ""),
        req(
            "GET",
            "/four",
            "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\n",
        ),
        req("POST", "/five", "Transfer-Encoding: chunked\r\n") + "3\r\nabc\r\n0\r\n\r\n",
        req("HEAD", "/six", ""),
        req("GET", "/seven", ""),
    ];
    c.send(batch.concat());
    for (path, method) in [
        ("/one", "GET"),
        ("/two", "POST"),
        ("/three", "GET"),
        ("/four", "GET"),
        ("/five", "POST"),
        ("/six", "HEAD"),
        ("/seven", "GET"),
    ] {
        let r = c.response_to(method);
        assert_eq!(r.status, 200, "{path}: {}", r.head);
        if method != "HEAD" {
            assert_eq!(r.text(), path);
        }
    }
    let heads = up.seen.heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 7, "{heads:?}");
    assert!(
        heads.iter().all(|h| header(h, "x-hop").is_none()),
        "{heads:?}"
    );
}

#[test]
fn early_hints_reach_the_client_before_the_answer() {
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            c.write("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
                .await?;
            c.answer_target(&head).await?;
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    c.send(req("GET", "/hinted", ""));
    let hints = c.response();
    assert_eq!(hints.status, 103, "{}", hints.head);
    assert_eq!(
        hints.header("link").as_deref(),
        Some("</style.css>; rel=preload")
    );
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.text(), "/hinted");
}

#[test]
fn an_answer_with_conflicting_lengths_is_a_502() {
    // Two lengths: the client and Gatehouse could disagree on where the
    // answer ends, so it is not passed on.
    let up = answering(
        "/two-lengths",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 6\r\n\r\nsmuggl",
    );
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    c.send(req("GET", "/two-lengths", ""));
    let r = c.response();
    assert_eq!(r.status, 502, "{}", r.head);
    let mut c = Client::new(&g);
    c.send(req("GET", "/after", ""));
    assert_eq!(c.response().text(), "/after");
}

#[test]
fn an_app_switching_protocols_unasked_is_a_502_on_both_paths() {
    // A 101 to a request that asked for no upgrade would turn the client's
    // connection into a tunnel: its later requests would reach the app
    // without the gate. It is refused, and the connection ends.
    let up = answering(
        "/switch",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: tunnel\r\nConnection: Upgrade\r\n\r\n",
    );
    let g = gatehouse(&up, "");
    // A plain request (the relay's own path), then one with a body
    // (pingora-core's sessions), each with an anonymous request behind it.
    let plain = req("GET", "/switch", "");
    let with_body = format!("{}hi", req("POST", "/switch", "Content-Length: 2\r\n"));
    for (path, first) in [("own path", plain), ("session path", with_body)] {
        let mut c = Client::new(&g);
        c.send(format!("{first}GET /behind HTTP/1.1\r\nHost: t\r\n\r\n"));
        let r = c.response();
        assert_eq!(r.status, 502, "{path}: {}", r.head);
        assert_ne!(header(&r.head, "upgrade").as_deref(), Some("tunnel"));
    }
    assert!(
        !up.seen
            .heads
            .lock()
            .unwrap()
            .iter()
            .any(|h| target(h) == "/behind"),
        "a request behind the 101 reached the app"
    );
}

#[test]
fn a_chunked_answer_arriving_byte_by_byte_arrives_whole() {
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            if target(&head) != "/trickle" {
                c.answer_target(&head).await?;
                continue;
            }
            c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            for b in b"5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\n" {
                c.write([*b]).await?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    c.send(req("GET", "/trickle", ""));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.text(), "hello!");
    assert_eq!(r.trailers, "");
    // The end was found where it is: the connection goes on.
    c.send(req("GET", "/next", ""));
    assert_eq!(c.response().text(), "/next");
}

#[test]
fn a_client_leaving_before_the_answer_cancels_the_upstream_request() {
    let up = upstream(|mut c| async move {
        while let Some(head) = c.head().await? {
            if target(&head) != "/slow" {
                c.answer_target(&head).await?;
                continue;
            }
            // Never answers; sees Gatehouse close the connection.
            let mut rest = [0u8; 1];
            let n = c.s.read(&mut rest).await.unwrap_or(0);
            if n == 0 {
                c.seen.closed.store(true, Ordering::SeqCst);
            }
            return Ok(());
        }
        Ok(())
    });
    let g = gatehouse(&up, "");
    let mut c = Client::new(&g);
    c.send(req("GET", "/slow", ""));
    eventually("the upstream receiving the request", || {
        up.seen.heads.lock().unwrap().len() == 1
    });
    drop(c);
    eventually("the upstream seeing its connection closed", || {
        up.seen.closed.load(Ordering::SeqCst)
    });
}

#[test]
fn every_pipelined_request_is_judged_on_both_paths() {
    // Requests read ahead behind an admitted one (on the relay's own path,
    // or handed to pingora-core's sessions with the bytes already read) are
    // judged on their own: without a credential they never reach the app,
    // and neither does a request hidden in a refused request's body.
    let up = upstream(echo_target);
    let g = gatehouse(&up, "");
    let anonymous = |method: &str, path: &str, extra: &str| {
        format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n")
    };
    let expect = |c: &mut Client, answers: &[(&str, u16)]| {
        for (path, status) in answers {
            let r = c.response();
            assert_eq!(r.status, *status, "{path}: {}", r.head);
            if *status == 200 {
                assert_eq!(&r.text(), path);
            }
        }
    };
    let mut c = Client::new(&g);
    c.send(
        [
            req("POST", "/body-first", "Content-Length: 2\r\n") + "ok",
            anonymous("GET", "/plain-secret", ""),
            anonymous("GET", "/empty-secret", "Content-Length: 0\r\n"),
            req("GET", "/plain-after", ""),
        ]
        .concat(),
    );
    expect(
        &mut c,
        &[
            ("/body-first", 200),
            ("/plain-secret", 401),
            ("/empty-secret", 401),
            ("/plain-after", 200),
        ],
    );
    let hidden = req("GET", "/smuggled", "");
    let mut c = Client::new(&g);
    c.send(
        [
            req("GET", "/plain-first", ""),
            anonymous(
                "POST",
                "/body-secret",
                &format!("Content-Length: {}\r\n", hidden.len()),
            ) + &hidden,
        ]
        .concat(),
    );
    expect(&mut c, &[("/plain-first", 200), ("/body-secret", 401)]);
    let targets: Vec<String> = up
        .seen
        .heads
        .lock()
        .unwrap()
        .iter()
        .map(|h| target(h).to_owned())
        .collect();
    assert_eq!(targets, ["/body-first", "/plain-after", "/plain-first"]);
}
