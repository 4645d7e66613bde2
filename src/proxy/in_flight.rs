//! How many requests are being answered right now, across every worker, so
//! a graceful stop can say what it waits for and end as soon as they are
//! done (see `server`).
//!
//! A request counts from the moment its header has been read (its context
//! is made) until its context is dropped, whichever way it ends: proxied,
//! answered by Gatehouse, upgraded to a WebSocket and closed, or cut. Each
//! worker counts on a cache line of its own, so counting costs no traffic
//! between cores on the request path; only the stop adds them up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Every worker's count; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<Mutex<Vec<Arc<WorkerCount>>>>);

/// One worker's count, alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct WorkerCount(AtomicUsize);

impl InFlight {
    /// A count for one more worker.
    pub fn worker(&self) -> WorkerInFlight {
        let count = Arc::new(WorkerCount::default());
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(count.clone());
        WorkerInFlight(count)
    }

    /// Requests being answered now, by every worker.
    pub fn count(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// The count of the worker that holds it.
#[derive(Debug)]
pub struct WorkerInFlight(Arc<WorkerCount>);

impl WorkerInFlight {
    /// One more request, until the guard is dropped.
    pub fn enter(&self) -> InFlightGuard {
        self.0 .0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.0.clone())
    }
}

/// Held by a request's context; dropping it ends the request's count.
#[derive(Debug)]
pub struct InFlightGuard(Arc<WorkerCount>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_while_held_across_workers() {
        let n = InFlight::default();
        let (one, two) = (n.worker(), n.clone().worker());
        let a = one.enter();
        let b = two.enter();
        let c = two.enter();
        assert_eq!(n.count(), 3);
        drop(a);
        assert_eq!(n.count(), 2);
        drop((b, c));
        assert_eq!(n.count(), 0);
    }
}
