//! `docker stats` and `docker events` through the real client in an
//! instance: a container's memory, processes, CPU share and network
//! traffic; the instance's container and image events, replayed between
//! two times, filtered, followed live, and kept apart from another
//! instance's. Needs root.

use playground_protocol::ExecResponse;
use playground_tests::TestServer;

/// What `sh -c script` in the instance printed, logged for failures.
async fn run(server: &TestServer, sid: &str, node: &str, script: &str) -> ExecResponse {
    let out = server.exec(sid, node, script).await;
    eprintln!(
        "[{node}] $ {script}\n{}{}[exit {}]",
        out.stdout, out.stderr, out.exit_code
    );
    out
}

/// `19.5MiB`, `2.1MB`, `0B` (the client's sizes) in bytes.
fn bytes(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().unwrap_or_else(|_| panic!("a size: {text}"));
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => panic!("a size: {text}"),
    };
    number * scale
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_of_memory_processes_cpu_and_network() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let (sid, node) = (sid.as_str(), node.as_str());

    // A shell holding 20 MB in a variable, with a child (`& wait`: the
    // shell would otherwise become its last command): tens of MB, two
    // processes, out of the instance's memory.
    let out = run(
        &server,
        sid,
        node,
        "docker run -d --name mem busybox sh -c 'x=$(head -c 20000000 /dev/zero | tr \"\\0\" a); sleep 1000 & wait' >/dev/null && for i in $(seq 20); do line=$(docker stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.PIDs}}' mem); case $line in *' 2') break;; esac; sleep 0.5; done; echo \"$line\"",
    )
    .await;
    let fields: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "{out:?}");
    assert_eq!(fields[0], "mem", "{out:?}");
    let used = bytes(fields[1]);
    assert!(used > 15e6 && used < 200e6, "{out:?}");
    let limit = bytes(fields[3]);
    assert!(limit > used, "{out:?}");
    assert_eq!(fields[4], "2", "{out:?}");

    // A busy loop: most of a CPU.
    let out = run(
        &server,
        sid,
        node,
        "docker run -d --name busy busybox sh -c 'while :; do :; done' >/dev/null && sleep 1 && for i in 1 2 3; do docker stats --no-stream --format '{{.CPUPerc}}' busy; done",
    )
    .await;
    let best = out
        .stdout
        .lines()
        .map(|l| l.trim_end_matches('%').parse::<f64>().expect("a share"))
        .fold(0.0, f64::max);
    assert!(best > 50.0, "{out:?}");

    // Plain `docker stats` streams one answer a second, and ends when the
    // container stops.
    let out = run(
        &server,
        sid,
        node,
        "(sleep 2.5; docker stop -t 0 busy >/dev/null) & s=$(date +%s); curl -sN --unix-socket /var/run/docker.sock http://docker/containers/busy/stats | grep -c '\"cpu_stats\"'; echo took=$(( $(date +%s) - s ))",
    )
    .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    let answers: u32 = lines[0].parse().expect("a count");
    assert!((2..=4).contains(&answers), "{out:?}");
    let took: u32 = lines[1].strip_prefix("took=").unwrap().parse().unwrap();
    assert!(took < 6, "{out:?}");

    // Network: the container's eth0 sends what the instance fetches from it.
    let out = run(
        &server,
        sid,
        node,
        "mkdir -p /srv/www && head -c 2000000 /dev/urandom > /srv/www/blob && docker run -d --name web -v /srv/www:/www busybox httpd -f -p 80 -h /www >/dev/null && ip=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' web) && for i in $(seq 50); do curl -sf -o /dev/null http://$ip/ && break; sleep 0.1; done; docker stats --no-stream --format '{{.NetIO}}' web; for i in 1 2 3; do curl -sf -o /dev/null http://$ip/blob; done; docker stats --no-stream --format '{{.NetIO}}' web",
    )
    .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    let sent = |line: &str| bytes(line.split(" / ").nth(1).expect("rx / tx"));
    assert!(sent(lines[0]) < 1e6, "{out:?}");
    assert!(sent(lines[1]) - sent(lines[0]) > 6e6, "{out:?}");

    // Stopped: zeros; unknown: Docker's error.
    let out = run(
        &server,
        sid,
        node,
        "docker create --name idle busybox true >/dev/null; docker stats --no-stream --format '{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}' idle; docker stats --no-stream nosuch; echo code=$?",
    )
    .await;
    assert!(out.stdout.starts_with("idle 0.00% 0B / 0B 0\n"), "{out:?}");
    assert!(out.stdout.ends_with("code=1\n"), "{out:?}");
    assert!(out.stderr.contains("No such container: nosuch"), "{out:?}");

    server.finish(sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_replayed_filtered_followed_and_per_instance() {
    let (server, sid, node1) = TestServer::with_instance(&[]).await;
    let node2 = server.add_instance(&sid).await;
    let (sid, node1, node2) = (sid.as_str(), node1.as_str(), node2.as_str());

    // An image's and a container's life between two times, in order; the
    // container traps its stop signal, so one kill and its exit code.
    let out = run(
        &server,
        sid,
        node1,
        "date +%s.%N > /tmp/t0; docker pull -q busybox >/dev/null; docker create --name ev busybox sh -c 'trap \"exit 3\" TERM; while :; do sleep 0.1; done' >/dev/null; docker start ev >/dev/null; docker exec ev true; docker stop ev >/dev/null; docker rm ev >/dev/null; docker tag busybox mybox:1; docker rmi mybox:1 >/dev/null; sleep 0.2; date +%s.%N > /tmp/t1; docker events --since $(cat /tmp/t0) --until $(cat /tmp/t1) --format '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}'",
    )
    .await;
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            "image pull busybox",
            "container create ev",
            "container start ev",
            "container exec_create: true ev",
            "container exec_start: true ev",
            "container exec_die ev",
            "container kill ev",
            "container die ev",
            "container stop ev",
            "container destroy ev",
            "image tag mybox:1",
            "image untag mybox:1",
        ],
        "{out:?}"
    );
    // Filters, and the attributes of die and kill.
    let out = run(
        &server,
        sid,
        node1,
        "docker events --since $(cat /tmp/t0) --until $(cat /tmp/t1) --filter event=die --filter event=kill --filter container=ev --format '{{.Action}} {{index .Actor.Attributes \"exitCode\"}}{{index .Actor.Attributes \"signal\"}} {{.Actor.Attributes.image}}'; docker events --since $(cat /tmp/t0) --until $(cat /tmp/t1) --filter type=image --filter event=untag --format '{{.Action}} {{.Actor.Attributes.name}}'",
    )
    .await;
    assert_eq!(
        out.stdout, "kill 15 busybox\ndie 3 busybox\nuntag mybox:1\n",
        "{out:?}"
    );

    // Followed live: a listener started before a run sees its die.
    let out = run(
        &server,
        sid,
        node1,
        "timeout 5 docker events --filter event=die --format '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}' > /tmp/live & sleep 1; docker run --rm --name quick busybox sh -c 'exit 7'; echo run=$?; wait; cat /tmp/live",
    )
    .await;
    assert_eq!(out.stdout, "run=7\ndie quick 7\n", "{out:?}");

    // The other instance saw none of it.
    let out = run(
        &server,
        sid,
        node2,
        "docker events --since 0 --until $(date +%s) --format '{{.Action}}'; echo done",
    )
    .await;
    assert_eq!(out.stdout, "done\n", "{out:?}");

    server.finish(sid).await;
}
