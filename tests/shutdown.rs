//! SIGTERM, as a Kubernetes rolling update sends it: the listeners close at
//! once (new connections are refused, idle keep-alive connections are
//! closed), the log says how many requests it drains, requests in flight get
//! `server.grace_period` to finish, and the process exits with status 0 as
//! soon as they have (or, past the grace period, cuts what is left).
//!
//! The upstream holds each answer until the test releases it, so "in flight"
//! is a fact the test arranges, not a race against a sleep.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One request that reached the upstream; sending on `release` (or dropping
/// it) lets the upstream answer (or hang up).
struct Held {
    path: String,
    release: mpsc::Sender<()>,
}

/// The body the upstream answers with: large enough to take several writes.
fn body() -> String {
    (0..20_000).map(|i| format!("line {i}\n")).collect()
}

/// An HTTP/1.1 upstream that reports every request on the returned channel
/// and answers 200 with [`body`] only when the test releases it.
fn held_upstream() -> (SocketAddr, mpsc::Receiver<Held>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (arrivals, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let arrivals = arrivals.clone();
            std::thread::spawn(move || hold_then_answer(stream, arrivals));
        }
    });
    (addr, rx)
}

fn hold_then_answer(mut stream: TcpStream, arrivals: mpsc::Sender<Held>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
    let (release, released) = mpsc::channel();
    if arrivals.send(Held { path, release }).is_err() || released.recv().is_err() {
        return;
    }
    let body = body();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

fn gatehouse(upstream: SocketAddr, grace: &str) -> Gatehouse {
    Gatehouse::start(&format!(
        r#"
server:
  listen: "127.0.0.1:{{port}}"
  metrics_listen: "127.0.0.1:{{metrics_port}}"
  threads: 2
  grace_period: "{grace}"
upstream: {{ url: "http://{upstream}" }}
rules:
  - {{ path: /**, policy: public }}
"#
    ))
}

/// Send `GET path` on a new keep-alive connection from another thread; the
/// thread returns everything the connection delivered until it was closed.
fn request_in_thread(
    addr: SocketAddr,
    path: &str,
) -> std::thread::JoinHandle<std::io::Result<String>> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: app.test\r\n\r\n");
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.write_all(request.as_bytes())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    })
}

/// The next request to reach the upstream (30 s: liveness bound only).
fn arrival(arrivals: &mpsc::Receiver<Held>) -> Held {
    arrivals
        .recv_timeout(Duration::from_secs(30))
        .expect("the request never reached the upstream")
}

fn refused(addr: SocketAddr) -> bool {
    matches!(TcpStream::connect(addr), Err(e) if e.kind() == ErrorKind::ConnectionRefused)
}

#[test]
fn sigterm_refuses_new_connections_lets_in_flight_requests_finish_and_exits_0() {
    let (upstream, arrivals) = held_upstream();
    // A grace period far longer than the test: exiting at all shows the
    // process did not wait it out once nothing was in flight.
    let g = gatehouse(upstream, "10m");
    let addr = g.addr();

    // A keep-alive connection that has served a request and now sits idle.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /_auth/healthz HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut idle).starts_with("HTTP/1.1 200"));

    let in_flight = request_in_thread(addr, "/slow");
    let held = arrival(&arrivals);
    assert_eq!(held.path, "/slow");

    g.signal(libc::SIGTERM);

    // The listeners close: connecting is refused (not accepted and left
    // unanswered), on every attempt from then on.
    eventually("new connections to be refused", || refused(addr));
    for _ in 0..20 {
        assert!(refused(addr), "a new connection was accepted after SIGTERM");
    }
    // The idle keep-alive connection is closed without another answer.
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    match idle.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest)),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
    // The metrics listener (a background task) still answers while draining.
    assert!(
        g.metrics().contains("gatehouse_"),
        "metrics answer while draining"
    );
    // Meanwhile the request in flight is still waiting, and so is the process.
    assert!(!in_flight.is_finished());
    assert_eq!(g.exit_status(), None, "exited with a request in flight");

    held.release.send(()).unwrap();
    let answer = in_flight.join().unwrap().expect("the in-flight request");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.200}");
    let (_head, received) = answer.split_once("\r\n\r\n").unwrap();
    assert_eq!(received, body(), "the whole body arrives");
    // And then the connection was closed (read_to_end returned), although
    // the answer, begun before the signal, still says `keep-alive`.

    // Done as soon as the request is: not ten minutes later.
    let status = g.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn sigterm_logs_how_many_requests_it_drains_and_exits_when_they_are_done() {
    let (upstream, arrivals) = held_upstream();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatehouse.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  listen: \"127.0.0.1:{port}\"\n  grace_period: 10m\n\
             upstream: {{ url: \"http://{upstream}\" }}\n\
             store: {{ url: \"sqlite://{}/g.db\" }}\n\
             rules:\n  - {{ path: /**, policy: public }}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "-c"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("GATEHOUSE_LOG_FORMAT", "json")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    eventually("gatehouse answers", || TcpStream::connect(addr).is_ok());

    let first = request_in_thread(addr, "/one");
    let second = request_in_thread(addr, "/two");
    let held = [arrival(&arrivals), arrival(&arrivals)];
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    eventually("new connections to be refused", || refused(addr));
    for h in held {
        h.release.send(()).unwrap();
    }
    for r in [first, second] {
        assert!(r.join().unwrap().unwrap().starts_with("HTTP/1.1 200"));
    }
    // Exits once they are done (the 60 s bound is liveness only; the grace
    // period is ten minutes).
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("draining 2 connection(s)"),
        "no drain line in:\n{log}"
    );
    assert!(log.contains("drained; exiting"), "{log}");
}

#[test]
fn a_request_that_outlives_the_grace_period_is_cut_and_the_process_still_exits_0() {
    let (upstream, arrivals) = held_upstream();
    let g = gatehouse(upstream, "1s");
    let in_flight = request_in_thread(g.addr(), "/forever");
    let held = arrival(&arrivals);

    g.signal(libc::SIGTERM);
    let status = g.wait_exit(Duration::from_secs(1 + 30));
    assert_eq!(status.code(), Some(0), "{status:?}");

    // The client got no answer at all: its connection was closed (or reset)
    // when the grace period ended.
    match in_flight.join().unwrap() {
        Ok(answer) => assert_eq!(answer, "", "no answer, not a partial one"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
    drop(held.release);
}

#[test]
fn a_sub_second_grace_period_is_rounded_up_not_down_to_nothing() {
    let (upstream, arrivals) = held_upstream();
    let g = gatehouse(upstream, "500ms");
    let in_flight = request_in_thread(g.addr(), "/short");
    let held = arrival(&arrivals);

    g.signal(libc::SIGTERM);
    eventually("new connections to be refused", || refused(g.addr()));
    // Rounded down, the grace period would be 0 s and this request cut now.
    held.release.send(()).unwrap();
    let answer = in_flight.join().unwrap().expect("the in-flight request");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.200}");
    assert_eq!(answer.split_once("\r\n\r\n").unwrap().1, body());

    let status = g.wait_exit(Duration::from_secs(1 + 30));
    assert_eq!(status.code(), Some(0), "{status:?}");
}
