//! The launcher: a short-lived, single-threaded process (forked by the
//! launch server, see `server`) that creates an instance. A
//! multi-threaded tokio server must not unshare or setns itself, so it hands
//! this job to another process, as runc and youki do.
//!
//! Sequence:
//! 1. join the instance's cgroups (so the new cgroup namespace is rooted there);
//! 2. clone the instance's init into new user, mount, pid, uts, ipc, net and
//!    cgroup namespaces; the child waits on a pipe;
//! 3. write the child's uid/gid maps (instance root = an unprivileged host range);
//! 4. enter the child's mount namespace and mount its root there: the image,
//!    id-mapped into the child's user namespace and read-only, under an
//!    overlay whose writable layer is the instance's disk (a detached mount
//!    the server sends along with the configuration; nothing is ever mounted
//!    in the host's mount namespace, so a crash cannot leak a mount: the
//!    namespace dies with its last process);
//! 5. report init's pid to the server and release the child, which finishes the
//!    root file system (see `rootfs`) and becomes PID 1 (see `init`).

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sched::{clone, setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{pipe2, read, setgroups, setresgid, setresuid, write, Gid, Pid, Uid};

use super::agent::{self, Event};
use super::jobs::{Job, LaunchConfig, CONTROL_SOCKET, LISTEN_FD};
use super::{init, rootfs, server};
use crate::isolation::{security, sys};

/// How much stack the cloned init runs on (virtual; untouched pages cost nothing).
const INIT_STACK: usize = 8 << 20;

/// If this process was started as the launch server (see `server`),
/// serve, and do a launcher's job in each forked child; never returns then.
/// Call it first thing in `main`, before any threads exist.
pub fn run_if_requested() {
    if std::env::args_os().nth(1).as_deref() != Some(server::LAUNCH_SERVER_ARG.as_ref()) {
        return;
    }
    // Returns in each forked launcher, with its control socket.
    let control = server::serve();
    // The configuration comes over the socket, not in argv: PID 1's command
    // line is visible inside the instance and must not show host paths.
    // An instance comes with its disk (a detached mount); a container job
    // with a pidfd of the instance's init.
    let config = match agent::recv::<Job>(control.as_fd()) {
        Ok(Some((Job::Container(job), fds))) => {
            let code = match fds.into_iter().next() {
                Some(init) => super::nested::run_job(&job, init, &control),
                None => 1,
            };
            std::process::exit(code);
        }
        Ok(Some((Job::Instance(config), fds))) => match fds.into_iter().next() {
            Some(disk) => Ok((config, disk)),
            None => Err("no disk came with the launch configuration".to_string()),
        },
        Ok(None) => Err("no launch configuration".to_string()),
        Err(e) => Err(format!("bad launch configuration: {e}")),
    };
    let result = config.and_then(|(config, disk)| launch(&config, disk, &control));
    let code = match result {
        Ok(()) => 0,
        Err(error) => {
            let _ = agent::send(control.as_fd(), &Event::Failed { error }, &[]);
            1
        }
    };
    std::process::exit(code);
}

fn launch(config: &LaunchConfig, disk: OwnedFd, control: &OwnedFd) -> Result<(), String> {
    // This process is single-threaded, so "0" (the calling thread) is all of it.
    for file in &config.cgroup_join {
        fs::write(file, "0").map_err(|e| format!("join cgroup {}: {e}", file.display()))?;
    }

    let listener = listen_socket(&config.instance_dir.join(CONTROL_SOCKET))?;
    let listener_raw = listener.as_raw_fd();
    let (wait_r, wait_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let (wait_r_raw, wait_w_raw) = (wait_r.as_raw_fd(), wait_w.as_raw_fd());
    let control_raw = control.as_raw_fd();
    let child_config = config.clone();
    let mut stack = vec![0u8; INIT_STACK];
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWCGROUP;
    let child = Box::new(move || {
        child_main(
            &child_config,
            control_raw,
            listener_raw,
            wait_r_raw,
            wait_w_raw,
        )
    });
    // SAFETY: this process is single-threaded (a fresh exec of our binary),
    // so the child may run arbitrary code. The child gets its own copy of
    // memory and file table and runs `child_main` on `stack`, which outlives
    // the clone call in the parent and is never touched by the parent after.
    let pid = unsafe { clone(child, &mut stack, flags, Some(libc::SIGCHLD)) }
        .map_err(|e| format!("clone: {e}"))?;
    drop(wait_r);

    match prepare_child(config, disk, pid) {
        Ok(()) => {
            agent::send(control.as_fd(), &Event::Launched { pid: pid.as_raw() }, &[])
                .map_err(|e| format!("report to server: {e}"))?;
            write(&wait_w, &[1]).map_err(|e| format!("release init: {e}"))?;
            Ok(())
        }
        Err(e) => {
            let _ = kill(pid, Signal::SIGKILL);
            Err(e)
        }
    }
}

/// Parent side: id maps and the root file system mounts, done from outside
/// because they need host privileges.
fn prepare_child(config: &LaunchConfig, disk_mount: OwnedFd, pid: Pid) -> Result<(), String> {
    let map = format!("0 {} {}\n", config.id_base, config.id_count);
    for file in ["uid_map", "gid_map"] {
        fs::write(format!("/proc/{pid}/{file}"), &map).map_err(|e| format!("{file}: {e}"))?;
    }
    let userns =
        fs::File::open(format!("/proc/{pid}/ns/user")).map_err(|e| format!("open userns: {e}"))?;
    let mntns =
        fs::File::open(format!("/proc/{pid}/ns/mnt")).map_err(|e| format!("open mntns: {e}"))?;
    setns(mntns.as_fd(), CloneFlags::CLONE_NEWNS).map_err(|e| format!("enter mntns: {e}"))?;
    sys::make_mounts_private().map_err(|e| format!("make mounts private: {e}"))?;

    // The writable layer's own file system (see `crate::storage::disk`), placed in the
    // child's namespace only.
    let disk = config.instance_dir.join("disk");
    sys::attach_tree(disk_mount.as_fd(), &disk).map_err(|e| format!("attach disk: {e}"))?;
    let upper = disk.join("upper");
    let work = disk.join("work");
    // The writable layer's root directory is the instance's `/`: owned by its root.
    let root_id = Some(config.id_base);
    nix::unistd::chown(
        &upper,
        root_id.map(nix::unistd::Uid::from_raw),
        root_id.map(nix::unistd::Gid::from_raw),
    )
    .map_err(|e| format!("chown upper layer: {e}"))?;
    fs::set_permissions(&upper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| format!("chmod upper layer: {e}"))?;
    if config.profile == security::Profile::Nesting {
        // dockerd's overlay mounts cannot stack on the root's overlay: its
        // directory is on the instance's disk itself (see `rootfs`).
        let docker = disk.join(rootfs::DOCKER_DIR);
        match fs::create_dir(&docker) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(format!("make {}: {e}", docker.display()))
            }
            _ => {}
        }
        nix::unistd::chown(
            &docker,
            root_id.map(nix::unistd::Uid::from_raw),
            root_id.map(nix::unistd::Gid::from_raw),
        )
        .map_err(|e| format!("chown docker directory: {e}"))?;
        fs::set_permissions(&docker, std::os::unix::fs::PermissionsExt::from_mode(0o710))
            .map_err(|e| format!("chmod docker directory: {e}"))?;
    }

    let lower = config.instance_dir.join("lower");
    let tree = sys::idmapped_tree(&config.image, userns.as_fd())
        .map_err(|e| format!("id-mapped image {}: {e}", config.image.display()))?;
    sys::attach_tree(tree.as_fd(), &lower).map_err(|e| format!("attach image: {e}"))?;
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        &config.rootfs(),
        Some("overlay"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|e| format!("mount overlay root: {e}"))?;
    Ok(())
}

/// Child side, running as the new PID 1: wait for the parent, finish the
/// root file system, then serve as init. Returns the exit code.
fn child_main(
    config: &LaunchConfig,
    control: RawFd,
    listener: RawFd,
    wait_r: RawFd,
    wait_w: RawFd,
) -> isize {
    // SAFETY: these descriptors were copied into this child's file table by
    // clone; the child takes sole ownership of its copies here, and the
    // parent's copies are unaffected.
    let (control, listener, wait_r, wait_w) = unsafe {
        (
            OwnedFd::from_raw_fd(control),
            OwnedFd::from_raw_fd(listener),
            OwnedFd::from_raw_fd(wait_r),
            OwnedFd::from_raw_fd(wait_w),
        )
    };
    drop(wait_w);
    let mut byte = [0u8];
    if read(&wait_r, &mut byte) != Ok(1) {
        // The launcher failed (and reported why); nothing to do.
        return 1;
    }
    drop(wait_r);
    rename_to_init();
    // Our credentials still hold the host's root ids, which mean nothing in
    // the new namespace: become the namespace's (mapped) root.
    let become_root = setgroups(&[])
        .and_then(|()| setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)))
        .and_then(|()| setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)))
        .map_err(|e| format!("become root of the user namespace: {e}"));
    let ready = become_root
        .and_then(|()| rootfs::setup(config))
        .and_then(|()| security::mask_paths(config.profile))
        .and_then(|()| security::lock_down(config.profile));
    if let Err(error) = ready {
        let _ = agent::send(control.as_fd(), &Event::Failed { error }, &[]);
        return 1;
    }
    // The listening socket goes to its fixed number, kept across init's
    // clean-up of inherited descriptors.
    let listener = if listener.as_raw_fd() == LISTEN_FD {
        listener
    } else {
        if sys::dup2(listener.as_fd(), LISTEN_FD).is_err() {
            return 1;
        }
        drop(listener);
        // SAFETY: dup2 just made LISTEN_FD a copy that nothing else owns.
        unsafe { OwnedFd::from_raw_fd(LISTEN_FD) }
    };
    let _ = nix::fcntl::fcntl(
        &listener,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    init::run(control, listener, config.profile)
}

/// A listening SEQPACKET socket at `path` (replacing a stale one).
fn listen_socket(path: &std::path::Path) -> Result<OwnedFd, String> {
    use nix::sys::socket::{
        bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
    };
    let _ = fs::remove_file(path);
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("control socket: {e}"))?;
    let addr =
        UnixAddr::new(path).map_err(|e| format!("control socket path {}: {e}", path.display()))?;
    bind(sock.as_raw_fd(), &addr).map_err(|e| format!("bind {}: {e}", path.display()))?;
    listen(&sock, Backlog::new(4).expect("small backlog")).map_err(|e| format!("listen: {e}"))?;
    Ok(sock)
}

/// Make PID 1 look like what it is inside the instance: `init`, with no
/// trace of the launcher's host path in its name or command line.
fn rename_to_init() {
    let _ = nix::sys::prctl::set_name(c"init");
    let Ok(stat) = fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the parenthesised command name; arg_start and arg_end
    // are fields 48 and 49 of the whole line.
    let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
        return;
    };
    let fields: Vec<&str> = rest.split(' ').collect();
    let (Some(Ok(start)), Some(Ok(end))) = (
        fields.get(45).map(|f| f.parse::<u64>()),
        fields.get(46).map(|f| f.parse::<u64>()),
    ) else {
        return;
    };
    let Some(len) = end.checked_sub(start).map(|l| l as usize) else {
        return;
    };
    let mut title = vec![0u8; len];
    let name = b"init";
    let n = name.len().min(len.saturating_sub(1));
    title[..n].copy_from_slice(&name[..n]);
    // Writing our own argument area through /proc/self/mem needs no unsafe
    // code: the kernel checks the range, and nothing in Rust refers to it
    // (std copied the arguments at start-up).
    if let Ok(mut mem) = fs::OpenOptions::new().write(true).open("/proc/self/mem") {
        use std::io::{Seek, SeekFrom, Write};
        if mem.seek(SeekFrom::Start(start)).is_ok() {
            let _ = mem.write_all(&title);
        }
    }
}
