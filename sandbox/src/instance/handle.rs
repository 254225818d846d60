//! A running instance, as the server holds it: start processes in it (on a
//! PTY or with collected output), read its memory use, destroy it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{oneshot, Mutex};

use super::control::{Control, Spawned};
use super::pty::Pty;
use super::state::{pidfd, InstanceSpec, RuntimeInner};
use crate::isolation::cgroup::Cgroup;
use crate::isolation::sys;
use crate::launch::agent::{FileErrorKind, ListedEntry, Request, WindowSize};
use crate::network::ports::{PortWatcher, SocketMaker};
use crate::{Error, Result};

/// `PATH` and friends for processes started in an instance.
const BASE_ENV: [&str; 6] = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "USER=root",
    "LOGNAME=root",
    "SHELL=/bin/bash",
    "LANG=C.UTF-8",
];

/// A process on a PTY of the instance.
pub struct PtyProcess {
    pub pid: i32,
    pub pty: Pty,
    /// Resolves with the exit code (fails if the instance dies first).
    pub exit: oneshot::Receiver<i32>,
}

/// A process with pipes for its standard input, output and error (what an
/// SSH client's command runs as).
pub struct PipedProcess {
    pub pid: i32,
    pub stdin: pipe::Sender,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
    /// Resolves with the exit code (fails if the instance dies first).
    pub exit: oneshot::Receiver<i32>,
}

/// What a command run with [`Instance::exec`] produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    pub truncated: bool,
}

/// A regular file of an instance, opened by its init (see [`Instance::open_file`]).
pub struct InstanceFile {
    pub file: tokio::fs::File,
    /// Its absolute path inside the instance (symlinks resolved).
    pub path: String,
    /// Its size when opened (0 for a file opened for writing).
    pub size: u64,
}

/// A live (or dead, not yet destroyed) instance. Clones share it.
#[derive(Clone)]
pub struct Instance {
    inner: Arc<Inner>,
}

struct Inner {
    spec: InstanceSpec,
    /// Init's pid on the host.
    host_pid: i32,
    pidfd: AsyncFd<OwnedFd>,
    control: Arc<Control>,
    cgroup: Cgroup,
    dir: PathBuf,
    slot: usize,
    runtime: Arc<RuntimeInner>,
    destroyed: AtomicBool,
    destroy_lock: Mutex<()>,
    /// The server's hold on the instance's disk (a mount of its file system;
    /// none for an instance taken back after a restart): destroying the
    /// instance then leaves the unmount to the disk pool.
    disk: std::sync::Mutex<Option<OwnedFd>>,
    /// Asks the kernel for the instance's listening ports (made on first use).
    ports: std::sync::Mutex<Option<PortWatcher>>,
    /// Makes sockets in the instance's network namespace (started on first use).
    sockets: std::sync::Mutex<Option<Arc<SocketMaker>>>,
    /// Containers' processes that init kept for us while no server ran,
    /// with their output, until the engine claims them (`Instance::watch`).
    pub(crate) adopted: std::sync::Mutex<std::collections::HashMap<i32, super::control::Spawned>>,
}

impl Instance {
    pub(crate) fn new(
        spec: InstanceSpec,
        host_pid: i32,
        control: Arc<Control>,
        cgroup: Cgroup,
        dir: PathBuf,
        slot: usize,
        runtime: Arc<RuntimeInner>,
    ) -> Result<Instance> {
        let pidfd = sys::async_fd(pidfd(host_pid)?).map_err(|e| Error::Setup(e.to_string()))?;
        tokio::spawn(control.clone().route_events());
        Ok(Instance {
            inner: Arc::new(Inner {
                spec,
                host_pid,
                pidfd,
                control,
                cgroup,
                dir,
                slot,
                runtime,
                destroyed: AtomicBool::new(false),
                destroy_lock: Mutex::new(()),
                disk: std::sync::Mutex::new(None),
                ports: std::sync::Mutex::new(None),
                sockets: std::sync::Mutex::new(None),
                adopted: std::sync::Mutex::new(Default::default()),
            }),
        })
    }

    /// Keep a container's process that init handed back at adoption.
    pub(crate) fn keep_adopted(&self, process: super::control::Spawned) {
        let mut adopted = self.inner.adopted.lock().unwrap();
        adopted.insert(process.pid, process);
    }

    /// The kept process `pid`, once.
    pub(crate) fn take_adopted(&self, pid: i32) -> Option<super::control::Spawned> {
        self.inner.adopted.lock().unwrap().remove(&pid)
    }

    pub(crate) fn control(&self) -> &Arc<Control> {
        &self.inner.control
    }

    pub(crate) fn runtime(&self) -> &Arc<RuntimeInner> {
        &self.inner.runtime
    }

    pub(crate) fn cgroup(&self) -> &Cgroup {
        &self.inner.cgroup
    }

    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.inner.dir
    }

    pub(crate) fn pidfd(&self) -> &OwnedFd {
        self.inner.pidfd.get_ref()
    }

    /// Keep a hold on the instance's disk (see `Inner::disk`).
    pub(crate) fn hold_disk(&self, mount: OwnedFd) {
        *self.inner.disk.lock().unwrap() = Some(mount);
    }

    pub fn id(&self) -> &str {
        &self.inner.spec.id
    }

    pub fn hostname(&self) -> &str {
        &self.inner.spec.hostname
    }

    /// Init's pid as the host sees it.
    pub fn host_pid(&self) -> i32 {
        self.inner.host_pid
    }

    /// Whether init is alive and serving.
    pub fn is_running(&self) -> bool {
        self.inner.control.is_open() && !self.inner.destroyed.load(Ordering::Acquire)
    }

    /// Replace the contents of a small file inside the instance (written by
    /// its init, so the path is resolved inside the instance).
    pub async fn write_file(&self, path: &str, contents: &str) -> Result<()> {
        let write = self.inner.control.write_file(path, contents);
        match tokio::time::timeout(Duration::from_secs(5), write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotConnected => Err(Error::NotRunning),
            Ok(Err(e)) => Err(Error::Spawn(e.to_string())),
            Err(_) => Err(Error::Spawn(format!("writing {path} timed out"))),
        }
    }

    /// Open a regular file inside the instance, for reading or (with
    /// `write`) created or truncated for writing. The path is resolved by the
    /// instance's init in the instance's own root, so `..`, absolute paths
    /// and symlinks never leave it; a relative path starts at the working
    /// directory of process `cwd_of` (a pid inside the instance) or /root.
    pub async fn open_file(
        &self,
        path: &str,
        write: bool,
        cwd_of: Option<i32>,
    ) -> Result<InstanceFile> {
        if !self.is_running() {
            return Err(Error::NotRunning);
        }
        let open = self.inner.control.open_file(path, write, cwd_of);
        let opened = match tokio::time::timeout(Duration::from_secs(5), open).await {
            Ok(Ok(Ok(opened))) => opened,
            Ok(Ok(Err((kind, message)))) => return Err(Error::File { kind, message }),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotConnected => {
                return Err(Error::NotRunning)
            }
            Ok(Err(e)) => return Err(Error::Spawn(e.to_string())),
            Err(_) => return Err(Error::Spawn(format!("opening {path} timed out"))),
        };
        // Init is not trusted: check what it sent before using it.
        let file = std::fs::File::from(opened.fd);
        let meta = file.metadata().map_err(|e| Error::File {
            kind: FileErrorKind::Other,
            message: format!("{path}: {e}"),
        })?;
        if !meta.is_file() {
            return Err(Error::File {
                kind: FileErrorKind::NotRegular,
                message: format!("{path} is not a regular file"),
            });
        }
        Ok(InstanceFile {
            file: tokio::fs::File::from_std(file),
            path: opened.path,
            size: meta.len(),
        })
    }

    /// The listening socket of the instance's Engine API
    /// ([`crate::launch::agent::DOCKER_SOCKET`]), owned by its init: checked to be a
    /// listening Unix stream socket, since init is not trusted.
    pub async fn docker_listener(&self) -> Result<std::os::unix::net::UnixListener> {
        let fd = self
            .listening_socket(self.inner.control.docker_socket(), "docker")
            .await?;
        let unix = nix::sys::socket::getsockname::<nix::sys::socket::UnixAddr>(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
        )
        .is_ok();
        if !unix {
            return Err(not_listening("Unix"));
        }
        Ok(std::os::unix::net::UnixListener::from(fd))
    }

    /// The listening TCP socket of the registry mirror inside a nesting
    /// instance's network namespace ([`crate::launch::agent::MIRROR_ADDRESS`]),
    /// owned by its init: checked to be a listening TCP socket, since init
    /// is not trusted. Accepting on it needs no namespace change.
    pub async fn mirror_listener(&self) -> Result<std::net::TcpListener> {
        let fd = self
            .listening_socket(self.inner.control.mirror_socket(), "mirror")
            .await?;
        let listener = std::net::TcpListener::from(fd);
        // A Unix socket has no IP address to report.
        if !listener.local_addr().is_ok_and(|a| a.ip().is_loopback()) {
            return Err(not_listening("TCP"));
        }
        Ok(listener)
    }

    /// Wait (5 s at most) for the listening socket init answers `asked`
    /// with, checked to be a listening stream socket.
    async fn listening_socket(
        &self,
        asked: impl std::future::Future<Output = std::io::Result<crate::instance::control::OpenReply>>,
        what: &str,
    ) -> Result<std::os::fd::OwnedFd> {
        if !self.is_running() {
            return Err(Error::NotRunning);
        }
        let opened = match tokio::time::timeout(Duration::from_secs(5), asked).await {
            Ok(Ok(Ok(opened))) => opened,
            Ok(Ok(Err((kind, message)))) => return Err(Error::File { kind, message }),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotConnected => {
                return Err(Error::NotRunning)
            }
            Ok(Err(e)) => return Err(Error::Spawn(e.to_string())),
            Err(_) => {
                return Err(Error::Spawn(format!(
                    "asking for the {what} socket timed out"
                )))
            }
        };
        use nix::sys::socket::{getsockopt, sockopt};
        let listening = getsockopt(&opened.fd, sockopt::AcceptConn).unwrap_or(false);
        let stream = getsockopt(&opened.fd, sockopt::SockType)
            .is_ok_and(|t| t == nix::sys::socket::SockType::Stream);
        if !(listening && stream) {
            return Err(not_listening("stream"));
        }
        Ok(opened.fd)
    }

    /// List a directory inside the instance, resolved like [`Instance::open_file`]
    /// (at most 1000 entries, in no particular order).
    pub async fn list_dir(&self, path: &str, cwd_of: Option<i32>) -> Result<Vec<ListedEntry>> {
        if !self.is_running() {
            return Err(Error::NotRunning);
        }
        let list = self.inner.control.list_dir(path, cwd_of);
        match tokio::time::timeout(Duration::from_secs(5), list).await {
            Ok(Ok(Ok(entries))) => Ok(entries),
            Ok(Ok(Err((kind, message)))) => Err(Error::File { kind, message }),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotConnected => Err(Error::NotRunning),
            Ok(Err(e)) => Err(Error::Spawn(e.to_string())),
            Err(_) => Err(Error::Spawn(format!("listing {path} timed out"))),
        }
    }

    fn listeners(&self) -> std::io::Result<Vec<crate::network::ports::Listener>> {
        let mut watcher = self.inner.ports.lock().unwrap();
        if watcher.is_none() {
            *watcher = Some(PortWatcher::open(self.inner.pidfd.get_ref())?);
        }
        let result = watcher.as_mut().expect("opened above").listening();
        if result.is_err() {
            // Open a fresh socket next time.
            *watcher = None;
        }
        result
    }

    /// TCP ports something listens on inside the instance, sorted; not the
    /// registry mirror's, which is the playground's own.
    pub fn listening_ports(&self) -> std::io::Result<Vec<u16>> {
        let mirror: Option<std::net::SocketAddr> =
            crate::storage::image::MIRROR_ADDRESS.parse().ok();
        Ok(self
            .listeners()?
            .into_iter()
            .filter(|l| Some(std::net::SocketAddr::new(l.addr, l.port)) != mirror)
            .map(|l| l.port)
            .collect())
    }

    /// The maker of sockets in the instance's network namespace.
    fn sockets(&self) -> std::io::Result<Arc<SocketMaker>> {
        if !self.is_running() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "the instance is not running",
            ));
        }
        let mut maker = self.inner.sockets.lock().unwrap();
        if maker.is_none() {
            *maker = Some(Arc::new(SocketMaker::start(self.inner.pidfd.get_ref())?));
        }
        Ok(maker.clone().expect("started above"))
    }

    /// A TCP connection from the server to `port` inside the instance (to
    /// whatever address the listener is bound to, loopback included).
    pub async fn connect(&self, port: u16) -> std::io::Result<tokio::net::TcpStream> {
        let sockets = self.sockets()?;
        crate::network::ports::connect(&sockets, || self.listeners(), port, Duration::from_secs(5))
            .await
    }

    /// A TCP connection from the instance's network namespace to `addr`
    /// (a container's address on the instance's bridge, say), given up
    /// after 5 s.
    pub async fn connect_to(
        &self,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<tokio::net::TcpStream> {
        let socket = self.sockets()?.socket(addr.is_ipv6())?;
        tokio::time::timeout(Duration::from_secs(5), socket.connect(addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
    }

    /// A TCP listener on `addr` in the instance's network namespace, held by
    /// the server (a published port of a container: programs in the
    /// instance see it like any listener of their own). It keeps the
    /// namespace alive: close it before the instance is destroyed.
    pub fn listen(&self, addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
        let socket = self.sockets()?.socket(addr.is_ipv6())?;
        // Like any server: a port whose last connections linger in
        // TIME_WAIT can be listened on again at once.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(1024)
    }

    /// Memory, CPU and process counts from the instance's cgroup.
    pub fn stats(&self) -> crate::isolation::cgroup::Stats {
        self.inner.cgroup.stats()
    }

    /// How many processes the OOM killer ended in the instance so far (one
    /// file read, for a container's start and exit).
    pub fn oom_kills(&self) -> u64 {
        self.inner.cgroup.oom_kills().unwrap_or(0)
    }

    fn env(&self, extra: &[String]) -> Vec<String> {
        let mut env: Vec<String> = BASE_ENV.iter().map(|s| s.to_string()).collect();
        env.push(format!("HOSTNAME={}", self.hostname()));
        env.extend(extra.iter().cloned());
        env
    }

    async fn spawn(
        &self,
        argv: Vec<String>,
        env: Vec<String>,
        tty: Option<WindowSize>,
    ) -> Result<Spawned> {
        if !self.is_running() {
            return Err(Error::NotRunning);
        }
        let env = self.env(&env);
        self.inner
            .control
            .spawn(|id| Request::Spawn {
                id,
                argv,
                env,
                cwd: "/root".into(),
                tty,
            })
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotConnected => Error::NotRunning,
                _ => Error::Spawn(e.to_string()),
            })
    }

    /// Start `argv` with pipes for its standard streams, `env` (`NAME=value`)
    /// added to the instance's usual environment.
    pub async fn spawn_piped(&self, argv: Vec<String>, env: Vec<String>) -> Result<PipedProcess> {
        let spawned = self.spawn(argv, env, None).await?;
        let mut fds = spawned.fds.into_iter();
        let (Some(stdin), Some(stdout), Some(stderr)) = (fds.next(), fds.next(), fds.next()) else {
            return Err(Error::Spawn("init sent too few pipes".into()));
        };
        let io = |e: std::io::Error| Error::Spawn(e.to_string());
        Ok(PipedProcess {
            pid: spawned.pid,
            stdin: pipe::Sender::from_owned_fd(stdin).map_err(io)?,
            stdout: pipe::Receiver::from_owned_fd(stdout).map_err(io)?,
            stderr: pipe::Receiver::from_owned_fd(stderr).map_err(io)?,
            exit: spawned.exit,
        })
    }

    /// Start `argv` on a new PTY of the instance (e.g. `bash -l`), `env`
    /// (`NAME=value`) added to the instance's usual environment and
    /// `TERM=xterm-256color` (which `env` may replace).
    pub async fn spawn_pty(
        &self,
        argv: Vec<String>,
        env: Vec<String>,
        cols: u16,
        rows: u16,
    ) -> Result<PtyProcess> {
        let mut env = env;
        if !env.iter().any(|v| v.starts_with("TERM=")) {
            env.push("TERM=xterm-256color".to_string());
        }
        let spawned = self
            .spawn(argv, env, Some(WindowSize { cols, rows }))
            .await?;
        let master = spawned
            .fds
            .into_iter()
            .next()
            .ok_or_else(|| Error::Spawn("init sent no terminal".into()))?;
        let pty = Pty::new(master).map_err(|e| Error::Spawn(e.to_string()))?;
        Ok(PtyProcess {
            pid: spawned.pid,
            pty,
            exit: spawned.exit,
        })
    }

    /// Run `argv` to completion without a terminal: feed it `stdin`, collect
    /// at most `max_output` bytes of stdout and of stderr, kill it (and its
    /// process group) after `timeout`.
    pub async fn exec(
        &self,
        argv: Vec<String>,
        stdin: Vec<u8>,
        timeout: Duration,
        max_output: usize,
    ) -> Result<ExecOutput> {
        let PipedProcess {
            pid,
            stdin: mut stdin_w,
            stdout: stdout_r,
            stderr: stderr_r,
            exit,
        } = self.spawn_piped(argv, Vec::new()).await?;
        let spawned_exit = exit;

        tokio::spawn(async move {
            // A command that does not read its input must not block us.
            let _ = stdin_w.write_all(&stdin).await;
        });
        let (exited_tx, exited) = tokio::sync::watch::channel(false);
        let stdout = tokio::spawn(read_capped(stdout_r, max_output, exited.clone()));
        let stderr = tokio::spawn(read_capped(stderr_r, max_output, exited));

        let mut out = ExecOutput::default();
        let mut exit = spawned_exit;
        out.exit_code = match tokio::time::timeout(timeout, &mut exit).await {
            Ok(Ok(code)) => code,
            Ok(Err(_)) => return Err(Error::NotRunning),
            Err(_) => {
                out.timed_out = true;
                let kill = Request::Signal {
                    pid,
                    signal: libc::SIGKILL,
                    group: true,
                };
                let _ = self.inner.control.send(&kill).await;
                match tokio::time::timeout(Duration::from_secs(5), exit).await {
                    Ok(Ok(code)) => code,
                    _ => return Err(Error::NotRunning),
                }
            }
        };
        // Output ends at EOF, or once it has been quiet for a moment after
        // the exit when a background process still holds the pipes open;
        // either way all that was read is kept.
        exited_tx.send_replace(true);
        for (task, buf) in [(stdout, &mut out.stdout), (stderr, &mut out.stderr)] {
            if let Ok((data, truncated)) = task.await {
                *buf = data;
                out.truncated |= truncated;
            }
        }
        Ok(out)
    }

    /// Kill everything in the instance and remove all it had: processes,
    /// mounts (they die with its mount namespace), cgroups, directories.
    /// Safe to call more than once and on a dead instance.
    ///
    /// When this returns, every process of the instance is gone, and so are
    /// its cgroups and its directory. Its disk (the file system, the loop
    /// device and the file) is let go of moments later by the runtime's disk
    /// pool, which a dropped [`crate::Runtime`] waits for.
    pub async fn destroy(&self) -> Result<()> {
        let _guard = self.inner.destroy_lock.lock().await;
        if self.inner.destroyed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Our sockets in the instance's network namespace keep it (and its
        // veth) alive: let go of them first.
        self.inner.ports.lock().unwrap().take();
        self.inner.sockets.lock().unwrap().take();
        // Killing PID 1 of a pid namespace kills every process in it.
        let _ = sys::pidfd_send_signal(self.inner.pidfd.get_ref().as_fd(), libc::SIGKILL);
        if tokio::time::timeout(Duration::from_secs(5), self.inner.pidfd.readable())
            .await
            .is_err()
        {
            tracing::warn!(id = self.id(), "init did not exit within 5 s of SIGKILL");
        }
        // The server is the subreaper of init; collect it so no zombie stays.
        let _ = sys::pidfd_reap(self.inner.pidfd.get_ref().as_fd());
        let cgroup = self.inner.cgroup.clone();
        let dir = self.inner.dir.clone();
        let discarded = self.inner.runtime.disks.discard_path();
        let moved_to = discarded.clone();
        let result = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
            cgroup.remove(Duration::from_secs(10))?;
            // Removing the directory (freeing the disk file's blocks most of
            // all) can take long on a busy host: it moves out at once, to be
            // deleted in the background.
            match std::fs::rename(&dir, &moved_to) {
                Ok(()) => Ok(true),
                Err(_) => match std::fs::remove_dir_all(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(false),
                },
            }
        })
        .await
        .expect("blocking task panicked");
        let mount = self.inner.disk.lock().unwrap().take();
        match result {
            Ok(true) => self.inner.runtime.disks.discard(mount, discarded),
            // Nothing moved out to delete: unmount here.
            _ => drop(mount),
        }
        let result = result.map(drop);
        self.inner.runtime.free_slot(self.inner.slot);
        result.map_err(|e| Error::Cleanup(format!("instance {}: {e}", self.id())))
    }

    /// Resolves when the instance's init has exited.
    pub async fn exited(&self) {
        let _ = self.inner.pidfd.readable().await;
    }
}

/// Read a pipe to its end, keeping at most `max` bytes (and whether there
/// was more). Once `exited` turns true, 200 ms without output, or 2 s in
/// all, also end it: a background process of the command may hold the pipe
/// open (and even write to it) for good.
async fn read_capped(
    mut pipe: pipe::Receiver,
    max: usize,
    mut exited: tokio::sync::watch::Receiver<bool>,
) -> (Vec<u8>, bool) {
    const QUIET: Duration = Duration::from_millis(200);
    const AFTER_EXIT: Duration = Duration::from_secs(2);
    let mut data = Vec::new();
    let mut truncated = false;
    let mut buf = vec![0u8; 16 * 1024];
    let mut deadline = None;
    loop {
        let read = if let Some(deadline) = deadline {
            let quiet = tokio::time::Instant::now() + QUIET;
            match tokio::time::timeout_at(quiet.min(deadline), pipe.read(&mut buf)).await {
                Ok(read) => read,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                read = pipe.read(&mut buf) => read,
                // Exited (or the caller is gone): the limits apply from now.
                _ = exited.changed() => {
                    deadline = Some(tokio::time::Instant::now() + AFTER_EXIT);
                    continue;
                }
            }
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = max.saturating_sub(data.len());
                if n > room {
                    truncated = true;
                }
                data.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (data, truncated)
}

/// What init sent instead of the listening socket asked for.
fn not_listening(kind: &str) -> Error {
    Error::File {
        kind: FileErrorKind::NotRegular,
        message: format!("init sent something other than a listening {kind} socket"),
    }
}
