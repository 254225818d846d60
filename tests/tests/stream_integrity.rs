//! Issue 11: every stream a user reads gets every byte once, in order, even
//! under a flood and with a reader that falls behind. 50 MB of numbered
//! lines (`seq`) through the real `docker` client inside an instance and the
//! built-in engine: `docker logs -f` while the container runs (and `docker
//! logs` after it exited), `docker run` attached without and with a
//! terminal (`-it`), `docker exec`; then the files API both ways and the
//! REST exec's cap (`truncated`). Needs root.

use std::time::{Duration, Instant};

use playground_protocol::ExecResponse;
use playground_tests::TestServer;

/// `seq 1 6500000`: 50.9 MB of numbered lines.
const LINES: u64 = 6_500_000;

/// The image of the flooding containers: its `seq` (coreutils') prints far
/// faster than busybox's, so the engine, not the container, sets the pace.
const IMAGE: &str = "debian:bookworm-slim";

/// What `seq 1 n` prints, each line ending in `end`.
fn seq(n: u64, end: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(seq_len(n, end.len() as u64) as usize);
    for i in 1..=n {
        out.extend_from_slice(i.to_string().as_bytes());
        out.extend_from_slice(end.as_bytes());
    }
    out
}

/// The length of `seq(n, end)`, without making it.
fn seq_len(n: u64, end: u64) -> u64 {
    (1..=n).map(|i| i.to_string().len() as u64 + end).sum()
}

/// Run `script` with bash (`pipefail` set: a pipeline fails with the
/// command that failed) in the instance through the REST exec, with room
/// for a flood (the default timeout is 60 s).
async fn sh(server: &TestServer, sid: &str, name: &str, script: &str) -> ExecResponse {
    let started = Instant::now();
    let response = server
        .http
        .post(server.url(&format!("/api/sessions/{sid}/instances/{name}/exec")))
        .json(&serde_json::json!({
            "cmd": ["bash", "-c", format!("set -o pipefail; {script}")],
            "timeout_secs": 300,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let out: ExecResponse = response.json().await.unwrap();
    let head = |text: &str| text.chars().take(300).collect::<String>();
    eprintln!(
        "$ {script}\n{}{}[exit {}, {:.1} s]",
        head(&out.stdout),
        head(&out.stderr),
        out.exit_code,
        started.elapsed().as_secs_f64()
    );
    assert!(!out.timed_out, "{out:?}");
    out
}

/// A shell function for the instance: `check FILE [cr]` prints the file's
/// size, its line count, how many lines are not their own number (`\r`
/// before each newline ignored), the first such line, and whether the file
/// is byte for byte what `seq 1 LINES` prints (with `\r\n` line ends for
/// `cr`, as a terminal makes them).
fn check_function() -> String {
    format!(
        r#"check() {{
  if [ "$2" = cr ]; then want=$(seq 1 {LINES} | sed 's/$/\r/' | md5sum); else want=$(seq 1 {LINES} | md5sum); fi
  got=$(md5sum < "$1")
  lines=$(tr -d '\r' < "$1" | awk '$0 != NR "" {{ bad++; if (!first) first = NR }} END {{ print NR, bad + 0, first + 0 }}')
  if [ "$want" = "$got" ]; then same=exact; else same=differs; fi
  echo "$(wc -c < "$1") $lines $same"
  rm -f "$1"
}}
"#
    )
}

/// What `check` prints for a complete copy.
fn complete(cr: bool) -> String {
    let end = if cr { 2 } else { 1 };
    format!("{} {LINES} 0 0 exact", seq_len(LINES, end))
}

/// Run `setup`, then `transfer` (something that shows `seq 1 LINES`) into a
/// file through a reader that stops for 3 s first (a slow client while the
/// container floods), and check the file; `cr`: a terminal's line ends.
/// The transfer's figures go to the log.
async fn flood(
    server: &TestServer,
    (sid, node): (&str, &str),
    what: &str,
    (setup, transfer): (&str, &str),
    cr: bool,
) {
    let check = check_function();
    let cr_arg = if cr { " cr" } else { "" };
    let script = format!(
        "{check}{setup}t0=$(date +%s%N); {transfer} | (sleep 3; cat) > /root/flood.out; echo code=$?; \
         echo ms=$(( ($(date +%s%N) - t0) / 1000000 )); check /root/flood.out{cr_arg}"
    );
    let out = sh(server, sid, node, &script).await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{what}: {out:?}");
    assert_eq!(lines[0], "code=0", "{what}: {out:?}");
    assert_eq!(lines[2], complete(cr), "{what}: {out:?}");
    let secs = lines[1]
        .strip_prefix("ms=")
        .and_then(|ms| ms.parse::<f64>().ok())
        .expect("the transfer's time")
        / 1000.0;
    let mb = seq_len(LINES, if cr { 2 } else { 1 }) as f64 / 1e6;
    eprintln!(
        "== {what}: {mb:.1} MB whole and in order, in {secs:.1} s with the reader's 3 s stop \
         ({:.1} MB/s without it)",
        mb / (secs - 3.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_streams_deliver_a_50_mb_flood_whole_and_in_order() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let (sid, node) = (sid.as_str(), node.as_str());
    let out = sh(
        &server,
        sid,
        node,
        "docker pull -q busybox >/dev/null && docker pull -q debian:bookworm-slim >/dev/null && for t in script md5sum awk; do command -v $t >/dev/null || echo missing $t; done",
    )
    .await;
    assert_eq!((out.exit_code, out.stdout.as_str()), (0, ""), "{out:?}");

    let at = (sid, node);

    // (a) `docker logs -f` from the start of a run to its end: part of the
    // output is in the log when the client asks, the rest comes live; all
    // of it once. It ends with the container.
    flood(
        &server,
        at,
        "docker logs -f",
        (
            &format!("docker run -d --name flood {IMAGE} sh -c 'seq 1 1000000; sleep 1; seq 1000001 {LINES}' >/dev/null && "),
            "docker logs -f flood",
        ),
        false,
    )
    .await;
    // After the exit: the log keeps the newest output (8 to 16 MiB of log
    // file, see `MAX_LOG`); what it gives is an unbroken run of lines
    // ending with the last one (the first may be cut).
    let out = sh(
        &server,
        sid,
        node,
        "docker inspect -f '{{.State.Status}}' flood; docker logs flood > /root/logs.out; echo code=$?; wc -c < /root/logs.out; \
         tail -n +2 /root/logs.out | awk 'NR == 1 { n = $1 } $0 != n + NR - 1 \"\" { bad++ } END { print bad + 0, n + NR - 1 }'; \
         rm /root/logs.out; docker rm flood >/dev/null",
    )
    .await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out:?}");
    assert_eq!(lines[..2], ["exited", "code=0"], "{out:?}");
    let kept: u64 = lines[2].parse().unwrap();
    assert!(kept > 4 << 20, "the log kept only {kept} bytes: {out:?}");
    eprintln!("== docker logs after the exit: the newest {kept} bytes, unbroken");
    assert_eq!(lines[3], format!("0 {LINES}"), "{out:?}");

    // (c) `docker run` attached, no terminal (multiplexed stream).
    let transfer = format!("docker run --rm {IMAGE} seq 1 {LINES}");
    flood(&server, at, "docker run", ("", &transfer), false).await;

    // (b) `docker run -it`: the client on a terminal (`script` gives it
    // one; its input a FIFO that stays open and silent, since whatever is
    // typed to the container's terminal is echoed into the output), the
    // raw stream of the container's terminal, `\r\n` line ends.
    let transfer = format!("script -qec 'docker run -it --rm {IMAGE} seq 1 {LINES}' /dev/null <&3");
    let setup = "mkfifo /root/in && exec 3<>/root/in && rm /root/in && ";
    flood(&server, at, "docker run -it", (setup, &transfer), true).await;

    // `docker exec`, without and with a terminal.
    let setup = &format!("docker run -d --name idle {IMAGE} sleep 600 >/dev/null && ");
    let transfer = format!("docker exec idle seq 1 {LINES}");
    flood(&server, at, "docker exec", (setup, &transfer), false).await;
    let transfer = format!("docker exec -t idle seq 1 {LINES}");
    flood(&server, at, "docker exec -t", ("", &transfer), true).await;

    // Output that is not UTF-8, or text whose characters the reads split,
    // comes back from the log byte for byte. (`yes | head` ends only if the
    // container's processes get SIGPIPE's default disposition.)
    for make in [
        "head -c 3000000 /dev/urandom",
        "yes 'ü€ abc' | head -n 300000",
    ] {
        let out = sh(
            &server,
            sid,
            node,
            &format!(
                "docker run --name bytes busybox sh -c \"{make} > /tmp/r; md5sum < /tmp/r >&2; cat /tmp/r\" 2>/root/sum > /dev/null; \
                 docker logs bytes 2>/dev/null | md5sum; cat /root/sum; docker rm bytes >/dev/null"
            ),
        )
        .await;
        let sums: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(sums.len(), 2, "{out:?}");
        assert_eq!(sums[0], sums[1], "{make}: {out:?}");
    }

    server.finish(sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn files_and_rest_exec_carry_50_mb_honestly() {
    let (server, sid, node) = TestServer::with_instance(&[]).await;
    let (sid, node) = (sid.as_str(), node.as_str());
    let expected = seq(LINES, "\n");
    let url = |path: &str| {
        let base = server.url(&format!("/api/sessions/{sid}/instances/{node}/files"));
        reqwest::Url::parse_with_params(&base, &[("path", path)]).unwrap()
    };

    // Download, read slowly at first.
    let out = sh(&server, sid, node, &format!("seq 1 {LINES} > /root/big")).await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    let started = Instant::now();
    let mut response = server.http.get(url("/root/big")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut got = Vec::with_capacity(expected.len());
    let mut pieces = 0;
    while let Some(piece) = response.chunk().await.unwrap() {
        got.extend_from_slice(&piece);
        pieces += 1;
        if pieces <= 20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "== files API download: {} bytes in {secs:.1} s with 2 s of pauses",
        got.len()
    );
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the download differs from seq's output");

    // Upload the same bytes back.
    let started = Instant::now();
    let response = server
        .http
        .post(url("/root/up"))
        .header("content-type", "application/octet-stream")
        .body(expected.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "== files API upload: {} bytes in {secs:.1} s",
        expected.len()
    );
    let out = sh(
        &server,
        sid,
        node,
        &format!("seq 1 {LINES} | cmp - /root/up && echo same; rm /root/up"),
    )
    .await;
    assert_eq!(out.stdout, "same\n", "{out:?}");

    // The REST exec keeps 1 MiB of each stream by design: a flood comes back
    // cut at exactly that, in order, and says so; what fits says it is whole.
    let out = sh(&server, sid, node, "cat /root/big; rm /root/big").await;
    assert!(out.truncated, "50 MB not marked truncated");
    assert_eq!(out.stdout.len(), 1 << 20);
    assert!(expected.starts_with(out.stdout.as_bytes()));
    let out = sh(&server, sid, node, "seq 1 100000").await;
    assert!(!out.truncated, "{:?}", &out.stdout[..100]);
    assert_eq!(out.stdout.as_bytes(), seq(100_000, "\n"));

    server.finish(sid).await;
}

/// A command that leaves a background process holding its output open still
/// returns what it printed (it came back empty: the reader was cancelled
/// and its bytes thrown away).
#[tokio::test(flavor = "multi_thread")]
async fn exec_keeps_output_when_a_background_process_holds_the_pipe() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    let started = Instant::now();
    let out = server
        .exec(&sid, &name, "echo before; sleep 30 & echo after")
        .await;
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout, "before\nafter\n");
    assert!(!out.truncated);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "exec waited for the background process: {:?}",
        started.elapsed()
    );
    server.finish(&sid).await;
}
