//! Which node holds a session, as the gateway last read it. Without it
//! every request of a session (each one through a port link too) would ask
//! PostgreSQL first. Only live owners are kept, for a second: well within
//! a node's lease, so a node that goes away is seen as gone at most that
//! much later. A node that does not answer, or a session forgotten, drops
//! its entry at once, so the next request reads again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::super::db::Owner;

/// How long an owner read from the database is trusted.
const FRESH: Duration = Duration::from_secs(1);
/// Entries beyond which the stale ones are dropped.
const PRUNE_ABOVE: usize = 4096;

/// By session id (`[0]`) and by viewer id (`[1]`): the owner and when it
/// was read.
#[derive(Default)]
pub struct Owners {
    entries: Mutex<[HashMap<String, (Instant, Owner)>; 2]>,
}

impl Owners {
    /// The owner of `id` read less than [`FRESH`] ago, if any.
    pub fn get(&self, id: &str, by_viewer: bool) -> Option<Owner> {
        let entries = self.entries.lock().unwrap();
        let (read, owner) = entries[usize::from(by_viewer)].get(id)?;
        (read.elapsed() < FRESH).then(|| owner.clone())
    }

    /// Keep `owner` of `id`, when it is live (a gone host is read again
    /// each time, to see it come back).
    pub fn put(&self, id: &str, by_viewer: bool, owner: &Owner) {
        if !owner.live {
            return;
        }
        let mut entries = self.entries.lock().unwrap();
        let entries = &mut entries[usize::from(by_viewer)];
        if entries.len() >= PRUNE_ABOVE {
            entries.retain(|_, (read, _)| read.elapsed() < FRESH);
        }
        entries.insert(id.to_string(), (Instant::now(), owner.clone()));
    }

    /// Drop what is kept of `id`.
    pub fn forget(&self, id: &str, by_viewer: bool) {
        self.entries.lock().unwrap()[usize::from(by_viewer)].remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(live: bool) -> Owner {
        Owner {
            node: "node-0".into(),
            address: "127.0.0.2:8080".into(),
            live,
            lease_until: std::time::SystemTime::now(),
        }
    }

    #[test]
    fn live_owners_are_kept_until_forgotten_and_gone_ones_never() {
        let owners = Owners::default();
        owners.put("s1", false, &owner(true));
        assert_eq!(owners.get("s1", false).unwrap().node, "node-0");
        assert!(
            owners.get("s1", true).is_none(),
            "a viewer id is its own key"
        );
        owners.forget("s1", false);
        assert!(owners.get("s1", false).is_none());
        owners.put("s2", false, &owner(false));
        assert!(owners.get("s2", false).is_none());
    }
}
