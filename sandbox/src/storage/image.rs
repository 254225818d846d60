//! The instance images: Debian root file systems made by debootstrap, built
//! once and cached under the images directory, only ever mounted read-only
//! (each instance writes to its own overlay layer).
//!
//! - [`NESTING`], Debian 13 trixie with the real Docker (dockerd, its
//!   client, containerd, runc, compose, buildx, iptables on nftables), for
//!   the nesting profile, the default;
//! - [`STRICT`], Debian 12 bookworm with only the `docker` client 20.10
//!   (Engine API 1.41), which talks to the server's built-in engine.

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::{Flock, FlockArg};

/// Where dockerd in a nesting instance finds its registry mirror (this
/// image's /etc/docker/daemon.json names it): a loopback port of the
/// instance's own network namespace, served by the server. Above the
/// ephemeral port range, so no outgoing connection can hold it.
pub const MIRROR_ADDRESS: &str = "127.0.0.1:65001";

/// One image: what debootstrap makes it from, and what it adds.
pub struct ImageSpec {
    /// The image's directory below the images directory.
    pub name: &'static str,
    /// The Debian release.
    pub suite: &'static str,
    /// Packages on top of [`BASE_PACKAGES`].
    pub packages: &'static [&'static str],
    /// Bumped whenever what goes into the image changes; a cache with
    /// another version is rebuilt once.
    pub version: &'static str,
    /// What is done to the root file system after debootstrap.
    pub finish: fn(&Path) -> io::Result<()>,
}

/// The nesting profile's image.
pub const NESTING: ImageSpec = ImageSpec {
    // The name carries the version: a new build goes beside the old one,
    // which instances kept across a server upgrade still run on.
    name: "debian-trixie-3",
    suite: "trixie",
    packages: &[
        "docker.io",
        "docker-cli",
        "docker-compose",
        "docker-buildx",
        "containerd",
        "runc",
        "iptables",
        "nftables",
        "util-linux",
    ],
    // 2: refuse swarm services that need IPVS, with the reason.
    // 3: sftp-server, for SSH's sftp and scp.
    version: "3",
    finish: configure_dockerd,
};

/// The strict profile's image.
pub const STRICT: ImageSpec = ImageSpec {
    name: "debian-bookworm-3",
    suite: "bookworm",
    packages: &[],
    // 2: the `docker` client. 3: sftp-server, for SSH's sftp and scp.
    version: "3",
    finish: add_docker_client,
};

/// Packages on top of debootstrap's minbase variant, in every image.
const BASE_PACKAGES: &[&str] = &[
    "bash",
    // What `sftp` and `scp` run over SSH (no sshd: the server speaks SSH).
    "openssh-sftp-server",
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
/// It holds the image's version.
const COMPLETE_MARKER: &str = ".complete";

/// Whether `image_dir` holds a finished build of `version`.
fn is_complete(image_dir: &Path, version: &str) -> bool {
    fs::read_to_string(image_dir.join(COMPLETE_MARKER)).is_ok_and(|v| v.trim() == version)
}

/// Where an image's root file system is (or will be).
pub fn image_root(images_dir: &Path, spec: &ImageSpec) -> PathBuf {
    images_dir.join(spec.name).join("rootfs")
}

/// Build the strict profile's image unless it is already cached.
pub fn prepare_default(
    images_dir: &Path,
    mirror: &str,
    progress: impl FnMut(&str),
) -> io::Result<PathBuf> {
    prepare(images_dir, &STRICT, mirror, progress)
}

/// Build an image unless it is already cached. Concurrent callers
/// (several servers or tests) wait for one build. `progress` gets one line
/// per step of debootstrap's output.
pub fn prepare(
    images_dir: &Path,
    spec: &ImageSpec,
    mirror: &str,
    mut progress: impl FnMut(&str),
) -> io::Result<PathBuf> {
    let image_dir = images_dir.join(spec.name);
    let root = image_dir.join("rootfs");
    if is_complete(&image_dir, spec.version) {
        return Ok(root);
    }
    fs::create_dir_all(images_dir)?;
    let lock_file = fs::File::create(images_dir.join(".build.lock"))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| io::Error::other(format!("lock images directory: {e}")))?;
    if is_complete(&image_dir, spec.version) {
        return Ok(root);
    }

    let staging = images_dir.join(format!(".{}.building", spec.name));
    if staging.exists() {
        progress("removing an interrupted earlier build");
        fs::remove_dir_all(&staging)?;
    }
    fs::create_dir_all(&staging)?;
    progress(&format!(
        "building the {} image (Debian {}) with debootstrap from {mirror} (about a minute; done once)",
        spec.name, spec.suite
    ));
    run_debootstrap(&staging.join("rootfs"), spec, mirror, &mut progress)?;
    progress("finishing the image");
    (spec.finish)(&staging.join("rootfs"))?;
    // Downloaded packages are not needed inside instances.
    let _ = fs::remove_dir_all(staging.join("rootfs/var/cache/apt/archives"));
    let _ = fs::create_dir_all(staging.join("rootfs/var/cache/apt/archives/partial"));

    if image_dir.exists() {
        fs::remove_dir_all(&image_dir)?;
    }
    fs::rename(&staging, &image_dir)?;
    let mut marker = fs::File::create(image_dir.join(COMPLETE_MARKER))?;
    io::Write::write_all(&mut marker, spec.version.as_bytes())?;
    marker.sync_all()?;
    // Make the rename and marker durable before anyone relies on them.
    let dir = fs::File::open(images_dir)?;
    nix::unistd::fsync(&dir).map_err(io::Error::from)?;
    progress(&format!("{} image ready", spec.name));
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

/// dockerd's configuration: the playground's registry mirror (the offline
/// images; anything it lacks comes from Docker Hub when that is reachable);
/// and `docker` refusing swarm services the kernel cannot serve in a user
/// namespace, saying why (see docker-swarm-note.sh).
fn configure_dockerd(root: &Path) -> io::Result<()> {
    let dir = root.join("etc/docker");
    fs::create_dir_all(&dir)?;
    let config = format!(
        "{{\n  \"registry-mirrors\": [\"http://{}\"]\n}}\n",
        MIRROR_ADDRESS
    );
    fs::write(dir.join("daemon.json"), config)?;
    let note = root.join("usr/local/bin/docker");
    fs::write(&note, include_str!("docker-swarm-note.sh"))?;
    fs::set_permissions(&note, std::os::unix::fs::PermissionsExt::from_mode(0o755))
}

fn run_debootstrap(
    target: &Path,
    spec: &ImageSpec,
    mirror: &str,
    progress: &mut impl FnMut(&str),
) -> io::Result<()> {
    let packages: Vec<&str> = BASE_PACKAGES.iter().chain(spec.packages).copied().collect();
    let mut child = Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--include={}", packages.join(",")))
        .arg(spec.suite)
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
