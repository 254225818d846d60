//! Copying a container process's terminal or pipes: its output to whoever
//! follows it, its stdin from them, until it exits.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use super::streams::Chunk;

/// How long the output may stay quiet after the exit before its copy ends
/// (something in the background may keep the pipes open).
const DRAIN: Duration = Duration::from_millis(300);

/// A process's side: its terminal, or its stdin, stdout and stderr pipes.
pub(super) enum ProcessIo {
    Tty(Arc<sandbox::Pty>),
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// Nothing to copy (a process taken back whose output nobody kept).
    None,
}

impl ProcessIo {
    pub(super) fn new(io: sandbox::ProcessIo) -> std::io::Result<ProcessIo> {
        Ok(match io {
            sandbox::ProcessIo::Tty(master) => ProcessIo::Tty(Arc::new(sandbox::Pty::new(master)?)),
            sandbox::ProcessIo::Pipes {
                stdin,
                stdout,
                stderr,
            } => ProcessIo::Pipes {
                stdin,
                stdout,
                stderr,
            },
            sandbox::ProcessIo::None => ProcessIo::None,
        })
    }

    pub(super) fn pty(&self) -> Option<Arc<sandbox::Pty>> {
        match self {
            ProcessIo::Tty(pty) => Some(pty.clone()),
            ProcessIo::Pipes { .. } | ProcessIo::None => None,
        }
    }
}

/// Send the output to `out` and write what `stdin` brings (its end closes
/// the process's stdin) until the process exits and its output has been
/// read; its exit code. `out` is bounded: while it is full the process's
/// output waits in its pipe or terminal (and the process with it), so
/// nothing is dropped however much it prints.
pub(super) async fn pump(
    io: ProcessIo,
    mut stdin: mpsc::Receiver<Vec<u8>>,
    out: mpsc::Sender<Chunk>,
    exit: oneshot::Receiver<i32>,
) -> i32 {
    let (exited_tx, exited) = watch::channel(false);
    let mut readers = Vec::new();
    match io {
        ProcessIo::Tty(pty) => {
            let writer = pty.clone();
            tokio::spawn(async move {
                while let Some(data) = stdin.recv().await {
                    if writer.write_all(&data).await.is_err() {
                        break;
                    }
                }
            });
            let source = Source::Tty(pty);
            readers.push(tokio::spawn(copy_out(source, 1, out, exited)));
        }
        ProcessIo::Pipes {
            stdin: pipe,
            stdout,
            stderr,
        } => {
            let pipe = pipe.and_then(|p| tokio::net::unix::pipe::Sender::from_owned_fd(p).ok());
            if let Some(mut pipe) = pipe {
                tokio::spawn(async move {
                    // Dropping the pipe (all senders gone) closes it.
                    while let Some(data) = stdin.recv().await {
                        if pipe.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                });
            }
            for (fd, stream) in [(stdout, 1u8), (stderr, 2u8)] {
                let Ok(pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
                    continue;
                };
                let source = Source::Pipe(pipe);
                readers.push(tokio::spawn(copy_out(
                    source,
                    stream,
                    out.clone(),
                    exited.clone(),
                )));
            }
        }
        ProcessIo::None => {}
    }
    let code = exit.await.unwrap_or(255);
    let _ = exited_tx.send(true);
    for reader in readers {
        let _ = reader.await;
    }
    code
}

/// Where a process's output is read from.
enum Source {
    Tty(Arc<sandbox::Pty>),
    Pipe(tokio::net::unix::pipe::Receiver),
}

impl Source {
    /// Read some output (cancel-safe: nothing is lost if the future is
    /// dropped before it is ready); `Ok(0)` at the end.
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::Tty(pty) => pty.read(buf).await,
            Source::Pipe(pipe) => pipe.read(buf).await,
        }
    }
}

/// Copy `source` to `out` as pieces of `stream` until its end, or, once the
/// process has exited (`exited`), until it has been quiet for `DRAIN`
/// (something in the background may keep it open). Only a quiet source
/// counts: time spent waiting for room in `out` (a slow client) never cuts
/// the output short, as an overall deadline after the exit would.
async fn copy_out(
    mut source: Source,
    stream: u8,
    out: mpsc::Sender<Chunk>,
    mut exited: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let quiet = async {
            if exited.wait_for(|e| *e).await.is_ok() {
                tokio::time::sleep(DRAIN).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let n = tokio::select! {
            biased;
            read = source.read(&mut buf) => match read {
                Ok(n) if n > 0 => n,
                _ => break,
            },
            () = quiet => break,
        };
        let chunk = Chunk {
            stream,
            data: buf[..n].to_vec(),
        };
        // Nobody listening (a detached exec, a client gone) is no reason to
        // stop reading: the process must not block on a full pipe.
        let _ = out.send(chunk).await;
    }
}
