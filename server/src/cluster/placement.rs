//! Placing a new session: in one transaction, lock the rows of the live
//! nodes (`FOR UPDATE`, so placements through any number of gateways
//! happen one after the other), count each node's load, choose the least
//! loaded with room, and record the placement. The node's own admission
//! still has the last word: a node that refuses is skipped (the caller
//! removes the placement and asks again without it).
//!
//! A node's load is its sessions (placements) or the instances it reported
//! running, whichever is more: a session is about to have an instance,
//! and a session may have several.

use std::time::{Duration, SystemTime};

use super::db::Db;
use crate::session::admission::about_minutes;
use crate::session::sessions::SessionIds;

/// A node as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub address: String,
    pub capacity: i64,
    pub sessions: i64,
    pub used: i64,
}

impl Candidate {
    fn load(&self) -> i64 {
        self.sessions.max(self.used)
    }

    fn has_room(&self) -> bool {
        self.load() < self.capacity
    }
}

/// Where a new session goes.
#[derive(Debug)]
pub enum Placed {
    /// Recorded on this node (name, address).
    On(String, String),
    /// Every live node is full (or refused already): the cluster's sums and
    /// the soonest end of a session, for the refusal.
    Full {
        sessions: i64,
        used: i64,
        capacity: i64,
        wait_secs: u64,
    },
    /// No node is up at all (none registered, or every lease lapsed).
    NoNode,
}

/// The least loaded candidate with room (relative to its capacity; ties by
/// name), skipping `exclude`.
pub fn choose<'a>(candidates: &'a [Candidate], exclude: &[String]) -> Option<&'a Candidate> {
    candidates
        .iter()
        .filter(|c| c.has_room() && !exclude.contains(&c.name))
        .min_by(|a, b| {
            // a.load / a.capacity < b.load / b.capacity, without division.
            (a.load() * b.capacity)
                .cmp(&(b.load() * a.capacity))
                .then_with(|| a.name.cmp(&b.name))
        })
}

/// Place the session `ids` on a live node other than `exclude`.
pub async fn place(db: &Db, ids: &SessionIds, exclude: &[String]) -> anyhow::Result<Placed> {
    let mut client = db.exclusive().await?;
    let tx = client.transaction().await?;
    let rows = tx
        .query(
            "SELECT name, address, capacity, used FROM nodes WHERE lease_until > now() \
             ORDER BY name FOR UPDATE",
            &[],
        )
        .await?;
    if rows.is_empty() {
        return Ok(Placed::NoNode);
    }
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let counts = tx
        .query(
            "SELECT node, count(*), min(expires_at) FROM placements WHERE node = ANY($1) \
             GROUP BY node",
            &[&names],
        )
        .await?;
    let mut soonest: Option<SystemTime> = None;
    let candidates: Vec<Candidate> = rows
        .iter()
        .map(|row| {
            let name: String = row.get(0);
            let count = counts.iter().find(|c| c.get::<_, String>(0) == name);
            if let Some(end) = count.map(|c| c.get::<_, SystemTime>(2)) {
                soonest = Some(soonest.map_or(end, |s| s.min(end)));
            }
            Candidate {
                address: row.get(1),
                capacity: row.get::<_, i32>(2).into(),
                used: row.get::<_, i32>(3).into(),
                sessions: count.map_or(0, |c| c.get(1)),
                name,
            }
        })
        .collect();
    let Some(chosen) = choose(&candidates, exclude) else {
        let wait_secs = soonest
            .and_then(|end| end.duration_since(SystemTime::now()).ok())
            .unwrap_or(Duration::from_secs(60))
            .as_secs()
            .max(1);
        return Ok(Placed::Full {
            sessions: candidates.iter().map(|c| c.sessions).sum(),
            used: candidates.iter().map(|c| c.used).sum(),
            capacity: candidates.iter().map(|c| c.capacity).sum(),
            wait_secs,
        });
    };
    // Until the node reports the session's end: an hour, so that a
    // placement whose node never answered is swept.
    tx.execute(
        "INSERT INTO placements (session_id, viewer_id, node, created_at, expires_at) \
         VALUES ($1, $2, $3, now(), now() + interval '1 hour')",
        &[&ids.id, &ids.viewer_id, &chosen.name],
    )
    .await?;
    tx.commit().await?;
    Ok(Placed::On(chosen.name.clone(), chosen.address.clone()))
}

/// The refusal when every node is full: the single host's text, with the
/// cluster's sums.
pub fn full_message(sessions: i64, used: i64, capacity: i64, wait_secs: u64) -> String {
    format!(
        "the playground is full: {sessions} session{} running ({used} of {capacity} \
         instances); try again in {}",
        if sessions == 1 { "" } else { "s" },
        about_minutes(wait_secs)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, capacity: i64, sessions: i64, used: i64) -> Candidate {
        Candidate {
            name: name.into(),
            address: format!("{name}:1"),
            capacity,
            sessions,
            used,
        }
    }

    #[test]
    fn the_least_loaded_node_with_room_is_chosen() {
        let nodes = [node("a", 2, 1, 0), node("b", 2, 0, 0), node("c", 2, 0, 1)];
        assert_eq!(choose(&nodes, &[]).unwrap().name, "b");
        // Relative to capacity: 2 of 10 is less loaded than 1 of 2.
        let nodes = [node("a", 2, 1, 1), node("b", 10, 2, 2)];
        assert_eq!(choose(&nodes, &[]).unwrap().name, "b");
        // Instances count when a node has more of them than sessions.
        let nodes = [node("a", 2, 1, 2), node("b", 2, 1, 1)];
        assert_eq!(choose(&nodes, &[]).unwrap().name, "b");
        assert!(choose(&nodes, &["b".into()]).is_none());
        let full = [node("a", 2, 2, 0), node("b", 2, 0, 2)];
        assert!(choose(&full, &[]).is_none());
    }

    #[test]
    fn the_refusal_reads_like_the_single_hosts() {
        assert_eq!(
            full_message(6, 6, 6, 30),
            "the playground is full: 6 sessions running (6 of 6 instances); try again in about a minute"
        );
    }
}
