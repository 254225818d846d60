//! The gateway's sweep: placements of sessions past their end on nodes
//! that are down. A live node forgets the placements of the sessions it
//! ends itself; one that never came back cannot, and its sessions would
//! otherwise show as "host gone" forever. Any number of gateways may sweep
//! at once: the deletion is the same whoever does it.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::db::Db;

const EVERY: Duration = Duration::from_secs(10);

pub fn start(db: Arc<Db>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            match db.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    swept = n,
                    "forgot sessions that ended on nodes that are down"
                ),
                Err(e) => tracing::warn!("sweep: {e:#}"),
            }
        }
    })
}
