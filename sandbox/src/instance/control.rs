//! The server's end of an instance's control channel (see `crate::launch::agent`): sends
//! requests, and runs one task that reads init's events and routes them to
//! whoever waits for them.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

use crate::launch::agent::{self, Event, FileErrorKind, ListedEntry, Request};

/// A process init started for us.
pub struct Spawned {
    /// Its pid inside the instance.
    pub pid: i32,
    /// The PTY master, or the stdin, stdout and stderr pipe ends.
    pub fds: Vec<OwnedFd>,
    /// Resolves with the exit code; fails if the instance dies first.
    pub exit: oneshot::Receiver<i32>,
}

type SpawnReply = Result<Spawned, String>;

/// A file init opened for us (see `Request::OpenFile`).
pub struct OpenedFile {
    pub fd: OwnedFd,
    /// Its absolute path inside the instance.
    pub path: String,
}

pub(crate) type OpenReply = Result<OpenedFile, (FileErrorKind, String)>;

type ListReply = Result<Vec<ListedEntry>, (FileErrorKind, String)>;

#[derive(Default)]
struct Waiters {
    spawns: HashMap<u64, oneshot::Sender<SpawnReply>>,
    exits: HashMap<i32, oneshot::Sender<i32>>,
    writes: HashMap<u64, oneshot::Sender<Option<String>>>,
    opens: HashMap<u64, oneshot::Sender<OpenReply>>,
    lists: HashMap<u64, oneshot::Sender<ListReply>>,
    adopts: HashMap<u64, (Vec<Adopted>, oneshot::Sender<Vec<Adopted>>)>,
}

impl Waiters {
    /// Start watching for the exit of `pid`, whose descriptors (made
    /// non-blocking for tokio) came with the event that announced it.
    fn track(&mut self, pid: i32, fds: Vec<OwnedFd>) -> Spawned {
        let (exit_tx, exit) = oneshot::channel();
        self.exits.insert(pid, exit_tx);
        for fd in &fds {
            let _ = nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
        }
        Spawned { pid, fds, exit }
    }
}

/// A process found running in an instance by a server that attached.
pub struct Adopted {
    pub tty: bool,
    /// A container's process (see `Request::Track`), not one init started.
    pub tracked: bool,
    pub process: Spawned,
}

pub struct Control {
    socket: AsyncFd<OwnedFd>,
    next_id: AtomicU64,
    waiters: Mutex<Waiters>,
    closed: AtomicBool,
}

impl Control {
    /// Wrap a connected, non-blocking control socket.
    pub fn new(socket: OwnedFd) -> io::Result<Arc<Control>> {
        Ok(Arc::new(Control {
            socket: crate::isolation::sys::async_fd(socket)?,
            next_id: AtomicU64::new(1),
            waiters: Mutex::new(Waiters::default()),
            closed: AtomicBool::new(false),
        }))
    }

    /// Whether init is still there to serve requests.
    pub fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    pub async fn recv_event(&self) -> io::Result<Option<(Event, Vec<OwnedFd>)>> {
        loop {
            let mut guard = self.socket.readable().await?;
            match guard.try_io(|fd| agent::recv(fd.get_ref().as_fd())) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    pub async fn send(&self, request: &Request) -> io::Result<()> {
        self.send_with(request, &[]).await
    }

    /// Send a request with descriptors attached.
    pub async fn send_with(&self, request: &Request, fds: &[RawFd]) -> io::Result<()> {
        if !self.is_open() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the instance is not running",
            ));
        }
        loop {
            let mut guard = self.socket.writable().await?;
            match guard.try_io(|fd| agent::send(fd.get_ref().as_fd(), request, fds)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Ask init to start a process and wait for it to be running.
    pub async fn spawn(&self, make: impl FnOnce(u64) -> Request) -> io::Result<Spawned> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().spawns.insert(id, tx);
        if let Err(e) = self.send(&make(id)).await {
            self.waiters.lock().unwrap().spawns.remove(&id);
            return Err(e);
        }
        match rx.await {
            Ok(Ok(spawned)) => Ok(spawned),
            Ok(Err(error)) => Err(io::Error::other(error)),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the instance stopped",
            )),
        }
    }

    /// Ask init to replace the contents of a small file.
    pub async fn write_file(&self, path: &str, contents: &str) -> io::Result<()> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().writes.insert(id, tx);
        let request = Request::WriteFile {
            id,
            path: path.to_string(),
            contents: contents.to_string(),
        };
        if let Err(e) = self.send(&request).await {
            self.waiters.lock().unwrap().writes.remove(&id);
            return Err(e);
        }
        match rx.await {
            Ok(None) => Ok(()),
            Ok(Some(error)) => Err(io::Error::other(error)),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the instance stopped",
            )),
        }
    }

    /// Have init report the exit of `pid` and keep `fds`, the server's ends
    /// of its output (see `Request::Track`); the receiver resolves with its
    /// exit code.
    pub async fn track(
        &self,
        pid: i32,
        tty: bool,
        fds: &[RawFd],
    ) -> io::Result<oneshot::Receiver<i32>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (exit_tx, exit) = oneshot::channel();
        let (tx, rx) = oneshot::channel();
        {
            let mut waiters = self.waiters.lock().unwrap();
            waiters.exits.insert(pid, exit_tx);
            waiters.writes.insert(id, tx);
        }
        if let Err(e) = self.send_with(&Request::Track { id, pid, tty }, fds).await {
            let mut waiters = self.waiters.lock().unwrap();
            waiters.writes.remove(&id);
            waiters.exits.remove(&pid);
            return Err(e);
        }
        match rx.await {
            Ok(_) => Ok(exit),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the instance stopped",
            )),
        }
    }

    /// Ask init to open a regular file of the instance (see
    /// `Request::OpenFile`). The outer error means the channel failed; the
    /// inner one that init could not open the file.
    pub async fn open_file(
        &self,
        path: &str,
        write: bool,
        cwd_of: Option<i32>,
    ) -> io::Result<OpenReply> {
        self.request_fd(|id| Request::OpenFile {
            id,
            path: path.to_string(),
            write,
            cwd_of,
        })
        .await
    }

    /// Ask init for the engine's listening socket (see `Request::DockerSocket`).
    pub async fn docker_socket(&self) -> io::Result<OpenReply> {
        self.request_fd(|id| Request::DockerSocket { id }).await
    }

    /// Ask init for the registry mirror's listening socket (see `Request::MirrorSocket`).
    pub async fn mirror_socket(&self) -> io::Result<OpenReply> {
        self.request_fd(|id| Request::MirrorSocket { id }).await
    }

    /// Send the request `make(id)` and wait for the descriptor it answers with.
    async fn request_fd(&self, make: impl FnOnce(u64) -> Request) -> io::Result<OpenReply> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().opens.insert(id, tx);
        // Forget the request if the caller gives up (a timeout) or it fails.
        struct Pending<'a>(&'a Control, u64);
        impl Drop for Pending<'_> {
            fn drop(&mut self) {
                self.0.waiters.lock().unwrap().opens.remove(&self.1);
            }
        }
        let _pending = Pending(self, id);
        self.send(&make(id)).await?;
        rx.await
            .map_err(|_| io::Error::new(io::ErrorKind::NotConnected, "the instance stopped"))
    }

    /// Ask init to list a directory of the instance (see `Request::ListDir`).
    /// The outer error means the channel failed; the inner one that init
    /// could not list the directory.
    pub async fn list_dir(&self, path: &str, cwd_of: Option<i32>) -> io::Result<ListReply> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().lists.insert(id, tx);
        struct Pending<'a>(&'a Control, u64);
        impl Drop for Pending<'_> {
            fn drop(&mut self) {
                self.0.waiters.lock().unwrap().lists.remove(&self.1);
            }
        }
        let _pending = Pending(self, id);
        let request = Request::ListDir {
            id,
            path: path.to_string(),
            cwd_of,
        };
        self.send(&request).await?;
        rx.await
            .map_err(|_| io::Error::new(io::ErrorKind::NotConnected, "the instance stopped"))
    }

    /// Ask init for every live process (after a server restart).
    pub async fn adopt(&self) -> io::Result<Vec<Adopted>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap()
            .adopts
            .insert(id, (Vec::new(), tx));
        if let Err(e) = self.send(&Request::Adopt { id }).await {
            self.waiters.lock().unwrap().adopts.remove(&id);
            return Err(e);
        }
        rx.await
            .map_err(|_| io::Error::new(io::ErrorKind::NotConnected, "the instance stopped"))
    }

    /// Read init's events until the channel closes. Run once, as a task.
    pub async fn route_events(self: Arc<Self>) {
        loop {
            match self.recv_event().await {
                Ok(Some((event, fds))) => self.route(event, fds),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    tracing::warn!("ignoring a malformed message from an instance: {e}");
                }
                Ok(None) | Err(_) => break,
            }
        }
        self.closed.store(true, Ordering::Release);
        // Dropping the senders tells every waiter that the instance is gone.
        *self.waiters.lock().unwrap() = Waiters::default();
    }

    fn route(&self, event: Event, fds: Vec<OwnedFd>) {
        let mut waiters = self.waiters.lock().unwrap();
        match event {
            Event::Spawned { id, pid } => {
                let process = waiters.track(pid, fds);
                if let Some(tx) = waiters.spawns.remove(&id) {
                    let _ = tx.send(Ok(process));
                }
            }
            Event::SpawnFailed { id, error } => {
                if let Some(tx) = waiters.spawns.remove(&id) {
                    let _ = tx.send(Err(error));
                }
            }
            Event::Exited { pid, code } => {
                if let Some(tx) = waiters.exits.remove(&pid) {
                    let _ = tx.send(code);
                }
            }
            Event::Tracked { id } => {
                if let Some(tx) = waiters.writes.remove(&id) {
                    let _ = tx.send(None);
                }
            }
            Event::Written { id, error } => {
                if let Some(tx) = waiters.writes.remove(&id) {
                    let _ = tx.send(error);
                }
            }
            Event::FileOpened { id, path, .. } => {
                if let Some(tx) = waiters.opens.remove(&id) {
                    let reply = match fds.into_iter().next() {
                        Some(fd) => Ok(OpenedFile { fd, path }),
                        None => Err((FileErrorKind::Other, "init sent no descriptor".into())),
                    };
                    let _ = tx.send(reply);
                }
            }
            Event::DockerSocket { id } | Event::MirrorSocket { id } => {
                let path = match event {
                    Event::DockerSocket { .. } => agent::DOCKER_SOCKET,
                    _ => agent::MIRROR_ADDRESS,
                };
                if let Some(tx) = waiters.opens.remove(&id) {
                    let reply = match fds.into_iter().next() {
                        Some(fd) => Ok(OpenedFile {
                            fd,
                            path: path.to_string(),
                        }),
                        None => Err((FileErrorKind::Other, "init sent no descriptor".into())),
                    };
                    let _ = tx.send(reply);
                }
            }
            Event::FileFailed { id, kind, error } => {
                if let Some(tx) = waiters.opens.remove(&id) {
                    let _ = tx.send(Err((kind, error)));
                } else if let Some(tx) = waiters.lists.remove(&id) {
                    let _ = tx.send(Err((kind, error)));
                }
            }
            Event::Listed { id, mut entries } => {
                if let Some(tx) = waiters.lists.remove(&id) {
                    entries.truncate(agent::MAX_LISTED);
                    let _ = tx.send(Ok(entries));
                }
            }
            Event::Adopted {
                id,
                pid,
                tty,
                tracked,
            } => {
                let process = waiters.track(pid, fds);
                if let Some((found, _)) = waiters.adopts.get_mut(&id) {
                    found.push(Adopted {
                        tty,
                        tracked,
                        process,
                    });
                }
            }
            Event::AdoptDone { id } => {
                if let Some((found, tx)) = waiters.adopts.remove(&id) {
                    let _ = tx.send(found);
                }
            }
            Event::Launched { .. } | Event::Ready | Event::Failed { .. } => {}
        }
    }
}
