//! An instance's shell and the WebSocket clients attached to it.
//!
//! Output is one numbered byte stream: the server keeps the most recent
//! [`KEEP`] bytes, and each client has a cursor (an offset in the stream). A
//! client that reconnects with `?from=<offset>` continues exactly where it
//! stopped: nothing duplicated, nothing lost (unless it was away for more than
//! `KEEP` bytes). Backpressure: the reader stops reading the PTY while any
//! client is more than `KEEP` bytes behind (a paused or slow browser), so the
//! shell blocks instead of memory growing; keyboard input has its own path
//! and is never stuck behind output, so Ctrl-C answers at once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use playground_protocol::{TerminalClientMsg, TerminalServerMsg};
use sandbox::{Instance, Pty};
use tokio::sync::{watch, Notify};

/// Output kept for reconnecting clients, and the most a client may lag.
const KEEP: usize = 256 * 1024;
/// Largest binary frame sent to a client.
const FRAME: usize = 32 * 1024;

pub struct Terminal {
    /// The shell's pid inside the instance.
    pid: i32,
    pty: Pty,
    output: Mutex<Output>,
    /// Offset of the end of the stream; changes when output arrives.
    end: watch::Sender<u64>,
    /// The shell's exit code once it has exited and all output is read.
    exit: watch::Sender<Option<i32>>,
    /// Wakes the reader when a client's cursor moves.
    progress: Notify,
    next_client: AtomicU64,
}

struct Output {
    data: VecDeque<u8>,
    /// Stream offset of `data[0]`.
    start: u64,
    /// Cursor of every attached client.
    cursors: HashMap<u64, u64>,
}

impl Output {
    fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }

    /// Whether the reader may read more without leaving a client behind.
    fn has_room(&self) -> bool {
        let slowest = self.cursors.values().min().copied().unwrap_or(self.end());
        self.end() - slowest < KEEP as u64
    }

    fn push(&mut self, bytes: &[u8]) {
        self.data.extend(bytes);
        let excess = self.data.len().saturating_sub(KEEP);
        self.data.drain(..excess);
        self.start += excess as u64;
    }

    /// Up to `FRAME` bytes from `from` (clamped to what is kept).
    fn read_from(&self, from: u64) -> (u64, Vec<u8>) {
        let from = from.clamp(self.start, self.end());
        let skip = (from - self.start) as usize;
        let end = (skip + FRAME).min(self.data.len());
        let chunk: Vec<u8> = self.data.range(skip..end).copied().collect();
        (from, chunk)
    }
}

impl Terminal {
    /// Start a login shell in `instance` and begin collecting its output.
    pub async fn start(
        instance: &Instance,
        cols: u16,
        rows: u16,
    ) -> Result<Arc<Terminal>, sandbox::Error> {
        let process = instance
            .spawn_pty(vec!["/bin/bash".into(), "-l".into()], cols, rows)
            .await?;
        Ok(Terminal::attach(process))
    }

    /// Serve a shell that is already running (one found after a restart).
    pub fn attach(process: sandbox::PtyProcess) -> Arc<Terminal> {
        let terminal = Arc::new(Terminal {
            pid: process.pid,
            pty: process.pty,
            output: Mutex::new(Output {
                data: VecDeque::new(),
                start: 0,
                cursors: HashMap::new(),
            }),
            end: watch::channel(0).0,
            exit: watch::channel(None).0,
            progress: Notify::new(),
            next_client: AtomicU64::new(1),
        });
        tokio::spawn(terminal.clone().pump(process.exit));
        terminal
    }

    /// The shell's pid inside the instance.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Read the PTY into the output buffer until the shell is gone.
    async fn pump(self: Arc<Self>, exit: tokio::sync::oneshot::Receiver<i32>) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            loop {
                let notified = self.progress.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.output.lock().unwrap().has_room() {
                    break;
                }
                notified.await;
            }
            match self.pty.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let end = {
                        let mut output = self.output.lock().unwrap();
                        output.push(&buf[..n]);
                        output.end()
                    };
                    self.end.send_replace(end);
                }
            }
        }
        // If the instance died under the shell there is no exit code: report
        // what a killed shell would.
        let code = exit.await.unwrap_or(128 + libc::SIGKILL);
        self.exit.send_replace(Some(code));
    }

    fn move_cursor(&self, client: u64, to: u64) {
        self.output.lock().unwrap().cursors.insert(client, to);
        self.progress.notify_one();
    }

    /// Serve one WebSocket client until it leaves or the shell exits. A
    /// `read_only` client sees everything; its keyboard input and resizes
    /// are ignored (pause and resume still work).
    pub async fn serve(self: Arc<Self>, socket: WebSocket, from: Option<u64>, read_only: bool) {
        let client = self.next_client.fetch_add(1, Ordering::Relaxed);
        let start = {
            let mut output = self.output.lock().unwrap();
            let start = from.unwrap_or(0).clamp(output.start, output.end());
            output.cursors.insert(client, start);
            start
        };
        let (mut sink, mut stream) = socket.split();
        let (paused_tx, mut paused) = watch::channel(false);

        let this = self.clone();
        let input = async move {
            while let Some(Ok(message)) = stream.next().await {
                match message {
                    Message::Binary(_) if read_only => {}
                    Message::Binary(bytes) => {
                        if this.pty.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Message::Text(text) => match serde_json::from_str(&text) {
                        Ok(TerminalClientMsg::Resize { .. }) if read_only => {}
                        Ok(TerminalClientMsg::Resize { cols, rows }) => {
                            let _ = this.pty.resize(cols, rows);
                        }
                        Ok(TerminalClientMsg::Pause) => {
                            paused_tx.send_replace(true);
                        }
                        Ok(TerminalClientMsg::Resume) => {
                            paused_tx.send_replace(false);
                        }
                        Err(e) => tracing::debug!("ignoring terminal message: {e}"),
                    },
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
        };

        let this = self.clone();
        let output = async move {
            let attached = TerminalServerMsg::Attached { offset: start };
            let text = serde_json::to_string(&attached).expect("serialises");
            sink.send(Message::Text(text.into())).await?;
            let mut cursor = start;
            let mut end = this.end.subscribe();
            let mut exit = this.exit.subscribe();
            loop {
                while paused_now(&mut paused) {
                    if paused.changed().await.is_err() {
                        return Ok(());
                    }
                }
                let (from, chunk) = this.output.lock().unwrap().read_from(cursor);
                if !chunk.is_empty() {
                    cursor = from + chunk.len() as u64;
                    sink.send(Message::Binary(chunk.into())).await?;
                    this.move_cursor(client, cursor);
                    continue;
                }
                let exited = *exit.borrow_and_update();
                if let Some(code) = exited {
                    let text = serde_json::to_string(&TerminalServerMsg::Exited { code })
                        .expect("serialises");
                    sink.send(Message::Text(text.into())).await?;
                    let close = CloseFrame {
                        code: 1000,
                        reason: Utf8Bytes::from_static("shell exited"),
                    };
                    return sink.send(Message::Close(Some(close))).await;
                }
                tokio::select! {
                    r = end.changed() => if r.is_err() { return Ok(()) },
                    r = exit.changed() => if r.is_err() { return Ok(()) },
                    r = paused.changed() => if r.is_err() { return Ok(()) },
                }
            }
        };

        tokio::select! {
            () = input => {},
            _ = output => {},
        }
        self.output.lock().unwrap().cursors.remove(&client);
        self.progress.notify_one();
    }
}

fn paused_now(paused: &mut watch::Receiver<bool>) -> bool {
    *paused.borrow_and_update()
}

#[cfg(test)]
#[path = "terminal_fuzz.rs"]
mod fuzz;
