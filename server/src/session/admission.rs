//! Admission control: how many instances this host runs at once, and how
//! many WebSockets one session holds. Requests beyond either are refused
//! before any work starts, never half-way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Instances running (or being created) on this host, against a limit;
/// and shares set aside for later (a class's seats), which only those they
/// are reserved for may take.
pub struct Capacity {
    limit: usize,
    /// Used and reserved in one word, so that taking and reserving are
    /// exact against each other.
    state: std::sync::Mutex<Shares>,
}

#[derive(Clone, Copy, Default)]
struct Shares {
    used: usize,
    reserved: usize,
}

/// One instance's share of the capacity while it is being created. Given
/// back on drop unless [`InstanceSlot::keep`] hands it to the instance;
/// one taken from a reservation goes back to the reservation.
#[must_use]
pub struct InstanceSlot<'a> {
    capacity: &'a Capacity,
    kept: bool,
    reserved: bool,
}

impl Capacity {
    pub fn new(limit: u32) -> Self {
        Capacity {
            limit: limit as usize,
            state: std::sync::Mutex::new(Shares::default()),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.state.lock().unwrap().used
    }

    #[cfg(test)]
    pub fn reserved(&self) -> usize {
        self.state.lock().unwrap().reserved
    }

    /// What anyone may still take: neither used nor reserved.
    pub fn free(&self) -> usize {
        let s = self.state.lock().unwrap();
        self.limit.saturating_sub(s.used + s.reserved)
    }

    pub fn is_full(&self) -> bool {
        self.free() == 0
    }

    /// Take one instance's share, or `None` when the host is full.
    pub fn try_take(&self) -> Option<InstanceSlot<'_>> {
        let mut s = self.state.lock().unwrap();
        (s.used + s.reserved < self.limit).then(|| {
            s.used += 1;
            InstanceSlot {
                capacity: self,
                kept: false,
                reserved: false,
            }
        })
    }

    /// Take one share of a reservation (made with [`Capacity::reserve`]),
    /// or `None` when none is left.
    pub fn take_reserved(&self) -> Option<InstanceSlot<'_>> {
        let mut s = self.state.lock().unwrap();
        (s.reserved > 0).then(|| {
            s.reserved -= 1;
            s.used += 1;
            InstanceSlot {
                capacity: self,
                kept: false,
                reserved: true,
            }
        })
    }

    /// Set `n` shares aside, or refuse (false) when fewer are free.
    pub fn reserve(&self, n: usize) -> bool {
        let mut s = self.state.lock().unwrap();
        let ok = s.used + s.reserved + n <= self.limit;
        if ok {
            s.reserved += n;
        }
        ok
    }

    /// Set aside shares again after a restart (they were reserved then, so
    /// they count even past the limit).
    pub fn add_reserved(&self, n: usize) {
        self.state.lock().unwrap().reserved += n;
    }

    /// Give `n` reserved shares back to everyone.
    pub fn unreserve(&self, n: usize) {
        let mut s = self.state.lock().unwrap();
        s.reserved = s.reserved.saturating_sub(n);
    }

    /// Count instances taken back from an earlier run (they run already,
    /// so they count even past the limit).
    pub fn add_existing(&self, n: usize) {
        self.state.lock().unwrap().used += n;
    }

    /// An instance that held a kept slot is gone.
    pub fn release(&self, n: usize) {
        let mut s = self.state.lock().unwrap();
        s.used = s.used.saturating_sub(n);
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
            if self.reserved {
                self.capacity.add_reserved(1);
            }
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
    fn reserved_shares_are_only_for_their_owner() {
        let capacity = Capacity::new(4);
        capacity.try_take().unwrap().keep();
        assert!(capacity.reserve(2));
        assert!(!capacity.reserve(2), "only one is free");
        assert_eq!(capacity.free(), 1);
        capacity.try_take().unwrap().keep();
        assert!(capacity.try_take().is_none(), "the rest is reserved");
        // A reserved share not kept goes back to the reservation.
        drop(capacity.take_reserved().unwrap());
        assert_eq!((capacity.used(), capacity.reserved()), (2, 2));
        capacity.take_reserved().unwrap().keep();
        assert_eq!((capacity.used(), capacity.reserved()), (3, 1));
        capacity.unreserve(1);
        assert!(capacity.take_reserved().is_none());
        assert_eq!(capacity.free(), 1);
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
