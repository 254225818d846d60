//! The nesting profile end to end: the real dockerd, containerd, runc,
//! BuildKit (buildx) of Debian 13 inside an instance, pulling through the
//! registry mirror the playground serves from its offline images, driven
//! by the real `docker` client, with the assertions on what that client
//! prints. Also what a learner does by hand to see how containers are made
//! (namespaces, mounts, veths, nftables, cgroups, without Docker), the
//! socket-activated dockerd's start and restart, an instance that never
//! uses Docker running no dockerd, and containers surviving a `kill -9` of
//! the server. Needs root.

use std::time::{Duration, Instant};

use playground_protocol::ExecResponse;
use playground_tests::{proxy_client, wait_listed, walkthrough, TestServer};

const NESTING: &str = "--instance-profile=nesting";

/// What one command may take on a busy shared machine (a first `docker
/// run` starts dockerd and pulls).
const EXEC_SECS: u64 = 300;

/// A server of the nesting profile with a session and one instance.
async fn nesting() -> (TestServer, String, String) {
    TestServer::with_instance(&[NESTING]).await
}

/// Run `script` with `sh -c` in the instance, with a time limit generous
/// enough for a busy machine; logged (shown when a test fails).
async fn exec(server: &TestServer, sid: &str, node: &str, script: &str) -> ExecResponse {
    let response = server
        .http
        .post(server.url(&format!("/api/sessions/{sid}/instances/{node}/exec")))
        .json(&serde_json::json!({
            "cmd": ["sh", "-c", script],
            "timeout_secs": EXEC_SECS,
        }))
        .timeout(Duration::from_secs(EXEC_SECS + 60))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "exec {script}");
    let out: ExecResponse = response.json().await.unwrap();
    eprintln!(
        "[{node}] $ {script}\n{}{}[exit {}]",
        out.stdout, out.stderr, out.exit_code
    );
    assert!(!out.timed_out, "timed out: {script}");
    out
}

/// `exec` that must succeed; its standard output.
async fn ok(server: &TestServer, sid: &str, node: &str, script: &str) -> String {
    let out = exec(server, sid, node, script).await;
    assert_eq!(out.exit_code, 0, "{script}\n{out:?}");
    out.stdout
}

/// Poll `script`'s output until `done` accepts it (or panic after `within`).
async fn poll(
    server: &TestServer,
    sid: &str,
    node: &str,
    script: &str,
    within: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let since = Instant::now();
    loop {
        let out = exec(server, sid, node, script).await;
        if done(&out.stdout) {
            return out.stdout;
        }
        assert!(
            since.elapsed() < within,
            "{script} never gave what was expected within {within:?}: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// GET a proxy link from the test, retrying while the server behind it
/// starts (the proxy answers 502 meanwhile).
async fn through_proxy(link: &str) -> String {
    let url = reqwest::Url::parse(link).unwrap();
    let client = proxy_client(&url);
    let mut last = String::new();
    for _ in 0..100 {
        match client.get(url.clone()).send().await {
            Ok(response) if response.status() == 200 => return response.text().await.unwrap(),
            Ok(response) => last = format!("{}", response.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("{link} never answered 200: {last}");
}

/// The pids of the dockerd processes running in the instance.
async fn dockerd_pids(server: &TestServer, sid: &str, node: &str) -> Vec<String> {
    let out = exec(server, sid, node, "pgrep -x dockerd").await;
    // pgrep: 0 when found, 1 when not; anything else is pgrep failing.
    assert!(out.exit_code <= 1, "{out:?}");
    out.stdout.lines().map(String::from).collect()
}

// (1) The walkthrough of the strict profile's test, word for word.

#[tokio::test(flavor = "multi_thread")]
async fn the_play_with_docker_walkthrough_on_the_real_dockerd() {
    let (server, sid, node) = nesting().await;
    walkthrough::play_with_docker(&server, &sid, &node).await;
    // It was the real one: dockerd runs in the instance.
    assert_eq!(dockerd_pids(&server, &sid, &node).await.len(), 1);
    server.finish(&sid).await;
}

// (2) What Docker tutorials do after the walkthrough.

#[tokio::test(flavor = "multi_thread")]
async fn user_defined_networks_and_named_volumes() {
    let (server, sid, node) = nesting().await;
    let (sid, node) = (sid.as_str(), node.as_str());

    // A user-defined network: containers on it find each other by name.
    let out = ok(&server, sid, node, "docker network create learn-net").await;
    let net_id = out.trim();
    assert!(walkthrough::is_hex(net_id, 64), "{out}");
    ok(
        &server,
        sid,
        node,
        "docker run -d --name web --network learn-net nginx >/dev/null && docker run -d --name client busybox sleep 100000 >/dev/null",
    )
    .await;
    // The client is on the default bridge only: the name means nothing there.
    let out = exec(
        &server,
        sid,
        node,
        "docker exec client wget -q -O- http://web/",
    )
    .await;
    assert_eq!(out.exit_code, 1, "{out:?}");
    assert!(out.stderr.contains("wget: bad address 'web'"), "{out:?}");
    ok(
        &server,
        sid,
        node,
        "docker network connect learn-net client",
    )
    .await;
    let page = poll(
        &server,
        sid,
        node,
        // (Not wget's -T: Debian's busybox 1.35 crashes on it, on the
        // host too.)
        "docker exec client timeout 10 wget -q -O- http://web/",
        Duration::from_secs(60),
        |out| out.contains("<h1>Welcome to nginx!</h1>"),
    )
    .await;
    assert!(page.contains("<title>Welcome to nginx!</title>"), "{page}");
    // And back: web resolves the client by name, to the client's address
    // on that network.
    let out = ok(&server, sid, node, "docker exec web getent hosts client | cut -d' ' -f1; docker inspect -f '{{(index .NetworkSettings.Networks \"learn-net\").IPAddress}}' client").await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], lines[1], "{out}");
    let out = ok(
        &server,
        sid,
        node,
        "docker network inspect -f '{{.Name}} {{.Driver}} {{.Id}}' learn-net; docker network inspect -f '{{range .Containers}}{{.Name}}{{println}}{{end}}' learn-net | sort; docker network ls --format '{{.Name}}' | sort",
    )
    .await;
    assert_eq!(
        out,
        format!("learn-net bridge {net_id}\n\nclient\nweb\nbridge\nhost\nlearn-net\nnone\n"),
        "{out}"
    );
    let out = ok(
        &server,
        sid,
        node,
        "docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' client",
    )
    .await;
    assert_eq!(out, "bridge learn-net \n", "{out}");
    ok(
        &server,
        sid,
        node,
        "docker rm -f web client >/dev/null && docker network rm learn-net",
    )
    .await;
    let out = ok(
        &server,
        sid,
        node,
        "docker network ls --format '{{.Name}}' | sort",
    )
    .await;
    assert_eq!(out, "bridge\nhost\nnone\n");

    // A named volume: what one container writes, another reads.
    let out = ok(&server, sid, node, "docker volume create learn-data").await;
    assert_eq!(out, "learn-data\n");
    let out = ok(&server, sid, node, "docker volume ls").await;
    let rows = walkthrough::rows(&out);
    assert_eq!(rows, ["DRIVER VOLUME NAME", "local learn-data"], "{out}");
    ok(
        &server,
        sid,
        node,
        "docker run --rm -v learn-data:/data busybox sh -c 'echo written-by-$(hostname) > /data/note; seq 1000 > /data/numbers'",
    )
    .await;
    let out = ok(
        &server,
        sid,
        node,
        "docker run --rm -v learn-data:/in:ro debian:bookworm-slim sh -c 'cat /in/note | cut -c1-11; wc -l < /in/numbers; touch /in/x 2>&1 || echo read-only'",
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "written-by-", "{out}");
    assert_eq!(lines[1], "1000", "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert_eq!(lines.last(), Some(&"read-only"), "{out}");
    let out = ok(
        &server,
        sid,
        node,
        "docker volume inspect -f '{{.Driver}} {{.Mountpoint}}' learn-data",
    )
    .await;
    assert_eq!(out, "local /var/lib/docker/volumes/learn-data/_data\n");
    let out = ok(
        &server,
        sid,
        node,
        "docker volume rm learn-data && docker volume ls -q | wc -l",
    )
    .await;
    assert_eq!(out, "learn-data\n0\n");

    server.finish(sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cp_commit_and_save_load_round_trips() {
    let (server, sid, node) = nesting().await;
    let (sid, node) = (sid.as_str(), node.as_str());

    // docker cp both ways: 5 MB of random bytes, byte for byte.
    ok(
        &server,
        sid,
        node,
        "head -c 5000000 /dev/urandom > /root/blob && docker run -d --name box busybox sleep 100000 >/dev/null",
    )
    .await;
    let sum = ok(&server, sid, node, "sha256sum < /root/blob").await;
    assert!(walkthrough::is_hex(&sum[..64], 64), "{sum}");
    let sum = sum[..64].to_string();
    ok(&server, sid, node, "docker cp /root/blob box:/blob").await;
    let out = ok(
        &server,
        sid,
        node,
        "docker exec box sh -c 'sha256sum < /blob; stat -c %s /blob'",
    )
    .await;
    assert_eq!(out, format!("{sum}  -\n5000000\n"), "in the container");
    ok(
        &server,
        sid,
        node,
        "docker exec box sh -c 'cp /blob /blob2 && echo tail >> /blob2' && docker cp box:/blob2 /root/back && docker cp box:/blob /root/same",
    )
    .await;
    let out = ok(
        &server,
        sid,
        node,
        "sha256sum < /root/same; stat -c %s /root/same /root/back; head -c 5000000 /root/back | sha256sum; tail -c 5 /root/back",
    )
    .await;
    assert_eq!(
        out,
        format!("{sum}  -\n5000000\n5000005\n{sum}  -\ntail\n"),
        "copied back"
    );

    // commit: the container's change is in the new image.
    ok(
        &server,
        sid,
        node,
        "docker exec box sh -c 'echo committed-$((6*7)) > /etc/mark; rm /bin/vi'",
    )
    .await;
    let out = ok(
        &server,
        sid,
        node,
        "docker commit -m 'a mark' -c 'ENV MARKED=yes' box learn/marked:1",
    )
    .await;
    assert!(
        out.trim()
            .strip_prefix("sha256:")
            .is_some_and(|h| walkthrough::is_hex(h, 64)),
        "{out}"
    );
    let out = ok(
        &server,
        sid,
        node,
        "docker run --rm learn/marked:1 sh -c 'cat /etc/mark; echo $MARKED; test -e /bin/vi || echo no-vi; sha256sum < /blob'",
    )
    .await;
    assert_eq!(out, format!("committed-42\nyes\nno-vi\n{sum}  -\n"));
    let image_id = ok(
        &server,
        sid,
        node,
        "docker image inspect -f '{{.Id}}' learn/marked:1",
    )
    .await;

    // save | load: gone, loaded back, runs the same.
    ok(
        &server,
        sid,
        node,
        "docker rm -f box >/dev/null && docker save learn/marked:1 | gzip > /root/marked.tar.gz",
    )
    .await;
    let out = ok(&server, sid, node, "docker rmi learn/marked:1").await;
    assert!(out.starts_with("Untagged: learn/marked:1\n"), "{out}");
    assert!(
        out.contains(&format!("Deleted: {}", image_id.trim())),
        "{out}"
    );
    let out = exec(&server, sid, node, "docker image inspect learn/marked:1").await;
    assert_eq!(out.exit_code, 1, "{out:?}");
    assert!(
        out.stderr.contains("No such image: learn/marked:1"),
        "{out:?}"
    );
    let out = ok(&server, sid, node, "docker load < /root/marked.tar.gz").await;
    assert!(out.ends_with("Loaded image: learn/marked:1\n"), "{out}");
    let out = ok(
        &server,
        sid,
        node,
        "docker image inspect -f '{{.Id}}' learn/marked:1; docker run --rm learn/marked:1 sh -c 'cat /etc/mark; sha256sum < /blob'",
    )
    .await;
    assert_eq!(
        out,
        format!("{}committed-42\n{sum}  -\n", image_id),
        "{out}"
    );

    server.finish(sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_stage_build_with_buildkit_then_cached() {
    let (server, sid, node) = nesting().await;
    let (sid, node) = (sid.as_str(), node.as_str());
    ok(
        &server,
        sid,
        node,
        r#"mkdir -p /root/app && cd /root/app && echo 'hello from the context' > message.txt && cat > Dockerfile <<'EOF'
FROM debian:bookworm-slim AS build
COPY message.txt /src/message.txt
RUN mkdir /out && cp /etc/debian_version /out/built-on && tr a-z A-Z < /src/message.txt > /out/shout
FROM busybox
COPY --from=build /out/ /app/
CMD ["cat", "/app/shout", "/app/built-on"]
EOF"#,
    )
    .await;
    let build = "cd /root/app && docker build --progress=plain -t learn/multi:1 . 2>&1";

    let first = ok(&server, sid, node, build).await;
    // BuildKit through buildx, the default builder.
    assert!(
        first.contains("building with \"default\" instance using docker driver"),
        "{first}"
    );
    let steps = |out: &str| -> (String, String) {
        let step = |what: &str| -> String {
            let line = out
                .lines()
                .find(|l| l.contains(what))
                .unwrap_or_else(|| panic!("no step {what:?} in:\n{out}"));
            line.split(' ').next().unwrap().to_string()
        };
        (
            step("[build 3/3] RUN mkdir /out"),
            step("[stage-1 2/2] COPY --from=build /out/ /app/"),
        )
    };
    let (run, copy) = steps(&first);
    assert!(first.contains(&format!("{run} DONE")), "{first}");
    assert!(!first.contains(&format!("{run} CACHED")), "{first}");
    assert!(first.contains(&format!("{copy} DONE")), "{first}");
    // ("... 0.0s done" when it took a while)
    assert!(
        first
            .lines()
            .any(|l| l.contains(" naming to docker.io/learn/multi:1 ") && l.ends_with(" done")),
        "{first}"
    );

    let out = ok(&server, sid, node, "docker run --rm learn/multi:1").await;
    assert!(out.starts_with("HELLO FROM THE CONTEXT\n12."), "{out}");
    // The final image is the busybox stage: nothing of Debian in it but
    // what was copied.
    let out = ok(
        &server,
        sid,
        node,
        "docker run --rm learn/multi:1 sh -c 'ls /app; test -e /etc/debian_version || echo no-debian; test -e /usr/bin/apt || echo no-apt'",
    )
    .await;
    assert_eq!(out, "built-on\nshout\nno-debian\nno-apt\n");

    // The same build again: every step from the cache, the same image.
    let id = ok(
        &server,
        sid,
        node,
        "docker image inspect -f '{{.Id}}' learn/multi:1",
    )
    .await;
    let second = ok(&server, sid, node, build).await;
    let (run, copy) = steps(&second);
    assert!(second.contains(&format!("{run} CACHED")), "{second}");
    assert!(second.contains(&format!("{copy} CACHED")), "{second}");
    assert!(!second.contains(&format!("{run} DONE")), "{second}");
    let again = ok(
        &server,
        sid,
        node,
        "docker image inspect -f '{{.Id}}' learn/multi:1",
    )
    .await;
    assert_eq!(again, id);

    // A changed context file: the steps after it run again.
    let third = ok(
        &server,
        sid,
        node,
        &format!(
            "echo changed > /root/app/message.txt && {build} && docker run --rm learn/multi:1"
        ),
    )
    .await;
    let (run, _) = steps(&third);
    assert!(third.contains(&format!("{run} DONE")), "{third}");
    assert!(third.contains("\nCHANGED\n12."), "{third}");

    server.finish(sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_policy_and_healthcheck() {
    let (server, sid, node) = nesting().await;
    let (sid, node) = (sid.as_str(), node.as_str());
    let state = "docker inspect -f '{{.RestartCount}} {{.State.Status}} {{.State.Pid}}' always";

    ok(
        &server,
        sid,
        node,
        "docker run -d --name always --restart=always busybox sleep 100000 >/dev/null",
    )
    .await;
    let before = ok(&server, sid, node, state).await;
    let fields: Vec<&str> = before.split_whitespace().collect();
    assert_eq!(&fields[..2], ["0", "running"], "{before}");
    let pid = fields[2].to_string();

    // Its process dies behind Docker's back (as a crash or the OOM killer
    // would end it): Docker starts it again.
    ok(&server, sid, node, &format!("kill -9 {pid}")).await;
    let after = poll(&server, sid, node, state, Duration::from_secs(60), |out| {
        let f: Vec<&str> = out.split_whitespace().collect();
        f.len() == 3 && f[0] != "0" && f[1] == "running" && f[2] != pid
    })
    .await;
    eprintln!("restarted: {after}");
    let out = ok(
        &server,
        sid,
        node,
        "docker ps --filter name=always --format '{{.Status}}'",
    )
    .await;
    assert!(out.starts_with("Up "), "{out}");

    // `docker kill` is a stop the user asked for: Docker keeps it stopped,
    // whatever the policy (as `docker stop` does), until started again.
    ok(&server, sid, node, "docker kill always").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = ok(
        &server,
        sid,
        node,
        "docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' always",
    )
    .await;
    assert_eq!(out, "exited 137\n", "{out}");
    ok(&server, sid, node, "docker start always").await;
    let out = ok(
        &server,
        sid,
        node,
        "docker inspect -f '{{.State.Status}} {{.HostConfig.RestartPolicy.Name}}' always",
    )
    .await;
    assert_eq!(out, "running always\n");

    // A HEALTHCHECK: starting, then healthy once its check passes.
    ok(
        &server,
        sid,
        node,
        "docker run -d --name checked --health-cmd 'test -e /tmp/ready' --health-interval 1s --health-retries 30 busybox sh -c 'sleep 3; touch /tmp/ready; exec sleep 100000' >/dev/null",
    )
    .await;
    let health = "docker inspect -f '{{.State.Health.Status}}' checked";
    let first = ok(&server, sid, node, health).await;
    assert_eq!(first, "starting\n");
    poll(&server, sid, node, health, Duration::from_secs(90), |out| {
        out == "healthy\n"
    })
    .await;
    let out = ok(
        &server,
        sid,
        node,
        "docker ps --filter name=checked --format '{{.Status}}'",
    )
    .await;
    assert!(out.contains("(healthy)"), "{out}");
    // And unhealthy when the check fails.
    ok(
        &server,
        sid,
        node,
        "docker run -d --name failing --health-cmd false --health-interval 1s --health-retries 2 busybox sleep 100000 >/dev/null",
    )
    .await;
    poll(
        &server,
        sid,
        node,
        "docker inspect -f '{{.State.Health.Status}}' failing",
        Duration::from_secs(90),
        |out| out == "unhealthy\n",
    )
    .await;

    server.finish(sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn published_udp_and_tcp_ports() {
    let (server, sid, node) = nesting().await;
    let (sid, node) = (sid.as_str(), node.as_str());

    // UDP: a DNS-port echo server (busybox's nc has no -u here: perl of
    // the Debian image), answered to a datagram sent from the instance.
    ok(
        &server,
        sid,
        node,
        r#"docker run -d --name udp-echo -p 53:53/udp debian:bookworm-slim perl -MIO::Socket::INET -e '$| = 1; my $s = IO::Socket::INET->new(LocalPort => 53, Proto => "udp") or die "socket: $!"; print "listening\n"; while ($s->recv(my $m, 1500)) { $s->send("echo:$m") }' >/dev/null"#,
    )
    .await;
    poll(
        &server,
        sid,
        node,
        "docker logs udp-echo",
        Duration::from_secs(60),
        |out| out == "listening\n",
    )
    .await;
    let out = ok(&server, sid, node, "docker port udp-echo").await;
    assert!(out.starts_with("53/udp -> 0.0.0.0:53\n"), "{out}");
    let out = ok(
        &server,
        sid,
        node,
        r#"python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
for i in range(3):
    s.sendto(b"datagram-%d" % i, ("127.0.0.1", 53))
    data, peer = s.recvfrom(1500)
    print(data.decode(), peer[1])
'"#,
    )
    .await;
    assert_eq!(
        out,
        "echo:datagram-0 53\necho:datagram-1 53\necho:datagram-2 53\n"
    );

    // TCP: nginx on the instance's port 8080, seen by the instance, listed
    // by the playground, and through its proxy link.
    ok(
        &server,
        sid,
        node,
        "docker run -d --name web -p 8080:80 nginx >/dev/null",
    )
    .await;
    let out = ok(
        &server,
        sid,
        node,
        "curl -sS --retry 30 --retry-delay 1 --retry-all-errors localhost:8080",
    )
    .await;
    assert!(out.contains("<h1>Welcome to nginx!</h1>"), "{out}");
    let out = ok(&server, sid, node, "docker port web").await;
    assert!(out.starts_with("80/tcp -> 0.0.0.0:8080\n"), "{out}");
    let link = wait_listed(&server, sid, 8080, true, Duration::from_secs(30))
        .await
        .expect("port 8080 listed");
    assert!(
        link.contains("-8080-") && link.contains(node),
        "a link to port 8080 of {node}: {link}"
    );
    let page = through_proxy(&link).await;
    assert!(page.contains("<h1>Welcome to nginx!</h1>"), "{page}");
    // Stopped: no longer listed.
    ok(&server, sid, node, "docker stop web").await;
    wait_listed(&server, sid, 8080, false, Duration::from_secs(30)).await;

    server.finish(sid).await;
}

// (3) How containers are made, by hand, without Docker.

#[tokio::test(flavor = "multi_thread")]
async fn the_learners_side_of_containers_without_docker() {
    let (server, sid, node) = nesting().await;
    let (sid, node) = (sid.as_str(), node.as_str());

    // A PID namespace with its own /proc: the command is PID 1.
    let out = ok(
        &server,
        sid,
        node,
        "unshare --pid --fork --mount-proc ps -o pid=,comm=; unshare --pid --fork --mount-proc sh -c 'echo $$; ps -o pid=,comm= -p 1'",
    )
    .await;
    let lines: Vec<String> = walkthrough::rows(&out);
    assert_eq!(lines, ["1 ps", "1", "1 sh"], "{out}");

    // A mount of one's own.
    let out = ok(
        &server,
        sid,
        node,
        "mkdir -p /mnt/scratch && mount -t tmpfs -o size=1m tmpfs /mnt/scratch && echo in-tmpfs > /mnt/scratch/f && findmnt -no FSTYPE,SIZE /mnt/scratch && cat /mnt/scratch/f && umount /mnt/scratch && ls /mnt/scratch | wc -l",
    )
    .await;
    let lines: Vec<String> = walkthrough::rows(&out);
    assert_eq!(lines, ["tmpfs 1M", "in-tmpfs", "0"], "{out}");

    // Two network namespaces joined by a veth pair.
    let out = ok(
        &server,
        sid,
        node,
        "ip netns add red && ip netns add blue && ip link add veth-red type veth peer name veth-blue && ip link set veth-red netns red && ip link set veth-blue netns blue && ip -n red addr add 10.77.0.1/24 dev veth-red && ip -n blue addr add 10.77.0.2/24 dev veth-blue && ip -n red link set veth-red up && ip -n blue link set veth-blue up && ip netns list | cut -d' ' -f1 | sort && ip netns exec red ping -c 2 -W 5 10.77.0.2",
    )
    .await;
    assert!(out.starts_with("blue\nred\n"), "{out}");
    assert!(
        out.contains("2 packets transmitted, 2 received, 0% packet loss"),
        "{out}"
    );
    let out = ok(
        &server,
        sid,
        node,
        "ip netns exec blue ip -br addr show veth-blue; ip netns del red; ip netns del blue; ip netns list | wc -l",
    )
    .await;
    let lines = walkthrough::rows(&out);
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("veth-blue@"), "{out}");
    assert!(lines[0].contains(" UP 10.77.0.2/24"), "{out}");
    assert_eq!(lines[1], "0", "{out}");

    // nftables: a table, a chain on a hook, a rule that drops and counts.
    let out = ok(
        &server,
        sid,
        node,
        "nft add table inet learn && nft add chain inet learn out '{ type filter hook output priority 0; policy accept; }' && nft add rule inet learn out ip daddr 127.0.0.9 icmp type echo-request counter drop && ping -c 1 -W 2 127.0.0.9 >/dev/null; echo ping=$?; nft list table inet learn",
    )
    .await;
    let lines = walkthrough::rows(&out);
    assert_eq!(lines[0], "ping=1", "the rule drops: {out}");
    assert!(
        lines
            .iter()
            .any(|l| l
                == "ip daddr 127.0.0.9 icmp type echo-request counter packets 1 bytes 84 drop"),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "type filter hook output priority filter; policy accept;"),
        "{out}"
    );
    let out = ok(
        &server,
        sid,
        node,
        "nft delete table inet learn && ping -c 1 -W 5 127.0.0.9 >/dev/null && echo ping=0",
    )
    .await;
    assert_eq!(out, "ping=0\n");

    // A memory cgroup of one's own with a limit, and a process in it that
    // asks for more: the kernel's OOM killer ends it (cgroup v1 here, v2
    // on hosts with the unified hierarchy).
    let out = ok(
        &server,
        sid,
        node,
        r#"set -e
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
  echo v2
  C=/sys/fs/cgroup/learn
  mkdir $C
  grep -qw memory $C/cgroup.controllers || echo +memory > /sys/fs/cgroup/cgroup.subtree_control
  echo 20M > $C/memory.max
  echo 0 > $C/memory.swap.max 2>/dev/null || true
  cat $C/memory.max
  oom() { grep '^oom_kill ' $C/memory.events; }
else
  echo v1
  C=/sys/fs/cgroup/memory/learn
  mkdir $C
  echo 20M > $C/memory.limit_in_bytes
  cat $C/memory.limit_in_bytes
  oom() { grep '^oom_kill ' $C/memory.oom_control; }
fi
oom
set +e
sh -c "echo \$\$ > $C/cgroup.procs; exec python3 -c 'b = bytearray(100 << 20); print(\"not killed\")'"
echo code=$?
oom
rmdir $C && echo removed"#,
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0] == "v1" || lines[0] == "v2", "{out}");
    assert_eq!(
        &lines[1..],
        [
            "20971520",
            "oom_kill 0",
            "code=137",
            "oom_kill 1",
            "removed"
        ],
        "{out}"
    );

    // None of it needed Docker.
    assert_eq!(dockerd_pids(&server, sid, node).await, Vec::<String>::new());
    server.finish(sid).await;
}

// (4) dockerd started by the instance's init on first use, and again.

#[tokio::test(flavor = "multi_thread")]
async fn dockerd_starts_on_first_use_and_again_after_it_is_killed() {
    let (server, sid, node) = nesting().await;
    let (sid, node) = (sid.as_str(), node.as_str());
    assert_eq!(dockerd_pids(&server, sid, node).await, Vec::<String>::new());

    // The first client waits while init starts dockerd on the socket.
    let since = Instant::now();
    let out = ok(
        &server,
        sid,
        node,
        "docker version --format '{{.Server.Version}} {{.Server.Os}} {{.Client.Version}}'",
    )
    .await;
    eprintln!("cold start: {:?}", since.elapsed());
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{out}");
    assert!(fields[0].starts_with("26."), "{out}");
    assert_eq!(fields[1], "linux", "{out}");
    let first = dockerd_pids(&server, sid, node).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let out = ok(&server, sid, node, "ps -o args= -p $(pgrep -x dockerd)").await;
    assert_eq!(out, "dockerd --host=fd://\n", "socket activation");

    let info = ok(
        &server,
        sid,
        node,
        "docker info; hostname; cat /etc/docker/daemon.json",
    )
    .await;
    let lines: Vec<&str> = info.lines().map(str::trim).collect();
    assert!(lines.contains(&"Storage Driver: overlay2"), "{info}");
    assert!(
        lines.contains(&"Docker Root Dir: /var/lib/docker"),
        "{info}"
    );
    let hostname = ok(&server, sid, node, "hostname").await;
    assert_eq!(hostname.trim(), node);
    assert!(
        lines.contains(&format!("Name: {node}").as_str()),
        "the instance's hostname: {info}"
    );
    // The playground's mirror, from daemon.json, on the instance's loopback.
    let config: serde_json::Value =
        serde_json::from_str(&ok(&server, sid, node, "cat /etc/docker/daemon.json").await).unwrap();
    let mirror = config["registry-mirrors"][0].as_str().unwrap().to_string();
    assert!(mirror.starts_with("http://127.0.0.1:"), "{config}");
    let at = lines
        .iter()
        .position(|l| *l == "Registry Mirrors:")
        .unwrap_or_else(|| panic!("no mirror: {info}"));
    assert_eq!(
        lines[at + 1].trim_end_matches('/'),
        mirror.trim_end_matches('/'),
        "{info}"
    );
    // It answers as a registry, with the offline images.
    let out = ok(
        &server,
        sid,
        node,
        &format!("curl -sS -o /dev/null -w '%{{http_code}}\\n' -H 'Accept: application/vnd.oci.image.index.v1+json' {}/v2/library/busybox/manifests/latest", mirror.trim_end_matches('/')),
    )
    .await;
    assert_eq!(out, "200\n");

    // dockerd killed: the next client starts it again.
    ok(
        &server,
        sid,
        node,
        "docker run -d --name survivor --restart=always busybox sleep 100000 >/dev/null",
    )
    .await;
    ok(&server, sid, node, "pkill -x dockerd").await;
    poll(
        &server,
        sid,
        node,
        "pgrep -x dockerd || echo none",
        Duration::from_secs(90),
        |out| out == "none\n",
    )
    .await;
    let out = ok(
        &server,
        sid,
        node,
        "docker run --rm busybox echo back-$((6*7))",
    )
    .await;
    assert_eq!(out, "back-42\n");
    // --restart=always: started again with the daemon.
    poll(
        &server,
        sid,
        node,
        "docker ps --format '{{.Names}}'",
        Duration::from_secs(60),
        |out| out == "survivor\n",
    )
    .await;
    let second = dockerd_pids(&server, sid, node).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(first, second);

    server.finish(sid).await;
}

// (5) An idle instance costs nothing more.

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_that_never_uses_docker_runs_no_dockerd() {
    let (server, sid, node) = nesting().await;
    let (sid, node) = (sid.as_str(), node.as_str());
    let out = ok(
        &server,
        sid,
        node,
        "test -S /var/run/docker.sock && echo socket; command -v dockerd",
    )
    .await;
    assert_eq!(out, "socket\n/usr/sbin/dockerd\n");
    // A terminal's login shell and some ordinary work.
    let mut term = server.terminal(sid, node, "").await;
    term.send("ls / >/dev/null; echo typed-$((40+2))\r").await;
    term.wait_for("typed-42", Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = exec(
        &server,
        sid,
        node,
        "pgrep -l 'dockerd|containerd'; echo found=$?",
    )
    .await;
    assert_eq!(out.stdout, "found=1\n", "{out:?}");
    term.close().await;
    server.finish(sid).await;
}

// (6) A crash of the server.

#[tokio::test(flavor = "multi_thread")]
async fn containers_and_the_mirror_survive_kill_9_of_the_server() {
    let (server, sid, node) = nesting().await;
    let (sid, node) = (sid.as_str(), node.as_str());
    ok(
        &server,
        sid,
        node,
        "docker run -d --name keeper busybox sh -c 'while true; do date +%s > /tmp/beat; sleep 1; done' >/dev/null",
    )
    .await;
    let started = ok(
        &server,
        sid,
        node,
        "docker inspect -f '{{.State.StartedAt}} {{.State.Pid}}' keeper",
    )
    .await;

    let data_dir = server.crash().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let server = TestServer::start_in(data_dir, &[NESTING]).await;

    // The same container, still running (not restarted), and Docker answers.
    let out = ok(
        &server,
        sid,
        node,
        "docker ps --format '{{.Names}} {{.Status}}'",
    )
    .await;
    assert!(out.starts_with("keeper Up "), "{out}");
    let now = ok(
        &server,
        sid,
        node,
        "docker inspect -f '{{.State.StartedAt}} {{.State.Pid}}' keeper",
    )
    .await;
    assert_eq!(now, started);
    let out = ok(
        &server,
        sid,
        node,
        "a=$(docker exec keeper cat /tmp/beat); sleep 3; b=$(docker exec keeper cat /tmp/beat); [ $b -gt $a ] && echo beating",
    )
    .await;
    assert_eq!(out, "beating\n");

    // Pulls go through the mirror the new server serves.
    let out = ok(&server, sid, node, "docker pull debian:bookworm-slim").await;
    assert!(
        out.contains("Status: Downloaded newer image for debian:bookworm-slim"),
        "{out}"
    );
    let out = ok(
        &server,
        sid,
        node,
        "docker run --rm debian:bookworm-slim sh -c '. /etc/os-release; echo $VERSION_CODENAME'",
    )
    .await;
    assert_eq!(out, "bookworm\n");

    server.finish(sid).await;
}
