//! Asynchronous access to a PTY master that init handed to the server.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use crate::isolation::sys;

/// The server's side of a terminal inside an instance. Reads and writes may
/// happen concurrently from different tasks.
pub struct Pty {
    fd: AsyncFd<OwnedFd>,
}

impl Pty {
    /// Wrap a non-blocking PTY master.
    pub fn new(master: OwnedFd) -> io::Result<Pty> {
        Ok(Pty {
            fd: sys::async_fd(master)?,
        })
    }

    /// Read terminal output. `Ok(0)` means every process holding the
    /// terminal's other side has gone (the shell exited).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(io::Error::from)) {
                Ok(Ok(n)) => return Ok(n),
                // Linux reports a hung-up terminal as EIO.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Write keyboard input; waits while the terminal's input queue is full.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Tell the terminal (and so the programs in it) its new size.
    pub fn resize(&self, cols: u16, rows: u16) -> io::Result<()> {
        sys::set_winsize(self.fd.get_ref().as_fd(), cols.max(1), rows.max(1))
    }
}
