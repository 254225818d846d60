//! The default instance image: a Debian bookworm root file system made by
//! debootstrap, built once and cached under the images directory. It is only
//! ever mounted read-only (each instance writes to its own overlay layer).

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::{Flock, FlockArg};

/// Name of the default image's directory below the images directory.
pub const DEFAULT_IMAGE: &str = "debian-bookworm";

/// Packages on top of debootstrap's minbase variant.
const PACKAGES: &[&str] = &[
    "bash",
    "procps",
    "iproute2",
    "iputils-ping",
    "curl",
    "ca-certificates",
    "vim-tiny",
    "less",
    "git",
    "python3",
];

/// Written last: an image directory without it is an interrupted build.
/// It holds [`IMAGE_VERSION`]; a cache with another version is rebuilt once.
const COMPLETE_MARKER: &str = ".complete";

/// Bumped whenever what goes into the image changes. 2: the `docker` client.
const IMAGE_VERSION: &str = "2";

/// Whether `image_dir` holds a finished build of this version.
fn is_complete(image_dir: &Path) -> bool {
    fs::read_to_string(image_dir.join(COMPLETE_MARKER)).is_ok_and(|v| v.trim() == IMAGE_VERSION)
}

/// Where the default image's root file system is (or will be).
pub fn default_image_root(images_dir: &Path) -> PathBuf {
    images_dir.join(DEFAULT_IMAGE).join("rootfs")
}

/// Build the default image unless it is already cached. Concurrent callers
/// (several servers or tests) wait for one build. `progress` gets one line
/// per step of debootstrap's output.
pub fn prepare_default(
    images_dir: &Path,
    mirror: &str,
    mut progress: impl FnMut(&str),
) -> io::Result<PathBuf> {
    let image_dir = images_dir.join(DEFAULT_IMAGE);
    let root = image_dir.join("rootfs");
    if is_complete(&image_dir) {
        return Ok(root);
    }
    fs::create_dir_all(images_dir)?;
    let lock_file = fs::File::create(images_dir.join(".build.lock"))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| io::Error::other(format!("lock images directory: {e}")))?;
    if is_complete(&image_dir) {
        return Ok(root);
    }

    let staging = images_dir.join(format!(".{DEFAULT_IMAGE}.building"));
    if staging.exists() {
        progress("removing an interrupted earlier build");
        fs::remove_dir_all(&staging)?;
    }
    fs::create_dir_all(&staging)?;
    progress(&format!(
        "building the default image with debootstrap from {mirror} (about a minute; done once)"
    ));
    run_debootstrap(&staging.join("rootfs"), mirror, &mut progress)?;
    progress("adding the docker client");
    add_docker_client(&staging.join("rootfs"))?;
    // Downloaded packages are not needed inside instances.
    let _ = fs::remove_dir_all(staging.join("rootfs/var/cache/apt/archives"));
    let _ = fs::create_dir_all(staging.join("rootfs/var/cache/apt/archives/partial"));

    if image_dir.exists() {
        fs::remove_dir_all(&image_dir)?;
    }
    fs::rename(&staging, &image_dir)?;
    let mut marker = fs::File::create(image_dir.join(COMPLETE_MARKER))?;
    io::Write::write_all(&mut marker, IMAGE_VERSION.as_bytes())?;
    marker.sync_all()?;
    // Make the rename and marker durable before anyone relies on them.
    let dir = fs::File::open(images_dir)?;
    nix::unistd::fsync(&dir).map_err(io::Error::from)?;
    progress("default image ready");
    Ok(root)
}

/// Put Debian's `docker` client (docker.io, 20.10, Engine API 1.41) in
/// /usr/bin: only that binary, taken from the package, since the engine it
/// talks to is the playground's own, not dockerd, containerd and runc.
fn add_docker_client(root: &Path) -> io::Result<()> {
    let work = root.join("tmp/docker-client");
    fs::create_dir_all(&work)?;
    // apt inside the new root uses the package lists debootstrap left, so
    // the client comes from the same mirror and release as everything else.
    let resolv = root.join("etc/resolv.conf");
    let had_resolv = fs::symlink_metadata(&resolv).is_ok();
    if !had_resolv {
        fs::copy("/etc/resolv.conf", &resolv)?;
    }
    let download = Command::new("chroot")
        .arg(root)
        .args([
            "sh",
            "-c",
            "cd /tmp/docker-client && apt-get download -q docker.io",
        ])
        .stdin(Stdio::null())
        .output();
    if !had_resolv {
        let _ = fs::remove_file(&resolv);
    }
    let download = download?;
    if !download.status.success() {
        return Err(io::Error::other(format!(
            "apt-get download docker.io failed: {}",
            String::from_utf8_lossy(&download.stderr)
        )));
    }
    let deb = fs::read_dir(&work)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| io::Error::other("apt-get download left no docker.io package"))?;
    let unpacked = work.join("x");
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!("dpkg-deb -x docker.io: {status}")));
    }
    fs::copy(unpacked.join("usr/bin/docker"), root.join("usr/bin/docker"))?;
    fs::remove_dir_all(&work)?;
    Ok(())
}

fn run_debootstrap(target: &Path, mirror: &str, progress: &mut impl FnMut(&str)) -> io::Result<()> {
    let mut child = Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg("bookworm")
        .arg(target)
        .arg(mirror)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot run debootstrap ({e}); install it with `apt-get install debootstrap`"
                ),
            )
        })?;
    let stderr = child.stderr.take().expect("piped stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        // debootstrap prints "I: Retrieving ...", "I: Unpacking ..." per step.
        if let Some(step) = line.strip_prefix("I: ") {
            progress(step);
        }
    }
    let status = child.wait()?;
    let errors = stderr_reader.join().unwrap_or_default();
    if !status.success() {
        let log = target.join("debootstrap/debootstrap.log");
        let tail = fs::read_to_string(&log)
            .map(|t| {
                t.lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        return Err(io::Error::other(format!(
            "debootstrap failed ({status}):\n{errors}{tail}"
        )));
    }
    Ok(())
}
