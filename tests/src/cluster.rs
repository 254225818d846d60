//! A cluster on one machine for tests: a real PostgreSQL (see
//! [`crate::postgres`]), nodes on 127.0.0.2, .3, .4 ... each with its own
//! data directory and network pool, and gateways on 127.0.0.1, all the
//! real `playground` binary. Dropped, it stops every process, tears down
//! every node's data directory (also a crashed node's) and then stops
//! PostgreSQL, so a failed test leaves nothing behind either.

use std::time::Duration;

use crate::postgres::Postgres;
use crate::{DataDir, TestServer};

/// Network pools 10.171.0.0/16 and on: far from the other tests' (the
/// default 10.100.0.0/16, 10.123.0.0/16).
static NEXT_POOL: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(171);

/// Every gateway's `--admin-token` (opens its `/metrics`).
pub const ADMIN_TOKEN: &str = "gateway-admin-token-for-tests";

/// The header with the cluster's secret (see the cluster contract).
pub const SECRET_HEADER: &str = "x-playground-cluster";

pub struct Cluster {
    pub gateways: Vec<Option<TestServer>>,
    pub nodes: Vec<Option<TestServer>>,
    /// Data directories of nodes killed and not yet started again.
    crashed: Vec<Option<DataDir>>,
    /// Extra flags every node gets.
    node_flags: Vec<String>,
    /// Each node's network pool's second byte (10.x.0.0/16), unique in
    /// this test process, so clusters of tests running at once never
    /// share addresses.
    pools: Vec<u8>,
    pub secret: String,
    secret_dir: tempfile::TempDir,
    /// Last, so it stops after every node and gateway.
    pub pg: Postgres,
}

impl Cluster {
    /// PostgreSQL, `gateways` gateways, then `nodes` nodes with `node_flags`
    /// (their port links point at the first gateway).
    pub async fn start(nodes: usize, gateways: usize, node_flags: &[&str]) -> Cluster {
        let pg = Postgres::start();
        let secret_dir = tempfile::tempdir().unwrap();
        let secret = format!("test-secret-{}", "0123456789abcdef".repeat(3));
        std::fs::write(secret_dir.path().join("secret"), format!("{secret}\n")).unwrap();
        let mut cluster = Cluster {
            gateways: Vec::new(),
            nodes: Vec::new(),
            crashed: Vec::new(),
            node_flags: node_flags.iter().map(|f| f.to_string()).collect(),
            pools: Vec::new(),
            secret,
            secret_dir,
            pg,
        };
        for _ in 0..gateways {
            let gateway = cluster.start_gateway("127.0.0.1:0").await;
            cluster.gateways.push(Some(gateway));
        }
        let public_port = cluster
            .gateway(0)
            .base
            .rsplit(':')
            .next()
            .unwrap()
            .to_string();
        cluster
            .node_flags
            .push(format!("--public-port={public_port}"));
        for i in 0..nodes {
            cluster.nodes.push(None);
            cluster.crashed.push(None);
            cluster
                .pools
                .push(NEXT_POOL.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            cluster.start_node(i).await;
        }
        cluster
    }

    fn cluster_flags(&self) -> Vec<String> {
        vec![
            format!("--cluster={}", self.pg.url()),
            format!(
                "--cluster-secret-file={}",
                self.secret_dir.path().join("secret").display()
            ),
        ]
    }

    async fn start_gateway(&self, listen: &str) -> TestServer {
        let mut flags = self.cluster_flags();
        flags.push(format!("--listen={listen}"));
        flags.push(format!("--admin-token={ADMIN_TOKEN}"));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        TestServer::start_gateway(&flags).await
    }

    /// Node `i`'s name.
    pub fn node_name(i: usize) -> String {
        format!("node-{i}")
    }

    /// Start node `i` (again, on its data directory, after a crash).
    pub async fn start_node(&mut self, i: usize) {
        let mut flags = self.cluster_flags();
        flags.extend([
            format!("--listen=127.0.0.{}:0", i + 2),
            format!("--node-name={}", Self::node_name(i)),
            format!("--network-pool=10.{}.0.0/16", self.pools[i]),
            "--max-sessions-per-client=0".to_string(),
            "--requests-per-second=0".to_string(),
        ]);
        flags.extend(self.node_flags.iter().cloned());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let mut node = match self.crashed[i].take() {
            Some(data_dir) => TestServer::start_in(data_dir, &flags).await,
            None => TestServer::start(&flags).await,
        };
        node.http = self.node_client();
        self.nodes[i] = Some(node);
    }

    /// Start one more node named `name` on 127.0.0.5 and its own data
    /// directory, expecting it to refuse to start: its exit status and
    /// what it said. Whatever it made is torn down.
    pub async fn start_refused_node(&self, name: &str) -> (Option<i32>, String) {
        let data_dir = tempfile::Builder::new()
            .prefix("playground-test-")
            .tempdir()
            .unwrap();
        let mut flags = self.cluster_flags();
        flags.extend([
            "--listen=127.0.0.5:0".to_string(),
            format!("--node-name={name}"),
            format!("--data-dir={}", data_dir.path().display()),
            format!("--images-dir={}", crate::images_dir().display()),
            "--network-pool=10.250.0.0/16".to_string(),
        ]);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        // What it says on standard error is part of the answer here.
        let mut child = crate::playground(&flags)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let code = match tokio::time::timeout(Duration::from_secs(120), child.wait()).await {
            Ok(status) => status.unwrap().code(),
            Err(_) => {
                let _ = child.kill().await;
                Some(-1)
            }
        };
        let out = child.wait_with_output().await.unwrap();
        crate::teardown(data_dir.path());
        let said = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        (code, said)
    }

    /// A client that shows the secret, as a gateway does (to talk to a
    /// node directly).
    pub fn node_client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(SECRET_HEADER, self.secret.parse().unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// `kill -9` of node `i`; its instances keep running.
    pub async fn crash_node(&mut self, i: usize) {
        let node = self.nodes[i].take().expect("node running");
        self.crashed[i] = Some(node.crash().await);
    }

    /// Stop gateway `i` and start it again on the same address.
    pub async fn restart_gateway(&mut self, i: usize) {
        let gateway = self.gateways[i].take().expect("gateway running");
        let listen = gateway.base.trim_start_matches("http://").to_string();
        gateway.stop_process().await;
        self.gateways[i] = Some(self.start_gateway(&listen).await);
    }

    pub fn gateway(&self, i: usize) -> &TestServer {
        self.gateways[i].as_ref().expect("gateway running")
    }

    pub fn node(&self, i: usize) -> &TestServer {
        self.nodes[i].as_ref().expect("node running")
    }

    /// The node a session is placed on, per the database.
    pub fn node_of(&self, sid: &str) -> Option<String> {
        let out = self.pg.query(&format!(
            "SELECT node FROM placements WHERE session_id = '{sid}'"
        ));
        let node = out.trim();
        (!node.is_empty()).then(|| node.to_string())
    }

    /// Sessions placed on each node, by name.
    pub fn placements(&self) -> Vec<(String, usize)> {
        self.pg
            .query("SELECT node, count(*) FROM placements GROUP BY node ORDER BY node")
            .lines()
            .filter_map(|l| {
                let (node, n) = l.split_once('|')?;
                Some((node.to_string(), n.parse().ok()?))
            })
            .collect()
    }

    /// The value of `name` (with labels, e.g. `x{a="b"}`) in every
    /// gateway's `/metrics`, added up.
    pub async fn gateway_metric(&self, name: &str) -> f64 {
        let mut total = 0.0;
        for gateway in self.gateways.iter().flatten() {
            let text = gateway
                .http
                .get(gateway.url("/metrics"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            total += text
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .map_or(0.0, |v| v.trim().parse().unwrap());
        }
        total
    }

    /// Stop every node (tearing down its data directory) and gateway.
    pub async fn stop(mut self) {
        for node in self.nodes.iter_mut() {
            if let Some(node) = node.take() {
                node.stop().await;
            }
        }
        for gateway in self.gateways.iter_mut() {
            if let Some(gateway) = gateway.take() {
                gateway.stop_process().await;
            }
        }
        // Crashed nodes never started again: their DataDir tears down on drop.
        self.crashed.clear();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
