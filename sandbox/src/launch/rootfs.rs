//! Inside the new namespaces, before init starts serving: the rest of the
//! root file system (fresh /proc, a minimal /dev, read-only /sys, /dev/shm),
//! the hostname, and the switch into the new root with `pivot_root`.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::{chdir, pivot_root, sethostname};

use super::jobs::LaunchConfig;
use crate::isolation::security::Profile;

/// The directory on the instance's disk that holds /var/lib/docker.
pub(crate) const DOCKER_DIR: &str = "docker";

/// Host device nodes bind-mounted into each instance's /dev. A user
/// namespace cannot create device nodes, and these are harmless.
pub(crate) const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

pub(crate) type Result<T> = std::result::Result<T, String>;

pub(crate) fn mount_fs(
    fstype: &str,
    target: &Path,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(Some(fstype), target, Some(fstype), flags, data)
        .map_err(|e| format!("mount {fstype} on {}: {e}", target.display()))
}

/// Make `path` a directory with `mode`, changing nothing that already is:
/// changing a directory of the image copies it up into the writable layer.
fn mkdir(path: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
    let meta = fs::metadata(path).map_err(|e| format!("stat {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o7777 == mode {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

pub fn setup(config: &LaunchConfig) -> Result<()> {
    let root = config.rootfs();
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;

    mount_proc_and_dev(&root, "newinstance,ptmxmode=0666,mode=0620,gid=5", mkdir)?;

    // A sysfs of our own network namespace, read-only.
    mkdir(&root.join("sys"), 0o555)?;
    match config.profile {
        Profile::Strict => mount_fs(
            "sysfs",
            &root.join("sys"),
            nosuid_nodev_noexec | MsFlags::MS_RDONLY,
            None,
        )?,
        Profile::Nesting => nesting_mounts(config, &root)?,
    }

    sethostname(&config.hostname).map_err(|e| format!("sethostname: {e}"))?;
    crate::isolation::sys::loopback_up().map_err(|e| format!("bring up lo: {e}"))?;
    // Open files per process: the usual soft limit, and a hard limit instance
    // root cannot raise (that needs CAP_SYS_RESOURCE on the host).
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit: {e}"))?;
    setrlimit(Resource::RLIMIT_NOFILE, 1024.min(hard), 65536.min(hard))
        .map_err(|e| format!("setrlimit: {e}"))?;

    // Switch root: stack the old root under the new one and detach it, so
    // nothing of the host's tree stays reachable.
    chdir(&root).map_err(|e| format!("chdir new root: {e}"))?;
    pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detach old root: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))?;

    let hostname = &config.hostname;
    fs::write("/etc/hostname", format!("{hostname}\n"))
        .map_err(|e| format!("write /etc/hostname: {e}"))?;
    fs::write(
        "/etc/hosts",
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"),
    )
    .map_err(|e| format!("write /etc/hosts: {e}"))?;
    Ok(())
}

/// What the nesting profile adds: /sys read-only through its mount only
/// (a read-only *superblock* would keep containers inside from mounting a
/// writable sysfs of their own network namespace), the instance's cgroups at
/// /sys/fs/cgroup, and /var/lib/docker on the instance's disk directly:
/// dockerd's overlay mounts cannot have the root's overlay beneath them.
fn nesting_mounts(config: &LaunchConfig, root: &Path) -> Result<()> {
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let sys = root.join("sys");
    mount_fs("sysfs", &sys, nosuid_nodev_noexec, None)?;
    let cgroup = sys.join("fs/cgroup");
    if config.cgroup_mounts.iter().any(|m| m.target.is_empty()) {
        for m in &config.cgroup_mounts {
            mount_fs(&m.fstype, &cgroup, nosuid_nodev_noexec, Some(&m.options))?;
        }
    } else if !config.cgroup_mounts.is_empty() {
        mount_fs(
            "tmpfs",
            &cgroup,
            nosuid_nodev_noexec,
            Some("mode=755,size=64k"),
        )?;
        for m in &config.cgroup_mounts {
            let target = cgroup.join(&m.target);
            fs::create_dir_all(&target).map_err(|e| format!("mkdir {}: {e}", target.display()))?;
            mount_fs(&m.fstype, &target, nosuid_nodev_noexec, Some(&m.options))?;
        }
        mount(
            None::<&str>,
            &cgroup,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | nosuid_nodev_noexec,
            Some("mode=755,size=64k"),
        )
        .map_err(|e| format!("make /sys/fs/cgroup read-only: {e}"))?;
    }
    mount(
        None::<&str>,
        &sys,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | nosuid_nodev_noexec,
        None::<&str>,
    )
    .map_err(|e| format!("make /sys read-only: {e}"))?;

    pin_proc_and_sys(&root.join("dev"))?;

    let docker = root.join("var/lib/docker");
    mkdir(&docker, 0o710)?;
    let on_disk = config.instance_dir.join("disk").join(DOCKER_DIR);
    mount(
        Some(on_disk.as_path()),
        &docker,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("bind {} on /var/lib/docker: {e}", on_disk.display()))?;
    Ok(())
}

/// The kernel lets a user namespace mount a procfs or sysfs only while one
/// is mounted *fully visible* in its mount namespace. Tools unmount /sys
/// before mounting their own (`ip netns exec` does), and the instance's
/// /proc has masks over it, so keep one of each, unmasked, where no path
/// reaches them: under `dev/.nesting`, covered by an empty read-only tmpfs
/// (LXD keeps such a pair under /dev/.lxc). The kernel's checks on what is
/// inside them (files of the host's root are not writable from the
/// instance's user namespace) are the same as for any procfs or sysfs the
/// instance mounts itself.
fn pin_proc_and_sys(dev: &Path) -> Result<()> {
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let pins = dev.join(".nesting");
    for (fstype, name) in [("proc", "proc"), ("sysfs", "sys")] {
        let target = pins.join(name);
        fs::create_dir_all(&target).map_err(|e| format!("mkdir {}: {e}", target.display()))?;
        mount_fs(fstype, &target, nosuid_nodev_noexec, None)?;
    }
    mount_fs(
        "tmpfs",
        &pins,
        nosuid_nodev_noexec | MsFlags::MS_RDONLY,
        Some("size=0,mode=000"),
    )
}

/// A fresh /proc and a minimal /dev under `root` (a tmpfs with the harmless
/// host devices, a new devpts instance with `devpts_options`, /dev/shm,
/// mqueue and the usual links). Shared by instances and their containers;
/// `mkdir(path, mode)` is how each makes the mount points.
pub(crate) fn mount_proc_and_dev(
    root: &Path,
    devpts_options: &str,
    mkdir: impl Fn(&Path, u32) -> Result<()>,
) -> Result<()> {
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mkdir(&root.join("proc"), 0o555)?;
    mount_fs("proc", &root.join("proc"), nosuid_nodev_noexec, None)?;

    let dev = root.join("dev");
    mkdir(&dev, 0o755)?;
    mount_fs(
        "tmpfs",
        &dev,
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for name in DEVICES {
        let target = dev.join(name);
        fs::File::create(&target).map_err(|e| format!("create {}: {e}", target.display()))?;
        mount(
            Some(Path::new("/dev").join(name).as_path()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind /dev/{name}: {e}"))?;
    }
    mkdir(&dev.join("pts"), 0o755)?;
    mount_fs(
        "devpts",
        &dev.join("pts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(devpts_options),
    )?;
    mkdir(&dev.join("shm"), 0o1777)?;
    mount_fs(
        "tmpfs",
        &dev.join("shm"),
        nosuid_nodev_noexec,
        Some("mode=1777,size=65536k"),
    )?;
    mkdir(&dev.join("mqueue"), 0o755)?;
    mount_fs("mqueue", &dev.join("mqueue"), nosuid_nodev_noexec, None)?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(link)).map_err(|e| format!("symlink /dev/{link}: {e}"))?;
    }
    Ok(())
}
