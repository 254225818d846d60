//! Session networks and the event stream, end to end: instances of one
//! session reach each other by name, nothing else reaches them, listening
//! ports are noticed within seconds, and every network object goes with its
//! session. Needs root.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use playground_protocol::SessionEvent;
use playground_tests::{bridge_name, leftovers, wait_until_clean, TestServer};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next session event, or None after 10 s of silence or a close.
async fn next_event(ws: &mut Ws) -> Option<SessionEvent> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_of_a_session_reach_each_other_by_name_and_nothing_else() {
    let server = TestServer::start(&[]).await;
    let a = server.create_session().await.id;
    let b = server.create_session().await.id;
    let a1 = server.add_instance(&a).await;
    let a2 = server.add_instance(&a).await;
    let b1 = server.add_instance(&b).await;

    let info = server.session(&a).await.unwrap();
    let ips: Vec<String> = info
        .instances
        .iter()
        .map(|i| i.ip.clone().unwrap())
        .collect();
    assert_eq!(ips.len(), 2);
    assert_ne!(ips[0], ips[1]);
    let b_ip = server.session(&b).await.unwrap().instances[0]
        .ip
        .clone()
        .unwrap();

    // By name, both ways, and a real TCP connection.
    let out = server
        .exec(
            &a,
            &a2,
            "nohup python3 -m http.server 8000 >/dev/null 2>&1 & sleep 0.7; echo up",
        )
        .await;
    assert_eq!(out.stdout, "up\n");
    let out = server
        .exec(&a, &a1, &format!("ping -c 1 -W 2 {a2} >/dev/null && curl -s -o /dev/null -w '%{{http_code}}' http://{a2}:8000/"))
        .await;
    assert_eq!(out.stdout, "200", "{out:?}");
    let out = server.exec(&a, &a2, &format!("getent hosts {a1}")).await;
    assert!(out.stdout.starts_with(&ips[0]), "{out:?}");

    // Another session's instance is out of reach, and so is the host.
    let out = server
        .exec(
            &b,
            &b1,
            &format!(
                "ping -c 1 -W 2 {} 2>&1; curl -s -m 3 http://{}:8000/; echo rc=$?",
                ips[1], ips[1]
            ),
        )
        .await;
    assert!(
        out.stdout.contains("rc=7") || out.stdout.contains("rc=28"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("1 received"), "{out:?}");
    let gateway = b_ip.rsplit_once('.').unwrap().0.to_string() + ".1";
    let port = server.base.rsplit(':').next().unwrap();
    let out = server
        .exec(
            &b,
            &b1,
            &format!("curl -s -m 3 http://{gateway}:{port}/healthz; echo rc=$?"),
        )
        .await;
    assert!(!out.stdout.contains("ok"), "reached the host: {out:?}");

    // Deleting an instance updates everyone's /etc/hosts.
    server.delete_instance(&a, &a2).await;
    let out = server.exec(&a, &a1, "cat /etc/hosts").await;
    assert!(
        out.stdout.contains(&a1) && !out.stdout.contains(&a2),
        "{out:?}"
    );

    // The session's bridge goes with it.
    let bridge = bridge_name(&a);
    assert!(std::path::Path::new("/sys/class/net")
        .join(&bridge)
        .exists());
    for sid in [&a, &b] {
        server.delete_session(sid).await;
        let left = wait_until_clean(sid, server.data_dir.path(), Duration::from_secs(20)).await;
        assert!(left.is_empty(), "left behind: {left:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_stream_reports_instances_ports_and_the_end() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    let url = server.ws_url(&format!("/api/sessions/{sid}/events"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    match next_event(&mut ws).await {
        Some(SessionEvent::Snapshot { session }) => assert_eq!(session.instances.len(), 1),
        other => panic!("expected a snapshot first, got {other:?}"),
    }

    // A port opens: reported within 2 seconds, with a link.
    server
        .exec(
            &sid,
            &name,
            "nohup python3 -m http.server 8123 >/dev/null 2>&1 &",
        )
        .await;
    let opened = Instant::now();
    loop {
        match next_event(&mut ws).await {
            Some(SessionEvent::PortsChanged { name: n, ports })
                if ports.iter().any(|p| p.port == 8123) =>
            {
                assert_eq!(n, name);
                assert!(!ports[0].url.is_empty());
                break;
            }
            Some(_) => continue,
            None => panic!("no ports_changed event"),
        }
    }
    // python3 needs a moment to start; the playground's share is the rest.
    assert!(
        opened.elapsed() < Duration::from_secs(3),
        "took {:?}",
        opened.elapsed()
    );
    let info = server.session(&sid).await.unwrap();
    assert!(info.instances[0].ports.iter().any(|p| p.port == 8123));

    // It closes: reported too.
    server
        .exec(&sid, &name, "pkill -f http.server; sleep 0.2")
        .await;
    let closed = Instant::now();
    loop {
        match next_event(&mut ws).await {
            Some(SessionEvent::PortsChanged { ports, .. }) if ports.is_empty() => break,
            Some(_) => continue,
            None => panic!("no ports_changed event for the close"),
        }
    }
    assert!(closed.elapsed() < Duration::from_secs(2));

    // Instances come and go.
    let second = server.add_instance(&sid).await;
    loop {
        match next_event(&mut ws).await {
            Some(SessionEvent::InstanceAdded { instance }) => {
                assert_eq!(instance.name, second);
                break;
            }
            Some(_) => continue,
            None => panic!("no instance_added event"),
        }
    }
    server.delete_instance(&sid, &second).await;
    loop {
        match next_event(&mut ws).await {
            Some(SessionEvent::InstanceRemoved { name: n }) => {
                assert_eq!(n, second);
                break;
            }
            Some(_) => continue,
            None => panic!("no instance_removed event"),
        }
    }

    // The end.
    server.delete_session(&sid).await;
    loop {
        match next_event(&mut ws).await {
            Some(SessionEvent::Ended) => break,
            Some(_) => continue,
            None => panic!("no ended event"),
        }
    }
    assert!(leftovers(&sid, server.data_dir.path()).bridges.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_ending_soon_is_announced() {
    // A 6-minute session is within the 5-minute warning after a minute; use
    // a 4-minute one, which is inside it from the start.
    let server = TestServer::start(&["--session-ttl=4m"]).await;
    let sid = server.create_session().await.id;
    let url = server.ws_url(&format!("/api/sessions/{sid}/events"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut warned = false;
    while Instant::now() < deadline && !warned {
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_secs(2), ws.next()).await
        {
            if let Ok(SessionEvent::EndingSoon { expires_in_secs }) = serde_json::from_str(&text) {
                assert!(expires_in_secs <= 240);
                warned = true;
            }
        }
    }
    assert!(warned, "no ending_soon event");
    server.stop().await;
}

/// A stand-in for the outside world: a network namespace of this test's own,
/// linked to the host by a veth pair, with a public-range address (where NAT
/// must work) and a private-range one (which instances must not reach), and
/// a web server that answers with the address it sees the client at.
struct Outside {
    netns: String,
    host_end: String,
    server: std::process::Child,
}

impl Outside {
    fn start() -> Outside {
        let tag = format!("{:x}", std::process::id() & 0xffff);
        let netns = format!("pgtest-out-{tag}");
        let host_end = format!("pgto{tag}");
        let ns_end = format!("pgti{tag}");
        let ip = |args: &str| {
            let status = std::process::Command::new("ip")
                .args(args.split_whitespace())
                .status()
                .unwrap();
            assert!(status.success(), "ip {args}");
        };
        ip(&format!("netns add {netns}"));
        ip(&format!("link add {host_end} type veth peer name {ns_end}"));
        ip(&format!("link set {ns_end} netns {netns}"));
        ip(&format!("addr add 198.18.0.1/24 dev {host_end}"));
        ip(&format!("addr add 192.168.77.1/24 dev {host_end}"));
        ip(&format!("link set {host_end} up"));
        ip(&format!("-n {netns} addr add 198.18.0.2/24 dev {ns_end}"));
        ip(&format!("-n {netns} addr add 192.168.77.2/24 dev {ns_end}"));
        ip(&format!("-n {netns} link set {ns_end} up"));
        ip(&format!("-n {netns} link set lo up"));
        let script = r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('0.0.0.0', 8080), H).serve_forever()
"#;
        let server = std::process::Command::new("ip")
            .args(["netns", "exec", &netns, "python3", "-c", script])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        Outside {
            netns,
            host_end,
            server,
        }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_end])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_nat_egress_instances_reach_public_addresses_only() {
    let outside = Outside::start();
    let before = nft_tables();
    let (server, sid, name) =
        TestServer::with_instance(&["--egress=nat", "--network-pool=10.123.0.0/16"]).await;
    let peer = server.add_instance(&sid).await;

    // Instances of the session still reach each other (bridged traffic
    // crosses the host's filters when br_netfilter is on).
    let out = server
        .exec(
            &sid,
            &name,
            &format!("ping -c 1 -W 2 {peer} >/dev/null && echo reached"),
        )
        .await;
    assert_eq!(out.stdout, "reached\n", "{out:?}");

    // Out through NAT: the outside server sees the host's address.
    let out = server
        .exec(
            &sid,
            &name,
            "curl -s -m 5 http://198.18.0.2:8080/; echo; cat /etc/resolv.conf",
        )
        .await;
    assert!(out.stdout.starts_with("198.18.0.1\n"), "{out:?}");
    assert!(out.stdout.contains("nameserver 1.1.1.1"), "{out:?}");

    // Private ranges and the host itself stay out of reach.
    let out = server
        .exec(
            &sid,
            &name,
            "curl -s -m 3 http://192.168.77.2:8080/; echo rc=$?",
        )
        .await;
    assert!(
        !out.stdout.contains("192.168.77.1") && !out.stdout.contains("rc=0"),
        "{out:?}"
    );
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let out = server
        .exec(
            &sid,
            &name,
            &format!("curl -s -m 3 http://10.123.0.1:{port}/healthz; echo rc=$?"),
        )
        .await;
    assert!(
        !out.stdout.contains("ok") && !out.stdout.contains("rc=0"),
        "reached the host: {out:?}"
    );

    let during = nft_tables();
    let ours: Vec<&String> = during.iter().filter(|t| !before.contains(t)).collect();
    assert_eq!(ours.len(), 1, "expected one new nftables table: {during:?}");
    let ours = ours[0].clone();
    // The egress rules stay while instances may run, and go with a teardown
    // (which `stop` runs).
    server.stop().await;
    assert!(!nft_tables().contains(&ours), "{ours} is still there");
    drop(outside);
}

fn nft_tables() -> Vec<String> {
    let out = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}
