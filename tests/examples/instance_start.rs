//! Benchmark: how long from the API call that adds an instance to the first
//! byte of its shell prompt on the terminal WebSocket, and how much host
//! memory an idle instance (init + a login shell) costs.
//!
//!     cargo build -p playground && cargo run -p playground-tests --example instance_start [runs]
//!
//! Needs root, like the server.

use std::time::{Duration, Instant};

use playground_tests::TestServer;

fn mem_available_kib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Memory charged to the cgroups of a session's instances, in KiB.
fn cgroup_memory_kib(sid: &str) -> u64 {
    let tag = sid.replace('-', "");
    let mut total = 0;
    for parent in [
        "/sys/fs/cgroup/memory/playground",
        "/sys/fs/cgroup/playground",
    ] {
        let Ok(entries) = std::fs::read_dir(parent) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_name().to_string_lossy().starts_with(&tag) {
                continue;
            }
            for file in ["memory.usage_in_bytes", "memory.current"] {
                if let Ok(v) = std::fs::read_to_string(e.path().join(file)) {
                    total += v.trim().parse::<u64>().unwrap_or(0) / 1024;
                }
            }
        }
    }
    total
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let server = TestServer::start(&["--max-instances=20"]).await;
    let sid = server.create_session().await.id;

    // Start latency: API call -> first terminal byte (the prompt).
    let mut create_ms = Vec::new();
    let mut prompt_ms = Vec::new();
    let mut delete_ms = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let name = server.add_instance(&sid).await;
        create_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        let mut term = server.terminal(&sid, &name, "").await;
        term.wait_for("#", Duration::from_secs(10)).await;
        prompt_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        term.close().await;
        let t1 = Instant::now();
        let resp = server
            .http
            .delete(server.url(&format!("/api/sessions/{sid}/instances/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        delete_ms.push(t1.elapsed().as_secs_f64() * 1e3);
    }
    println!("runs: {runs}");
    println!(
        "add instance (API answer)        median {:7.1} ms",
        median(&mut create_ms)
    );
    println!(
        "add instance -> first prompt byte median {:7.1} ms",
        median(&mut prompt_ms)
    );
    println!(
        "delete instance                   median {:7.1} ms",
        median(&mut delete_ms)
    );

    // Idle memory: 10 instances, each with a login shell waiting at its prompt.
    let n = 10;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = mem_available_kib();
    let mut terms = Vec::new();
    for _ in 0..n {
        let name = server.add_instance(&sid).await;
        let mut term = server.terminal(&sid, &name, "").await;
        term.wait_for("#", Duration::from_secs(10)).await;
        terms.push(term);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = mem_available_kib();
    let charged = cgroup_memory_kib(&sid);
    println!(
        "idle instance with a shell: {:.1} MiB of host memory each (MemAvailable drop over {n}), {:.1} MiB charged to its cgroup",
        (before.saturating_sub(after)) as f64 / n as f64 / 1024.0,
        charged as f64 / n as f64 / 1024.0
    );
    for term in terms {
        term.close().await;
    }
    server.stop().await;
}
