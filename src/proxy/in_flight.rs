//! How many requests are being answered right now, across every worker, so
//! a graceful stop can say what it waits for and end as soon as they are
//! done (see `server`).
//!
//! A request counts from the moment its header has been read (its context
//! is made) until its context is dropped, whichever way it ends: proxied,
//! answered by Gatehouse, upgraded to a WebSocket and closed, or cut.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The shared count; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// One more request, until the guard is dropped.
    pub fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.0.clone())
    }

    /// Requests being answered now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Held by a request's context; dropping it ends the request's count.
#[derive(Debug)]
pub struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_while_held() {
        let n = InFlight::default();
        let a = n.enter();
        let b = n.clone().enter();
        assert_eq!(n.count(), 2);
        drop(a);
        assert_eq!(n.count(), 1);
        drop(b);
        assert_eq!(n.count(), 0);
    }
}
