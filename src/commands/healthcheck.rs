//! `gatehouse healthcheck [--url URL]`: one plain HTTP/1.1 GET over a
//! `std::net::TcpStream`, for container health checks where there is no shell
//! and no curl (the distroless image). Exit 0 on a 2xx answer, 1 otherwise,
//! with a one-line reason on stderr. Plain `http://` only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

/// What `--url` defaults to: the health endpoint on the container's listener.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080/_auth/healthz";

/// Connect, write and read each give up after this long.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The longest status line read before giving up on the answer.
const MAX_STATUS_LINE: u64 = 1024;

pub fn run(url: &str) -> ExitCode {
    match check(url) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("gatehouse healthcheck: {reason}");
            ExitCode::from(1)
        }
    }
}

/// `Ok` when `url` answers a 2xx status; otherwise why not, in words.
fn check(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("--url `{url}`: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!("--url `{url}`: only http:// URLs are supported"));
    }
    let addrs = parsed
        .socket_addrs(|| Some(80))
        .map_err(|e| format!("--url `{url}`: cannot resolve the host: {e}"))?;
    let mut last_error = format!("--url `{url}`: the host resolves to no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("cannot connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_error)?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("cannot set socket timeouts: {e}"))?;

    let host = &parsed[url::Position::BeforeHost..url::Position::AfterPort];
    let target = &parsed[url::Position::BeforePath..url::Position::AfterQuery];
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: gatehouse-healthcheck\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request to {url}: {e}"))?;

    let mut line = String::new();
    BufReader::new((&stream).take(MAX_STATUS_LINE))
        .read_line(&mut line)
        .map_err(|e| format!("no answer from {url}: {e}"))?;
    let line = line.trim_end();
    if line.is_empty() {
        return Err(format!("{url} closed the connection without an answer"));
    }
    let status = status_code(line)
        .ok_or_else(|| format!("{url} answered something that is not HTTP: `{line}`"))?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("{url} answered `{line}`"))
    }
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK` → 200).
fn status_code(line: &str) -> Option<u16> {
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::status_code;

    #[test]
    fn status_lines_are_read_strictly() {
        assert_eq!(status_code("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status_code("HTTP/1.0 503 Service Unavailable"), Some(503));
        assert_eq!(status_code("HTTP/1.1 204"), Some(204));
        assert_eq!(status_code("SSH-2.0-OpenSSH_9.2"), None);
        assert_eq!(status_code("HTTP/1.1 2000 OK"), None);
        assert_eq!(status_code("HTTP/1.1 OK"), None);
    }
}
