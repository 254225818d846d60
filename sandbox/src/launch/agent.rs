//! The control channel between the server and an instance's init: a
//! `SOCK_SEQPACKET` socket pair, one JSON message per packet, with file
//! descriptors (PTY masters, pipe ends) passed alongside as `SCM_RIGHTS`.
//!
//! Messages from init are untrusted: a user who is root inside the instance
//! may take over init. The server only ever uses them to learn pids, exit
//! codes and descriptors that it then reads and writes as plain byte streams.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};

/// Largest message either side sends or accepts.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Most entries a directory listing carries.
pub const MAX_LISTED: usize = 1000;

/// What the server asks init to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start a process. With `tty`, it gets a new PTY of the instance as its
    /// controlling terminal and the master comes back with `Spawned`;
    /// without, it gets three pipes (stdin, stdout, stderr ends come back).
    Spawn {
        id: u64,
        argv: Vec<String>,
        env: Vec<String>,
        cwd: String,
        tty: Option<WindowSize>,
    },
    /// Send a signal to a process init spawned (to its process group when `group`).
    Signal { pid: i32, signal: i32, group: bool },
    /// A new server attaches: report every live process (`Adopted`, one
    /// each, with its PTY master), then `AdoptDone`.
    Adopt { id: u64 },
    /// Replace the contents of a small regular file (e.g. /etc/hosts).
    WriteFile {
        id: u64,
        path: String,
        contents: String,
    },
    /// Open a regular file for the server (download or upload), resolved
    /// inside the instance: init's root is the instance's root, so `..`,
    /// absolute paths and symlinks stay inside. A relative `path` is relative
    /// to the working directory of process `cwd_of` (a pid inside the
    /// instance), or to /root. With `write`, the file is created (mode 0644)
    /// or truncated. Answered with `FileOpened` (descriptor attached) or
    /// `FileFailed`.
    OpenFile {
        id: u64,
        path: String,
        write: bool,
        cwd_of: Option<i32>,
    },
    /// List a directory of the instance, resolved like `OpenFile`. Answered
    /// with `Listed` or `FileFailed`.
    ListDir {
        id: u64,
        path: String,
        cwd_of: Option<i32>,
    },
    /// Hand over (a duplicate of) the listening socket at
    /// [`DOCKER_SOCKET`], created on the first request. Init owns it, so it
    /// outlives the server: a restarted server asks again and serves on.
    /// Answered with `DockerSocket` (descriptor attached) or `FileFailed`.
    DockerSocket { id: u64 },
    /// Hand over (a duplicate of) the listening TCP socket at
    /// [`MIRROR_ADDRESS`] in the instance's network namespace (nesting
    /// profile), where the server serves the registry mirror dockerd is
    /// configured with. Answered with `MirrorSocket` or `FileFailed`.
    MirrorSocket { id: u64 },
    /// Report the exit of `pid`, a process of the instance that init did
    /// not fork (a container's, reparented to init) as if it had; answered
    /// with `Tracked`. The attached descriptors (the server's ends of its
    /// output: a PTY master with `tty`, else its stdout and stderr pipes)
    /// are kept like a shim's: the process's output waits in them while
    /// the server is away (rather than failing with EPIPE), and the next
    /// server gets them back with `Adopted`.
    Track {
        id: u64,
        pid: i32,
        #[serde(default)]
        tty: bool,
    },
}

/// Where `docker` inside an instance finds the engine.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

pub use crate::storage::image::MIRROR_ADDRESS;

/// What a directory entry is (not following symlinks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListedKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedEntry {
    pub name: String,
    pub kind: ListedKind,
    /// Bytes, for regular files.
    pub size: u64,
}

/// Why init could not open a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileErrorKind {
    /// The file (or a directory on its path) does not exist.
    NotFound,
    /// The path names a directory.
    IsDirectory,
    /// The path names something other than a directory (listing).
    NotDirectory,
    /// The path names a FIFO, socket, device or other non-regular file.
    NotRegular,
    /// The instance's permissions forbid it (or the file system is read-only).
    PermissionDenied,
    /// The instance's disk is full.
    DiskFull,
    /// The path itself is unusable (empty, NUL byte, too long, symlink loop).
    InvalidPath,
    /// Anything else.
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSize {
    pub cols: u16,
    pub rows: u16,
}

/// What the launcher and init report to the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// From the launcher: init was cloned and has this host pid.
    Launched { pid: i32 },
    /// From init: the root file system is in place and requests are served.
    Ready,
    /// From the launcher or init: setting up the instance failed.
    Failed { error: String },
    /// The process for request `id` runs as `pid` (in the instance's pid namespace).
    /// Carries the PTY master, or the stdin, stdout and stderr pipe ends.
    Spawned { id: u64, pid: i32 },
    /// The process for request `id` could not be started.
    SpawnFailed { id: u64, error: String },
    /// A spawned process ended; `code` is its exit status or 128 + signal.
    Exited { pid: i32, code: i32 },
    /// In answer to `Adopt`: a live process; with `tty`, its PTY master is attached.
    Adopted {
        id: u64,
        pid: i32,
        tty: bool,
        /// A process init tracks for the server (a container's), not one
        /// it started.
        #[serde(default)]
        tracked: bool,
    },
    /// The last answer to `Adopt`.
    AdoptDone { id: u64 },
    /// The answer to `WriteFile`: `error` is `None` on success.
    Written { id: u64, error: Option<String> },
    /// The answer to `OpenFile`: the descriptor is attached; `path` is the
    /// file's absolute path inside the instance; `size` its size when opened
    /// for reading.
    FileOpened {
        id: u64,
        size: Option<u64>,
        path: String,
    },
    /// The answer to `ListDir`: the directory's entries (at most
    /// `MAX_LISTED`, and fewer if they would not fit in one message).
    Listed { id: u64, entries: Vec<ListedEntry> },
    /// The answer to `DockerSocket`: the listening socket is attached.
    DockerSocket { id: u64 },
    /// The answer to `MirrorSocket`: the listening socket is attached.
    MirrorSocket { id: u64 },
    /// The answer to `Track`.
    Tracked { id: u64 },
    /// The answer to `OpenFile` or `ListDir` when the path cannot be used.
    FileFailed {
        id: u64,
        kind: FileErrorKind,
        error: String,
    },
}

/// Send one message with `fds` attached.
pub fn send<T: Serialize>(sock: BorrowedFd<'_>, msg: &T, fds: &[RawFd]) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let iov = [IoSlice::new(&body)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Receive one message and the descriptors that came with it. `Ok(None)`
/// means the peer closed the channel.
pub fn recv<T: for<'de> Deserialize<'de>>(
    sock: BorrowedFd<'_>,
) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let (len, fds, truncated) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                for fd in raw {
                    // SAFETY: SCM_RIGHTS just installed this descriptor in our
                    // table; we are its only owner.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        let truncated = msg
            .flags
            .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
        (msg.bytes, fds, truncated)
    };
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    if truncated {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "control message too large",
        ));
    }
    let msg = serde_json::from_slice(&buf[..len])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some((msg, fds)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsFd;

    #[test]
    fn messages_and_descriptors_cross_a_socket_pair() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        send(
            a.as_fd(),
            &Event::Spawned { id: 7, pid: 42 },
            &[r.as_raw_fd()],
        )
        .unwrap();
        let (msg, fds): (Event, _) = recv(b.as_fd()).unwrap().unwrap();
        assert_eq!(msg, Event::Spawned { id: 7, pid: 42 });
        assert_eq!(fds.len(), 1);
        nix::unistd::write(&w, b"x").unwrap();
        let mut byte = [0u8];
        assert_eq!(nix::unistd::read(&fds[0], &mut byte).unwrap(), 1);
        drop(a);
        assert!(recv::<Event>(b.as_fd()).unwrap().is_none());
    }
}
