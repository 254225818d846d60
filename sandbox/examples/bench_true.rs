//! Time whole instance cycles running `/bin/true`: create (and start),
//! exec and wait, destroy (delete). The counterpart of `runc run` in
//! `scripts/bench-vs-runc`.
//!
//! `cargo run --release -p sandbox --example bench_true -- [N]` (as root;
//! N defaults to 50, plus 3 warm-up runs that are not counted).

use std::path::Path;
use std::time::{Duration, Instant};

use sandbox::{InstanceSpec, Limits, Runtime, RuntimeConfig};

const WARMUP: usize = 3;

fn main() {
    sandbox::run_launcher_if_requested();
    sandbox::become_subreaper().expect("subreaper");
    let runs: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().expect("usage: bench_true [N]"),
        None => 50,
    };
    assert!(runs > 0, "N must be at least 1");
    let image_root = sandbox::image::prepare_default(
        Path::new("/var/lib/playground/images"),
        "http://deb.debian.org/debian",
        |l| eprintln!("{l}"),
    )
    .expect("image");
    let data_dir = make_temp_dir();

    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = rt.block_on(async {
        let runtime = Runtime::new(RuntimeConfig {
            data_dir: data_dir.clone(),
            launcher: std::env::current_exe().expect("current exe"),
            keep: Vec::new(),
        })
        .map_err(|e| format!("runtime: {e}"))?;
        let mut times = Vec::with_capacity(runs);
        let mut phases = [Vec::new(), Vec::new(), Vec::new()];
        for i in 0..WARMUP + runs {
            let start = Instant::now();
            let phase = cycle(&runtime, &image_root, i).await?;
            if i >= WARMUP {
                times.push(start.elapsed());
                for (all, t) in phases.iter_mut().zip(phase) {
                    all.push(t);
                }
            }
        }
        Ok::<_, String>((times, phases))
    });
    drop(rt);
    let _ = std::fs::remove_dir_all(&data_dir);

    let (mut times, mut phases) = match result {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bench_true: {e}");
            std::process::exit(1);
        }
    };
    times.sort();
    println!(
        "playground: create+start+wait+delete /bin/true  median {:.1} ms  p90 {:.1} ms  min {:.1} ms  ({} runs)",
        ms(median(&times)),
        ms(percentile(&times, 90)),
        ms(times[0]),
        times.len()
    );
    for p in &mut phases {
        p.sort();
    }
    println!(
        "  phases (median): create {:.1} ms  exec /bin/true {:.1} ms  destroy {:.1} ms",
        ms(median(&phases[0])),
        ms(median(&phases[1])),
        ms(median(&phases[2])),
    );
}

/// One cycle: create, run `/bin/true` and wait for it, destroy. Returns
/// how long each of the three took.
async fn cycle(runtime: &Runtime, image_root: &Path, i: usize) -> Result<[Duration; 3], String> {
    let t0 = Instant::now();
    let instance = runtime
        .create(InstanceSpec {
            id: format!("bench-{i}"),
            hostname: "bench".into(),
            limits: Limits::default(),
            image: image_root.to_path_buf(),
            profile: sandbox::Profile::Strict,
        })
        .await
        .map_err(|e| format!("create: {e}"))?;
    let t1 = Instant::now();
    let out = instance
        .exec(
            vec!["/bin/true".into()],
            Vec::new(),
            Duration::from_secs(10),
            1024,
        )
        .await;
    let t2 = Instant::now();
    let destroyed = instance.destroy().await;
    let t3 = Instant::now();
    let out = out.map_err(|e| format!("exec: {e}"))?;
    if out.exit_code != 0 {
        return Err(format!("/bin/true exited with {}", out.exit_code));
    }
    destroyed.map_err(|e| format!("destroy: {e}"))?;
    Ok([t1 - t0, t2 - t1, t3 - t2])
}

fn make_temp_dir() -> std::path::PathBuf {
    let base = std::env::temp_dir();
    for n in 0.. {
        let dir = base.join(format!("playground-bench-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("{}: {e}", dir.display()),
        }
    }
    unreachable!()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median of sorted times (mean of the middle two for an even count).
fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// Nearest-rank percentile of sorted times.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}
