//! One worker's idle upstream connections: a stack, newest on top, that no
//! other thread touches. A connection is checked with one non-blocking read
//! when taken (the app may have closed it while it sat idle); connections
//! idle longer than [`IDLE_TIMEOUT`] and those beyond [`MAX_IDLE`] are
//! closed, oldest first.

use pingora::connectors::TransportConnector;
use pingora::protocols::Stream;
use pingora::upstreams::peer::HttpPeer;
use pingora::Result;
use std::future::Future;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// Idle connections kept per worker.
pub const MAX_IDLE: usize = 128;
/// How long an idle connection is kept. Below the 60 s most servers (and
/// nginx's 75 s) keep theirs, so Gatehouse is usually the one to close.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(55);

/// One worker's upstream connections.
pub struct UpstreamPool {
    connector: TransportConnector,
    /// Idle connections and when each was put back; the last is the newest.
    /// The lock is only ever taken by the worker that owns the pool.
    idle: Mutex<Vec<(Stream, Instant)>>,
}

/// Whether a connection that sat idle is still usable: no end of stream,
/// no error and no unasked-for bytes waiting on it.
fn still_open(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    let probe = tokio::task::unconstrained(stream.read(&mut byte));
    let mut probe = std::pin::pin!(probe);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(probe.as_mut().poll(&mut cx), Poll::Pending)
}

impl UpstreamPool {
    pub fn new() -> Self {
        UpstreamPool {
            connector: TransportConnector::new(None),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle connection that is still open, newest first.
    pub fn take_idle(&self) -> Option<Stream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((mut stream, since)) = idle.pop() {
            if since.elapsed() < IDLE_TIMEOUT && still_open(&mut stream) {
                return Some(stream);
            }
        }
        None
    }

    /// A new connection, within the peer's connect timeout.
    pub async fn connect(&self, peer: &HttpPeer) -> Result<Stream> {
        self.connector.new_stream(peer).await
    }

    /// Keep `stream` for the next request; close the oldest beyond the limits.
    pub fn put_back(&self, stream: Stream) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let stale = idle
            .iter()
            .take_while(|(_, since)| now.duration_since(*since) >= IDLE_TIMEOUT)
            .count();
        let over = (idle.len() + 1).saturating_sub(MAX_IDLE);
        idle.drain(..stale.max(over));
        idle.push((stream, now));
    }
}

impl Default for UpstreamPool {
    fn default() -> Self {
        Self::new()
    }
}
