//! Create one instance, run a few commands in it, destroy it. A quick manual
//! check of the runtime: `cargo run -p sandbox --example smoke` (as root).

use std::time::{Duration, Instant};

use sandbox::{InstanceSpec, Limits, Runtime, RuntimeConfig};

fn main() {
    sandbox::run_launcher_if_requested();
    sandbox::become_subreaper().expect("subreaper");
    let images = std::path::PathBuf::from("/var/lib/playground/images");
    let image_root =
        sandbox::image::prepare_default(&images, "http://deb.debian.org/debian", |l| {
            eprintln!("image: {l}")
        })
        .expect("image");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let runtime = Runtime::new(RuntimeConfig {
            data_dir: std::env::temp_dir().join("playground-smoke"),
            launcher: std::env::current_exe().unwrap(),
            keep: Vec::new(),
        })
        .expect("runtime");
        let t = Instant::now();
        let instance = runtime
            .create(InstanceSpec {
                id: "smoke".into(),
                hostname: "node1".into(),
                limits: Limits::default(),
                image: image_root.clone(),
                profile: sandbox::Profile::Strict,
            })
            .await
            .expect("create");
        println!("created in {:?}", t.elapsed());
        let cmd = "hostname; id; ps -e; ls -ld / /root /etc/passwd; cat /proc/self/uid_map; echo hi > /root/x; ls -l /root; mount | head -20";
        let out = instance
            .exec(
                vec!["sh".into(), "-c".into(), cmd.into()],
                Vec::new(),
                Duration::from_secs(10),
                1 << 20,
            )
            .await
            .expect("exec");
        println!("exit {}\n{}\n{}", out.exit_code, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let t = Instant::now();
        instance.destroy().await.expect("destroy");
        println!("destroyed in {:?}", t.elapsed());
    });
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join("playground-smoke"));
}
