//! The offline default images (`scripts/build-offline-images`) import into
//! the store, share debian's layer with nginx, and nginx, run from the
//! stacked layer directories, serves its page. Needs root and the layout:
//! run the script first (PLAYGROUND_OCI_LAYOUT picks another layout).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sandbox::oci::{ImageStore, RegistrySettings};

fn layout() -> PathBuf {
    let dir = std::env::var_os("PLAYGROUND_OCI_LAYOUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/lib/playground/images/oci-layout".into());
    assert!(
        dir.join("index.json").is_file(),
        "no offline images at {}: run scripts/build-offline-images",
        dir.display()
    );
    dir
}

/// An overlayfs of the image's layers with a scratch upper dir, unmounted
/// on drop.
struct Rootfs {
    dir: tempfile::TempDir,
}

impl Rootfs {
    fn mount(layers_bottom_first: &[PathBuf]) -> Rootfs {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["upper", "work", "merged"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let lowers: Vec<String> = layers_bottom_first
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect();
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            dir.path().join("upper").display(),
            dir.path().join("work").display()
        );
        nix::mount::mount(
            Some("overlay"),
            &dir.path().join("merged"),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(options.as_str()),
        )
        .expect("mount overlay (needs root)");
        Rootfs { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("merged")
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A process stopped with SIGTERM and reaped on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_images_import_and_nginx_serves_its_page() {
    let work = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&work.path().join("oci"), RegistrySettings::default()).unwrap();
    let imported = store.import_layout(&layout(), &|_| {}).await.unwrap();
    let mut names: Vec<_> = imported.iter().map(|o| o.reference.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "busybox:latest",
            "debian:bookworm-slim",
            "nginx:latest",
            "python:3",
            "python:3-slim",
            "redis:latest",
            "registry:2"
        ]
    );
    assert!(store
        .import_layout(&layout(), &|_| {})
        .await
        .unwrap()
        .is_empty());

    let busybox = store.inspect("busybox").unwrap();
    let sh = busybox.layers[0].path.join("bin/sh");
    assert_eq!(fs::read_link(&sh).unwrap(), Path::new("/bin/busybox"));
    let debian = store
        .inspect("docker.io/library/debian:bookworm-slim")
        .unwrap();
    let nginx = store.inspect("nginx:latest").unwrap();
    assert_eq!(
        nginx.layers[0].path, debian.layers[0].path,
        "nginx shares debian's layer"
    );
    assert_eq!(
        nginx.config.config().as_ref().unwrap().cmd().as_deref(),
        Some(&["nginx".to_owned(), "-g".into(), "daemon off;".into()][..])
    );

    // Run the image's command in its own network and mount namespaces, then
    // fetch the page from inside that network namespace.
    let layers: Vec<PathBuf> = nginx.layers.iter().map(|l| l.path.clone()).collect();
    let rootfs = Rootfs::mount(&layers);
    let nginx_process = Running(
        Command::new("unshare")
            .args(["--net", "--mount", "--", "sh", "-c"])
            // /proc as a runtime gives it: nginx logs to /dev/stderr.
            .arg("ip link set lo up && mount -t proc proc \"$0/proc\" && exec chroot \"$0\" nginx -g 'daemon off;'")
            .arg(rootfs.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = nginx_process.0.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let out = Command::new("nsenter")
            .args(["-t", &pid, "-n", "curl", "-sf", "http://127.0.0.1/"])
            .output()
            .unwrap();
        if out.status.success() {
            break String::from_utf8(out.stdout).unwrap();
        }
        assert!(Instant::now() < deadline, "nginx did not answer");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(page.contains("Welcome to nginx!"), "{page}");
    drop(nginx_process);
    drop(rootfs);
}
