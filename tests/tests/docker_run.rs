//! `docker run` and friends inside an instance: containers are nested
//! sandboxes (own mount, pid, uts, ipc and network namespaces; the
//! instance's user namespace and cgroups). Needs root.

use std::time::Duration;

use playground_tests::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn docker_runs_containers_inside_an_instance() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let run = |script: &'static str| server.run(&sid, &node, script);

    let created = run("docker pull -q busybox >/dev/null && docker create --name c1 busybox echo hello && docker start c1 && sleep 1 && docker logs c1 && docker ps -a --format '{{.Names}} {{.Status}}'").await;
    assert_eq!(created.exit_code, 0, "{created:?}");
    assert!(
        created.stdout.contains("c1\nhello\nc1 Exited (0)"),
        "{created:?}"
    );

    let again = run("docker create --name c1 busybox true").await;
    assert!(
        again
            .stderr
            .contains("Conflict. The container name \"/c1\" is already in use"),
        "{again:?}"
    );
    let rmi = run("docker rmi busybox").await;
    assert!(
        rmi.stderr.contains(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container"
        ),
        "{rmi:?}"
    );
    let rm = run("docker rm c1 && docker ps -aq | wc -l && docker logs c1").await;
    assert!(rm.stdout.starts_with("c1\n0\n"), "{rm:?}");
    assert!(rm.stderr.contains("No such container: c1"), "{rm:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_run_attaches_waits_and_isolates() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let (sid, node) = (sid.as_str(), node.as_str());

    // Foreground runs: the output, then the container's exit code (a hung
    // attach or wait would hit the timeout: 124).
    let out = server.run(sid, node, "timeout 60 docker run --rm busybox echo hello; echo code=$?; timeout 60 docker run --name three busybox sh -c 'echo out; echo err >&2; exit 3'; echo code=$?; docker ps -a --format '{{.Names}} {{.Status}}'").await;
    assert!(
        out.stdout
            .starts_with("hello\ncode=0\nout\ncode=3\nthree Exited (3)"),
        "{out:?}"
    );
    assert!(out.stderr.contains("err\n"), "{out:?}");
    let out = server.run(sid, node, "for i in 1 2 3 4 5; do timeout 60 docker run --rm busybox true || echo failed $?; done; docker ps -aq | wc -l").await;
    assert_eq!(
        out.stdout, "1\n",
        "--rm leaves only the earlier one: {out:?}"
    );
    let out = server
        .run(
            sid,
            node,
            "echo typed | timeout 60 docker run -i --rm busybox cat; echo code=$?",
        )
        .await;
    assert_eq!(out.stdout, "typed\ncode=0\n", "{out:?}");
    let out = server.run(sid,
        node,
        "timeout 60 docker run --rm busybox cat </dev/null; echo code=$?; timeout 60 docker run -i --rm busybox cat </dev/null; echo code=$?",
    )
    .await;
    // Without -i stdin is empty; with -i it ends when the client's does,
    // even before the start.
    assert_eq!(out.stdout, "code=0\ncode=0\n", "{out:?}");

    // Isolation: own pid namespace (the command is PID 1), own hostname,
    // only the image's files.
    let out = server
        .run(sid, node, "docker run --rm busybox ps -o pid,args")
        .await;
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(lines, ["PID   COMMAND", "1 ps -o pid,args"], "{out:?}");
    let out = server.run(sid, node, "touch /root/instance-only; hostname; docker run --rm busybox hostname; docker run --rm busybox ls -a /root; docker run --rm busybox test -e /root/instance-only; echo $?").await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{out:?}");
    assert_eq!(lines[0], node, "{out:?}");
    assert_eq!(lines[1].len(), 12, "{out:?}");
    assert!(lines[1].bytes().all(|b| b.is_ascii_hexdigit()), "{out:?}");
    assert_eq!(&lines[2..], [".", "..", "1"], "{out:?}");

    // Binds of the instance's files, read-only ones too; another user.
    let out = server.run(sid, node, "mkdir -p /srv/data && echo from-instance > /srv/data/f && docker run --rm -v /srv/data:/data busybox sh -c 'cat /data/f; echo from-container > /data/g' && cat /srv/data/g && docker run --rm -v /srv/data:/data:ro busybox touch /data/h; echo ro=$?; docker run --rm -u nobody busybox id -u").await;
    assert!(
        out.stdout
            .starts_with("from-instance\nfrom-container\nro=1\n65534\n"),
        "{out:?}"
    );
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    // Not there yet, and saying so: other networks, UDP ports.
    let out = server.run(sid, node, "docker run --rm --network nosuch busybox true; echo code=$?; docker run --rm -p 53:53/udp busybox true; echo code=$?; docker run -d --restart always busybox true; echo code=$?").await;
    assert_eq!(out.stdout, "code=125\ncode=125\ncode=125\n", "{out:?}");
    assert!(
        out.stderr
            .contains("restart policy \"always\" is not available in this playground"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("publishing udp ports (53/udp) is not available"),
        "{out:?}"
    );
    assert!(out.stderr.contains("network nosuch not found"), "{out:?}");

    // A detached server, exec into it, its logs, stop and remove.
    let out = server.run(sid, node, "docker run -d --name web nginx >/dev/null && sleep 2 && docker ps --format '{{.Names}} {{.Status}}' && docker exec web ls / | grep -x etc && docker exec web sh -c 'exit 7'; echo exec=$? && docker exec web cat /etc/os-release | grep PRETTY").await;
    assert!(out.stdout.starts_with("web Up "), "{out:?}");
    assert!(
        out.stdout
            .contains("etc\nexec=7\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\""),
        "{out:?}"
    );
    let out = server.run(sid, node, "curl -s $(docker inspect -f '{{.NetworkSettings.IPAddress}}' web) | grep -c '<h1>Welcome to nginx'; docker logs web 2>&1 | grep -c 'GET / HTTP/1.1. 200'; s=$(date +%s%N); docker stop web; echo stop_ms=$(( ($(date +%s%N) - s) / 1000000 )); docker ps -a --format '{{.Names}} {{.Status}}'; docker rm web; docker ps -aq --filter name=web | wc -l").await;
    assert!(out.stdout.contains("web Exited (0)"), "{out:?}");
    assert!(out.stdout.ends_with("web\n0\n"), "{out:?}");
    // nginx stops on its stop signal (SIGQUIT): no 10 s wait for the SIGKILL.
    let stop_ms: u64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("stop_ms="))
        .and_then(|s| s.parse().ok())
        .expect("the stop's duration");
    assert!(stop_ms < 5000, "{out:?}");
    // It serves on its bridge address; its access log is in its logs.
    assert!(out.stdout.starts_with("1\n1\n"), "{out:?}");

    server.finish(sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_run_it_through_the_instance_terminal() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let mut term = server.terminal(&sid, &node, "").await;
    let wait = Duration::from_secs(60);
    term.send("echo READY-$((40+2))\r").await;
    term.wait_for("READY-42", wait).await;
    term.send("docker run -it --name test debian:bookworm-slim sh\r")
        .await;
    // Typed while the client pulls and starts: goes to the container's
    // shell once it runs. /proc/1 is the container's first process.
    term.send("cat /etc/os-release; echo P1-$(cat /proc/1/comm)-$((6*7))\r")
        .await;
    term.wait_for("P1-sh-42", wait).await;
    let text = term.text();
    assert!(
        text.contains("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\""),
        "{text}"
    );
    term.send("exit\r").await;
    // Back at the instance's prompt (what is typed earlier goes to the
    // container's shell or the client).
    let back = std::time::Instant::now();
    loop {
        let text = term.text();
        let after = &text[text.rfind("P1-sh-42").unwrap()..];
        if after.contains(&format!("root@{node}")) {
            break;
        }
        assert!(back.elapsed() < wait, "no prompt after exit: {text}");
        term.drain(Duration::from_millis(200)).await;
    }
    term.send("echo BACK-$?-$((50+1)); docker ps -a --format '{{.Names}} {{.Status}}'\r")
        .await;
    term.wait_for("BACK-0-51", wait).await;
    term.wait_for("test Exited (0)", wait).await;
    term.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_bomb_in_a_container_hits_the_instance_pids_limit() {
    let (server, sid, node) = TestServer::with_instance(&["--instance-pids=200"]).await;
    let out = server.run(&sid,
        &node,
        // The bomb waits for the client to be gone: a full pids limit would
        // keep the (multi-threaded) docker client itself from finishing.
        "docker run -d --name bomb busybox sh -c 'sleep 2; bomb() { bomb | bomb & }; bomb; sleep 1000' >/dev/null && echo started",
    )
    .await;
    assert_eq!(out.stdout, "started\n", "{out:?}");
    // The container's processes count against the instance's limit: the
    // bomb fills it and goes no further.
    let mut most = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let info: serde_json::Value = server
            .get(&format!("/api/sessions/{sid}"))
            .await
            .json()
            .await
            .unwrap();
        let pids = info["instances"][0]["stats"]["pids"].as_u64().unwrap();
        assert!(pids <= 200, "pids limit broken: {pids}");
        most = most.max(pids);
    }
    assert!(most > 150, "the bomb never got going: {most} processes");
    // Deleting the instance ends the bomb with it.
    server.finish(&sid).await;
}
