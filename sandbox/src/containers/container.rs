//! The server's side of containers (see `crate::launch::nested`): ask the launch server
//! for a launcher that does the job, collect the process's terminal or
//! pipes, have the instance's init track it, and let it run.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use tokio::sync::oneshot;

use crate::instance::handle::Instance;
use crate::isolation::sys;
use crate::launch::agent;
use crate::launch::jobs::Job;
pub use crate::launch::jobs::{Bind, ProcessSpec, RunSpec};
use crate::launch::jobs::{ContainerJob, Go, JobEvent, JobKind};
use crate::{Error, Result};

/// How long a container's process may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long writing a container's layer as a tar may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(600);

/// How a container's process is connected.
pub enum ProcessIo {
    /// Its terminal's master.
    Tty(OwnedFd),
    /// Nothing: a process taken back after a restart whose output nobody
    /// kept.
    None,
    /// Its stdin (write end; none for a process taken back after a server
    /// restart), stdout and stderr (read ends).
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

/// A process running in a container.
pub struct ContainerProcess {
    /// Its pid in the instance's pid namespace.
    pub pid: i32,
    pub io: ProcessIo,
    /// Resolves with the exit code (fails if the instance dies first).
    pub exit: oneshot::Receiver<i32>,
}

/// A launcher's socket, read with tokio.
struct JobSocket(tokio::io::unix::AsyncFd<OwnedFd>);

impl JobSocket {
    async fn recv(&self) -> std::io::Result<Option<(JobEvent, Vec<OwnedFd>)>> {
        loop {
            let mut guard = self.0.readable().await?;
            match guard.try_io(|fd| agent::recv(fd.get_ref().as_fd())) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

impl Instance {
    /// Start a launcher for `kind` on this instance; returns its socket.
    fn start_job(&self, kind: JobKind) -> Result<JobSocket> {
        if !self.is_running() {
            return Err(Error::NotRunning);
        }
        let setup = |e: &dyn std::fmt::Display| Error::Spawn(e.to_string());
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| setup(&e))?;
        nix::fcntl::fcntl(
            &ours,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(|e| setup(&e))?;
        let job = Job::Container(ContainerJob {
            cgroup_join: self.cgroup().procs_files(),
            init_pid: self.host_pid(),
            kind,
        });
        agent::send(ours.as_fd(), &job, &[self.pidfd().as_raw_fd()]).map_err(|e| setup(&e))?;
        self.runtime()
            .launch_server
            .launch(&theirs)
            .map_err(|e| setup(&e))?;
        Ok(JobSocket(sys::async_fd(ours).map_err(|e| setup(&e))?))
    }

    fn disk_image(&self) -> std::path::PathBuf {
        self.dir().join("disk.img")
    }

    /// Create a container and start its first process (see `crate::launch::nested`).
    /// `spec.disk_image` is filled in here.
    pub async fn run_container(&self, mut spec: RunSpec) -> Result<ContainerProcess> {
        spec.disk_image = self.disk_image();
        let tty = spec.process.tty.is_some();
        let socket = self.start_job(JobKind::Run(spec))?;
        self.started(socket, tty).await
    }

    /// Start one more process in the container whose first process is `target`.
    pub async fn exec_in_container(
        &self,
        target: i32,
        process: ProcessSpec,
    ) -> Result<ContainerProcess> {
        let tty = process.tty.is_some();
        let socket = self.start_job(JobKind::Exec { target, process })?;
        self.started(socket, tty).await
    }

    /// Remove a container's writable layer from the instance's disk.
    pub async fn remove_container_layer(&self, id: &str) -> Result<()> {
        let socket = self.start_job(JobKind::RemoveLayer {
            id: id.to_string(),
            disk_image: self.disk_image(),
        })?;
        match tokio::time::timeout(START_TIMEOUT, socket.recv()).await {
            Ok(Ok(Some((JobEvent::Done, _)))) => Ok(()),
            Ok(Ok(Some((JobEvent::Failed { error }, _)))) => Err(Error::Cleanup(error)),
            _ => Err(Error::Cleanup("removing a container's layer failed".into())),
        }
    }

    /// Write a stopped container's writable layer as a layer tar (owners
    /// as the container sees them, overlayfs whiteouts as OCI ones) to
    /// `dest`, a file that must not exist yet.
    pub async fn export_container_layer(&self, id: &str, dest: &std::path::Path) -> Result<()> {
        let socket = self.start_job(JobKind::ExportLayer {
            id: id.to_string(),
            disk_image: self.disk_image(),
            dest: dest.to_owned(),
        })?;
        match tokio::time::timeout(EXPORT_TIMEOUT, socket.recv()).await {
            Ok(Ok(Some((JobEvent::Done, _)))) => Ok(()),
            Ok(Ok(Some((JobEvent::Failed { error }, _)))) => Err(Error::Spawn(error)),
            _ => Err(Error::Spawn("exporting a container's layer failed".into())),
        }
    }

    /// Signal a process init tracks (a container's included).
    pub async fn signal(&self, pid: i32, signal: i32) -> Result<()> {
        let request = agent::Request::Signal {
            pid,
            signal,
            group: false,
        };
        self.control()
            .send(&request)
            .await
            .map_err(|_| Error::NotRunning)
    }

    /// Wait for the process's pid and descriptors, have init track it, let it go.
    async fn started(&self, socket: JobSocket, tty: bool) -> Result<ContainerProcess> {
        let collect = async {
            let (mut pid, mut fds) = (None, None);
            while pid.is_none() || fds.is_none() {
                match socket.recv().await {
                    Ok(Some((JobEvent::Started { pid: p }, _))) => pid = Some(p),
                    Ok(Some((JobEvent::Ready, f))) => fds = Some(f),
                    Ok(Some((JobEvent::Failed { error }, _))) => return Err(Error::Spawn(error)),
                    Ok(Some(_)) => return Err(Error::Spawn("unexpected message".into())),
                    Ok(None) | Err(_) => {
                        return Err(Error::Spawn("the container's process did not start".into()))
                    }
                }
            }
            Ok((pid.expect("set"), fds.expect("set")))
        };
        let (pid, fds) = match tokio::time::timeout(START_TIMEOUT, collect).await {
            Ok(result) => result?,
            Err(_) => return Err(Error::Spawn("the container did not start in time".into())),
        };
        for fd in &fds {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )
            .map_err(|e| Error::Spawn(e.to_string()))?;
        }
        let mut fds = fds.into_iter();
        let io = match (tty, fds.next(), fds.next(), fds.next()) {
            (true, Some(master), _, _) => ProcessIo::Tty(master),
            (false, Some(stdin), Some(stdout), Some(stderr)) => ProcessIo::Pipes {
                stdin: Some(stdin),
                stdout,
                stderr,
            },
            _ => {
                return Err(Error::Spawn(
                    "the container's process sent too few descriptors".into(),
                ))
            }
        };
        // Init keeps copies of the output's ends (never stdin's: the
        // process must see its end).
        let kept: Vec<RawFd> = match &io {
            ProcessIo::Tty(master) => vec![master.as_raw_fd()],
            ProcessIo::Pipes { stdout, stderr, .. } => {
                vec![stdout.as_raw_fd(), stderr.as_raw_fd()]
            }
            ProcessIo::None => Vec::new(),
        };
        let exit = self
            .control()
            .track(pid, tty, &kept)
            .await
            .map_err(|_| Error::NotRunning)?;
        agent::send(socket.0.get_ref().as_fd(), &Go, &[])
            .map_err(|e| Error::Spawn(format!("start the process: {e}")))?;
        Ok(ContainerProcess { pid, io, exit })
    }

    /// After a server restart: a container's process that init still
    /// tracks, with its output when init kept it (see `Request::Track`).
    /// `None` if it is gone (it exited meanwhile).
    pub async fn watch(&self, pid: i32) -> Option<ContainerProcess> {
        let kept = self.take_adopted(pid);
        if let Some(spawned) = kept {
            let mut fds = spawned.fds.into_iter();
            let io = match (fds.next(), fds.next()) {
                (Some(stdout), Some(stderr)) => ProcessIo::Pipes {
                    stdin: None,
                    stdout,
                    stderr,
                },
                (Some(master), None) => ProcessIo::Tty(master),
                // Tracked by an older server that kept nothing with init.
                _ => ProcessIo::None,
            };
            return Some(ContainerProcess {
                pid,
                io,
                exit: spawned.exit,
            });
        }
        let alive = self
            .cgroup()
            .pids()
            .into_iter()
            .any(|host| ns_pid(host) == Some(pid));
        if !alive {
            return None;
        }
        let exit = self.control().track(pid, false, &[]).await.ok()?;
        Some(ContainerProcess {
            pid,
            io: ProcessIo::None,
            exit,
        })
    }
}

/// The pid of host process `host` in the instance's pid namespace (the
/// second level of its NSpid line).
fn ns_pid(host: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{host}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
