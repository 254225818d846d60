//! Restarts lose nothing: sessions, instances, their files, running
//! processes and shells survive a `kill -9` of the server; a session that
//! expired while the server was down is removed at the next start; nothing
//! accumulates over many cycles. Needs root.

use std::time::Duration;

use playground_tests::{bridge_name, leftovers, wait_until_clean, TestServer};

const T: Duration = Duration::from_secs(20);

/// Processes in the cgroups of a session's instances (host pids).
fn processes(sid: &str, server: &TestServer) -> usize {
    leftovers(sid, server.data_dir.path()).processes.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_shells_and_processes_survive_kill_9_of_the_server() {
    // A session that will expire while the server is down.
    let server = TestServer::start(&["--session-ttl=4s"]).await;
    let expiring = server.create_session().await.id;
    server.add_instance(&expiring).await;
    let data_dir = server.crash().await;

    let server = TestServer::start_in(data_dir, &[]).await;
    assert!(server.session(&expiring).await.is_some(), "not taken back");
    let sid = server.create_session().await.id;
    let node1 = server.add_instance(&sid).await;
    let node2 = server.add_instance(&sid).await;
    // A shell with state, a shell busy in a foreground command, a file.
    let mut shell = server.terminal(&sid, &node1, "").await;
    shell
        .send("export MARK=kept-$((40+2)); cd /tmp; echo set-done\n")
        .await;
    shell.wait_for("set-done", T).await;
    let mut busy = server.terminal(&sid, &node2, "").await;
    busy.send("sleep 1000\n").await;
    server
        .exec(&sid, &node1, "echo precious > /root/file")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = processes(&sid, &server);

    let data_dir = server.crash().await;
    // Instances keep running while no server is there.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let server = TestServer::start_in(data_dir, &[]).await;

    // The expired session is gone, with everything it had.
    assert!(server.session(&expiring).await.is_none());
    let left = wait_until_clean(&expiring, server.data_dir.path(), T).await;
    assert!(left.is_empty(), "expired while down, left: {left:?}");

    // The live one is back: instances, files, processes, shell state.
    let info = server.session(&sid).await.expect("session taken back");
    let names: Vec<&str> = info.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, [node1.as_str(), node2.as_str()]);
    assert_eq!(
        server.exec(&sid, &node1, "cat /root/file").await.stdout,
        "precious\n"
    );
    let out = server
        .exec(&sid, &node2, "pgrep -x sleep >/dev/null && echo sleeping")
        .await;
    assert_eq!(out.stdout, "sleeping\n");
    assert_eq!(processes(&sid, &server), before);
    let mut shell = server.terminal(&sid, &node1, "").await;
    shell.send("echo \"mark=$MARK in $(pwd)\"\n").await;
    shell.wait_for("mark=kept-42 in /tmp", T).await;
    // The busy shell is the same one: Ctrl-C ends its sleep.
    let mut busy = server.terminal(&sid, &node2, "").await;
    busy.send("\x03").await;
    busy.send("echo back-$((1+1))\n").await;
    busy.wait_for("back-2", T).await;
    // Ports, events and new instances work after the restart too.
    assert_eq!(server.add_instance(&sid).await, "node3");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_crash_and_restart_cycles_leak_nothing() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    let mut term = server.terminal(&sid, &name, "").await;
    term.send("echo ready\n").await;
    term.wait_for("ready", T).await;
    // Let the login shell's start-up children finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = leftovers(&sid, server.data_dir.path());
    let mut server = server;
    for cycle in 0..10 {
        let data_dir = server.crash().await;
        server = TestServer::start_in(data_dir, &[]).await;
        let now = leftovers(&sid, server.data_dir.path());
        assert_eq!(now.cgroups, baseline.cgroups, "cycle {cycle}");
        assert_eq!(
            now.processes.len(),
            baseline.processes.len(),
            "cycle {cycle}"
        );
        assert_eq!(
            now.loop_devices.len(),
            baseline.loop_devices.len(),
            "cycle {cycle}"
        );
        assert_eq!(now.bridges, vec![bridge_name(&sid)], "cycle {cycle}");
        let out = server
            .exec(&sid, &name, &format!("echo cycle-{cycle}"))
            .await;
        assert_eq!(out.stdout, format!("cycle-{cycle}\n"));
    }
    let mut term = server.terminal(&sid, &name, "").await;
    term.send("echo still-$((2*3))\n").await;
    term.wait_for("still-6", T).await;
    let data_dir = server.data_dir.path().to_path_buf();
    server.stop().await;
    let left = wait_until_clean(&sid, &data_dir, T).await;
    assert!(left.is_empty(), "after teardown: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_graceful_stop_keeps_instances_and_teardown_removes_them() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    server.exec(&sid, &name, "echo kept > /root/k").await;
    let data_dir = server.stop_keeping_instances().await;
    assert!(!leftovers(&sid, data_dir.path()).processes.is_empty());
    let server = TestServer::start_in(data_dir, &[]).await;
    assert_eq!(
        server.exec(&sid, &name, "cat /root/k").await.stdout,
        "kept\n"
    );
    let data_dir = server.data_dir.path().to_path_buf();
    server.stop().await; // stops, then runs `playground teardown`
    let left = wait_until_clean(&sid, &data_dir, T).await;
    assert!(left.is_empty(), "after teardown: {left:?}");
}

/// The server's launch server (the process that forks instance launchers),
/// by its command line among the children of process `parent`.
fn launch_server_of(parent: i32) -> Option<i32> {
    let procs = std::fs::read_dir("/proc").ok()?;
    procs.flatten().find_map(|p| {
        let pid: i32 = p.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(p.path().join("stat")).ok()?;
        let ppid: i32 = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()?;
        let cmdline = std::fs::read(p.path().join("cmdline")).ok()?;
        let is_launch_server =
            String::from_utf8_lossy(&cmdline).contains("__sandbox-launch-server");
        (ppid == parent && is_launch_server).then_some(pid)
    })
}

/// Wait until process `pid` has exited (a zombie not yet collected counts).
async fn wait_until_gone(pid: i32) {
    let deadline = std::time::Instant::now() + T;
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    };
    while running() {
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} is still there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_launch_server_is_replaced_and_none_outlives_the_server() {
    let server = TestServer::start(&[]).await;
    let first = launch_server_of(server.pid()).expect("no launch server");
    // SAFETY: kill has no memory-safety requirements.
    assert_eq!(unsafe { libc::kill(first, libc::SIGKILL) }, 0);
    wait_until_gone(first).await;
    // Creating an instance starts another.
    let sid = server.create_session().await.id;
    let name = server.add_instance(&sid).await;
    assert_eq!(server.exec(&sid, &name, "echo up").await.stdout, "up\n");
    let second = launch_server_of(server.pid()).expect("not replaced");
    assert_ne!(second, first);
    // It goes with the server, also when the server crashes.
    let data_dir = server.crash().await;
    wait_until_gone(second).await;
    let server = TestServer::start_in(data_dir, &[]).await;
    server.delete_session(&sid).await;
    let data_dir = server.data_dir.path().to_path_buf();
    server.stop().await;
    let left = wait_until_clean(&sid, &data_dir, T).await;
    assert!(left.is_empty(), "after teardown: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_survive_kill_9_of_the_server() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let out = server
        .exec(
            &sid,
            &node,
            "docker run -d --name sleeper busybox sleep 1000 >/dev/null && docker create --name idle busybox true >/dev/null && docker run --name done busybox echo finished",
        )
        .await;
    assert_eq!(out.stdout, "finished\n", "{out:?}");
    let data_dir = server.crash().await;
    let server = TestServer::start_in(data_dir, &[]).await;

    // Records, states, logs; the running one is still followed: its exit
    // (killed: 137) is seen by the new server.
    let out = server
        .exec(
            &sid,
            &node,
            "docker ps -a --format '{{.Names}} {{.State}}' | sort; docker logs done; docker kill sleeper >/dev/null; docker wait sleeper; docker ps -a --filter name=sleeper --format '{{.Status}}'; docker rm sleeper idle done",
        )
        .await;
    assert!(
        out.stdout
            .starts_with("done exited\nidle created\nsleeper running\nfinished\n137\nExited (137)"),
        "{out:?}"
    );
    assert!(out.stdout.ends_with("sleeper\nidle\ndone\n"), "{out:?}");
    server.stop().await;
}
