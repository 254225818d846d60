//! Cluster figures, side by side in one run: keystroke echo in a terminal
//! and a 100 MB download through a port link, each through a gateway and
//! straight at the node that holds the session (with the cluster's secret,
//! as a gateway sends it), and session creation through the gateway and at
//! the node. `scripts/bench-cluster` runs it:
//!
//!     cluster_bench [--rounds 3] [--keys 300] [--bytes 100000000] [--creates 20]
//!
//! It starts its own cluster with the tests' helper (a real PostgreSQL on a
//! temporary socket, one node on 127.0.0.2, one gateway on 127.0.0.1) and
//! leaves nothing behind, also on failure. Rounds alternate which path goes
//! first.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use playground_protocol::TerminalServerMsg;
use playground_tests::cluster::{Cluster, SECRET_HEADER};
use playground_tests::{wait_listed, TestServer};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const IDLE: Duration = Duration::from_secs(30);
const PORT: u16 = 8000;

struct Options {
    rounds: usize,
    keys: usize,
    bytes: u64,
    creates: usize,
}

fn options() -> Options {
    let mut o = Options {
        rounds: 3,
        keys: 300,
        bytes: 100_000_000,
        creates: 20,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().expect("a value after each flag");
        match flag.as_str() {
            "--rounds" => o.rounds = value.parse().unwrap(),
            "--keys" => o.keys = value.parse().unwrap(),
            "--bytes" => o.bytes = value.parse().unwrap(),
            "--creates" => o.creates = value.parse().unwrap(),
            _ => panic!("unknown flag {flag}; see the file's doc comment"),
        }
    }
    o
}

/// Connect a terminal and wait for its `attached` message.
async fn terminal(url: &str, secret: Option<&str>) -> Ws {
    let mut request = url.into_client_request().unwrap();
    if let Some(secret) = secret {
        request
            .headers_mut()
            .insert(SECRET_HEADER, secret.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    loop {
        match tokio::time::timeout(IDLE, ws.next())
            .await
            .expect("attached")
        {
            Some(Ok(Message::Text(t))) => {
                if let Ok(TerminalServerMsg::Attached { .. }) = serde_json::from_str(&t) {
                    return ws;
                }
            }
            other => panic!("expected attached, got {other:?}"),
        }
    }
}

/// Read output until `needle` has arrived.
async fn read_until(ws: &mut Ws, needle: &[u8]) {
    let mut seen = Vec::new();
    loop {
        let message = tokio::time::timeout(IDLE, ws.next())
            .await
            .expect("output within 30 s")
            .expect("open")
            .expect("a message");
        if let Message::Binary(bytes) = message {
            seen.extend_from_slice(&bytes);
            if seen.windows(needle.len()).any(|w| w == needle) {
                return;
            }
        }
    }
}

/// Keys typed one at a time into `cat`, each timed to its echo (ms).
async fn echo(ws: &mut Ws, keys: usize) -> Vec<f64> {
    ws.send(Message::Binary("stty -icanon; cat\n".into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Drop what the shell printed so far.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), ws.next()).await {}
    let mut times = Vec::with_capacity(keys);
    for i in 0..keys {
        let key = [b'a' + (i % 26) as u8];
        let start = Instant::now();
        ws.send(Message::Binary(key.to_vec().into())).await.unwrap();
        read_until(ws, &key).await;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    // Ctrl-C ends cat.
    ws.send(Message::Binary(vec![3u8].into())).await.unwrap();
    times
}

/// Download `url` with `host` as Host (and the secret for a node); MB/s.
async fn download(url: &str, host: &str, secret: Option<&str>, bytes: u64) -> f64 {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.get(url).header("host", host);
    if let Some(secret) = secret {
        request = request.header(SECRET_HEADER, secret);
    }
    let start = Instant::now();
    let mut response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let mut got = 0u64;
    while let Some(chunk) = response.chunk().await.unwrap() {
        got += chunk.len() as u64;
    }
    assert_eq!(got, bytes, "{url}: wrong byte count");
    got as f64 / 1e6 / start.elapsed().as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn p99(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * 0.99).ceil() as usize).min(v.len()) - 1]
}

/// Create and delete `n` sessions on `server`; each creation's time (ms).
async fn creations(server: &TestServer, n: usize) -> Vec<f64> {
    let mut times = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        let sid = server.create_session().await.id;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        server.delete_session(&sid).await;
    }
    times
}

#[tokio::main]
async fn main() {
    let o = options();
    let c = Cluster::start(1, 1, &["--capacity-instances=8", "--instance-cpus=0"]).await;
    let (gateway, node) = (c.gateway(0), c.node(0));
    let secret = Some(c.secret.as_str());

    let mut create_gateway = Vec::new();
    let mut create_node = Vec::new();
    for round in 0..o.rounds {
        let n = o.creates.div_ceil(o.rounds);
        if round % 2 == 0 {
            create_gateway.extend(creations(gateway, n).await);
            create_node.extend(creations(node, n).await);
        } else {
            create_node.extend(creations(node, n).await);
            create_gateway.extend(creations(gateway, n).await);
        }
    }

    let sid = gateway.create_session().await.id;
    let name = gateway.add_instance(&sid).await;
    let serve = format!(
        "mkdir -p /srv && head -c {} /dev/zero > /srv/big && \
         (python3 -m http.server {PORT} --directory /srv >/dev/null 2>&1 &) && \
         for i in $(seq 100); do grep -qi ':{PORT:04X} 0*:0000 0A' /proc/net/tcp /proc/net/tcp6 && exit 0; sleep 0.1; done; exit 1",
        o.bytes
    );
    let out = gateway.exec(&sid, &name, &serve).await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    let link: reqwest::Url = wait_listed(gateway, &sid, PORT, true, IDLE)
        .await
        .unwrap()
        .parse()
        .unwrap();
    let host = format!("{}:{}", link.host_str().unwrap(), link.port().unwrap());

    let path = format!("/api/sessions/{sid}/instances/{name}/terminal");
    let mut via_gateway = terminal(&gateway.ws_url(&path), None).await;
    let mut direct = terminal(&node.ws_url(&path), secret).await;
    let (mut echo_gateway, mut echo_node) = (Vec::new(), Vec::new());
    let (mut mbs_gateway, mut mbs_node) = (Vec::new(), Vec::new());
    let per_round = o.keys.div_ceil(o.rounds);
    for round in 0..o.rounds {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for through_gateway in order {
            if through_gateway {
                echo_gateway.extend(echo(&mut via_gateway, per_round).await);
                mbs_gateway.push(download(&gateway.url("/big"), &host, None, o.bytes).await);
            } else {
                echo_node.extend(echo(&mut direct, per_round).await);
                mbs_node.push(download(&node.url("/big"), &host, secret, o.bytes).await);
            }
        }
    }

    println!();
    println!("{:<34} {:>12} {:>12} {:>8}", "", "gateway", "node", "ratio");
    let row = |what: &str, g: f64, n: f64| {
        println!("{what:<34} {g:>12.2} {n:>12.2} {:>8.2}", g / n);
    };
    row(
        "keystroke echo, median (ms)",
        median(&mut echo_gateway),
        median(&mut echo_node),
    );
    row(
        "keystroke echo, p99 (ms)",
        p99(&mut echo_gateway),
        p99(&mut echo_node),
    );
    row(
        &format!("{} MB download, median (MB/s)", o.bytes / 1_000_000),
        median(&mut mbs_gateway),
        median(&mut mbs_node),
    );
    row(
        "session creation, median (ms)",
        median(&mut create_gateway),
        median(&mut create_node),
    );
    row(
        "session creation, p99 (ms)",
        p99(&mut create_gateway),
        p99(&mut create_node),
    );
    println!(
        "({} keys, {} downloads and {} creations per path; node: one, on 127.0.0.2)",
        echo_gateway.len(),
        mbs_gateway.len(),
        create_gateway.len()
    );

    drop(via_gateway);
    drop(direct);
    gateway.delete_session(&sid).await;
    c.stop().await;
}
