//! Containers' networks inside an instance, like Docker's default bridge:
//! each container has its own network namespace with an address on the
//! instance's `docker0`, reaches the instance, the other containers and
//! (through the instance's address) the session's other instances;
//! `--network host` and `--network none` work as with Docker. Needs root.

use playground_tests::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn containers_get_addresses_on_the_instance_bridge() {
    let (server, sid, node1) = TestServer::with_instance(&[]).await;
    let node2 = server.add_instance(&sid).await;
    let (sid, node1, node2) = (sid.as_str(), node1.as_str(), node2.as_str());

    // The first container: eth0 with the first address, the default route
    // through the bridge, its own name in /etc/hosts.
    let out = server.run(sid,
        node1,
        "docker run --rm --name first busybox sh -c 'ip -4 -o addr show eth0; ip -o link show eth0; ip route; grep -c \"$(hostname)\" /etc/hosts'",
    )
    .await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert!(out.stdout.contains("inet 172.17.0.2/16"), "{out:?}");
    assert!(
        out.stdout.contains("link/ether 02:42:ac:11:00:02"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("default via 172.17.0.1 dev eth0"),
        "{out:?}"
    );
    assert!(out.stdout.ends_with("1\n"), "{out:?}");
    // The instance has the bridge, with the gateway address.
    let out = server.run(sid, node1, "ip -4 -o addr show docker0").await;
    assert!(out.stdout.contains("inet 172.17.0.1/16"), "{out:?}");

    // A server in one container: reachable from the instance and from
    // another container by its address (inspect tells it).
    let out = server.run(sid,
        node1,
        "mkdir -p /srv/www && echo served-by-web > /srv/www/index.html && docker run -d --name web -v /srv/www:/www busybox httpd -f -p 80 -h /www >/dev/null && docker inspect -f '{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}} {{.NetworkSettings.MacAddress}} {{.HostConfig.NetworkMode}}' web",
    )
    .await;
    assert_eq!(
        out.stdout, "172.17.0.2 172.17.0.1 02:42:ac:11:00:02 bridge\n",
        "{out:?}"
    );
    let out = server.run(sid,
        node1,
        "for i in $(seq 50); do curl -sf http://172.17.0.2/ && break; sleep 0.1; done; docker run --rm busybox sh -c 'ip -4 -o addr show eth0; wget -qO- http://172.17.0.2/'",
    )
    .await;
    assert!(out.stdout.starts_with("served-by-web\n"), "{out:?}");
    assert!(out.stdout.contains("inet 172.17.0.3/16"), "{out:?}");
    assert!(out.stdout.ends_with("served-by-web\n"), "{out:?}");

    // Out through the instance's address: a container of node1 fetches a
    // page from node2 (by its session hostname), which sees node1's address.
    let out = server.run(sid,
        node2,
        "cd /tmp && echo from-node2 > page && (python3 -m http.server 8000 >/tmp/log 2>&1 &) && for i in $(seq 50); do curl -sf localhost:8000/page >/dev/null && break; sleep 0.1; done; hostname -I",
    )
    .await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    let out = server
        .run(
            sid,
            node1,
            &format!("docker run --rm busybox wget -qO- http://{node2}:8000/page; hostname -I"),
        )
        .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"from-node2"), "{out:?}");
    let node1_ip = lines[1].split_whitespace().next().unwrap().to_string();
    let log = server.run(sid, node2, "cat /tmp/log").await;
    assert!(
        log.stdout.contains(&format!("{node1_ip} - - ")),
        "node2 sees the container as node1 ({node1_ip}): {log:?}"
    );

    // Each instance has a bridge of its own: node2's first container gets
    // the first address too, and does not reach node1's containers.
    let out = server.run(sid,
        node2,
        "docker run --rm busybox sh -c 'ip -4 -o addr show eth0; wget -T 2 -qO- http://172.17.0.2/ || echo unreachable'",
    )
    .await;
    assert!(out.stdout.contains("inet 172.17.0.2/16"), "{out:?}");
    assert!(out.stdout.ends_with("unreachable\n"), "{out:?}");

    // --network none: loopback only; --network host: the instance's
    // interfaces; an unknown network: Docker's message.
    let out = server.run(sid,
        node1,
        "docker run --rm --network none busybox ip -o link | cut -d: -f2; echo ---; docker run --rm --network host busybox ip -o link | cut -d: -f2; docker run --rm --network nosuch busybox true; echo code=$?",
    )
    .await;
    let (none, rest) = out.stdout.split_once("---\n").expect("two parts");
    assert_eq!(none.trim(), "lo", "{out:?}");
    assert!(
        rest.contains(" eth0") && rest.contains(" docker0"),
        "{out:?}"
    );
    assert!(rest.ends_with("code=125\n"), "{out:?}");
    assert!(out.stderr.contains("network nosuch not found"), "{out:?}");

    // Stopping frees the address: the next container gets it.
    let out = server
        .run(
            sid,
            node1,
            "docker rm -f web >/dev/null; docker run --rm busybox ip -4 -o addr show eth0",
        )
        .await;
    assert!(out.stdout.contains("inet 172.17.0.2/16"), "{out:?}");

    server.finish(sid).await;
}
