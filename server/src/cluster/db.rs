//! The cluster's two tables in PostgreSQL and the queries on them, made
//! by whichever process starts first:
//! - `nodes`: each node's address, capacity, what it uses, its free disk,
//!   and its lease (`lease_until`, renewed every 2 s; a node whose lease
//!   has passed is down);
//! - `placements`: which node holds which session (and its viewer id).
//!
//! Times are the database's own (`now()`), so clocks of nodes and gateways
//! never need to agree.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use tokio_postgres::{Client, NoTls};

/// Taken while the tables are made, so two first starts do not race.
const SCHEMA_LOCK: i64 = 0x706c_6179_0017;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nodes (
    name text PRIMARY KEY,
    address text NOT NULL,
    capacity int NOT NULL,
    used int NOT NULL DEFAULT 0,
    free_disk_bytes bigint NOT NULL DEFAULT 0,
    lease_until timestamptz NOT NULL,
    started_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS placements (
    session_id text PRIMARY KEY,
    viewer_id text NOT NULL,
    node text NOT NULL REFERENCES nodes (name),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS placements_viewer ON placements (viewer_id);
CREATE INDEX IF NOT EXISTS placements_node ON placements (node);
";

/// A cluster's database: one connection for queries (many at once, as
/// tokio-postgres pipelines them) and one for transactions, each made
/// again when it was lost (the database restarted, a network cut).
pub struct Db {
    config: tokio_postgres::Config,
    /// Where it is, for error messages (never the password).
    place: String,
    shared: tokio::sync::Mutex<Option<Arc<Client>>>,
    exclusive: tokio::sync::Mutex<Option<Client>>,
}

/// The node that holds a session, and whether its lease is current.
#[derive(Clone, Debug)]
pub struct Owner {
    pub node: String,
    pub address: String,
    pub live: bool,
    pub lease_until: SystemTime,
}

/// The cluster as the database shows it when scraped.
pub struct ClusterCounts {
    pub live_nodes: i64,
    pub down_nodes: i64,
    pub capacity: i64,
    pub used: i64,
    pub sessions: i64,
}

impl Db {
    /// Connect to `url` (`--cluster`) and make the tables if missing.
    pub async fn open(url: &str) -> anyhow::Result<Arc<Db>> {
        let config: tokio_postgres::Config = url.parse().with_context(|| {
            "--cluster is not a PostgreSQL connection string (postgres://user:pass@host:5432/db, \
             or host=/run/postgresql dbname=playground)"
                .to_string()
        })?;
        let place = describe(&config);
        let db = Arc::new(Db {
            config,
            place,
            shared: Default::default(),
            exclusive: Default::default(),
        });
        let mut client = db.connect().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        tx.batch_execute(SCHEMA)
            .await
            .with_context(|| format!("create the cluster's tables in {}", db.place))?;
        tx.commit().await?;
        *db.exclusive.lock().await = Some(client);
        Ok(db)
    }

    async fn connect(&self) -> anyhow::Result<Client> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .with_context(|| format!("connect to PostgreSQL at {}", self.place))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("PostgreSQL connection lost: {e}");
            }
        });
        Ok(client)
    }

    /// The connection for plain queries.
    pub async fn client(&self) -> anyhow::Result<Arc<Client>> {
        let mut shared = self.shared.lock().await;
        match &*shared {
            Some(client) if !client.is_closed() => Ok(client.clone()),
            _ => {
                let client = Arc::new(self.connect().await?);
                *shared = Some(client.clone());
                Ok(client)
            }
        }
    }

    /// The connection for transactions, one at a time.
    pub async fn exclusive(&self) -> anyhow::Result<tokio::sync::MappedMutexGuard<'_, Client>> {
        let mut guard = self.exclusive.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(self.connect().await?);
        }
        Ok(tokio::sync::MutexGuard::map(guard, |c| {
            c.as_mut().expect("connected above")
        }))
    }

    /// Add or replace a node's row at its start, with a fresh lease.
    pub async fn register(
        &self,
        name: &str,
        address: &str,
        capacity: i32,
        used: i32,
        free_disk: i64,
    ) -> anyhow::Result<()> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO nodes (name, address, capacity, used, free_disk_bytes, lease_until, \
                 started_at) VALUES ($1, $2, $3, $4, $5, now() + interval '10 seconds', now()) \
                 ON CONFLICT (name) DO UPDATE SET address = $2, capacity = $3, used = $4, \
                 free_disk_bytes = $5, lease_until = now() + interval '10 seconds', \
                 started_at = now() \
                 WHERE nodes.address = $2 OR nodes.lease_until <= now()",
                &[&name, &address, &capacity, &used, &free_disk],
            )
            .await
            .with_context(|| format!("register node {name} in {}", self.place))?;
        if n == 0 {
            // The row is another live node's: two hosts were given one name.
            let row = self
                .client()
                .await?
                .query_opt("SELECT address FROM nodes WHERE name = $1", &[&name])
                .await?;
            let other: String = row.map(|r| r.get(0)).unwrap_or_default();
            anyhow::bail!(
                "another node named {name} is live at {other}: give this one its own \
                 --node-name (or stop the other; its lease lapses 10 s after it stops)"
            );
        }
        Ok(())
    }

    /// Renew a node's lease; false when its row is gone or is another
    /// node's (at another address).
    pub async fn renew(
        &self,
        name: &str,
        address: &str,
        used: i32,
        free_disk: i64,
    ) -> anyhow::Result<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE nodes SET used = $2, free_disk_bytes = $3, \
                 lease_until = now() + interval '10 seconds' WHERE name = $1 AND address = $4",
                &[&name, &used, &free_disk, &address],
            )
            .await?;
        Ok(n == 1)
    }

    /// Forget the placements on `node` of sessions it no longer has (ended
    /// or expired there), leaving those a minute old or less: a gateway may
    /// be creating them right now.
    pub async fn forget_ended(&self, node: &str, live: &[String]) -> anyhow::Result<u64> {
        Ok(self
            .client()
            .await?
            .execute(
                "DELETE FROM placements WHERE node = $1 AND NOT (session_id = ANY($2)) \
                 AND created_at < now() - interval '60 seconds'",
                &[&node, &live],
            )
            .await?)
    }

    /// Who holds session `sid` (`by_viewer`: the session whose viewer id it is).
    pub async fn owner(&self, id: &str, by_viewer: bool) -> anyhow::Result<Option<Owner>> {
        let query = if by_viewer {
            "SELECT n.name, n.address, n.lease_until > now(), n.lease_until FROM placements p \
             JOIN nodes n ON n.name = p.node WHERE p.viewer_id = $1"
        } else {
            "SELECT n.name, n.address, n.lease_until > now(), n.lease_until FROM placements p \
             JOIN nodes n ON n.name = p.node WHERE p.session_id = $1"
        };
        let row = self.client().await?.query_opt(query, &[&id]).await?;
        Ok(row.map(|row| Owner {
            node: row.get(0),
            address: row.get(1),
            live: row.get(2),
            lease_until: row.get(3),
        }))
    }

    /// A live node's address, any of them (for what no session owns).
    pub async fn any_live_node(&self) -> anyhow::Result<Option<(String, String)>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT name, address FROM nodes WHERE lease_until > now() \
                 ORDER BY random() LIMIT 1",
                &[],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// The session's end as its node reported it.
    pub async fn set_expiry(&self, sid: &str, expires_at: SystemTime) -> anyhow::Result<()> {
        self.client()
            .await?
            .execute(
                "UPDATE placements SET expires_at = $2 WHERE session_id = $1",
                &[&sid, &expires_at],
            )
            .await?;
        Ok(())
    }

    pub async fn remove_placement(&self, sid: &str) -> anyhow::Result<()> {
        self.client()
            .await?
            .execute("DELETE FROM placements WHERE session_id = $1", &[&sid])
            .await?;
        Ok(())
    }

    /// The sweep: placements of sessions past their end on nodes that are
    /// down (a live node forgets its own; one that never came back cannot).
    pub async fn sweep(&self) -> anyhow::Result<u64> {
        Ok(self
            .client()
            .await?
            .execute(
                "DELETE FROM placements p USING nodes n WHERE p.node = n.name \
                 AND n.lease_until < now() AND p.expires_at < now()",
                &[],
            )
            .await?)
    }

    /// Nodes live and down, the live ones' capacity and use, and sessions
    /// placed: a gateway's metrics.
    pub async fn counts(&self) -> anyhow::Result<ClusterCounts> {
        let client = self.client().await?;
        let nodes = client
            .query_one(
                "SELECT count(*) FILTER (WHERE lease_until > now()), \
                 count(*) FILTER (WHERE lease_until <= now()), \
                 coalesce(sum(capacity) FILTER (WHERE lease_until > now()), 0), \
                 coalesce(sum(used) FILTER (WHERE lease_until > now()), 0) FROM nodes",
                &[],
            )
            .await?;
        let sessions = client
            .query_one("SELECT count(*) FROM placements", &[])
            .await?;
        Ok(ClusterCounts {
            live_nodes: nodes.get(0),
            down_nodes: nodes.get(1),
            capacity: nodes.get(2),
            used: nodes.get(3),
            sessions: sessions.get(0),
        })
    }

    /// Whether the database answers (a gateway's health).
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }
}

/// `user@host:port/db` of a connection string, without its password.
fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{}:{port}/{}",
        config.get_user().unwrap_or("?"),
        hosts.join(","),
        config.get_dbname().unwrap_or("?")
    )
}
