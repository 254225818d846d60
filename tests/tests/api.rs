//! End-to-end tests of sessions, instances, exec and terminals through the
//! real server binary, real WebSockets, real namespaces and cgroups.
//! They need root (CI runs as root).

use std::time::{Duration, Instant};

use playground_protocol::SessionInfo;
use playground_tests::{leftovers, wait_until_clean, TestServer};

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_have_their_own_shells_and_cannot_see_each_other_or_the_host() {
    let server = TestServer::start(&[]).await;
    let session = server.create_session().await;
    let sid = session.id.as_str();
    assert!(session.instances.is_empty());

    let a = server.add_instance(sid).await;
    let b = server.add_instance(sid).await;
    assert_eq!((a.as_str(), b.as_str()), ("node1", "node2"));

    // Real shells over real WebSockets, one per instance.
    for name in [&a, &b] {
        let mut term = server.terminal(sid, name, "").await;
        term.send("echo \"I am $(hostname) marker-$((40+2))\"\n")
            .await;
        term.wait_for(&format!("I am {name} marker-42"), T).await;
        term.close().await;
    }

    // Each instance's PID 1 is our init, and no host process is visible.
    for name in [&a, &b] {
        let out = server
            .exec(sid, name, "cat /proc/1/comm; ps -e -o comm= | sort -u")
            .await;
        assert_eq!(out.exit_code, 0, "{out:?}");
        let mut lines = out.stdout.lines();
        assert_eq!(lines.next(), Some("init"));
        let names: Vec<&str> = lines.collect();
        assert!(
            names
                .iter()
                .all(|n| ["init", "sh", "ps", "sort", "bash"].contains(n)),
            "host processes visible in {name}: {names:?}"
        );
        let hostname = server.exec(sid, name, "hostname").await;
        assert_eq!(hostname.stdout.trim(), name.as_str());
    }

    // A host file is invisible inside.
    let marker = format!("/tmp/host-only-{}", std::process::id());
    std::fs::write(&marker, "secret").unwrap();
    let out = server
        .exec(
            sid,
            &a,
            &format!("test -e {marker} && echo visible || echo hidden"),
        )
        .await;
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(out.stdout.trim(), "hidden");

    // A file written in one instance is invisible in the other.
    let out = server
        .exec(sid, &a, "echo from-a > /root/note && cat /root/note")
        .await;
    assert_eq!(out.stdout.trim(), "from-a");
    let out = server
        .exec(sid, &b, "cat /root/note 2>&1; echo rc=$?")
        .await;
    assert!(
        out.stdout.contains("No such file") && out.stdout.contains("rc=1"),
        "{out:?}"
    );

    // Instance root is not host root: the image's files look root-owned
    // inside, but the instance's uid 0 maps to an unprivileged host range.
    let out = server
        .exec(
            sid,
            &a,
            "id -u; stat -c %U /etc/passwd; cat /proc/self/uid_map",
        )
        .await;
    let fields: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(&fields[..3], ["0", "root", "0"], "{out:?}");
    assert!(fields[3].parse::<u64>().unwrap() >= 65536, "{out:?}");

    server.delete_session(sid).await;
    let left = wait_until_clean(sid, server.data_dir.path(), T).await;
    assert!(left.is_empty(), "left behind: {left:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_returns_exit_code_output_and_honours_stdin_and_timeout() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;

    let out = server
        .exec(&sid, &name, "echo out; echo err >&2; exit 3")
        .await;
    assert_eq!(
        (out.exit_code, out.stdout.as_str(), out.stderr.as_str()),
        (3, "out\n", "err\n")
    );

    let url = server.url(&format!("/api/sessions/{sid}/instances/{name}/exec"));
    let out: serde_json::Value = server
        .http
        .post(&url)
        .json(&serde_json::json!({"cmd": ["tr", "a-z", "A-Z"], "stdin": "shout"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(out["stdout"], "SHOUT");

    let started = Instant::now();
    let out: serde_json::Value = server
        .http
        .post(&url)
        .json(&serde_json::json!({"cmd": ["sleep", "30"], "timeout_secs": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(out["timed_out"], true);
    assert_eq!(out["exit_code"], 128 + 9);
    assert!(started.elapsed() < Duration::from_secs(10));

    let out = server.exec(&sid, &name, "no-such-program").await;
    assert_eq!(out.exit_code, 127);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_message_and_the_right_status() {
    let server = TestServer::start(&["--max-instances=1"]).await;
    let sid = server.create_session().await.id;
    let check = |status: u16, body: serde_json::Value, expected: u16, what: &str| {
        assert_eq!(status, expected, "{what}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: no error message in {body}"
        );
    };
    async fn send(r: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }
    let h = &server.http;
    let unknown = "00000000-0000-4000-8000-000000000000";

    let (s, b) = send(h.get(server.url(&format!("/api/sessions/{unknown}")))).await;
    check(s, b, 404, "unknown session");
    let (s, b) = send(h.post(server.url(&format!("/api/sessions/{unknown}/instances")))).await;
    check(s, b, 404, "instance in unknown session");
    let (s, b) = send(h.delete(server.url(&format!("/api/sessions/{unknown}")))).await;
    check(s, b, 404, "delete unknown session");
    let (s, b) = send(
        h.post(server.url("/api/sessions"))
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    check(s, b, 400, "malformed JSON");

    let name = server.add_instance(&sid).await;
    let (s, b) = send(h.post(server.url(&format!("/api/sessions/{sid}/instances")))).await;
    check(s, b, 409, "too many instances");

    let exec = server.url(&format!("/api/sessions/{sid}/instances/{name}/exec"));
    let (s, b) = send(
        h.post(&exec)
            .header("content-type", "application/json")
            .body("{\"cmd\": ["),
    )
    .await;
    check(s, b, 400, "malformed exec JSON");
    let (s, b) = send(h.post(&exec).json(&serde_json::json!({"cmd": "ls"}))).await;
    check(s, b, 422, "cmd of the wrong type");
    let (s, b) = send(h.post(&exec).json(&serde_json::json!({"cmd": []}))).await;
    check(s, b, 422, "empty cmd");
    let (s, b) = send(
        h.post(server.url(&format!("/api/sessions/{sid}/instances/node9/exec")))
            .json(&serde_json::json!({"cmd": ["true"]})),
    )
    .await;
    check(s, b, 404, "unknown instance");
    let (s, b) = send(h.delete(server.url(&format!("/api/sessions/{sid}/instances/node9")))).await;
    check(s, b, 404, "delete unknown instance");
    let (s, b) = send(h.get(server.url("/api/nothing-here"))).await;
    check(s, b, 404, "unknown endpoint");
    let resp = h
        .get(server.url(&format!("/api/sessions/{sid}/instances/node9/terminal")))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404, "terminal of an unknown instance");

    // Health check.
    let resp = h.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_an_instance_with_busy_processes_leaves_nothing_behind() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    let other = server.add_instance(&sid).await;

    // Misbehaving processes: background sleepers, a process ignoring
    // SIGTERM, a shell attached to a terminal.
    let out = server
        .exec(
            &sid,
            &name,
            "(trap '' TERM HUP; sleep 1000) >/dev/null 2>&1 & sleep 1000 >/dev/null 2>&1 & echo ok",
        )
        .await;
    assert_eq!(out.stdout.trim(), "ok");
    let mut term = server.terminal(&sid, &name, "").await;
    term.send("sleep 999\n").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!leftovers(&sid, server.data_dir.path()).processes.is_empty());

    server.delete_instance(&sid, &name).await;
    // The attached terminal learns that its shell is gone.
    term.drain(Duration::from_secs(3)).await;
    assert!(
        term.exited.is_some(),
        "terminal was not told: {}",
        term.text()
    );

    // Only the other instance remains.
    let info: SessionInfo = server
        .get(&format!("/api/sessions/{sid}"))
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = info.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, [other.as_str()]);
    let tag = format!("{}-{name}", sid.replace('-', ""));
    let left = leftovers(&sid, server.data_dir.path());
    assert!(
        left.cgroups
            .iter()
            .all(|c| !c.to_string_lossy().contains(&tag))
            && left
                .instance_dirs
                .iter()
                .all(|d| !d.to_string_lossy().contains(&tag)),
        "deleted instance left: {left:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_is_gone_with_all_its_resources() {
    let server = TestServer::start(&["--session-ttl=3s"]).await;
    let session = server.create_session().await;
    let sid = session.id.as_str();
    assert!(session.expires_in_secs <= 3);
    let name = server.add_instance(sid).await;
    server
        .exec(sid, &name, "sleep 1000 >/dev/null 2>&1 & echo started")
        .await;
    let mut term = server.terminal(sid, &name, "").await;
    term.send("echo ready\n").await;
    term.wait_for("ready", T).await;
    assert!(!leftovers(sid, server.data_dir.path()).is_empty());

    tokio::time::sleep(Duration::from_secs(4)).await;
    let resp = server.get(&format!("/api/sessions/{sid}")).await;
    assert_eq!(resp.status(), 404);
    let left = wait_until_clean(sid, server.data_dir.path(), T).await;
    assert!(left.is_empty(), "expired session left: {left:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnecting_terminal_resumes_without_duplicated_output() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;

    let mut first = server.terminal(&sid, &name, "?cols=100&rows=30").await;
    first.send("stty size; echo one-$((1+0))\n").await;
    first.wait_for("one-1", T).await;
    assert!(first.text().contains("30 100"), "{}", first.text());
    first.drain(Duration::from_millis(300)).await;
    let offset = first.offset;
    first.close().await;

    // Output produced while nobody is connected is kept.
    server.exec(&sid, &name, "true").await;
    let mut second = server
        .terminal(&sid, &name, &format!("?from={offset}"))
        .await;
    assert_eq!(second.offset, offset);
    second.send("echo two-$((1+1))\n").await;
    second.wait_for("two-2", T).await;
    assert!(
        !second.text().contains("one-1"),
        "old output repeated: {}",
        second.text()
    );

    // Without `from`, a new viewer sees the kept output (the current screen).
    let mut third = server.terminal(&sid, &name, "").await;
    third.wait_for("two-2", T).await;
    assert!(third.text().contains("one-1"));

    // Resize reaches the shell.
    third
        .send_control(serde_json::json!({"type": "resize", "cols": 120, "rows": 40}))
        .await;
    third.send("stty size\n").await;
    third.wait_for("40 120", T).await;

    // Exiting the shell tells the client, and the next connection gets a new shell.
    third.send("exit 7\n").await;
    third.drain(Duration::from_secs(3)).await;
    assert_eq!(third.exited, Some(7));
    let mut fresh = server
        .terminal(&sid, &name, &format!("?from={offset}"))
        .await;
    fresh.send("echo fresh-$((2+1))\n").await;
    fresh.wait_for("fresh-3", T).await;
    server.stop().await;
}

/// RSS of a process in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_output_is_held_back_and_ctrl_c_still_answers() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    let mut term = server.terminal(&sid, &name, "").await;
    term.send("echo go\n").await;
    term.wait_for("go", T).await;
    let before = rss_kib(server.pid());

    // `yes` writes as fast as it can while this client reads nothing.
    term.send("yes flood\n").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = rss_kib(server.pid());
    assert!(
        during < before + 32 * 1024,
        "server memory grew from {before} KiB to {during} KiB under a flood"
    );

    // Ctrl-C interrupts at once even though output is backed up.
    term.send("\x03").await;
    term.send("echo after-$((3*3))\n").await;
    term.wait_for("after-9", T).await;
    server.stop().await;
}
