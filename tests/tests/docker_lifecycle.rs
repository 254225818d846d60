//! A container's life after `docker run`: stop signals (the image's and
//! `--stop-signal`), `docker restart`, `docker logs -f` and `docker attach`
//! to a running container, through the real client in an instance.
//! Needs root.

use std::time::Duration;

use playground_tests::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn stop_signals_restart_follow_and_attach() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let (sid, node) = (sid.as_str(), node.as_str());

    // nginx's image asks for SIGQUIT (its graceful stop); --stop-signal
    // overrides the image, and stop sends it first.
    let out = server.run(sid,
        node,
        "docker create --name n nginx >/dev/null && docker inspect -f '{{.Config.StopSignal}}' n; docker rm n >/dev/null; docker run -d --name t --stop-signal USR1 busybox sh -c 'trap \"echo got-usr1; exit 0\" USR1; echo started; while true; do sleep 0.1; done' >/dev/null; sleep 1; s=$(date +%s%N); docker stop t; echo stop_ms=$(( ($(date +%s%N) - s) / 1000000 )); docker logs t; docker inspect -f '{{.Config.StopSignal}} {{.State.ExitCode}}' t",
    )
    .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "SIGQUIT", "{out:?}");
    assert_eq!(lines[1], "t", "{out:?}");
    let stop_ms: u64 = lines[2]
        .strip_prefix("stop_ms=")
        .and_then(|s| s.parse().ok())
        .expect("the stop's duration");
    // The trap ends it at once; SIGTERM would have been ignored by PID 1
    // for the whole 10 s.
    assert!(stop_ms < 5000, "{out:?}");
    assert_eq!(&lines[3..], ["started", "got-usr1", "USR1 0"], "{out:?}");
    let out = server
        .run(
            sid,
            node,
            "docker run --rm --stop-signal NOPE busybox true; echo code=$?",
        )
        .await;
    assert!(out.stderr.contains("Invalid signal: NOPE"), "{out:?}");
    assert_eq!(out.stdout, "code=125\n", "{out:?}");

    // restart: the same container runs its command again.
    let out = server.run(sid,
        node,
        "docker run -d --name r busybox sh -c 'echo run-$$-$(cat /proc/uptime); exec sleep 1000' >/dev/null; sleep 0.5; docker restart -t 1 r; sleep 0.5; docker logs r | grep -c '^run-1-'; docker ps --format '{{.Names}} {{.Status}}' --filter name=r",
    )
    .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "r", "{out:?}");
    assert_eq!(lines[1], "2", "two runs, each as PID 1: {out:?}");
    assert!(lines[2].starts_with("r Up "), "{out:?}");

    // logs -f follows a running container to its end.
    let out = server.run(sid,
        node,
        "docker run -d --name tick busybox sh -c 'sleep 0.5; for i in $(seq 0 19); do echo tick-$i; sleep 0.1; done' >/dev/null; timeout 30 docker logs -f tick; echo code=$?",
    )
    .await;
    let ticks: Vec<String> = (0..20).map(|i| format!("tick-{i}")).collect();
    let mut expected = ticks.join("\n");
    expected.push_str("\ncode=0\n");
    assert_eq!(out.stdout, expected, "{out:?}");

    // attach to a container that already runs: its later output, then its
    // exit code.
    let out = server.run(sid,
        node,
        "docker run -d --name late busybox sh -c 'sleep 1; for i in 1 2 3; do echo att-$i; sleep 0.2; done; exit 4' >/dev/null; timeout 30 docker attach late; echo code=$?",
    )
    .await;
    assert_eq!(out.stdout, "att-1\natt-2\natt-3\ncode=4\n", "{out:?}");

    server.finish(sid).await;
}

/// The instance's init keeps a container's output pipes and terminal while
/// no server runs (as a shim would): the container neither dies of SIGPIPE
/// nor loses what it printed meanwhile, and the next server follows on.
#[tokio::test(flavor = "multi_thread")]
async fn containers_keep_running_and_logging_across_a_server_crash() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let (sid, node) = (sid.as_str(), node.as_str());
    let out = server
        .run(
            sid,
            node,
            "docker run -d --name ticker busybox sh -c 'i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.1; done' >/dev/null && docker run -dt --name term busybox sh -c 'while :; do echo term-tick; sleep 0.2; done' >/dev/null && sleep 1 && docker logs ticker | wc -l",
        )
        .await;
    let before: usize = out.stdout.trim().parse().expect("a count");
    assert!(before >= 5, "{out:?}");

    let data_dir = server.crash().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server = TestServer::start_in(data_dir, &[]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let out = server
        .run(
            sid,
            node,
            "docker ps --format '{{.Names}} {{.Status}}' | sort; docker logs ticker; echo ---; docker logs term | tr -d '\\r' | grep -c term-tick",
        )
        .await;
    let (head, term) = out.stdout.split_once("---\n").expect("two parts");
    let mut lines = head.lines();
    assert!(
        lines.next().unwrap_or("").starts_with("term Up "),
        "{out:?}"
    );
    assert!(
        lines.next().unwrap_or("").starts_with("ticker Up "),
        "{out:?}"
    );
    // Every tick, those printed while no server ran included, in order.
    let ticks: Vec<&str> = lines.collect();
    for (n, line) in ticks.iter().enumerate() {
        assert_eq!(*line, format!("tick-{n}"), "{out:?}");
    }
    assert!(
        ticks.len() >= before + 25,
        "{before} ticks before the crash, {} after: {out:?}",
        ticks.len()
    );
    let term_ticks: usize = term.trim().parse().expect("a count");
    assert!(term_ticks >= 15, "{out:?}");

    server.finish(sid).await;
}
