//! Load test: a classroom arriving at once. `SESSIONS` sessions are created
//! within `ARRIVAL` seconds, each with two instances, and each instance's
//! terminal runs a program that prints continuously for `DURATION` seconds
//! while the client reads everything. Meanwhile the test measures API
//! latency (a poller reads sessions all the time), keystroke echo latency
//! (a token typed into every busy terminal every few seconds must come back
//! through the same output stream), and the server's memory. At the end it
//! tears everything down and checks the host for leftovers.
//!
//!     cargo build --release -p playground -p playground-tests --examples
//!     PLAYGROUND_BIN=target/release/playground target/release/examples/load
//!
//! `scripts/load-test` runs it; the environment sets the size
//! (SESSIONS=60 ARRIVAL=10 DURATION=300 by default). Needs root.
//! Exits non-zero if any request failed other than an honest capacity
//! refusal, or anything was left behind.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use playground_tests::{wait_until_clean, TestServer};
use tokio_tungstenite::tungstenite::Message;

/// What each terminal runs: 50 lines a second of 80 characters, forever.
const PRINTER: &str = "python3 -u -c 'import itertools,time\n\
for i in itertools.count(): print(\"line %08d \" % i + \"x\" * 66); time.sleep(0.02)'\n";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Tally {
    /// Milliseconds of every API call but instance creation.
    api_ms: Mutex<Vec<f64>>,
    /// Milliseconds of instance creation calls.
    create_ms: Mutex<Vec<f64>>,
    /// Milliseconds from typing a token to seeing it echoed.
    echo_ms: Mutex<Vec<f64>>,
    /// Honest refusals (503/429 with a reason).
    refused: AtomicUsize,
    failures: Mutex<Vec<String>>,
    output_bytes: AtomicUsize,
}

impl Tally {
    fn fail(&self, what: String) {
        eprintln!("FAILED: {what}");
        self.failures.lock().unwrap().push(what);
    }
}

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// POST and classify: Ok(json) on success, Err(None) for an honest
/// refusal, Err(Some(reason)) for a failure.
async fn post(
    server: &TestServer,
    path: &str,
    tally: &Tally,
    timings: &Mutex<Vec<f64>>,
) -> Result<serde_json::Value, Option<String>> {
    let started = Instant::now();
    let response = server
        .http
        .post(server.url(path))
        .json(&serde_json::json!({}))
        .send()
        .await
        .map_err(|e| Some(format!("POST {path}: {e}")))?;
    timings
        .lock()
        .unwrap()
        .push(started.elapsed().as_secs_f64() * 1000.0);
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if status.is_success() {
        return Ok(body);
    }
    if (status == 503 || status == 429) && body["error"].is_string() {
        tally.refused.fetch_add(1, Ordering::Relaxed);
        println!("refused: {}", body["error"]);
        return Err(None);
    }
    Err(Some(format!("POST {path}: {status} {body}")))
}

/// One busy terminal: start the printer, read everything, type a token
/// every few seconds and time its echo, until `until`.
async fn run_terminal(
    server: Arc<TestServer>,
    sid: String,
    name: String,
    until: Instant,
    tally: Arc<Tally>,
) {
    let url = server.ws_url(&format!(
        "/api/sessions/{sid}/instances/{name}/terminal?cols=120&rows=40"
    ));
    let (mut ws, _) = match tokio_tungstenite::connect_async(&url).await {
        Ok(ws) => ws,
        Err(e) => return tally.fail(format!("terminal {sid}/{name}: {e}")),
    };
    if let Err(e) = ws
        .send(Message::Binary(PRINTER.as_bytes().to_vec().into()))
        .await
    {
        return tally.fail(format!("terminal {sid}/{name}: send: {e}"));
    }
    // The last bytes seen, enough to find a token split over two frames.
    let mut tail: Vec<u8> = Vec::new();
    let mut pending: Option<(String, Instant)> = None;
    let mut next_token = Instant::now() + Duration::from_secs(3);
    let mut n = 0u32;
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        if pending.is_none() && now >= next_token {
            n += 1;
            let token = format!("K{n:05}Q");
            if let Err(e) = ws
                .send(Message::Binary(token.clone().into_bytes().into()))
                .await
            {
                return tally.fail(format!("terminal {sid}/{name}: type: {e}"));
            }
            pending = Some((token, Instant::now()));
        }
        let wait = until.min(now + Duration::from_millis(500)) - now;
        match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => {}
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                tally.output_bytes.fetch_add(bytes.len(), Ordering::Relaxed);
                tail.extend_from_slice(&bytes);
                if let Some((token, sent)) = &pending {
                    if tail.windows(token.len()).any(|w| w == token.as_bytes()) {
                        tally
                            .echo_ms
                            .lock()
                            .unwrap()
                            .push(sent.elapsed().as_secs_f64() * 1000.0);
                        pending = None;
                        next_token = Instant::now() + Duration::from_secs(2);
                    } else if sent.elapsed() > Duration::from_secs(30) {
                        return tally.fail(format!("terminal {sid}/{name}: no echo in 30 s"));
                    }
                }
                let keep = tail.len().saturating_sub(16);
                tail.drain(..keep);
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return tally.fail(format!("terminal {sid}/{name}: {e}")),
            Ok(None) => return tally.fail(format!("terminal {sid}/{name}: closed early")),
        }
    }
    // Ctrl-C the printer (and the typed tokens), then leave.
    let _ = ws.send(Message::Binary(b"\x03".to_vec().into())).await;
    let _ = ws.close(None).await;
}

#[tokio::main]
async fn main() {
    let sessions_n = env_or("SESSIONS", 60) as usize;
    let arrival = Duration::from_secs(env_or("ARRIVAL", 10));
    let duration = Duration::from_secs(env_or("DURATION", 300));
    let memory_mib = env_or("INSTANCE_MEMORY_MIB", 128);
    println!(
        "load: {sessions_n} sessions x 2 instances arriving over {arrival:?}, printing for {duration:?}"
    );
    // Everyone comes from 127.0.0.1 here, like a classroom behind one NAT
    // address: per-address limits off, as the README tells such a teacher.
    let memory = format!("--instance-memory-mib={memory_mib}");
    let server = Arc::new(
        TestServer::start(&[
            "--max-sessions-per-client=0",
            "--requests-per-second=0",
            "--max-instances=2",
            &memory,
            "--instance-cpus=0.5",
        ])
        .await,
    );
    let pid = server.pid();
    let tally = Arc::new(Tally::default());
    let sids = Arc::new(Mutex::new(Vec::<String>::new()));
    let start = Instant::now();
    let until = start + arrival + duration;

    // The server's memory, once a second.
    let rss = Arc::new(Mutex::new(Vec::<u64>::new()));
    let sampler = {
        let rss = rss.clone();
        tokio::spawn(async move {
            loop {
                rss.lock().unwrap().push(rss_kib(pid));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    // A steady reader of session state, as open pages would be.
    let poller = {
        let (server, tally, sids) = (server.clone(), tally.clone(), sids.clone());
        tokio::spawn(async move {
            let mut i = 0usize;
            while Instant::now() < until {
                let sid = {
                    let sids = sids.lock().unwrap();
                    (!sids.is_empty()).then(|| sids[i % sids.len()].clone())
                };
                i += 1;
                if let Some(sid) = sid {
                    let started = Instant::now();
                    match server
                        .http
                        .get(server.url(&format!("/api/sessions/{sid}")))
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            tally
                                .api_ms
                                .lock()
                                .unwrap()
                                .push(started.elapsed().as_secs_f64() * 1000.0);
                        }
                        Ok(r) => tally.fail(format!("GET session: {}", r.status())),
                        Err(e) => tally.fail(format!("GET session: {e}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let mut students = Vec::new();
    for k in 0..sessions_n {
        let arrives = start + arrival.mul_f64(k as f64 / sessions_n as f64);
        let (server, tally, sids) = (server.clone(), tally.clone(), sids.clone());
        students.push(tokio::spawn(async move {
            tokio::time::sleep_until(arrives.into()).await;
            let session = match post(&server, "/api/sessions", &tally, &tally.api_ms).await {
                Ok(session) => session,
                Err(None) => return,
                Err(Some(e)) => return tally.fail(e),
            };
            let sid = session["id"].as_str().unwrap().to_string();
            sids.lock().unwrap().push(sid.clone());
            let mut terminals = Vec::new();
            for _ in 0..2 {
                let path = format!("/api/sessions/{sid}/instances");
                match post(&server, &path, &tally, &tally.create_ms).await {
                    Ok(instance) => {
                        let name = instance["name"].as_str().unwrap().to_string();
                        terminals.push(tokio::spawn(run_terminal(
                            server.clone(),
                            sid.clone(),
                            name,
                            until,
                            tally.clone(),
                        )));
                    }
                    Err(None) => {}
                    Err(Some(e)) => tally.fail(e),
                }
            }
            for t in terminals {
                let _ = t.await;
            }
        }));
    }
    let arrived_in = {
        for s in students {
            let _ = s.await;
        }
        start.elapsed()
    };
    let _ = poller.await;
    sampler.abort();
    let elapsed = start.elapsed();

    // Tear down: end every session, stop the server, check the host.
    let sids: Vec<String> = sids.lock().unwrap().clone();
    let teardown_started = Instant::now();
    for sid in &sids {
        let r = server
            .http
            .delete(server.url(&format!("/api/sessions/{sid}")))
            .send()
            .await;
        if !matches!(&r, Ok(r) if r.status() == 204) {
            tally.fail(format!("DELETE session {sid}: {r:?}"));
        }
    }
    let teardown = teardown_started.elapsed();
    let data_dir = server.data_dir.path().to_path_buf();
    let mut left = 0;
    for sid in &sids {
        let leftovers = wait_until_clean(sid, &data_dir, Duration::from_secs(10)).await;
        if !leftovers.is_empty() {
            left += 1;
            tally.fail(format!("session {sid} left {leftovers:?}"));
        }
    }
    let server = Arc::try_unwrap(server)
        .ok()
        .expect("no other users of the server");
    server.stop().await;

    let api = tally.api_ms.lock().unwrap().clone();
    let create = tally.create_ms.lock().unwrap().clone();
    let echo = tally.echo_ms.lock().unwrap().clone();
    let rss = rss.lock().unwrap().clone();
    let failures = tally.failures.lock().unwrap().clone();
    println!("--- results ---");
    println!(
        "sessions created: {} of {sessions_n}; run over after {arrived_in:.1?}",
        sids.len()
    );
    println!("honest refusals: {}", tally.refused.load(Ordering::Relaxed));
    println!(
        "terminal output read: {:.1} MiB in {elapsed:.0?}",
        tally.output_bytes.load(Ordering::Relaxed) as f64 / (1 << 20) as f64
    );
    println!(
        "API calls (session reads, session creates): {} — p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        api.len(),
        percentile(&api, 0.5),
        percentile(&api, 0.99),
        percentile(&api, 1.0)
    );
    println!(
        "instance creates: {} — p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        create.len(),
        percentile(&create, 0.5),
        percentile(&create, 0.99),
        percentile(&create, 1.0)
    );
    println!(
        "keystroke echo through busy terminals: {} — p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        echo.len(),
        percentile(&echo, 0.5),
        percentile(&echo, 0.99),
        percentile(&echo, 1.0)
    );
    let rss_max = rss.iter().max().copied().unwrap_or(0);
    let rss_last = rss.last().copied().unwrap_or(0);
    let rss_mid = rss.get(rss.len() / 2).copied().unwrap_or(0);
    println!(
        "server RSS: max {:.1} MiB, halfway {:.1} MiB, at the end {:.1} MiB",
        rss_max as f64 / 1024.0,
        rss_mid as f64 / 1024.0,
        rss_last as f64 / 1024.0
    );
    println!(
        "teardown of {} sessions: {teardown:.1?}; sessions with leftovers: {left}",
        sids.len()
    );
    println!("failures: {}", failures.len());
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
