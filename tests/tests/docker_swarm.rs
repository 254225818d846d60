//! Swarm across a session's instances with the real dockerd of the nesting
//! profile: `swarm init` on node1, `join` on node2 and node3, an overlay
//! network between them (VXLAN over the session's network), a replicated
//! service with DNS round robin published on every node's own port, and
//! the clear refusal of what needs IPVS (the routing mesh, virtual IPs),
//! which the kernel refuses in a user namespace. Needs root.

use playground_protocol::ExecResponse;
use playground_tests::TestServer;

fn ok(out: &ExecResponse, what: &str) {
    assert_eq!(
        out.exit_code, 0,
        "{what} failed:\n{}{}",
        out.stdout, out.stderr
    );
}

#[tokio::test]
async fn a_three_node_swarm_serves_a_replicated_service_from_every_node() {
    let server = TestServer::start(&["--instance-profile=nesting"]).await;
    let sid = server.create_session().await.id;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(server.add_instance(&sid).await);
    }
    let session = server.session(&sid).await.unwrap();
    let ip = |name: &str| {
        session
            .instances
            .iter()
            .find(|i| i.name == name)
            .and_then(|i| i.ip.clone())
            .unwrap()
    };
    let manager = ip(&nodes[0]);

    let init = server
        .run(
            &sid,
            &nodes[0],
            &format!(
                "docker swarm init --advertise-addr {manager} && docker swarm join-token -q worker"
            ),
        )
        .await;
    ok(&init, "swarm init");
    let token = init.stdout.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("SWMTKN-"), "{}", init.stdout);
    for node in &nodes[1..] {
        let join = server
            .run(
                &sid,
                node,
                &format!("docker swarm join --token {token} {manager}:2377"),
            )
            .await;
        ok(&join, "swarm join");
        assert!(
            join.stdout.contains("joined a swarm as a worker"),
            "{}",
            join.stdout
        );
    }
    let ls = server
        .run(
            &sid,
            &nodes[0],
            "docker node ls --format '{{.Hostname}} {{.Status}}'",
        )
        .await;
    ok(&ls, "node ls");
    for node in &nodes {
        assert!(
            ls.stdout.contains(&format!("{node} Ready")),
            "{}",
            ls.stdout
        );
    }

    // One task per node (max one per node), each publishing port 8080 of its node.
    let create = server
        .run(
            &sid,
            &nodes[0],
            "docker network create -d overlay --attachable web-net && \
             docker service create --name web --replicas 3 --replicas-max-per-node 1 \
               --endpoint-mode dnsrr --network web-net \
               --publish mode=host,published=8080,target=80 nginx",
        )
        .await;
    ok(&create, "service create");
    let ps = server
        .run(
            &sid,
            &nodes[0],
            "for i in $(seq 60); do \
               n=$(docker service ps web --filter desired-state=running --format '{{.CurrentState}}' | grep -c Running); \
               [ \"$n\" = 3 ] && break; sleep 1; done; \
             docker service ps web --format '{{.Node}} {{.CurrentState}}'",
        )
        .await;
    for node in &nodes {
        assert!(
            ps.stdout.contains(&format!("{node} Running")),
            "a task on every node:\n{}",
            ps.stdout
        );
    }
    // Every node answers on its own address, asked from every node.
    for from in &nodes {
        let mut script = String::new();
        for node in &nodes {
            script.push_str(&format!(
                "curl -s -o /dev/null -w '{node} %{{http_code}}\\n' --retry 10 --retry-all-errors --retry-delay 1 http://{}:8080/; ",
                ip(node)
            ));
        }
        let out = server.run(&sid, from, &script).await;
        for node in &nodes {
            assert!(
                out.stdout.contains(&format!("{node} 200")),
                "{from} reaching {node}:\n{}{}",
                out.stdout,
                out.stderr
            );
        }
    }
    // Over the overlay network, the service name resolves to all three tasks.
    let dns = server
        .run(
            &sid,
            &nodes[0],
            "docker run --rm --network web-net busybox nslookup web | grep -c '^Address: 10\\.'",
        )
        .await;
    ok(&dns, "nslookup over the overlay network");
    assert_eq!(dns.stdout.trim(), "3", "{}", dns.stdout);
    let fetched = server
        .run(
            &sid,
            &nodes[0],
            "docker run --rm --network web-net busybox wget -qO- http://web/",
        )
        .await;
    ok(&fetched, "wget over the overlay network");
    assert!(
        fetched.stdout.contains("Welcome to nginx"),
        "{}",
        fetched.stdout
    );

    // What needs IPVS is refused with the reason, and nothing is created.
    let mesh = server
        .exec(
            &sid,
            &nodes[0],
            "docker service create --name mesh -p 8081:80 nginx",
        )
        .await;
    assert_eq!(mesh.exit_code, 1, "{}{}", mesh.stdout, mesh.stderr);
    assert!(mesh.stderr.contains("routing mesh"), "{}", mesh.stderr);
    assert!(mesh.stderr.contains("mode=host"), "{}", mesh.stderr);
    let vip = server
        .exec(
            &sid,
            &nodes[0],
            "docker service create --name vip --network web-net nginx",
        )
        .await;
    assert_eq!(vip.exit_code, 1, "{}{}", vip.stdout, vip.stderr);
    assert!(
        vip.stderr.contains("--endpoint-mode dnsrr"),
        "{}",
        vip.stderr
    );
    let services = server
        .run(&sid, &nodes[0], "docker service ls --format '{{.Name}}'")
        .await;
    assert_eq!(services.stdout.trim(), "web", "{}", services.stdout);

    server.finish(&sid).await;
}
