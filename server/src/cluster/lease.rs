//! A node's registration: its row in `nodes` at start (address, capacity,
//! what it uses, its free disk, a lease of 10 s), renewed every 2 s; each
//! renewal also forgets the placements of sessions the node has ended.
//! When renewals fail (the database is away) the lease lapses and gateways
//! show the node's sessions as gone until it renews again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::db::Db;
use super::{LEASE, RENEW_EVERY};
use crate::session::sessions::Sessions;

/// What a node says of itself.
pub struct Registration {
    pub name: String,
    pub address: String,
    pub capacity: i32,
    pub data_dir: PathBuf,
}

/// When the lease was last renewed (milliseconds since the epoch), for
/// the node's `/healthz`.
#[derive(Default)]
pub struct LeaseState {
    renewed_ms: AtomicU64,
}

impl LeaseState {
    fn renewed_now(&self) {
        self.renewed_ms.store(now_ms(), Ordering::Release);
    }

    /// How long ago the lease was renewed, if it is still current.
    pub fn current(&self) -> Result<Duration, Duration> {
        let ago =
            Duration::from_millis(now_ms().saturating_sub(self.renewed_ms.load(Ordering::Acquire)));
        if ago < LEASE {
            Ok(ago)
        } else {
            Err(ago)
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Bytes free for instances' disks under the data directory.
fn free_disk(dir: &std::path::Path) -> i64 {
    nix::sys::statvfs::statvfs(dir)
        .map(|s| {
            s.blocks_available()
                .saturating_mul(s.fragment_size())
                .min(i64::MAX as u64) as i64
        })
        .unwrap_or(0)
}

fn used(sessions: &Sessions) -> i32 {
    sessions.capacity().used().min(i32::MAX as usize) as i32
}

/// Register the node (before it serves), and return the state its renewals keep.
pub async fn register(
    db: &Db,
    me: &Registration,
    sessions: &Sessions,
) -> anyhow::Result<Arc<LeaseState>> {
    db.register(
        &me.name,
        &me.address,
        me.capacity,
        used(sessions),
        free_disk(&me.data_dir),
    )
    .await?;
    let state = Arc::new(LeaseState::default());
    state.renewed_now();
    tracing::info!(node = %me.name, address = %me.address, capacity = me.capacity, "registered in the cluster");
    Ok(state)
}

/// Renew the lease every 2 s, for as long as the task runs.
pub fn keep(
    db: Arc<Db>,
    me: Registration,
    sessions: Arc<Sessions>,
    state: Arc<LeaseState>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RENEW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            match renew(&db, &me, &sessions).await {
                Ok(()) => {
                    state.renewed_now();
                    if failing {
                        tracing::info!(node = %me.name, "lease renewed again");
                    }
                    failing = false;
                }
                Err(e) => {
                    // Once per outage, not every 2 s.
                    if !failing {
                        tracing::warn!(node = %me.name, "cannot renew the cluster lease: {e:#}");
                    }
                    failing = true;
                }
            }
        }
    })
}

async fn renew(db: &Db, me: &Registration, sessions: &Sessions) -> anyhow::Result<()> {
    let free = free_disk(&me.data_dir);
    if !db
        .renew(&me.name, &me.address, used(sessions), free)
        .await?
    {
        // Someone removed the row (register again), or another node took
        // the name (registering says so, and this lease lapses).
        db.register(&me.name, &me.address, me.capacity, used(sessions), free)
            .await?;
    }
    let live: Vec<String> = sessions.all().iter().map(|s| s.id.clone()).collect();
    let forgotten = db.forget_ended(&me.name, &live).await?;
    if forgotten > 0 {
        tracing::info!(node = %me.name, forgotten, "placements of ended sessions forgotten");
    }
    Ok(())
}
