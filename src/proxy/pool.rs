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

/// Idle things and when each was put back; the last is the newest. The
/// lock is only ever taken by the worker that owns it.
struct IdleStack<S> {
    idle: Mutex<Vec<(S, Instant)>>,
    max: usize,
    timeout: Duration,
}

impl<S> IdleStack<S> {
    fn new(max: usize, timeout: Duration) -> Self {
        IdleStack {
            idle: Mutex::new(Vec::new()),
            max,
            timeout,
        }
    }

    /// The newest one not too old that `usable` accepts; the others taken
    /// on the way are dropped (closed).
    fn take(&self, now: Instant, mut usable: impl FnMut(&mut S) -> bool) -> Option<S> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((mut item, since)) = idle.pop() {
            if now.duration_since(since) < self.timeout && usable(&mut item) {
                return Some(item);
            }
        }
        None
    }

    /// Keep `item`; drop the oldest beyond the limits.
    fn put(&self, item: S, now: Instant) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let stale = idle
            .iter()
            .take_while(|(_, since)| now.duration_since(*since) >= self.timeout)
            .count();
        let over = (idle.len() + 1).saturating_sub(self.max);
        idle.drain(..stale.max(over));
        idle.push((item, now));
    }
}

/// Whether a connection that sat idle is still usable: no end of stream,
/// no error and no unasked-for bytes waiting on it. Tokio answers from the
/// readiness it already knows, so this rarely costs a system call.
fn still_open(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    let probe = tokio::task::unconstrained(stream.read(&mut byte));
    let mut probe = std::pin::pin!(probe);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(probe.as_mut().poll(&mut cx), Poll::Pending)
}

/// One worker's upstream connections.
pub struct UpstreamPool {
    connector: TransportConnector,
    idle: IdleStack<Stream>,
}

impl UpstreamPool {
    pub fn new() -> Self {
        UpstreamPool {
            connector: TransportConnector::new(None),
            idle: IdleStack::new(MAX_IDLE, IDLE_TIMEOUT),
        }
    }

    /// An idle connection that is still open, newest first.
    pub fn take_idle(&self) -> Option<Stream> {
        self.idle.take(Instant::now(), still_open)
    }

    /// A new connection, within the peer's connect timeout.
    pub async fn connect(&self, peer: &HttpPeer) -> Result<Stream> {
        self.connector.new_stream(peer).await
    }

    /// Keep `stream` for the next request.
    pub fn put_back(&self, stream: Stream) {
        self.idle.put(stream, Instant::now());
    }
}

impl Default for UpstreamPool {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::IdleStack;
    use std::time::{Duration, Instant};

    #[test]
    fn the_newest_usable_one_is_taken_and_dead_ones_are_dropped() {
        let stack = IdleStack::new(8, Duration::from_secs(10));
        let t = Instant::now();
        for n in 1..=3 {
            stack.put(n, t);
        }
        assert_eq!(stack.take(t, |_| true), Some(3));
        // 2 is dead (the app closed it): dropped, and 1 comes next.
        assert_eq!(stack.take(t, |n| *n != 2), Some(1));
        assert_eq!(stack.take(t, |_| true), None);
    }

    #[test]
    fn connections_idle_too_long_are_closed() {
        let stack = IdleStack::new(8, Duration::from_secs(10));
        let t = Instant::now();
        stack.put(1, t);
        stack.put(2, t + Duration::from_secs(5));
        // At t+12 s, 1 is past the timeout: putting 3 back closes it.
        stack.put(3, t + Duration::from_secs(12));
        assert_eq!(stack.idle.lock().unwrap().len(), 2);
        // At t+16 s, 2 is too old to be taken; 3 is not.
        let later = t + Duration::from_secs(16);
        assert_eq!(stack.take(later, |_| true), Some(3));
        assert_eq!(stack.take(later, |_| true), None);
    }

    #[test]
    fn beyond_the_limit_the_oldest_are_closed() {
        let stack = IdleStack::new(3, Duration::from_secs(10));
        let t = Instant::now();
        for n in 1..=5 {
            stack.put(n, t);
        }
        let kept: Vec<i32> = stack.idle.lock().unwrap().iter().map(|(n, _)| *n).collect();
        assert_eq!(kept, [3, 4, 5]);
    }
}
