//! PID 1 of every instance: keeps the instance alive, reaps every zombie, and
//! starts processes on the server's behalf (on a PTY of the instance's own
//! devpts, or on pipes), reporting their exit codes. Single-threaded: it
//! waits with `poll` on the control socket and a signalfd for SIGCHLD.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::signal::{kill, killpg, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{accept4, SockFlag};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{chdir, execvpe, fork, pipe2, setsid, ForkResult, Pid};

use super::agent::{self, Event, FileErrorKind, Request, WindowSize};
use super::dockerd::{Dockerd, Mirror};
use crate::isolation::security::Profile;
use crate::isolation::sys;

/// A process init started and still reports on.
struct Child {
    /// Init's copies of the server's ends (a PTY master, or a tracked
    /// process's stdout and stderr pipes): they keep the terminal or pipes
    /// open while the server is away, and go to the next server that
    /// attaches.
    fds: Vec<OwnedFd>,
    tty: bool,
    /// Tracked for the server (a container's process), not started by init.
    tracked: bool,
}

/// Serve as init for as long as the instance lives. The server may go away
/// (a restart, a crash) and a new one attach through `listener`; the
/// instance keeps running meanwhile. Returns the exit code.
pub fn run(control: OwnedFd, listener: OwnedFd, profile: Profile) -> isize {
    if let Err(e) = quiet_stdio() {
        let _ = agent::send(control.as_fd(), &Event::Failed { error: e }, &[]);
        return 1;
    }
    let mut sigchld = SigSet::empty();
    sigchld.add(Signal::SIGCHLD);
    let signals = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&sigchld), None).and_then(|()| {
        SignalFd::with_flags(&sigchld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
    });
    let signals = match signals {
        Ok(s) => s,
        Err(e) => {
            let error = format!("signalfd: {e}");
            let _ = agent::send(control.as_fd(), &Event::Failed { error }, &[]);
            return 1;
        }
    };
    if agent::send(control.as_fd(), &Event::Ready, &[]).is_err() {
        return 1;
    }

    let mut children: HashMap<i32, Child> = HashMap::new();
    let mut docker: Option<DockerSocket> = None;
    let mut mirror = Mirror::default();
    // The nesting profile's dockerd, started when its socket is first used.
    let mut dockerd = match profile {
        Profile::Nesting => Dockerd::bind().ok(),
        Profile::Strict => None,
    };
    let mut control = Some(control);
    loop {
        let (signals_ready, listener_ready, control_ready, docker_ready) = {
            let mut fds = vec![
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            ];
            let control_at = control.as_ref().map(|c| {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let docker_at = dockerd.as_ref().and_then(|d| d.waiting()).map(|fd| {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
                fds.len() - 1
            });
            if let Err(e) = poll(&mut fds, PollTimeout::NONE) {
                if e == nix::errno::Errno::EINTR {
                    continue;
                }
                return 1;
            }
            let ready = |i: Option<usize>| {
                i.and_then(|i| fds.get(i))
                    .and_then(|f| f.any())
                    .unwrap_or(false)
            };
            (
                ready(Some(0)),
                ready(Some(1)),
                ready(control_at),
                ready(docker_at),
            )
        };
        if signals_ready {
            while let Ok(Some(_)) = signals.read_signal() {}
            reap(control.as_ref(), &mut children, dockerd.as_mut());
        }
        if docker_ready {
            if let Some(d) = dockerd.as_mut() {
                d.start();
            }
        }
        if listener_ready {
            // A (new) server attaches; the previous connection, if any, is dropped.
            if let Ok(fd) = accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                // SAFETY: accept4 just returned this descriptor; we own it.
                control = Some(unsafe { OwnedFd::from_raw_fd(fd) });
                continue;
            }
        }
        if control_ready {
            let Some(c) = &control else { continue };
            match agent::recv::<Request>(c.as_fd()) {
                Ok(Some((request, fds))) => {
                    handle(c, &mut children, &mut docker, &mut mirror, request, fds)
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {}
                // The server went away: keep the instance running until one attaches.
                Ok(None) | Err(_) => control = None,
            }
        }
    }
}

/// Point stdin, stdout and stderr at /dev/null and close every descriptor
/// but the control and listening sockets, so nothing of the launcher leaks
/// into the instance.
fn quiet_stdio() -> Result<(), String> {
    let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR, nix::sys::stat::Mode::empty())
        .map_err(|e| format!("open /dev/null: {e}"))?;
    for fd in 0..3 {
        dup2(&null, fd)?;
    }
    drop(null);
    sys::close_from(super::jobs::LISTEN_FD + 1);
    Ok(())
}

fn dup2(from: &OwnedFd, to: RawFd) -> Result<(), String> {
    sys::dup2(from.as_fd(), to).map_err(|e| format!("dup2: {e}"))
}

fn handle(
    control: &OwnedFd,
    children: &mut HashMap<i32, Child>,
    docker: &mut Option<DockerSocket>,
    mirror: &mut Mirror,
    request: Request,
    fds: Vec<OwnedFd>,
) {
    match request {
        Request::MirrorSocket { id } => {
            let listener = mirror.listener().map(|l| l.as_raw_fd());
            send_listener(control, id, Event::MirrorSocket { id }, listener);
        }
        Request::DockerSocket { id } => {
            let listener = docker_socket(docker).map(|l| l.as_raw_fd());
            send_listener(control, id, Event::DockerSocket { id }, listener);
        }
        Request::Spawn {
            id,
            argv,
            env,
            cwd,
            tty,
        } => match spawn(&argv, &env, &cwd, tty) {
            Ok((pid, to_send, keep)) => {
                let raw: Vec<RawFd> = to_send.iter().map(|fd| fd.as_raw_fd()).collect();
                let child = Child {
                    tty: keep.is_some(),
                    fds: keep.into_iter().collect(),
                    tracked: false,
                };
                children.insert(pid.as_raw(), child);
                let _ = agent::send(
                    control.as_fd(),
                    &Event::Spawned {
                        id,
                        pid: pid.as_raw(),
                    },
                    &raw,
                );
            }
            Err(error) => {
                let _ = agent::send(control.as_fd(), &Event::SpawnFailed { id, error }, &[]);
            }
        },
        Request::Track { id, pid, tty } => {
            if pid > 1 {
                let child = children.entry(pid).or_insert(Child {
                    fds: Vec::new(),
                    tty,
                    tracked: true,
                });
                // A server tracking it again after a restart sends none.
                if !fds.is_empty() {
                    child.fds = fds;
                }
            }
            let _ = agent::send(control.as_fd(), &Event::Tracked { id }, &[]);
        }
        Request::Adopt { id } => {
            // Hand every live process to the new server: its pid, and the
            // PTY master of those on a terminal.
            for (&pid, child) in children.iter() {
                let fds: Vec<RawFd> = child.fds.iter().map(|m| m.as_raw_fd()).collect();
                let event = Event::Adopted {
                    id,
                    pid,
                    tty: child.tty,
                    tracked: child.tracked,
                };
                let _ = agent::send(control.as_fd(), &event, &fds);
            }
            let _ = agent::send(control.as_fd(), &Event::AdoptDone { id }, &[]);
        }
        Request::WriteFile { id, path, contents } => {
            let error = write_file(&path, &contents).err();
            let _ = agent::send(control.as_fd(), &Event::Written { id, error }, &[]);
        }
        Request::OpenFile {
            id,
            path,
            write,
            cwd_of,
        } => match open_file(&path, write, cwd_of) {
            Ok((file, size, path)) => {
                let event = Event::FileOpened { id, size, path };
                let _ = agent::send(control.as_fd(), &event, &[file.as_raw_fd()]);
            }
            Err((kind, error)) => {
                let event = Event::FileFailed { id, kind, error };
                let _ = agent::send(control.as_fd(), &event, &[]);
            }
        },
        Request::ListDir { id, path, cwd_of } => {
            let event = match list_dir(&path, cwd_of) {
                Ok(entries) => Event::Listed { id, entries },
                Err((kind, error)) => Event::FileFailed { id, kind, error },
            };
            let _ = agent::send(control.as_fd(), &event, &[]);
        }
        Request::Signal { pid, signal, group } => {
            // Only processes init started; never itself or strangers.
            if pid > 1 && children.contains_key(&pid) {
                if let Ok(signal) = Signal::try_from(signal) {
                    let pid = Pid::from_raw(pid);
                    let _ = if group {
                        killpg(pid, signal)
                    } else {
                        kill(pid, signal)
                    };
                }
            }
        }
    }
}

/// Answer a request for a listening socket: `event` with the socket
/// attached, or why there is none.
fn send_listener(control: &OwnedFd, id: u64, event: Event, listener: Result<RawFd, String>) {
    let _ = match listener {
        Ok(fd) => agent::send(control.as_fd(), &event, &[fd]),
        Err(error) => {
            let failed = Event::FileFailed {
                id,
                kind: FileErrorKind::Other,
                error,
            };
            agent::send(control.as_fd(), &failed, &[])
        }
    };
}

/// The engine's listening socket inside the instance, and the device and
/// inode of the file it was bound to.
struct DockerSocket {
    listener: UnixListener,
    file: (u64, u64),
}

/// The listening socket at `agent::DOCKER_SOCKET`, made anew when there is
/// none yet or someone inside removed or replaced the file.
fn docker_socket(docker: &mut Option<DockerSocket>) -> Result<&UnixListener, String> {
    let path = std::path::Path::new(agent::DOCKER_SOCKET);
    let file_of = |path: &std::path::Path| {
        nix::sys::stat::lstat(path)
            .map(|m| (m.st_dev, m.st_ino))
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let current = docker
        .as_ref()
        .is_some_and(|d| file_of(path).is_ok_and(|f| f == d.file));
    if !current {
        *docker = None;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o660))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let file = file_of(path)?;
        *docker = Some(DockerSocket { listener, file });
    }
    Ok(&docker.as_ref().expect("set above").listener)
}

/// Reap every exited process; report the ones the server started (when a
/// server is attached), and note dockerd's end (its socket then waits for
/// the next client again).
fn reap(
    control: Option<&OwnedFd>,
    children: &mut HashMap<i32, Child>,
    mut dockerd: Option<&mut Dockerd>,
) {
    loop {
        let (pid, code) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, code),
            Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, 128 + signal as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => continue,
        };
        if let Some(d) = dockerd.as_deref_mut() {
            d.exited(pid);
        }
        if let (Some(_), Some(control)) = (children.remove(&pid.as_raw()), control) {
            let _ = agent::send(
                control.as_fd(),
                &Event::Exited {
                    pid: pid.as_raw(),
                    code,
                },
                &[],
            );
        }
    }
}

type Spawned = (Pid, Vec<OwnedFd>, Option<OwnedFd>);

fn cstrings(items: &[String]) -> Result<Vec<CString>, String> {
    items
        .iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| format!("NUL byte in {s:?}")))
        .collect()
}

fn cloexec(fd: &OwnedFd) -> Result<(), String> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map(drop)
        .map_err(|e| format!("fcntl: {e}"))
}

fn spawn(
    argv: &[String],
    env: &[String],
    cwd: &str,
    tty: Option<WindowSize>,
) -> Result<Spawned, String> {
    if argv.is_empty() {
        return Err("empty command".into());
    }
    let c_argv = cstrings(argv)?;
    let c_env = cstrings(env)?;
    let c_cwd = CString::new(cwd).map_err(|_| "NUL byte in cwd".to_string())?;

    // The descriptors the child gets as 0, 1, 2 and the ones the server gets.
    let (child_stdio, parent_ends, keep): ([OwnedFd; 3], Vec<OwnedFd>, Option<OwnedFd>) = match tty
    {
        Some(size) => {
            let winsize = Winsize {
                ws_row: size.rows,
                ws_col: size.cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let pty = openpty(Some(&winsize), None).map_err(|e| format!("openpty: {e}"))?;
            cloexec(&pty.master)?;
            cloexec(&pty.slave)?;
            let slave = pty.slave;
            let stdio = [
                slave.try_clone().map_err(|e| e.to_string())?,
                slave.try_clone().map_err(|e| e.to_string())?,
                slave,
            ];
            let ours = pty.master.try_clone().map_err(|e| e.to_string())?;
            (stdio, vec![pty.master], Some(ours))
        }
        None => {
            let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
            let (in_r, in_w) = pipe()?;
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            ([in_r, out_w, err_w], vec![in_w, out_r, err_r], None)
        }
    };

    // SAFETY: init is single-threaded, so the child may allocate and run
    // arbitrary code before exec.
    let forked = unsafe { fork() }.map_err(|e| match e {
        nix::errno::Errno::EAGAIN => {
            "cannot start a process: the instance has reached its process limit".to_string()
        }
        e => format!("fork: {e}"),
    })?;
    match forked {
        ForkResult::Child => {
            let err = exec_child(&c_argv, &c_env, &c_cwd, &child_stdio, tty.is_some());
            let msg = format!("playground: cannot run {:?}: {err}\n", argv[0]);
            let _ = nix::unistd::write(std::io::stderr(), msg.as_bytes());
            // SAFETY: _exit is always safe; it skips atexit handlers that
            // belong to the parent.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => Ok((child, parent_ends, keep)),
    }
}

/// In the forked child: new session, terminal, standard descriptors, clean
/// signal state, then exec. Returns only on failure.
fn exec_child(
    argv: &[CString],
    env: &[CString],
    cwd: &CString,
    stdio: &[OwnedFd; 3],
    tty: bool,
) -> String {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // Rust ignores SIGPIPE in its own processes; programs expect the default.
    // SAFETY: restoring the default disposition installs no handler code.
    let _ =
        unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) };
    if let Err(e) = setsid() {
        return format!("setsid: {e}");
    }
    if tty {
        if let Err(e) = sys::set_controlling_tty(stdio[0].as_fd()) {
            return format!("controlling terminal: {e}");
        }
    }
    for (fd, target) in stdio.iter().zip(0..) {
        if let Err(e) = dup2(fd, target) {
            return e;
        }
    }
    if chdir(cwd.as_c_str()).is_err() {
        let _ = chdir("/");
    }
    match execvpe(&argv[0], argv, env) {
        Err(e) => e.desc().to_string(),
        Ok(never) => match never {},
    }
}

/// Replace a regular file's contents without ever blocking: instance root may
/// have put a FIFO or a device where the file was, and init must not hang.
fn write_file(path: &str, contents: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("{path}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("{path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{path} is not a regular file"));
    }
    file.set_len(0).map_err(|e| format!("{path}: {e}"))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| format!("{path}: {e}"))
}

/// Open a regular file of the instance for the server, never blocking (a
/// FIFO or device at the path must not hang init). Relative paths start at
/// the working directory of process `cwd_of`, or at /root. Returns the file,
/// its size (when read) and its absolute path inside the instance.
fn open_file(
    path: &str,
    write: bool,
    cwd_of: Option<i32>,
) -> Result<(std::fs::File, Option<u64>, String), (FileErrorKind, String)> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::Path;
    let full = resolve(path, cwd_of)?;
    let mut options = std::fs::OpenOptions::new();
    if write {
        options.write(true).create(true).truncate(true).mode(0o644);
    } else {
        options.read(true);
    }
    // std adds O_CLOEXEC.
    let file = options
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&full)
        .map_err(|e| open_error(path, &e))?;
    let meta = file
        .metadata()
        .map_err(|e| (FileErrorKind::Other, format!("{path}: {e}")))?;
    if meta.is_dir() {
        return Err((FileErrorKind::IsDirectory, format!("{path} is a directory")));
    }
    if !meta.is_file() {
        return Err((
            FileErrorKind::NotRegular,
            format!("{path} is not a regular file (a FIFO, socket or device)"),
        ));
    }
    let resolved =
        std::fs::read_link(Path::new("/proc/self/fd").join(file.as_raw_fd().to_string()))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| full.to_string_lossy().into_owned());
    let size = (!write).then_some(meta.len());
    Ok((file, size, resolved))
}

/// The absolute path inside the instance that `path` names: relative paths
/// start at the working directory of process `cwd_of`, or at /root.
fn resolve(path: &str, cwd_of: Option<i32>) -> Result<std::path::PathBuf, (FileErrorKind, String)> {
    use std::path::PathBuf;
    if path.is_empty() {
        return Err((FileErrorKind::InvalidPath, "the path is empty".into()));
    }
    if path.contains('\0') {
        return Err((FileErrorKind::InvalidPath, "NUL byte in the path".into()));
    }
    Ok(if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        let cwd = cwd_of
            .filter(|&pid| pid > 0)
            .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).ok())
            .filter(|dir| dir.is_absolute())
            .unwrap_or_else(|| PathBuf::from("/root"));
        cwd.join(path)
    })
}

/// List a directory of the instance without blocking (no file is opened
/// but the directory; entries are looked at with lstat). At most
/// `MAX_LISTED` entries, and no more than fit in one control message.
fn list_dir(
    path: &str,
    cwd_of: Option<i32>,
) -> Result<Vec<agent::ListedEntry>, (FileErrorKind, String)> {
    use agent::{ListedEntry, ListedKind};
    let full = resolve(path, cwd_of)?;
    let meta = std::fs::metadata(&full).map_err(|e| open_error(path, &e))?;
    if !meta.is_dir() {
        return Err((
            FileErrorKind::NotDirectory,
            format!("{path} is not a directory"),
        ));
    }
    let dir = std::fs::read_dir(&full).map_err(|e| open_error(path, &e))?;
    let mut entries = Vec::new();
    // Room for the message's envelope and each entry's JSON around its name.
    let mut budget = agent::MAX_MESSAGE - 1024;
    for entry in dir.flatten() {
        if entries.len() >= agent::MAX_LISTED {
            break;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let cost = name.len() * 6 + 64;
        if cost > budget {
            break;
        }
        budget -= cost;
        let (kind, size) = match std::fs::symlink_metadata(entry.path()) {
            Ok(m) if m.is_dir() => (ListedKind::Dir, 0),
            Ok(m) if m.is_file() => (ListedKind::File, m.len()),
            Ok(m) if m.file_type().is_symlink() => (ListedKind::Symlink, 0),
            _ => (ListedKind::Other, 0),
        };
        entries.push(ListedEntry { name, kind, size });
    }
    Ok(entries)
}

fn open_error(path: &str, e: &std::io::Error) -> (FileErrorKind, String) {
    let (kind, what) = match e.raw_os_error().unwrap_or(0) {
        libc::ENOENT => (FileErrorKind::NotFound, "no such file"),
        libc::ENOTDIR => (
            FileErrorKind::NotFound,
            "no such file (a parent is not a directory)",
        ),
        libc::EISDIR => (FileErrorKind::IsDirectory, "is a directory"),
        // O_NONBLOCK write open of a FIFO without a reader; or a device.
        libc::ENXIO | libc::ENODEV | libc::ETXTBSY => (
            FileErrorKind::NotRegular,
            "is not a regular file (a FIFO, socket or device)",
        ),
        libc::EACCES | libc::EPERM => (FileErrorKind::PermissionDenied, "permission denied"),
        libc::EROFS => (FileErrorKind::PermissionDenied, "read-only file system"),
        libc::ENOSPC | libc::EDQUOT => (FileErrorKind::DiskFull, "the instance's disk is full"),
        libc::ENAMETOOLONG => (FileErrorKind::InvalidPath, "the path is too long"),
        libc::ELOOP => (
            FileErrorKind::InvalidPath,
            "too many levels of symbolic links",
        ),
        _ => return (FileErrorKind::Other, format!("{path}: {e}")),
    };
    (kind, format!("{path}: {what}"))
}

#[cfg(test)]
#[path = "init_fuzz.rs"]
mod fuzz;
