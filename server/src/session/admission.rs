//! Admission control: how many instances this host runs at once, and how
//! many WebSockets one session holds. Requests beyond either are refused
//! before any work starts, never half-way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Instances running (or being created) on this host, against a limit.
pub struct Capacity {
    limit: usize,
    used: AtomicUsize,
}

/// One instance's share of the capacity while it is being created. Given
/// back on drop unless [`InstanceSlot::keep`] hands it to the instance.
#[must_use]
pub struct InstanceSlot<'a> {
    capacity: &'a Capacity,
    kept: bool,
}

impl Capacity {
    pub fn new(limit: u32) -> Self {
        Capacity {
            limit: limit as usize,
            used: AtomicUsize::new(0),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    pub fn is_full(&self) -> bool {
        self.used() >= self.limit
    }

    /// Take one instance's share, or `None` when the host is full.
    pub fn try_take(&self) -> Option<InstanceSlot<'_>> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.limit).then_some(used + 1)
            })
            .ok()
            .map(|_| InstanceSlot {
                capacity: self,
                kept: false,
            })
    }

    /// Count instances taken back from an earlier run (they run already,
    /// so they count even past the limit).
    pub fn add_existing(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    /// An instance that held a kept slot is gone.
    pub fn release(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }
}

impl InstanceSlot<'_> {
    /// The instance exists now; its share is given back by
    /// [`Capacity::release`] when it is removed.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for InstanceSlot<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.capacity.release(1);
        }
    }
}

/// Open WebSockets of one session, against a limit.
#[derive(Default)]
pub struct Connections {
    open: Arc<AtomicUsize>,
}

/// One open WebSocket; counted until dropped.
pub struct ConnectionPermit {
    open: Arc<AtomicUsize>,
}

impl Connections {
    pub fn try_open(&self, limit: usize) -> Option<ConnectionPermit> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < limit).then_some(open + 1)
            })
            .ok()
            .map(|_| ConnectionPermit {
                open: self.open.clone(),
            })
    }
}

impl Connections {
    /// How many are open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// "about 3 minutes": a wait rounded up to whole minutes.
pub fn about_minutes(seconds: u64) -> String {
    match seconds.div_ceil(60).max(1) {
        1 => "about a minute".to_string(),
        n => format!("about {n} minutes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_given_back_unless_kept() {
        let capacity = Capacity::new(2);
        let a = capacity.try_take().unwrap();
        let b = capacity.try_take().unwrap();
        assert!(capacity.try_take().is_none());
        drop(a);
        assert_eq!(capacity.used(), 1);
        b.keep();
        capacity.try_take().unwrap().keep();
        assert!(capacity.is_full());
        capacity.release(1);
        assert_eq!(capacity.used(), 1);
        capacity.add_existing(5);
        assert_eq!(capacity.used(), 6);
    }

    #[test]
    fn connections_are_counted_until_dropped() {
        let connections = Connections::default();
        let a = connections.try_open(2).unwrap();
        let _b = connections.try_open(2).unwrap();
        assert!(connections.try_open(2).is_none());
        assert_eq!(connections.open(), 2);
        drop(a);
        assert_eq!(connections.open(), 1);
        assert!(connections.try_open(2).is_some());
    }

    #[test]
    fn waits_read_as_minutes() {
        assert_eq!(about_minutes(0), "about a minute");
        assert_eq!(about_minutes(61), "about 2 minutes");
    }
}
