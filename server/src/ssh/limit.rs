//! Per-address limits of the SSH server: failed logins in a window (after
//! which the address is turned away until the window passes) and open
//! connections at once. Guessing user names and keys stays slow: each
//! refusal already takes a second, and an address gets only so many.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failed logins an address may have per [`WINDOW`].
pub const FAILURES: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Connections an address may hold open at once.
pub const CONNECTIONS: u32 = 32;

#[derive(Default)]
pub struct Limiter {
    addresses: Mutex<HashMap<IpAddr, Address>>,
}

#[derive(Default)]
struct Address {
    /// When the current window began, and the failures in it.
    window: Option<(Instant, u32)>,
    open: u32,
}

impl Address {
    fn failures(&self, now: Instant) -> u32 {
        match self.window {
            Some((start, n)) if now.duration_since(start) < WINDOW => n,
            _ => 0,
        }
    }

    fn unused(&self, now: Instant) -> bool {
        self.open == 0 && self.failures(now) == 0
    }
}

/// One open connection of an address; counted until dropped.
pub struct Permit {
    limiter: Arc<Limiter>,
    ip: IpAddr,
}

impl Limiter {
    /// Whether `ip` may still try to log in.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let addresses = self.addresses.lock().unwrap();
        addresses
            .get(&ip)
            .is_none_or(|a| a.failures(Instant::now()) < FAILURES)
    }

    /// A login from `ip` was refused.
    pub fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut addresses = self.addresses.lock().unwrap();
        let address = addresses.entry(ip).or_default();
        let n = address.failures(now);
        let start = match address.window {
            Some((start, _)) if n > 0 => start,
            _ => now,
        };
        address.window = Some((start, n + 1));
    }

    /// Admit a new connection from `ip`, unless it failed too often or
    /// holds too many already.
    pub fn connect(self: &Arc<Self>, ip: IpAddr) -> Option<Permit> {
        let now = Instant::now();
        let mut addresses = self.addresses.lock().unwrap();
        // Forget addresses with nothing left to remember, now and then.
        if addresses.len() > 4096 {
            addresses.retain(|_, a| !a.unused(now));
        }
        let address = addresses.entry(ip).or_default();
        if address.failures(now) >= FAILURES || address.open >= CONNECTIONS {
            return None;
        }
        address.open += 1;
        Some(Permit {
            limiter: self.clone(),
            ip,
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut addresses = self.limiter.addresses.lock().unwrap();
        if let Some(address) = addresses.get_mut(&self.ip) {
            address.open = address.open.saturating_sub(1);
            if address.unused(Instant::now()) {
                addresses.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_turned_away_after_its_failures_and_others_are_not() {
        let limiter = Arc::new(Limiter::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..FAILURES {
            assert!(limiter.allows(a));
            limiter.failed(a);
        }
        assert!(!limiter.allows(a));
        assert!(limiter.connect(a).is_none());
        assert!(limiter.allows(b));
        assert!(limiter.connect(b).is_some());
    }

    #[test]
    fn open_connections_are_counted_until_dropped() {
        let limiter = Arc::new(Limiter::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let permits: Vec<Permit> = (0..CONNECTIONS)
            .map(|_| limiter.connect(a).unwrap())
            .collect();
        assert!(limiter.connect(a).is_none());
        drop(permits);
        let permit = limiter.connect(a);
        assert!(permit.is_some());
        drop(permit);
        // Nothing left to remember of an address with no failures.
        assert!(limiter.addresses.lock().unwrap().is_empty());
    }
}
