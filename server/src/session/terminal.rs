//! An instance's shell and the WebSocket clients attached to it.
//!
//! Output is one numbered byte stream: the server keeps the most recent
//! [`KEEP`] bytes, and each client has a cursor (an offset in the stream). A
//! client that reconnects with `?from=<offset>` continues exactly where it
//! stopped: nothing duplicated, nothing lost. A client that was away for more
//! than `KEEP` bytes is told how many it missed ([`TerminalServerMsg::Missed`]),
//! never silently.
//!
//! The invariant: no byte at or after an attached client's cursor is ever
//! dropped. The reader reads at most the room left before the slowest client
//! would be `KEEP` behind, and trimming never passes the slowest cursor (a
//! client that attaches while a read is in flight counts from then on).
//!
//! A cursor is what the client has *received*. For most clients that is
//! what was sent; but a connection that drops takes the bytes in flight
//! (socket buffers, often more than `KEEP`) with it. So a client may connect
//! with `?ack=true` and acknowledge what it received: its cursor is then its
//! last acknowledgement, and when its connection ends before the stream does
//! (dropped, or closed by the client, which may be reconnecting) the cursor
//! lingers for [`LINGER`], holding its output until it comes back with
//! `?from=` (the browser page does this).
//! Backpressure follows: with a paused or slow browser attached the reader
//! stops reading the PTY and the shell blocks instead of memory growing;
//! keyboard input has its own path and is never stuck behind output, so
//! Ctrl-C answers at once.

use std::collections::HashSet;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use playground_protocol::{TerminalClientMsg, TerminalServerMsg};
use sandbox::{Instance, Pty};
use tokio::sync::{watch, Notify};

/// Output kept for reconnecting clients, and the most a client may lag.
const KEEP: usize = 256 * 1024;
/// Largest binary frame sent to a client.
const FRAME: usize = 32 * 1024;
/// Largest single read from the PTY.
const READ: usize = 16 * 1024;
/// How long the cursor of an acknowledging client whose connection dropped
/// holds its output (and, when it is the slowest, the shell) for its return.
const LINGER: Duration = Duration::from_secs(15);

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
    /// Cursor of every attached client (and of lingering ones).
    cursors: HashMap<u64, u64>,
    /// Clients whose connection dropped, waited for until they reconnect
    /// or [`LINGER`] passes.
    lingering: HashSet<u64>,
}

/// How a client connects to a terminal.
pub struct ClientOptions {
    /// Resume from this offset (`None`: all that is kept).
    pub from: Option<u64>,
    /// The client acknowledges what it received (`?ack=true`).
    pub acks: bool,
    /// Output only: keyboard input and resizes are ignored.
    pub read_only: bool,
    /// Input taken only while this is true, and the connection ends when it
    /// turns false (a helper's, see `help.rs`).
    pub input_while: Option<watch::Receiver<bool>>,
    /// Set to the time (Unix seconds) of each keystroke: the owner's
    /// activity.
    pub activity: Option<Arc<AtomicU64>>,
}

impl Output {
    fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }

    /// Cursor of the client furthest behind (the end when none is attached).
    fn slowest(&self) -> u64 {
        self.cursors.values().min().copied().unwrap_or(self.end())
    }

    /// How many bytes the reader may read now without pushing output an
    /// attached client has not received out of the kept window.
    fn room(&self) -> usize {
        let behind = (self.end() - self.slowest()) as usize;
        KEEP.saturating_sub(behind)
    }

    /// Append output and trim the window back to `KEEP` bytes, but never
    /// past the slowest client's cursor: a client that attached after the
    /// reader sized its read may hold the window a little longer.
    fn push(&mut self, bytes: &[u8]) {
        self.data.extend(bytes);
        self.trim();
    }

    fn trim(&mut self) {
        let excess = self.data.len().saturating_sub(KEEP);
        let unneeded = (self.slowest() - self.start) as usize;
        let trim = excess.min(unneeded);
        self.data.drain(..trim);
        self.start += trim as u64;
    }

    /// A client received output up to `to` (never backwards, never past the
    /// end); what only it held back may go.
    fn advance(&mut self, client: u64, to: u64) {
        let end = self.end();
        if let Some(cursor) = self.cursors.get_mut(&client) {
            *cursor = (*cursor).max(to.min(end));
        }
        self.trim();
    }

    /// Forget a client; what only it held back may go.
    fn detach(&mut self, client: u64) {
        self.cursors.remove(&client);
        self.lingering.remove(&client);
        self.trim();
    }

    /// Register a client wanting output from `from` (`None`: all that is
    /// kept). Its cursor, and how many bytes it asked for that are no longer
    /// kept. An offset past the end belongs to an earlier stream (the shell
    /// was replaced, or the server restarted): such a client gets all that
    /// is kept of this one.
    ///
    /// A client resuming from `from` is taken to be the one whose dropped
    /// connection left a lingering cursor at or before `from`: those go.
    fn attach(&mut self, client: u64, from: Option<u64>) -> (u64, u64) {
        if let Some(from) = from {
            let returned: Vec<u64> = (self.lingering.iter())
                .filter(|id| self.cursors.get(id).is_some_and(|&c| c <= from))
                .copied()
                .collect();
            for id in returned {
                self.lingering.remove(&id);
                self.cursors.remove(&id);
            }
        }
        let (cursor, missed) = match from {
            Some(from) if from < self.start => (self.start, self.start - from),
            Some(from) if from <= self.end() => (from, 0),
            _ => (self.start, 0),
        };
        self.cursors.insert(client, cursor);
        (cursor, missed)
    }

    /// Up to `FRAME` bytes from `from` (clamped to what is kept; an attached
    /// client's cursor is always within it).
    fn read_from(&self, from: u64) -> (u64, Vec<u8>) {
        let from = from.clamp(self.start, self.end());
        let skip = (from - self.start) as usize;
        let end = (skip + FRAME).min(self.data.len());
        let chunk: Vec<u8> = self.data.range(skip..end).copied().collect();
        (from, chunk)
    }
}

impl Terminal {
    /// Start a login shell in `instance` (`env` added to its environment)
    /// and begin collecting its output.
    pub async fn start(
        instance: &Instance,
        env: Vec<String>,
        cols: u16,
        rows: u16,
    ) -> Result<Arc<Terminal>, sandbox::Error> {
        let process = instance
            .spawn_pty(vec!["/bin/bash".into(), "-l".into()], env, cols, rows)
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
                lingering: HashSet::new(),
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

    /// Type `bytes` into the shell, as a client's keyboard would (the
    /// tutorial's foreground scripts).
    pub async fn type_input(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.pty.write_all(bytes).await
    }

    /// Wait (at most `timeout`) until the shell has written something: its
    /// prompt.
    pub async fn first_output(&self, timeout: Duration) {
        let mut end = self.end.subscribe();
        let _ = tokio::time::timeout(timeout, end.wait_for(|&end| end > 0)).await;
    }

    pub fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Read the PTY into the output buffer until the shell is gone.
    async fn pump(self: Arc<Self>, exit: tokio::sync::oneshot::Receiver<i32>) {
        let mut buf = vec![0u8; READ];
        loop {
            let room = loop {
                let notified = self.progress.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let room = self.output.lock().unwrap().room();
                if room > 0 {
                    break room;
                }
                notified.await;
            };
            match self.pty.read(&mut buf[..room.min(READ)]).await {
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
        self.output.lock().unwrap().advance(client, to);
        self.progress.notify_one();
    }

    /// Serve one WebSocket client until it leaves or the shell exits. A
    /// `read_only` client sees everything; its keyboard input and resizes
    /// are ignored (pause, resume and acknowledgements still work).
    pub async fn serve(self: Arc<Self>, socket: WebSocket, options: ClientOptions) {
        let ClientOptions {
            from,
            acks,
            read_only,
            input_while,
            activity,
        } = options;
        let allowed = input_while.clone();
        let may_type = move || allowed.as_ref().is_none_or(|a| *a.borrow());
        let client = self.next_client.fetch_add(1, Ordering::Relaxed);
        let (start, missed) = self.output.lock().unwrap().attach(client, from);
        let (mut sink, mut stream) = socket.split();
        let (paused_tx, mut paused) = watch::channel(false);
        // The end of what was sent: an acknowledgement cannot pass it.
        let sent = Arc::new(AtomicU64::new(start));

        let this = self.clone();
        let sent_in = sent.clone();
        let input = async move {
            while let Some(Ok(message)) = stream.next().await {
                match message {
                    Message::Binary(_) if read_only || !may_type() => {}
                    Message::Binary(bytes) => {
                        if let Some(activity) = &activity {
                            activity.store(unix_now(), Ordering::Relaxed);
                        }
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
                        Ok(TerminalClientMsg::Ack { offset }) if acks => {
                            let offset = offset.min(sent_in.load(Ordering::Acquire));
                            this.move_cursor(client, offset);
                        }
                        Ok(TerminalClientMsg::Ack { .. }) => {}
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
            // Ok(true): the client was told the stream ended; Err: the
            // connection broke.
            if missed > 0 {
                let text = serde_json::to_string(&TerminalServerMsg::Missed { bytes: missed })
                    .expect("serialises");
                sink.send(Message::Text(text.into())).await?;
            }
            let mut cursor = start;
            let mut end = this.end.subscribe();
            let mut exit = this.exit.subscribe();
            loop {
                while paused_now(&mut paused) {
                    if paused.changed().await.is_err() {
                        return Ok(true);
                    }
                }
                let (from, chunk) = this.output.lock().unwrap().read_from(cursor);
                debug_assert_eq!(from, cursor, "an attached client's output was trimmed");
                if !chunk.is_empty() {
                    cursor = from + chunk.len() as u64;
                    sink.send(Message::Binary(chunk.into())).await?;
                    sent.store(cursor, Ordering::Release);
                    if !acks {
                        this.move_cursor(client, cursor);
                    }
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
                    sink.send(Message::Close(Some(close))).await?;
                    return Ok::<bool, axum::Error>(true);
                }
                tokio::select! {
                    r = end.changed() => if r.is_err() { return Ok(true) },
                    r = exit.changed() => if r.is_err() { return Ok(true) },
                    r = paused.changed() => if r.is_err() { return Ok(true) },
                }
            }
        };

        // A helper's connection ends with the help.
        let revoked = async move {
            let Some(mut allowed) = input_while else {
                return std::future::pending().await;
            };
            while *allowed.borrow_and_update() {
                if allowed.changed().await.is_err() {
                    break;
                }
            }
        };

        // Whether the client was told the stream ended (the shell exited).
        let stream_over = tokio::select! {
            () = input => false,
            r = output => r.unwrap_or(false),
            () = revoked => false,
        };
        if acks && !stream_over {
            // The connection ended (dropped, or closed by a client that may
            // be reconnecting): bytes in flight may be lost. Hold the
            // client's output until it returns or the wait is over.
            self.output.lock().unwrap().lingering.insert(client);
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(LINGER).await;
                this.output.lock().unwrap().detach(client);
                this.progress.notify_one();
            });
        } else {
            self.output.lock().unwrap().detach(client);
            self.progress.notify_one();
        }
    }
}

/// A client that is not a WebSocket (an SSH login's channel): it reads
/// the stream from where it attached, at its own pace (the reader waits
/// for it as for any client), types, and resizes. Detached when dropped.
pub struct Follower {
    terminal: Arc<Terminal>,
    client: u64,
    cursor: u64,
}

impl Terminal {
    /// Follow the stream from its start (all that is kept).
    pub fn follow(self: &Arc<Self>) -> Follower {
        let client = self.next_client.fetch_add(1, Ordering::Relaxed);
        let (cursor, _) = self.output.lock().unwrap().attach(client, None);
        Follower {
            terminal: self.clone(),
            client,
            cursor,
        }
    }

    pub fn resize(&self, cols: u16, rows: u16) -> std::io::Result<()> {
        self.pty.resize(cols, rows)
    }

    /// End the shell as a closed terminal would: `SIGHUP` to it (a shell
    /// passes it on to its jobs), once more if it lives on after a while.
    pub fn hang_up(self: &Arc<Self>, instance: Instance) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut exit = this.exit.subscribe();
            for _ in 0..2 {
                if instance.signal(this.pid, libc::SIGHUP).await.is_err() {
                    return;
                }
                let exited = exit.wait_for(|code| code.is_some());
                if tokio::time::timeout(Duration::from_secs(1), exited)
                    .await
                    .is_ok()
                {
                    return;
                }
            }
        });
    }
}

impl Follower {
    /// The next output, or the shell's exit code once all is read.
    pub async fn next(&mut self) -> Result<Vec<u8>, i32> {
        let terminal = &self.terminal;
        let mut end = terminal.end.subscribe();
        let mut exit = terminal.exit.subscribe();
        loop {
            let (from, chunk) = terminal.output.lock().unwrap().read_from(self.cursor);
            if !chunk.is_empty() {
                self.cursor = from + chunk.len() as u64;
                terminal.move_cursor(self.client, self.cursor);
                return Ok(chunk);
            }
            if let Some(code) = *exit.borrow_and_update() {
                return Err(code);
            }
            tokio::select! {
                r = end.changed() => if r.is_err() { return Err(128 + libc::SIGKILL) },
                r = exit.changed() => if r.is_err() { return Err(128 + libc::SIGKILL) },
            }
        }
    }

    pub fn terminal(&self) -> &Arc<Terminal> {
        &self.terminal
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.terminal.output.lock().unwrap().detach(self.client);
        self.terminal.progress.notify_one();
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn paused_now(paused: &mut watch::Receiver<bool>) -> bool {
    *paused.borrow_and_update()
}

#[cfg(test)]
#[path = "terminal_fuzz.rs"]
mod fuzz;
