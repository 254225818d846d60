//! The real dockerd of a nesting instance, started by init on first use:
//! init holds /var/run/docker.sock and, when the first client connects,
//! starts dockerd with that socket (systemd's socket activation protocol,
//! `dockerd -H fd://`). The client's connection waits in the socket's
//! backlog meanwhile, so the first `docker` command simply takes longer,
//! and an instance that never uses Docker costs nothing more. If dockerd
//! exits, the socket waits for the next client and starts it again.
//!
//! Also the registry mirror's listening socket (see
//! [`super::agent::MIRROR_ADDRESS`]), which init makes in the instance's
//! network namespace and the server accepts on.

use std::ffi::CString;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{execve, fork, getpid, setsid, ForkResult, Pid};

use super::agent;
use crate::isolation::sys;

/// The daemon, found where Debian's docker.io puts it.
const DOCKERD: &str = "/usr/sbin/dockerd";
/// Where dockerd's own output goes (the instance's file, for the learner).
const LOG: &str = "/var/log/docker.log";
/// The descriptor socket activation hands over (SD_LISTEN_FDS_START).
const ACTIVATION_FD: i32 = 3;

/// The socket dockerd is started on, and dockerd while it runs.
pub(crate) struct Dockerd {
    listener: UnixListener,
    running: Option<Pid>,
}

impl Dockerd {
    /// Bind /var/run/docker.sock (owned by root and the image's `docker`
    /// group, as Debian's docker.socket makes it).
    pub(crate) fn bind() -> Result<Dockerd, String> {
        let path = Path::new(agent::DOCKER_SOCKET);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let group = docker_group().map(nix::unistd::Gid::from_raw);
        let _ = nix::unistd::chown(path, None, group);
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o660))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Dockerd {
            listener,
            running: None,
        })
    }

    /// The socket to watch for a first client, while dockerd is not running.
    pub(crate) fn waiting(&self) -> Option<BorrowedFd<'_>> {
        self.running.is_none().then(|| self.listener.as_fd())
    }

    /// A client is waiting: start dockerd on the socket. A failure to start
    /// leaves the client waiting until it gives up; the reason is in the log.
    pub(crate) fn start(&mut self) {
        if self.running.is_some() {
            return;
        }
        match start_dockerd(&self.listener) {
            Ok(pid) => self.running = Some(pid),
            Err(e) => {
                append_log(&format!("playground: cannot start dockerd: {e}\n"));
                // Refuse the waiting clients rather than leave them hanging:
                // accept and close each, so `docker` reports the error at once.
                let _ = nix::fcntl::fcntl(
                    &self.listener,
                    nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK),
                );
                while self.listener.accept().is_ok() {}
                let _ = nix::fcntl::fcntl(
                    &self.listener,
                    nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()),
                );
            }
        }
    }

    /// Process `pid` was reaped: if it was dockerd, wait for the next client.
    pub(crate) fn exited(&mut self, pid: Pid) {
        if self.running == Some(pid) {
            self.running = None;
            append_log("playground: dockerd exited; the next docker command starts it again\n");
        }
    }
}

/// The gid of the image's `docker` group, if it has one.
fn docker_group() -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some("docker"))
            .then(|| fields.nth(1)?.parse().ok())
            .flatten()
    })
}

fn append_log(line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(LOG)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

fn start_dockerd(listener: &UnixListener) -> Result<Pid, String> {
    if !Path::new(DOCKERD).exists() {
        return Err(format!("{DOCKERD} is not in this instance's image"));
    }
    prepare_cgroup_v2();
    let log = nix::fcntl::open(
        LOG,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o640),
    )
    .map_err(|e| format!("{LOG}: {e}"))?;
    let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty())
        .map_err(|e| format!("/dev/null: {e}"))?;
    let argv = [c"dockerd".to_owned(), c"--host=fd://".to_owned()];
    // SAFETY: init is single-threaded, so the child may allocate and run
    // arbitrary code before exec.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let err = exec_dockerd(&argv, listener.as_fd(), &null, &log);
            let msg = format!("playground: cannot run dockerd: {err}\n");
            let _ = nix::unistd::write(&log, msg.as_bytes());
            // SAFETY: _exit is always safe; it skips the parent's atexit handlers.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// In the forked child: a session of its own, the socket as descriptor 3,
/// the activation variables naming this process, then exec.
fn exec_dockerd(argv: &[CString], socket: BorrowedFd, null: &OwnedFd, log: &OwnedFd) -> String {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: restoring the default disposition installs no handler code.
    let _ =
        unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) };
    if let Err(e) = setsid() {
        return format!("setsid: {e}");
    }
    for (fd, target) in [(null.as_fd(), 0), (log.as_fd(), 1), (log.as_fd(), 2)] {
        if let Err(e) = sys::dup2(fd, target) {
            return format!("dup2: {e}");
        }
    }
    // dup2 leaves the new descriptor without close-on-exec; when the socket
    // already is descriptor 3, clear the flag instead.
    let moved = if socket.as_raw_fd() == ACTIVATION_FD {
        nix::fcntl::fcntl(
            socket,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .map(drop)
        .map_err(|e| e.to_string())
    } else {
        sys::dup2(socket, ACTIVATION_FD).map_err(|e| e.to_string())
    };
    if let Err(e) = moved {
        return format!("socket to descriptor 3: {e}");
    }
    let env = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "LISTEN_FDS=1".to_string(),
        format!("LISTEN_PID={}", getpid()),
        "LISTEN_FDNAMES=docker.sock".to_string(),
    ];
    let env: Vec<CString> = env
        .into_iter()
        .filter_map(|v| CString::new(v).ok())
        .collect();
    let path = CString::new(DOCKERD).expect("no NUL");
    match execve(&path, argv, &env) {
        Err(e) => e.desc().to_string(),
        Ok(never) => match never {},
    }
}

/// On cgroup v2, a cgroup with processes in it cannot hand controllers to
/// cgroups below it. Move the instance's processes into a leaf (`init`)
/// and enable every controller below the instance's root, as
/// docker's own dind does; on v1 there is nothing to do.
fn prepare_cgroup_v2() {
    let root = Path::new("/sys/fs/cgroup");
    let Ok(controllers) = std::fs::read_to_string(root.join("cgroup.controllers")) else {
        return;
    };
    let leaf = root.join("init");
    let _ = std::fs::create_dir_all(&leaf);
    if let Ok(procs) = std::fs::read_to_string(root.join("cgroup.procs")) {
        for pid in procs.lines() {
            let _ = std::fs::write(leaf.join("cgroup.procs"), pid);
        }
    }
    for c in controllers.split_whitespace() {
        let _ = std::fs::write(root.join("cgroup.subtree_control"), format!("+{c}"));
    }
}

/// The registry mirror's listening socket, made on the server's first request.
#[derive(Default)]
pub(crate) struct Mirror {
    listener: Option<TcpListener>,
}

impl Mirror {
    pub(crate) fn listener(&mut self) -> Result<&TcpListener, String> {
        if self.listener.is_none() {
            let l = TcpListener::bind(agent::MIRROR_ADDRESS)
                .map_err(|e| format!("{}: {e}", agent::MIRROR_ADDRESS))?;
            self.listener = Some(l);
        }
        Ok(self.listener.as_ref().expect("set above"))
    }
}
