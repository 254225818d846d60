//! A long-lived, single-threaded process that forks launchers (see
//! `launcher`), so creating an instance does not pay for executing the server
//! binary anew (loading it, starting the Rust runtime: 1-2 ms, several on a
//! busy host). It is our binary executed once with [`LAUNCH_SERVER_ARG`].
//!
//! The server sends it the launcher's end of a fresh control socket; it
//! forks, and the child runs the launcher on that socket exactly as an
//! executed launcher would. The launch server holds nothing of any instance,
//! reaps its children automatically, and exits when the server's end of its
//! socket closes (the server exited or crashed).

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::{fork, ForkResult};

use super::agent;
use super::jobs::CONTROL_FD;

/// `argv[1]` that makes our binary act as the launch server.
pub const LAUNCH_SERVER_ARG: &str = "__sandbox-launch-server";

/// The descriptor number of the launch server's socket.
const SERVER_FD: RawFd = 3;

/// Serve launch requests until the server goes away. Runs in the launch
/// server process, which must be single-threaded. Returns in the forked
/// children only, with their control socket as [`CONTROL_FD`].
pub fn serve() -> OwnedFd {
    // SAFETY: the server passes our socket as descriptor 3 and nothing else
    // in this fresh process owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(SERVER_FD) };
    // Children (the launchers) are reaped by the kernel.
    // SAFETY: ignoring a signal installs no handler code.
    if unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }.is_err() {
        std::process::exit(1);
    }
    loop {
        let control = match agent::recv::<()>(socket.as_fd()) {
            Ok(Some(((), fds))) => match fds.into_iter().next() {
                Some(fd) => fd,
                None => continue,
            },
            // The server is gone: nothing more to launch.
            Ok(None) => std::process::exit(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => std::process::exit(1),
        };
        // SAFETY: this process is single-threaded, so the child may run
        // arbitrary code.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => return into_launcher(socket, control),
            // The child has its copy; ours closes here.
            Ok(ForkResult::Parent { .. }) => drop(control),
            // A launch that never starts: its server sees the socket close.
            Err(_) => drop(control),
        }
    }
}

/// In a forked child: give up the launch server's socket and state, and
/// put the control socket where the launcher (and init after it) expect it.
fn into_launcher(socket: OwnedFd, control: OwnedFd) -> OwnedFd {
    // Init must see its children's exits.
    // SAFETY: restoring the default disposition installs no handler code.
    if unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) }.is_err() {
        std::process::exit(1);
    }
    drop(socket);
    if control.as_raw_fd() == CONTROL_FD {
        return control;
    }
    if crate::isolation::sys::dup2(control.as_fd(), CONTROL_FD).is_err() {
        std::process::exit(1);
    }
    drop(control);
    // SAFETY: dup2 just made CONTROL_FD a copy that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(CONTROL_FD) }
}

/// The server's handle on its launch server: started again if it died
/// (collected then, or when the runtime goes).
pub struct LaunchServer {
    program: std::path::PathBuf,
    running: Mutex<Option<Running>>,
}

struct Running {
    socket: OwnedFd,
    process: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Closing our end makes it exit; collect it.
        let _ =
            nix::sys::socket::shutdown(self.socket.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        let _ = self.process.wait();
    }
}

impl LaunchServer {
    /// Start a launch server; `program` is our binary (see
    /// [`crate::RuntimeConfig::launcher`]).
    pub fn start(program: &Path) -> io::Result<LaunchServer> {
        let server = LaunchServer {
            program: program.to_path_buf(),
            running: Mutex::new(None),
        };
        *server.running.lock().unwrap() = Some(server.spawn()?);
        Ok(server)
    }

    /// Have a launcher forked on `control` (the launcher's end of the control
    /// socket).
    pub fn launch(&self, control: &OwnedFd) -> io::Result<()> {
        let mut running = self.running.lock().unwrap();
        if let Some(r) = running.as_ref() {
            if send(r, control).is_ok() {
                return Ok(());
            }
            // It died (or hangs): start another.
            *running = None;
        }
        let r = self.spawn()?;
        send(&r, control)?;
        *running = Some(r);
        Ok(())
    }

    fn spawn(&self) -> io::Result<Running> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        // Never wait on a launch server that does not read: a full socket
        // fails the send instead (its end stays blocking).
        nix::fcntl::fcntl(
            &ours,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
        let mut command = Command::new(&self.program);
        command
            .arg(LAUNCH_SERVER_ARG)
            // Init inherits this environment; the server's must not leak in.
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let theirs_raw = theirs.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and only
        // makes async-signal-safe system calls (dup2, fcntl).
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(move || {
                if theirs_raw == SERVER_FD {
                    let flags = libc::fcntl(SERVER_FD, libc::F_GETFD);
                    if flags < 0
                        || libc::fcntl(SERVER_FD, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(theirs_raw, SERVER_FD) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let process = command.spawn()?;
        Ok(Running {
            socket: ours,
            process,
        })
    }
}

fn send(running: &Running, control: &OwnedFd) -> io::Result<()> {
    agent::send(running.socket.as_fd(), &(), &[control.as_raw_fd()])
}
