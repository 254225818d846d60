//! `docker run -p` / `-P`: a container's port published on the instance,
//! where programs in the instance, the session's port list and the
//! playground's proxy find it like any other listening port. Needs root.

use std::time::{Duration, Instant};

use playground_tests::{bridge_name, proxy_client, wait_listed, wait_until_clean, TestServer};

/// GET `link` (a `*.localhost` name of the playground's proxy) from the test.
async fn through_proxy(link: &str) -> String {
    let url = reqwest::Url::parse(link).unwrap();
    let client = proxy_client(&url);
    // nginx may still be starting: the proxy then answers 502.
    for _ in 0..50 {
        let response = client.get(url.clone()).send().await.unwrap();
        if response.status() == 200 {
            return response.text().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{link} never answered 200");
}

/// Fetch a page on the instance, retrying while the container starts (a
/// published port whose container does not accept yet closes at once).
const CURL: &str = "curl -s --retry 20 --retry-delay 1 --retry-all-errors";

#[tokio::test(flavor = "multi_thread")]
async fn published_ports_reach_containers_from_the_instance_and_the_proxy() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let (sid, node) = (sid.as_str(), node.as_str());

    let out = server
        .run(
            sid,
            node,
            "docker run -d --name web -p 8080:80 nginx >/dev/null && echo started",
        )
        .await;
    assert_eq!(out.stdout, "started\n", "{out:?}");
    let link = wait_listed(&server, sid, 8080, true, Duration::from_secs(2))
        .await
        .unwrap();
    let out = server
        .run(
            sid,
            node,
            &format!("{CURL} localhost:8080 | grep -c '<h1>Welcome to nginx'"),
        )
        .await;
    assert_eq!(out.stdout, "1\n", "{out:?}");
    assert!(through_proxy(&link).await.contains("<h1>Welcome to nginx"));

    let out = server.run(sid, node, "docker ps --format '{{.Names}} {{.Ports}}'; docker port web; docker inspect -f '{{json .HostConfig.PortBindings}}' web").await;
    assert_eq!(
        out.stdout,
        "web 0.0.0.0:8080->80/tcp\n80/tcp -> 0.0.0.0:8080\n{\"80/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"8080\"}]}\n",
        "{out:?}"
    );

    // A taken port: the start fails as Docker's does, the container stays created.
    let out = server.run(sid, node, "docker run -d --name web2 -p 8080:80 nginx; echo code=$?; docker ps -a --filter name=web2 --format '{{.Status}}'; docker rm web2 >/dev/null").await;
    assert!(out.stdout.ends_with("code=125\nCreated\n"), "{out:?}");
    assert!(
        out.stderr
            .contains("driver failed programming external connectivity on endpoint web2 (")
            && out
                .stderr
                .contains("): Bind for 0.0.0.0:8080 failed: port is already allocated"),
        "{out:?}"
    );

    // -P and -p 80: free ports of the instance's ephemeral range; a
    // binding on one address.
    let out = server.run(sid, node, "docker run -d --name all -P nginx >/dev/null && docker run -d --name one -p 80 nginx >/dev/null && docker run -d --name local -p 127.0.0.1:8081:80 nginx >/dev/null && docker port all && docker port one && docker port local").await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    let mut free = Vec::new();
    for line in &lines[..2] {
        let port: u16 = line
            .strip_prefix("80/tcp -> 0.0.0.0:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{out:?}"));
        assert!(port >= 32768, "{out:?}");
        free.push(port);
    }
    assert_ne!(free[0], free[1]);
    assert_eq!(lines[2], "80/tcp -> 127.0.0.1:8081", "{out:?}");
    let out = server.run(sid, node, &format!("for p in {} {} 8081; do {CURL} localhost:$p | grep -c '<h1>Welcome to nginx'; done; hostname -I | cut -d' ' -f1 > /tmp/ip; curl -s localhost:8081 >/dev/null && curl -s $(cat /tmp/ip):8081; echo code=$?", free[0], free[1])).await;
    // Bound on loopback only: not on the instance's own address.
    assert_eq!(out.stdout, "1\n1\n1\ncode=7\n", "{out:?}");
    for port in [free[0], free[1], 8081] {
        wait_listed(&server, sid, port, true, Duration::from_secs(2)).await;
    }
    let out = server
        .run(sid, node, "docker rm -f all one local >/dev/null; echo $?")
        .await;
    assert_eq!(out.stdout, "0\n", "{out:?}");
    for port in [free[0], free[1], 8081] {
        wait_listed(&server, sid, port, false, Duration::from_secs(2)).await;
    }

    // Both directions, each side's end passed on as a half-close: the
    // container answers once the client's input ends.
    let out = server.run(sid, node, "docker run -d --name count -p 9001:9000 busybox nc -l -p 9000 -e wc -c >/dev/null && sleep 1 && python3 -c \"
import socket
s = socket.create_connection(('127.0.0.1', 9001))
s.sendall(b'x' * 3000000)
s.shutdown(socket.SHUT_WR)
print(s.makefile().read().strip())
\"; docker rm -f count >/dev/null").await;
    assert_eq!(out.stdout, "3000000\n", "{out:?}");

    // Stopped: the port is gone; started again: back.
    let out = server.run(sid, node, "docker stop web >/dev/null; curl -s localhost:8080; echo code=$?; docker port web; docker ps -a --format '{{.Names}} {{.Ports}}'").await;
    assert_eq!(out.stdout, "code=7\nweb \n", "{out:?}");
    wait_listed(&server, sid, 8080, false, Duration::from_secs(2)).await;
    let out = server
        .run(
            sid,
            node,
            &format!(
            "docker start web >/dev/null && {CURL} localhost:8080 | grep -c '<h1>Welcome to nginx'"
        ),
        )
        .await;
    assert_eq!(out.stdout, "1\n", "{out:?}");
    wait_listed(&server, sid, 8080, true, Duration::from_secs(2)).await;
    // A container whose process ends by itself lets go of its ports too.
    let out = server
        .run(
            sid,
            node,
            "docker run -d --name brief -p 8082:80 busybox sleep 1 >/dev/null; docker wait brief",
        )
        .await;
    assert_eq!(out.stdout, "0\n", "{out:?}");
    wait_listed(&server, sid, 8082, false, Duration::from_secs(2)).await;
    // Removed by force: gone.
    let out = server
        .run(
            sid,
            node,
            "docker rm -f web >/dev/null; curl -s localhost:8080; echo code=$?",
        )
        .await;
    assert_eq!(out.stdout, "code=7\n", "{out:?}");
    wait_listed(&server, sid, 8080, false, Duration::from_secs(2)).await;

    // Deleting the session with a published port open leaves nothing: the
    // listener held the instance's network namespace, and with it the
    // host's end of its veth pair.
    let out = server.run(sid, node, &format!("docker run -d --name last -p 8080:80 nginx >/dev/null && {CURL} localhost:8080 >/dev/null; echo $?")).await;
    assert_eq!(out.stdout, "0\n", "{out:?}");
    let veths = bridge_ports(sid);
    assert_eq!(veths.len(), 1, "{veths:?}");
    let data_dir = server.data_dir.path().to_path_buf();
    server.delete_session(sid).await;
    let left = wait_until_clean(sid, &data_dir, Duration::from_secs(20)).await;
    assert!(left.is_empty(), "left behind: {left:?}");
    veths_gone(&veths).await;
    server.stop().await;
}

/// The host's ends of the veth pairs on the session's bridge.
fn bridge_ports(sid: &str) -> Vec<String> {
    let dir = format!("/sys/class/net/{}/brif", bridge_name(sid));
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Wait until none of `veths` is left on the host.
async fn veths_gone(veths: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<&String> = veths
            .iter()
            .filter(|v| std::path::Path::new("/sys/class/net").join(v).exists())
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "veths left behind: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_server_publishes_running_containers_ports_again() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let (sid, node) = (sid.as_str(), node.as_str());
    let out = server.run(sid, node, &format!("docker run -d --name web -p 8080:80 nginx >/dev/null && {CURL} localhost:8080 | grep -c '<h1>Welcome to nginx'")).await;
    assert_eq!(out.stdout, "1\n", "{out:?}");
    wait_listed(&server, sid, 8080, true, Duration::from_secs(2)).await;

    // The listeners die with the server; the container does not.
    let data_dir = server.crash().await;
    let server = TestServer::start_in(data_dir, &[]).await;
    let link = wait_listed(&server, sid, 8080, true, Duration::from_secs(10))
        .await
        .unwrap();
    let out = server
        .run(
            sid,
            node,
            "curl -s localhost:8080 | grep -c '<h1>Welcome to nginx'; docker port web",
        )
        .await;
    assert_eq!(out.stdout, "1\n80/tcp -> 0.0.0.0:8080\n", "{out:?}");
    assert!(through_proxy(&link).await.contains("<h1>Welcome to nginx"));
    let out = server
        .run(
            sid,
            node,
            "docker stop web >/dev/null; curl -s localhost:8080; echo code=$?",
        )
        .await;
    assert_eq!(out.stdout, "code=7\n", "{out:?}");

    let veths = bridge_ports(sid);
    let data_dir = server.data_dir.path().to_path_buf();
    server.delete_session(sid).await;
    let left = wait_until_clean(sid, &data_dir, Duration::from_secs(20)).await;
    assert!(left.is_empty(), "left behind: {left:?}");
    veths_gone(&veths).await;
    server.stop().await;
}
