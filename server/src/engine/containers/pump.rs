//! Copying a container process's terminal or pipes: its output to whoever
//! follows it, its stdin from them, until it exits.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::streams::Chunk;

/// How long the rest of the output may take after the exit (something in
/// the background may keep the pipes open).
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

/// Hand the output to `emit` and write what `stdin` brings (its end closes
/// the process's stdin) until the process exits; its exit code.
pub(super) async fn pump(
    io: ProcessIo,
    mut stdin: mpsc::Receiver<Vec<u8>>,
    emit: impl Fn(Chunk) + Clone + Send + 'static,
    exit: oneshot::Receiver<i32>,
) -> i32 {
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
            readers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = pty.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    emit(Chunk {
                        stream: 1,
                        data: buf[..n].to_vec(),
                    });
                }
            }));
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
                let emit = emit.clone();
                readers.push(tokio::spawn(async move {
                    let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
                        return;
                    };
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = pipe.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        emit(Chunk {
                            stream,
                            data: buf[..n].to_vec(),
                        });
                    }
                }));
            }
        }
        ProcessIo::None => {}
    }
    let code = exit.await.unwrap_or(255);
    for reader in readers {
        let abort = reader.abort_handle();
        if tokio::time::timeout(DRAIN, reader).await.is_err() {
            abort.abort();
        }
    }
    code
}
