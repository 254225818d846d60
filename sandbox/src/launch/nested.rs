//! Containers: nested sandboxes inside an instance, made by a launcher (see
//! `server`) because they need host privileges an instance never has.
//!
//! A container has its own mount, pid, uts and ipc namespaces, and its own
//! network namespace on the instance's bridge (see
//! `crate::network::container_bridge`) unless it asks for the instance's;
//! it shares the instance's user namespace (its root is instance root) and
//! cgroups (the instance's limits cover all its containers together).
//! Its root file system is an overlay made detached on the host: the image's
//! layers, id-mapped to the instance's uid range and read-only, under a
//! writable layer on the instance's own disk (`containers/<id>/` next to the
//! instance's `upper/`, out of the instance's sight), so a container's
//! writes count against the instance's disk. The overlay is attached only in
//! the container's own mount namespace and goes with its last process:
//! nothing is mounted anywhere a crash could leak it.
//!
//! Processes: the launcher (host pid namespace) enters the instance's pid
//! namespace and forks a helper there, which clones the container's first
//! process (or, for `exec`, forks one into the container's namespaces) and
//! exits. The process is then reparented to the instance's init, which
//! reaps it and reports its exit like any process it started (see
//! `Request::Track`). The process itself finishes its root, enters the
//! instance's user namespace, locks itself down exactly as the instance's
//! init does (seccomp, capabilities), sends the server its terminal or pipes
//! and waits for the server's go (sent once init tracks it) before it runs
//! the command.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{clone, setns, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{
    chdir, execve, fork, pipe2, pivot_root, setgroups, sethostname, setresgid, setresuid, setsid,
    ForkResult, Gid, Uid,
};

use super::agent;
use super::jobs::{ContainerJob, Go, JobEvent, JobKind, ProcessSpec, RunSpec};
use super::rootfs;
use crate::isolation::{security, sys};
use crate::network::container_bridge::{self, ContainerNetwork};

type Result<T> = std::result::Result<T, String>;

/// Do `job` in this (forked, single-threaded) launcher; `init` is a pidfd of
/// the instance's init. Returns the exit code.
pub fn run_job(job: &ContainerJob, init: OwnedFd, control: &OwnedFd) -> i32 {
    match job_main(job, init, control) {
        Ok(()) => 0,
        Err(error) => {
            let _ = agent::send(control.as_fd(), &JobEvent::Failed { error }, &[]);
            1
        }
    }
}

/// The namespaces of the instance's init, opened while its pidfd proves
/// that the pid is still that process.
struct InstanceNamespaces {
    user: fs::File,
    mnt: fs::File,
    pid: fs::File,
    net: fs::File,
    cgroup: fs::File,
    /// First host uid of the instance's range.
    id_base: u32,
}

fn open_instance(pid: i32, pidfd: &OwnedFd) -> Result<InstanceNamespaces> {
    let open = |ns: &str| {
        fs::File::open(format!("/proc/{pid}/ns/{ns}")).map_err(|e| format!("open {ns} ns: {e}"))
    };
    let map = fs::read_to_string(format!("/proc/{pid}/uid_map"))
        .map_err(|e| format!("read uid map: {e}"))?;
    let id_base = map
        .split_whitespace()
        .nth(1)
        .and_then(|b| b.parse().ok())
        .ok_or("unreadable uid map")?;
    let namespaces = InstanceNamespaces {
        user: open("user")?,
        mnt: open("mnt")?,
        pid: open("pid")?,
        net: open("net")?,
        cgroup: open("cgroup")?,
        id_base,
    };
    sys::pidfd_send_signal(pidfd.as_fd(), 0).map_err(|_| "the instance is not running")?;
    Ok(namespaces)
}

fn job_main(job: &ContainerJob, init: OwnedFd, control: &OwnedFd) -> Result<()> {
    for file in &job.cgroup_join {
        fs::write(file, "0").map_err(|e| format!("join cgroup {}: {e}", file.display()))?;
    }
    let ns = open_instance(job.init_pid, &init)?;
    match &job.kind {
        JobKind::Run(spec) => run_container(spec, &ns, control),
        JobKind::Exec { target, process } => exec_in(*target, process, &ns, control),
        JobKind::RemoveLayer { id, disk_image } => {
            let disk = mount_disk(disk_image)?;
            let dir = fd_path(disk.as_fd()).join("containers").join(id);
            match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(format!("remove {id}'s layer: {e}"))
                }
                _ => {}
            }
            agent::send(control.as_fd(), &JobEvent::Done, &[]).map_err(|e| e.to_string())
        }
        JobKind::ExportLayer {
            id,
            disk_image,
            dest,
        } => {
            let disk = mount_disk(disk_image)?;
            let upper = fd_path(disk.as_fd())
                .join("containers")
                .join(id)
                .join("upper");
            crate::storage::layer_export::export_to_file(&upper, ns.id_base, dest)
                .map_err(|e| format!("export {id}'s layer: {e}"))?;
            agent::send(control.as_fd(), &JobEvent::Done, &[]).map_err(|e| e.to_string())
        }
    }
}

/// `/proc/self/fd/N`: how the kernel is given a path inside a detached mount.
fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Another (detached) mount of the instance's disk file system: the loop
/// device whose backing file is `image`, mounted again (the kernel shares
/// the superblock with the instance's mount).
fn mount_disk(image: &Path) -> Result<OwnedFd> {
    let image = fs::canonicalize(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let blocks = fs::read_dir("/sys/block").map_err(|e| format!("/sys/block: {e}"))?;
    for block in blocks.flatten() {
        let backing = fs::read_to_string(block.path().join("loop/backing_file"));
        if backing.is_ok_and(|b| Path::new(b.trim_end()) == image) {
            let device = Path::new("/dev").join(block.file_name());
            return sys::mount_detached(c"ext4", &device, &[c"noinit_itable", c"discard"])
                .map_err(|e| format!("mount the instance's disk: {e}"));
        }
    }
    Err("the instance's disk is not attached".into())
}

fn cstring(text: &str) -> Result<CString> {
    CString::new(text).map_err(|_| format!("NUL byte in {text:?}"))
}

/// The container's root: the layers under its writable layer, as a detached
/// overlay mount.
fn container_root(spec: &RunSpec, ns: &InstanceNamespaces) -> Result<OwnedFd> {
    let mut layers = Vec::new();
    for layer in &spec.layers {
        layers.push(
            sys::idmapped_tree(layer, ns.user.as_fd())
                .map_err(|e| format!("id-mapped layer {}: {e}", layer.display()))?,
        );
    }
    let disk = mount_disk(&spec.disk_image)?;
    let dir = fd_path(disk.as_fd()).join("containers").join(&spec.id);
    let upper = dir.join("upper");
    let work = dir.join("work");
    for d in [&upper, &work] {
        fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    }
    // The writable layer's root is the container's `/`: owned by its root.
    let root = Some(ns.id_base);
    nix::unistd::chown(&upper, root.map(Uid::from_raw), root.map(Gid::from_raw))
        .map_err(|e| format!("chown upper layer: {e}"))?;
    // Top layer first, as overlayfs lists them.
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| fd_path(l.as_fd()).display().to_string())
        .collect();
    let lower = cstring(&lower.join(":"))?;
    let upper = cstring(&upper.display().to_string())?;
    let work = cstring(&work.display().to_string())?;
    sys::mount_detached_with(
        c"overlay",
        &[
            (c"source", c"overlay"),
            (c"lowerdir", &lower),
            (c"upperdir", &upper),
            (c"workdir", &work),
            // Whole copies in the writable layer, whatever the kernel's
            // defaults: `docker build` turns it into an image layer.
            (c"redirect_dir", c"off"),
            (c"metacopy", c"off"),
        ],
        &[],
    )
    .map_err(|e| format!("overlay root: {e}"))
}

/// Stack for the cloned first process (virtual; untouched pages cost nothing).
const STACK: usize = 8 << 20;

fn run_container(spec: &RunSpec, ns: &InstanceNamespaces, control: &OwnedFd) -> Result<()> {
    let root = container_root(spec, ns)?;
    // The bridge before the mount namespace: this process's /proc/sys is
    // the host's, writable, and shows the namespace it was entered from.
    enter(ns, &[&ns.net])?;
    if let ContainerNetwork::Bridge { .. } = spec.network {
        container_bridge::ensure_bridge()?;
    }
    enter(ns, &[&ns.mnt, &ns.cgroup, &ns.pid])?;
    in_helper(control, |control| {
        // The container's namespaces belong to the instance's user
        // namespace (the kernel wants a pid namespace's owner inside its
        // parent's): enter it, as its root, before making them.
        become_instance_root(ns)?;
        // Its network first (the clone inherits it), so the command starts
        // with its network in place.
        container_bridge::unshare_own(spec.network)?;
        let flags = CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC;
        let mut stack = vec![0u8; STACK];
        let child = Box::new(|| {
            let result = container_init(spec, &root, control);
            report_failure(control, result)
        });
        // SAFETY: the helper is single-threaded (forked from the
        // single-threaded launcher), so the child may run arbitrary code on
        // its own copy of memory; `stack` outlives the call in the parent.
        unsafe { clone(child, &mut stack, flags, Some(libc::SIGCHLD)) }
            .map(|pid| pid.as_raw())
            .map_err(|e| format!("clone: {e}"))
    })
}

fn exec_in(
    target: i32,
    process: &ProcessSpec,
    ns: &InstanceNamespaces,
    control: &OwnedFd,
) -> Result<()> {
    enter(ns, &[&ns.mnt, &ns.net, &ns.cgroup, &ns.pid])?;
    // The instance's /proc now: `target` is a pid of its namespace.
    let open = |n: &str| {
        fs::File::open(format!("/proc/{target}/ns/{n}"))
            .map_err(|_| format!("container process {target} is gone"))
    };
    let (mnt, uts, ipc, net, pid) = (
        open("mnt")?,
        open("uts")?,
        open("ipc")?,
        open("net")?,
        open("pid")?,
    );
    in_helper(control, |control| {
        let namespaces = [
            (&mnt, "mnt"),
            (&uts, "uts"),
            (&ipc, "ipc"),
            (&net, "net"),
            (&pid, "pid"),
        ];
        for (file, what) in namespaces {
            setns(file.as_fd(), CloneFlags::empty()).map_err(|e| format!("enter {what}: {e}"))?;
        }
        // SAFETY: the helper is single-threaded, so the child may run
        // arbitrary code.
        match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
            ForkResult::Child => {
                let result = chdir("/")
                    .map_err(|e| format!("chdir /: {e}"))
                    .and_then(|()| start_process(process, Some(ns), control));
                std::process::exit(report_failure(control, result) as i32)
            }
            ForkResult::Parent { child } => Ok(child.as_raw()),
        }
    })
}

fn enter(ns: &InstanceNamespaces, files: &[&fs::File]) -> Result<()> {
    let _ = ns;
    for file in files {
        setns(file.as_fd(), CloneFlags::empty()).map_err(|e| format!("enter namespace: {e}"))?;
    }
    Ok(())
}

/// Fork a helper in the instance's pid namespace (entered already) that
/// starts the process with `start` (returning its pid there), reports the
/// pid and exits, so the process is reparented to the instance's init.
fn in_helper(control: &OwnedFd, start: impl FnOnce(&OwnedFd) -> Result<i32>) -> Result<()> {
    // SAFETY: the launcher is single-threaded, so the child may run
    // arbitrary code.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let code = match start(control) {
                Ok(pid) => {
                    let started = JobEvent::Started { pid };
                    i32::from(agent::send(control.as_fd(), &started, &[]).is_err())
                }
                Err(error) => {
                    let _ = agent::send(control.as_fd(), &JobEvent::Failed { error }, &[]);
                    1
                }
            };
            // SAFETY: _exit is always safe; the helper has nothing to flush.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            let _ = waitpid(child, None);
            Ok(())
        }
    }
}

fn report_failure(control: &OwnedFd, result: Result<()>) -> isize {
    if let Err(error) = result {
        let _ = agent::send(control.as_fd(), &JobEvent::Failed { error }, &[]);
    }
    1
}

fn bind(source: &Path, target: &Path, read_only: bool) -> Result<()> {
    let what = || format!("bind {} on {}", source.display(), target.display());
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("{}: {e}", what()))?;
    if read_only {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| format!("{} read-only: {e}", what()))?;
    }
    Ok(())
}

/// Make `path` a directory if nothing is there.
fn mkdir(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    fs::create_dir_all(path).map_err(|e| format!("mkdir {}: {e}", path.display()))
}

/// Where the root is attached in the container's (private) mount namespace
/// before `pivot_root`: a mount point of the instance that always exists.
const STAGING: &str = "/dev/shm";

/// The container's first process, still with the launcher's host
/// credentials: its mounts, then [`start_process`].
fn container_init(spec: &RunSpec, root_mount: &OwnedFd, control: &OwnedFd) -> Result<()> {
    sys::make_mounts_private().map_err(|e| format!("make mounts private: {e}"))?;
    let root = Path::new(STAGING);
    sys::attach_tree(root_mount.as_fd(), root).map_err(|e| format!("attach root: {e}"))?;
    rootfs::mount_proc_and_dev(root, "newinstance,ptmxmode=0666,mode=0620", |path, _| {
        mkdir(path)
    })?;
    mkdir(&root.join("sys"))?;
    bind(Path::new("/sys"), &root.join("sys"), true)?;
    for b in &spec.binds {
        let source = Path::new(&b.source);
        let target = root.join(b.target.trim_start_matches('/'));
        if source.is_dir() {
            mkdir(&target)?;
        } else if !target.exists() {
            if let Some(parent) = target.parent() {
                mkdir(parent)?;
            }
            fs::File::create(&target).map_err(|e| format!("create {}: {e}", target.display()))?;
        }
        bind(source, &target, b.read_only)?;
    }
    sethostname(&spec.hostname).map_err(|e| format!("sethostname: {e}"))?;
    write_name_files(root, spec)?;
    chdir(root).map_err(|e| format!("chdir new root: {e}"))?;
    pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detach old root: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    security::mask_paths(security::Profile::Strict)?;
    start_process(&spec.process, None, control)
}

/// The container's /etc/hostname, /etc/hosts (the instance's, so the
/// session's hostnames resolve, and its own name) and /etc/resolv.conf (the
/// instance's), as Docker writes them. Still in the instance's mount
/// namespace, so whatever the image has there (a symlink too) is replaced,
/// never followed.
fn write_name_files(root: &Path, spec: &RunSpec) -> Result<()> {
    let etc = root.join("etc");
    if !fs::symlink_metadata(&etc).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let own = match spec.network {
        ContainerNetwork::Bridge { address } => address.to_string(),
        _ => "127.0.0.1".into(),
    };
    let hosts = format!(
        "{}{}\t{}\n",
        fs::read_to_string("/etc/hosts").unwrap_or_default(),
        own,
        spec.hostname
    );
    let files = [
        ("hostname", format!("{}\n", spec.hostname)),
        ("hosts", hosts),
        (
            "resolv.conf",
            fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        ),
    ];
    for (name, text) in files {
        let path = etc.join(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("replace /etc/{name}: {e}"))
            }
            _ => {}
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| format!("write /etc/{name}: {e}"))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .map_err(|e| format!("write /etc/{name}: {e}"))?;
    }
    Ok(())
}

/// In the container's namespaces: become instance root, make the terminal
/// or pipes, lock down, report ready, wait for the go, run the command.
fn start_process(
    process: &ProcessSpec,
    enter: Option<&InstanceNamespaces>,
    control: &OwnedFd,
) -> Result<()> {
    if let Some(ns) = enter {
        become_instance_root(ns)?;
    }
    let (uid, gid) = resolve_user(&process.user)?;
    let argv = cstrings(&process.argv)?;
    let env = cstrings(&process.env)?;
    if argv.is_empty() {
        return Err("no command to run".into());
    }
    // The descriptors the process gets as 0, 1, 2 and the ones the server gets.
    let (stdio, server_ends): ([OwnedFd; 3], Vec<OwnedFd>) = match process.tty {
        Some(size) => {
            let winsize = nix::pty::Winsize {
                ws_row: size.rows,
                ws_col: size.cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let pty =
                nix::pty::openpty(Some(&winsize), None).map_err(|e| format!("openpty: {e}"))?;
            let slave = pty.slave;
            let copy = || slave.try_clone().map_err(|e| e.to_string());
            ([copy()?, copy()?, slave], vec![pty.master])
        }
        None => {
            let pipe = || pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
            let (in_r, in_w) = pipe()?;
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            ([in_r, out_w, err_w], vec![in_w, out_r, err_r])
        }
    };
    security::lock_down(security::Profile::Strict)?;
    if uid != 0 || gid != 0 {
        setgroups(&[Gid::from_raw(gid)])
            .and_then(|()| setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid)))
            .and_then(|()| setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid)))
            .map_err(|e| format!("become user {}: {e}", process.user))?;
    }
    let raw: Vec<RawFd> = server_ends.iter().map(|fd| fd.as_raw_fd()).collect();
    agent::send(control.as_fd(), &JobEvent::Ready, &raw).map_err(|e| e.to_string())?;
    drop(server_ends);
    match agent::recv::<Go>(control.as_fd()) {
        Ok(Some((Go, _))) => {}
        _ => return Err("the server gave up on the process".into()),
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    // Rust ignores SIGPIPE in its own processes, and an ignored signal stays
    // ignored across execve: a container's `yes | head` then never ended
    // (`yes` got EPIPE forever instead of dying). Programs expect the
    // default, as the instance's own processes get it (see `init`).
    // SAFETY: restoring the default disposition installs no handler code.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
    setsid().map_err(|e| format!("setsid: {e}"))?;
    if process.tty.is_some() {
        sys::set_controlling_tty(stdio[0].as_fd())
            .map_err(|e| format!("controlling terminal: {e}"))?;
    }
    for (fd, target) in stdio.iter().zip(0..) {
        sys::dup2(fd.as_fd(), target).map_err(|e| format!("dup2: {e}"))?;
    }
    sys::close_from(3);
    if chdir(process.cwd.as_str()).is_err() {
        let msg = format!("cannot chdir to {}\n", process.cwd);
        let _ = nix::unistd::write(std::io::stderr(), msg.as_bytes());
        // SAFETY: _exit is always safe.
        unsafe { libc::_exit(126) }
    }
    let err = match find_program(&process.argv[0], &process.env) {
        Ok(path) => match execve(&path, &argv, &env) {
            Err(e) => e,
            Ok(never) => match never {},
        },
        Err(e) => e,
    };
    // Docker's wording, and its exit codes (127: not found, 126: not runnable).
    let msg = format!(
        "exec: \"{}\": {}\n",
        process.argv[0],
        if err == nix::errno::Errno::ENOENT {
            "executable file not found in $PATH".to_string()
        } else {
            err.desc().to_string()
        }
    );
    let _ = nix::unistd::write(std::io::stderr(), msg.as_bytes());
    let code = if err == nix::errno::Errno::ENOENT {
        127
    } else {
        126
    };
    // SAFETY: _exit is always safe.
    unsafe { libc::_exit(code) }
}

/// Where the container's PATH (from `env`, as with Docker) finds program
/// `name`. (`execvpe` would search the launcher's own PATH.)
fn find_program(name: &str, env: &[String]) -> std::result::Result<CString, nix::errno::Errno> {
    if name.contains('/') {
        return CString::new(name).map_err(|_| nix::errno::Errno::EINVAL);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = false;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if !candidate.is_file() {
            continue;
        }
        match nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK) {
            Ok(()) => {
                return CString::new(candidate.into_os_string().into_encoded_bytes())
                    .map_err(|_| nix::errno::Errno::EINVAL)
            }
            Err(_) => denied = true,
        }
    }
    Err(if denied {
        nix::errno::Errno::EACCES
    } else {
        nix::errno::Errno::ENOENT
    })
}

/// Enter the instance's user namespace as its root (uid 0 there).
fn become_instance_root(ns: &InstanceNamespaces) -> Result<()> {
    setns(ns.user.as_fd(), CloneFlags::CLONE_NEWUSER)
        .map_err(|e| format!("enter user namespace: {e}"))?;
    setgroups(&[])
        .and_then(|()| setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)))
        .and_then(|()| setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)))
        .map_err(|e| format!("become root of the instance: {e}"))
}

fn cstrings(items: &[String]) -> Result<Vec<CString>> {
    items.iter().map(|s| cstring(s)).collect()
}

/// `user[:group]` (names or numbers) to ids, through the container's
/// /etc/passwd and /etc/group.
fn resolve_user(spec: &str) -> Result<(u32, u32)> {
    if spec.is_empty() {
        return Ok((0, 0));
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let matches = fields.first() == Some(&user) || fields.get(2) == Some(&user);
        (matches && fields.len() > 3).then(|| (fields[2].parse().ok(), fields[3].parse().ok()))
    });
    let uid = match (user.parse::<u32>(), entry) {
        (Ok(uid), _) => uid,
        (_, Some((Some(uid), _))) => uid,
        _ => {
            return Err(format!(
                "unable to find user {user}: no matching entries in passwd file"
            ))
        }
    };
    let gid = match group {
        None => entry.and_then(|(_, g)| g).unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => fs::read_to_string("/etc/group")
                .unwrap_or_default()
                .lines()
                .find_map(|line| {
                    let fields: Vec<&str> = line.split(':').collect();
                    (fields.first() == Some(&g))
                        .then(|| fields.get(2).and_then(|id| id.parse().ok()))
                        .flatten()
                })
                .ok_or_else(|| format!("unable to find group {g}"))?,
        },
    };
    Ok((uid, gid))
}
