//! Sockets that hyper uses but that the proxy can take out of its hands for
//! a while, so that a large response body goes from the instance's socket
//! to the browser's with splice(2) instead of through hyper's buffers (see
//! [`super::splice`]).
//!
//! - [`ClientIo`] is a browser's connection as the HTTP server sees it.
//!   While a body is spliced hyper writes nothing to it; afterwards hyper
//!   "writes" placeholder bytes for the spliced part (so its framing and
//!   keep-alive stay right), and they are dropped here.
//! - [`UpstreamIo`] is the connection to the instance as hyper's client sees
//!   it. Once taken, hyper reads nothing more from it; it gets end-of-file
//!   when the splice is over, which ends its connection task.
//!
//! Both pass everything through untouched until a handover is asked for.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use axum::http::HeaderValue;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the proxy knows about a browser's connection: its address (for
/// `X-Forwarded-For`) and the way to its socket.
#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    /// The address as `X-Forwarded-For` gives it, made once per connection
    /// rather than once per request.
    pub forwarded_for: Option<HeaderValue>,
    /// Weak: a request's extensions must not keep the socket open after
    /// hyper has closed the connection.
    socket: Weak<ClientShared>,
}

impl Client {
    /// The socket, while the connection is open.
    pub fn socket(&self) -> Option<ClientSocket> {
        self.socket.upgrade().map(ClientSocket)
    }
}

/// Who writes to a browser's connection.
enum ClientMode {
    /// hyper.
    Hyper,
    /// A splice waits for hyper to have flushed what it wrote.
    Wanted(Waker),
    /// The splice; hyper must not write.
    Splice,
    /// A splice failed half-way: the response is cut short, so the
    /// connection must not carry anything more.
    Broken,
}

struct ClientState {
    mode: ClientMode,
    /// Placeholder bytes hyper will write for spliced data: dropped.
    discard: u64,
}

struct ClientShared {
    stream: TcpStream,
    state: Mutex<ClientState>,
}

impl ClientShared {
    fn state(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A browser's connection (see the module's comment).
pub struct ClientIo {
    shared: Arc<ClientShared>,
}

impl ClientIo {
    pub fn new(stream: TcpStream) -> ClientIo {
        ClientIo {
            shared: Arc::new(ClientShared {
                stream,
                state: Mutex::new(ClientState {
                    mode: ClientMode::Hyper,
                    discard: 0,
                }),
            }),
        }
    }

    /// What requests on this connection carry about it.
    pub fn client(&self, addr: SocketAddr) -> Client {
        let ip = addr.ip().to_canonical().to_string();
        Client {
            addr,
            forwarded_for: HeaderValue::from_str(&ip).ok(),
            socket: Arc::downgrade(&self.shared),
        }
    }

    /// Before hyper's bytes go out: drop placeholders, refuse writes during
    /// a splice. `Some(n)`: answer hyper with that.
    fn intercept(&self, len: usize) -> Option<io::Result<usize>> {
        let mut state = self.shared.state();
        if state.discard > 0 {
            let n = len.min(usize::try_from(state.discard).unwrap_or(usize::MAX));
            state.discard -= n as u64;
            return Some(Ok(n));
        }
        match state.mode {
            ClientMode::Hyper | ClientMode::Wanted(_) => None,
            ClientMode::Splice => Some(Err(io::Error::other(
                "hyper wrote while a body was being spliced",
            ))),
            ClientMode::Broken => Some(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }
}

/// The splice's side of a browser's connection.
pub struct ClientSocket(Arc<ClientShared>);

impl ClientSocket {
    pub fn stream(&self) -> &TcpStream {
        &self.0.stream
    }

    /// Ready once hyper has flushed everything it wrote (the response's
    /// head, the body's first frames): from then on only the splice writes.
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.0.state();
        match state.mode {
            ClientMode::Splice => Poll::Ready(Ok(())),
            ClientMode::Broken => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            ClientMode::Hyper | ClientMode::Wanted(_) => {
                state.mode = ClientMode::Wanted(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Give the connection back to hyper after `spliced` bytes, which it is
    /// about to write as placeholders.
    pub fn give_back(&self, spliced: u64) {
        let mut state = self.0.state();
        if let ClientMode::Splice = state.mode {
            state.mode = ClientMode::Hyper;
            state.discard += spliced;
        }
    }

    /// The response could not be sent in full: the connection must close.
    pub fn break_off(&self) {
        self.0.state().mode = ClientMode::Broken;
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read(&self.shared.stream, cx, buf)
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(answer) = self.intercept(buf.len()) {
            return Poll::Ready(answer);
        }
        poll_write(&self.shared.stream, cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        if let Some(answer) = self.intercept(len) {
            return Poll::Ready(answer);
        }
        poll_write_vectored(&self.shared.stream, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // hyper flushes its socket only once its own buffer is empty: what
        // it wrote is out, so a waiting splice may go ahead.
        let mut state = self.shared.state();
        if state.discard == 0 {
            if let ClientMode::Wanted(_) = state.mode {
                if let ClientMode::Wanted(waker) =
                    std::mem::replace(&mut state.mode, ClientMode::Splice)
                {
                    waker.wake();
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(shutdown_write(&self.shared.stream))
    }
}

/// Who reads from the connection to the instance.
enum UpstreamMode {
    Hyper,
    /// The splice. `drained`: hyper has asked for more than it had
    /// buffered, so every body byte it read has gone into its body.
    Taken {
        drained: bool,
        hyper: Option<Waker>,
        splice: Option<Waker>,
    },
    /// The splice is over: hyper reads end-of-file.
    Closed,
}

struct UpstreamShared {
    stream: TcpStream,
    mode: Mutex<UpstreamMode>,
}

impl UpstreamShared {
    fn mode(&self) -> MutexGuard<'_, UpstreamMode> {
        self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The connection to the instance (see the module's comment).
pub struct UpstreamIo {
    shared: Arc<UpstreamShared>,
}

/// The splice's side of the connection to the instance.
pub struct UpstreamSocket(Arc<UpstreamShared>);

impl UpstreamIo {
    /// The connection for hyper, and the way for a splice to take it.
    pub fn new(stream: TcpStream) -> (UpstreamIo, UpstreamSocket) {
        let shared = Arc::new(UpstreamShared {
            stream,
            mode: Mutex::new(UpstreamMode::Hyper),
        });
        (
            UpstreamIo {
                shared: shared.clone(),
            },
            UpstreamSocket(shared),
        )
    }
}

impl UpstreamSocket {
    pub fn stream(&self) -> &TcpStream {
        &self.0.stream
    }

    /// From now on hyper reads nothing more.
    pub fn take(&self) {
        let mut mode = self.0.mode();
        if let UpstreamMode::Hyper = *mode {
            *mode = UpstreamMode::Taken {
                drained: false,
                hyper: None,
                splice: None,
            };
        }
    }

    /// Whether hyper has passed on all it had read; if not, the splice is
    /// woken when it has.
    pub fn drained(&self, cx: &mut Context<'_>) -> bool {
        match &mut *self.0.mode() {
            UpstreamMode::Taken {
                drained, splice, ..
            } => {
                *splice = Some(cx.waker().clone());
                *drained
            }
            UpstreamMode::Hyper | UpstreamMode::Closed => false,
        }
    }

    /// The splice is over (or abandoned): hyper's connection task reads
    /// end-of-file and ends.
    pub fn close(&self) {
        let before = std::mem::replace(&mut *self.0.mode(), UpstreamMode::Closed);
        if let UpstreamMode::Taken {
            hyper: Some(waker), ..
        } = before
        {
            waker.wake();
        }
    }
}

impl Drop for UpstreamSocket {
    fn drop(&mut self) {
        if !matches!(*self.0.mode(), UpstreamMode::Hyper) {
            self.close();
        }
    }
}

impl AsyncRead for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut *self.shared.mode() {
            UpstreamMode::Hyper => {}
            UpstreamMode::Taken {
                drained,
                hyper,
                splice,
            } => {
                *drained = true;
                *hyper = Some(cx.waker().clone());
                if let Some(waker) = splice.take() {
                    waker.wake();
                }
                return Poll::Pending;
            }
            UpstreamMode::Closed => return Poll::Ready(Ok(())),
        }
        poll_read(&self.shared.stream, cx, buf)
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write(&self.shared.stream, cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_write_vectored(&self.shared.stream, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(shutdown_write(&self.shared.stream))
    }
}

/// A read into `buf`'s unfilled part (no zeroing first), as tokio's own
/// `TcpStream` does it, but through a shared reference.
fn poll_read(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    loop {
        std::task::ready!(stream.poll_read_ready(cx))?;
        let wanted = buf.remaining();
        let mut read = false;
        // A read that got less than it asked for emptied the socket: its
        // readiness is forgotten at once (the outer `try_io` clears it when
        // told "would block", and only if no news came since it began), so
        // hyper's next read waits for epoll instead of costing a recv(2)
        // that fails with EAGAIN; tokio's own `TcpStream` does the same.
        let result = stream.try_io(tokio::io::Interest::READABLE, || {
            let n = stream.try_read_buf(buf)?;
            read = true;
            if n > 0 && n < wanted {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        match result {
            _ if read => return Poll::Ready(Ok(())),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
            Ok(()) => return Poll::Ready(Ok(())),
        }
    }
}

/// A write of `buf`, as tokio's own `TcpStream` does it, through a shared
/// reference.
fn poll_write(stream: &TcpStream, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    loop {
        std::task::ready!(stream.poll_write_ready(cx))?;
        match stream.try_write(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

/// The same for a vectored write.
fn poll_write_vectored(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    loop {
        std::task::ready!(stream.poll_write_ready(cx))?;
        match stream.try_write_vectored(bufs) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

/// What `TcpStream`'s `poll_shutdown` does, through a shared reference.
fn shutdown_write(stream: &TcpStream) -> io::Result<()> {
    nix::sys::socket::shutdown(stream.as_raw_fd(), nix::sys::socket::Shutdown::Write)
        .map_err(io::Error::from)
}
