//! Many hosts behind one address (#17): a real PostgreSQL, three nodes on
//! 127.0.0.2-4 (each with its own data directory and network pool,
//! capacity two instances) and two gateways, all the real binary. Sessions
//! spread over the nodes; terminals, event streams and port links work
//! through either gateway; the seventh session is refused with the reason;
//! fifty creates at once never overcommit a node; a node killed with
//! SIGKILL shows its sessions as gone within its lease, and takes them
//! back when it returns; a gateway restart loses nothing; the sweep
//! forgets sessions of a node that never came back. Needs root and
//! Debian's `postgresql`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use playground_tests::cluster::Cluster;
use playground_tests::{proxy_client, wait_listed, wait_until_clean, TestServer};

const T: Duration = Duration::from_secs(30);
/// A node's lease (see the cluster contract).
const LEASE: Duration = Duration::from_secs(10);

async fn create(gateway: &TestServer) -> reqwest::Response {
    gateway
        .http
        .post(gateway.url("/api/sessions"))
        .send()
        .await
        .unwrap()
}

/// Status, Retry-After and the error text of an answer.
async fn refusal(response: reqwest::Response) -> (u16, Option<String>, String) {
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (
        status,
        retry,
        body["error"].as_str().unwrap_or("").to_string(),
    )
}

/// The node index of a node's name (`node-2` is 2).
fn index(name: &str) -> usize {
    name.trim_start_matches("node-").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_spread_work_through_either_gateway_and_survive_a_node_crash() {
    let mut c = Cluster::start(3, 2, &["--capacity-instances=2"]).await;

    // A node serves only its gateways (its health check excepted).
    let direct = reqwest::get(c.node(0).url("/api/templates")).await.unwrap();
    let (status, _, error) = refusal(direct).await;
    assert_eq!(status, 403);
    assert_eq!(error, "this node serves only through a playground gateway");
    let health = reqwest::get(c.node(0).url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let health = c.gateway(1).get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(c.gateway(1).get("/api/templates").await.status(), 200);
    // An unknown session is unknown; classes are not routed yet, and say so.
    let unknown = c.gateway(0).get("/api/sessions/no-such-session").await;
    assert_eq!(unknown.status(), 404);
    let (status, _, error) = refusal(c.gateway(0).get("/api/classes").await).await;
    assert_eq!(status, 501);
    assert!(error.contains("single-host"), "{error}");
    // The gateway's metrics need the admin token; each gateway counts the
    // three live nodes.
    assert_eq!(c.gateway(0).get("/metrics").await.status(), 401);
    assert_eq!(
        c.gateway_metric("playground_gateway_cluster_nodes{state=\"live\"}")
            .await,
        6.0
    );

    // Three sessions through alternating gateways: one on each node.
    let mut sessions: Vec<(String, String)> = Vec::new();
    for i in 0..3 {
        let gateway = c.gateway(i % 2);
        let sid = gateway.create_session().await.id;
        let name = gateway.add_instance(&sid).await;
        sessions.push((sid, name));
    }
    let nodes: BTreeSet<String> = sessions
        .iter()
        .map(|(sid, _)| c.node_of(sid).expect("placed"))
        .collect();
    assert_eq!(nodes.len(), 3, "not spread: {:?}", c.placements());

    // A terminal through either gateway.
    let (sid, name) = sessions[0].clone();
    for g in [0, 1] {
        let mut term = c.gateway(g).terminal(&sid, &name, "").await;
        term.send(&format!("echo via-$((40+{g}))\n")).await;
        term.wait_for(&format!("via-{}", 40 + g), T).await;
        term.close().await;
    }
    // The read-only view through the other gateway.
    let info = c.gateway(0).session(&sid).await.unwrap();
    let view: serde_json::Value = c
        .gateway(1)
        .get(&format!("/api/view/{}", info.viewer_id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["read_only"], true, "{view}");

    // The event stream through gateway 1 tells of a port opened inside;
    // its link works through either gateway.
    let (mut events, _) = tokio_tungstenite::connect_async(
        c.gateway(1).ws_url(&format!("/api/sessions/{sid}/events")),
    )
    .await
    .expect("event stream through the gateway");
    let started = c
        .gateway(0)
        .exec(
            &sid,
            &name,
            "mkdir -p /srv && echo port-through-gateway > /srv/index.html && \
             (python3 -m http.server 8000 --directory /srv >/dev/null 2>&1 &) && sleep 0.2",
        )
        .await;
    assert_eq!(started.exit_code, 0, "{started:?}");
    let event = tokio::time::timeout(T, events.next())
        .await
        .expect("an event within 30 s")
        .expect("stream open")
        .expect("a message");
    assert!(event.is_text(), "{event:?}");
    drop(events);
    let link = wait_listed(c.gateway(0), &sid, 8000, true, T)
        .await
        .unwrap();
    let mut link: reqwest::Url = link.parse().unwrap();
    for g in [0, 1] {
        let port: u16 = c
            .gateway(g)
            .base
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        link.set_port(Some(port)).unwrap();
        let page = proxy_client(&link).get(link.clone()).send().await.unwrap();
        assert_eq!(page.status(), 200, "gateway {g}");
        assert_eq!(page.text().await.unwrap(), "port-through-gateway\n");
    }
    // A port's own /healthz is the program's (here a 404), not the node's.
    let health = proxy_client(&link)
        .get(link.join("/healthz").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 404);
    // And the path form on the page's own host.
    let page = c
        .gateway(1)
        .get(&format!("/proxy/{sid}/{name}/8000/"))
        .await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), "port-through-gateway\n");

    // Three more (six instances of six), then the seventh is refused.
    for i in 3..6 {
        let gateway = c.gateway(i % 2);
        let sid = gateway.create_session().await.id;
        let name = gateway.add_instance(&sid).await;
        sessions.push((sid, name));
    }
    let (status, retry, error) = refusal(create(c.gateway(0)).await).await;
    assert_eq!(status, 503, "{error}");
    assert!(retry.is_some(), "no Retry-After");
    // (Instances in use as the nodes last reported them, every 2 s.)
    assert!(
        error.starts_with("the playground is full: 6 sessions running (")
            && error.contains(" of 6 instances); try again in about "),
        "{error}"
    );
    let placed = c.placements();
    assert!(placed.iter().all(|(_, n)| *n == 2), "{placed:?}");

    // Make room on the other nodes, then kill -9 the node of `sid`.
    let victim_name = c.node_of(&sid).unwrap();
    let victim = index(&victim_name);
    let mut kept = Vec::new();
    let mut ended = Vec::new();
    for (s, n) in sessions {
        let node = c.node_of(&s).unwrap();
        if node == victim_name {
            kept.push((s, n));
        } else {
            let gateway = c.gateway(1);
            let gone = gateway
                .http
                .delete(gateway.url(&format!("/api/sessions/{s}")));
            assert_eq!(gone.send().await.unwrap().status(), 204);
            assert_eq!(c.node_of(&s), None, "placement kept");
            ended.push((s, index(&node)));
        }
    }
    let marked = c
        .gateway(0)
        .exec(&sid, &name, "echo kept > /root/mark")
        .await;
    assert_eq!(marked.exit_code, 0);
    c.crash_node(victim).await;
    let crashed = Instant::now();

    // Within the lease, its sessions say their host is gone (not a hang).
    let (status, retry, error) = loop {
        let answer = refusal(c.gateway(1).get(&format!("/api/sessions/{sid}")).await).await;
        if answer.2.starts_with("this session's host is gone") {
            break answer;
        }
        assert!(
            crashed.elapsed() < LEASE + Duration::from_secs(5),
            "not gone after {:?}: {answer:?}",
            crashed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!("host gone after {:?}", crashed.elapsed());
    assert_eq!(status, 503);
    assert_eq!(retry.as_deref(), Some("10"));
    assert!(
        error.contains(&format!("node {victim_name} stopped answering at ")),
        "{error}"
    );
    assert!(
        error.ends_with("its sessions come back if it returns"),
        "{error}"
    );
    // Terminals and port links too, before any upgrade.
    let ws = tokio_tungstenite::connect_async(
        c.gateway(0)
            .ws_url(&format!("/api/sessions/{sid}/instances/{name}/terminal")),
    )
    .await;
    match ws {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("a terminal of a gone host: {:?}", other.map(|_| ())),
    }
    let page = proxy_client(&link).get(link.clone()).send().await.unwrap();
    assert_eq!(page.status(), 503);

    // New sessions go elsewhere.
    for g in [0, 1] {
        let new = c.gateway(g).create_session().await.id;
        let node = c.node_of(&new).unwrap();
        assert_ne!(node, victim_name);
        kept.push((new, String::new()));
    }

    // The node comes back on its data directory: so do its sessions.
    c.start_node(victim).await;
    let info = c.gateway(0).session(&sid).await.expect("session back");
    assert_eq!(info.instances.len(), 1);
    assert_eq!(
        c.gateway(1)
            .exec(&sid, &name, "cat /root/mark")
            .await
            .stdout,
        "kept\n"
    );
    let mut term = c.gateway(1).terminal(&sid, &name, "").await;
    term.send("echo back-$((1+1))\n").await;
    term.wait_for("back-2", T).await;
    term.close().await;

    // Gateways restart and lose nothing.
    c.restart_gateway(0).await;
    c.restart_gateway(1).await;
    for g in [0, 1] {
        for (s, _) in &kept {
            assert!(c.gateway(g).session(s).await.is_some(), "{s} lost");
        }
    }
    let mut term = c.gateway(0).terminal(&sid, &name, "").await;
    term.send("echo again-$((2+2))\n").await;
    term.wait_for("again-4", T).await;
    term.close().await;

    // Everything ends; nothing is left on any node.
    let mut on_node = ended;
    for (s, _) in &kept {
        on_node.push((s.clone(), index(&c.node_of(s).unwrap())));
        let response = c
            .gateway(0)
            .http
            .delete(c.gateway(0).url(&format!("/api/sessions/{s}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }
    assert!(c.placements().is_empty(), "{:?}", c.placements());
    for (s, i) in on_node {
        let left = wait_until_clean(&s, c.node(i).data_dir.path(), T).await;
        assert!(left.is_empty(), "{s} on node-{i} left {left:?}");
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_creates_at_once_through_two_gateways_never_overcommit_a_node() {
    let c = Cluster::start(3, 2, &["--capacity-instances=2"]).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let gateway = c.gateway(i % 2);
        let (http, url) = (gateway.http.clone(), gateway.url("/api/sessions"));
        tasks.push(tokio::spawn(async move {
            let response = http.post(url).send().await.unwrap();
            if response.status() == 201 {
                let info: serde_json::Value = response.json().await.unwrap();
                Ok(info["id"].as_str().unwrap().to_string())
            } else {
                Err(refusal(response).await)
            }
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(sid) => created.push(sid),
            Err((status, retry, error)) => {
                assert_eq!(status, 503, "{error}");
                assert!(retry.is_some(), "no Retry-After: {error}");
                assert!(
                    error.starts_with("the playground is full: 6 sessions"),
                    "{error}"
                );
            }
        }
    }
    assert_eq!(created.len(), 6, "{:?}", c.placements());
    let placed = "playground_gateway_placements_total{outcome=\"placed\"}";
    let full = "playground_gateway_placements_total{outcome=\"full\"}";
    assert_eq!(c.gateway_metric(placed).await, 6.0);
    assert_eq!(c.gateway_metric(full).await, 44.0);
    let placed = c.placements();
    assert_eq!(placed.len(), 3, "{placed:?}");
    assert!(placed.iter().all(|(_, n)| *n == 2), "{placed:?}");
    // Each node has exactly the sessions placed on it, and room for an
    // instance in each: none refuses one.
    for sid in &created {
        let node = c.node(index(&c.node_of(sid).unwrap()));
        assert!(node.session(sid).await.is_some(), "{sid} not on its node");
    }
    let mut instances = Vec::new();
    for (i, sid) in created.iter().enumerate() {
        let gateway = c.gateway(i % 2);
        instances.push((sid.clone(), gateway.add_instance(sid).await));
    }
    for sid in &created {
        let i = index(&c.node_of(sid).unwrap());
        let gateway = c.gateway(0);
        let response = gateway
            .http
            .delete(gateway.url(&format!("/api/sessions/{sid}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        let left = wait_until_clean(sid, c.node(i).data_dir.path(), T).await;
        assert!(left.is_empty(), "{sid} left {left:?}");
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_forgets_sessions_of_a_node_that_never_came_back() {
    let mut c = Cluster::start(1, 1, &["--capacity-instances=2", "--session-ttl=3s"]).await;
    let sid = c.gateway(0).create_session().await.id;
    c.gateway(0).add_instance(&sid).await;
    c.crash_node(0).await;
    let crashed = Instant::now();
    // Gone while within its time (and its lease lapsed) ...
    loop {
        let (status, _, error) =
            refusal(c.gateway(0).get(&format!("/api/sessions/{sid}")).await).await;
        if status == 503 && error.starts_with("this session's host is gone") {
            break;
        }
        assert!(
            crashed.elapsed() < LEASE + Duration::from_secs(5),
            "{status} {error}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // ... then, past its end, forgotten by the gateway's sweep (every 10 s).
    loop {
        let status = c
            .gateway(0)
            .get(&format!("/api/sessions/{sid}"))
            .await
            .status();
        if status == 404 {
            break;
        }
        assert!(
            crashed.elapsed() < Duration::from_secs(40),
            "still {status}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(c.node_of(&sid), None);
    // The crashed node's data directory is torn down with the cluster.
    c.stop().await;
}

/// Two hosts given one name: the second refuses to start and says why,
/// and the first keeps its row (its sessions stay reachable).
#[tokio::test(flavor = "multi_thread")]
async fn a_second_node_with_a_live_nodes_name_refuses_to_start() {
    let c = Cluster::start(1, 1, &[]).await;
    let sid = c.gateway(0).create_session().await.id;
    let (code, said) = c.start_refused_node(&Cluster::node_name(0)).await;
    assert!(code.is_some_and(|c| c > 0), "{code:?}: {said}");
    assert!(
        said.contains("another node named node-0 is live at 127.0.0.2:"),
        "{said}"
    );
    assert!(c.gateway(0).session(&sid).await.is_some());
    assert_eq!(c.node_of(&sid).as_deref(), Some("node-0"));
    c.stop().await;
}
