//! Large response bodies of known length go from the instance's socket to
//! the browser's through a pipe with splice(2): the bytes never enter user
//! space. Through hyper, every byte is copied twice (socket to buffer to
//! socket); on a small machine shared by the browser, the proxy and the
//! program, those copies cost a third of the throughput.
//!
//! The body starts out as hyper's: what hyper has already read of it goes
//! on as ordinary frames. Then the socket to the instance is taken from
//! hyper's client, and, once hyper's server has flushed the response's head,
//! the browser's socket from hyper's server (see [`super::handover`]). The
//! rest of the body is spliced. Then hyper gets placeholder frames for the
//! spliced bytes, which the browser's socket drops, so that hyper's framing
//! and keep-alive are as if it had sent the body itself.

use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::body::Body;
use hyper::body::{Body as _, Bytes, Frame, Incoming, SizeHint};
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use tokio::io::Interest;

use super::handover::{ClientSocket, UpstreamSocket};

/// Bodies shorter than this go through hyper: a pipe and the handover cost
/// more than copying a few hundred kilobytes.
pub const MIN_BYTES: u64 = 256 * 1024;
/// How much a pipe holds (the default, 64 KiB, means many more splices).
const PIPE_BYTES: i32 = 1 << 20;
/// The placeholders hyper "sends" for spliced bytes; never read.
static PLACEHOLDER: [u8; 1 << 20] = [0; 1 << 20];

/// A pipe for one body.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        // A smaller pipe still works, only with more splices.
        let capacity = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_BYTES))
            .or_else(|_| fcntl(&write, FcntlArg::F_GETPIPE_SZ))?;
        Ok(Pipe {
            read,
            write,
            capacity: usize::try_from(capacity).unwrap_or(1).max(1),
        })
    }
}

enum Stage {
    /// hyper's body: the part hyper has already read.
    Buffered,
    /// Waiting for the browser's socket.
    Handover,
    /// `in_pipe` bytes are in the pipe, `spliced` have reached the browser.
    Splicing {
        in_pipe: usize,
        spliced: u64,
    },
    /// `left` placeholder bytes still to give hyper.
    Placeholders {
        left: u64,
    },
    Done,
}

/// A response body (see the module's comment).
struct SplicedBody {
    inner: Incoming,
    upstream: UpstreamSocket,
    client: ClientSocket,
    pipe: Pipe,
    /// Body bytes not yet read from the instance by hyper or the splice.
    unread: u64,
    /// Bytes (frames) hyper has still to get from this body.
    owed: u64,
    stage: Stage,
}

/// `inner` as a body for the browser, spliced, when it is large and of
/// known length (and a pipe can be had); else `inner` and the connection
/// back, untouched (hyper's body as it is, on a connection that may be kept).
pub fn body(
    inner: Incoming,
    upstream: UpstreamSocket,
    client: Option<ClientSocket>,
) -> Result<Body, (Incoming, UpstreamSocket)> {
    let (Some(client), Some(length)) = (client, hyper::body::Body::size_hint(&inner).exact())
    else {
        return Err((inner, upstream));
    };
    if length < MIN_BYTES {
        return Err((inner, upstream));
    }
    let pipe = match Pipe::new() {
        Ok(pipe) => pipe,
        Err(e) => {
            tracing::debug!("proxy: no pipe for splicing ({e}); copying instead");
            return Err((inner, upstream));
        }
    };
    upstream.take();
    Ok(Body::new(SplicedBody {
        inner,
        upstream,
        client,
        pipe,
        unread: length,
        owed: length,
        stage: Stage::Buffered,
    }))
}

impl SplicedBody {
    /// The next frame of what hyper has buffered; `None` once it has passed
    /// on everything it read.
    fn poll_buffered(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        // Asked before polling the body: when hyper is drained, the frames
        // it sent before are all in the body's channel by now.
        let drained = self.upstream.drained(cx);
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.unread = self.unread.saturating_sub(data.len() as u64);
                    self.owed = self.owed.saturating_sub(data.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(io::Error::other(e)))),
            Poll::Ready(None) => {
                self.unread = 0;
                Poll::Ready(None)
            }
            Poll::Pending if drained || self.unread == 0 => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Splice until the body is through.
    fn poll_splice(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let Stage::Splicing { in_pipe, spliced } = &mut self.stage else {
            unreachable!("poll_splice outside the splicing stage");
        };
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        loop {
            if *in_pipe > 0 {
                let client = self.client.stream();
                ready!(client.poll_write_ready(cx))?;
                let moved = client.try_io(Interest::WRITABLE, || {
                    splice(&self.pipe.read, None, client, None, *in_pipe, flags)
                        .map_err(io::Error::from)
                });
                match moved {
                    Ok(n) => {
                        *in_pipe -= n;
                        *spliced += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
                continue;
            }
            if self.unread == 0 {
                return Poll::Ready(Ok(*spliced));
            }
            // Only into an empty pipe: then "would block" means the socket
            // has nothing, never that the pipe is full.
            let upstream = self.upstream.stream();
            ready!(upstream.poll_read_ready(cx))?;
            let want = usize::try_from(self.unread)
                .unwrap_or(usize::MAX)
                .min(self.pipe.capacity);
            let moved = upstream.try_io(Interest::READABLE, || {
                splice(upstream, None, &self.pipe.write, None, want, flags).map_err(io::Error::from)
            });
            match moved {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the program closed the connection {} bytes short",
                            self.unread
                        ),
                    )))
                }
                Ok(n) => {
                    *in_pipe = n;
                    self.unread -= n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn fail(&mut self, e: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        tracing::debug!("proxy: splicing a body failed: {e}");
        self.client.break_off();
        self.upstream.close();
        self.stage = Stage::Done;
        Poll::Ready(Some(Err(e)))
    }
}

impl hyper::body::Body for SplicedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            match this.stage {
                Stage::Buffered => match ready!(this.poll_buffered(cx)) {
                    Some(Ok(frame)) => return Poll::Ready(Some(Ok(frame))),
                    Some(Err(e)) => return this.fail(e),
                    None if this.unread == 0 => {
                        this.upstream.close();
                        this.stage = Stage::Done;
                    }
                    None => this.stage = Stage::Handover,
                },
                Stage::Handover => match ready!(this.client.poll_take(cx)) {
                    Ok(()) => {
                        this.stage = Stage::Splicing {
                            in_pipe: 0,
                            spliced: 0,
                        }
                    }
                    Err(e) => return this.fail(e),
                },
                Stage::Splicing { .. } => match ready!(this.poll_splice(cx)) {
                    Ok(spliced) => {
                        this.client.give_back(spliced);
                        this.upstream.close();
                        this.stage = Stage::Placeholders { left: spliced };
                    }
                    Err(e) => return this.fail(e),
                },
                Stage::Placeholders { left } => {
                    if left == 0 {
                        this.stage = Stage::Done;
                        continue;
                    }
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(PLACEHOLDER.len());
                    this.stage = Stage::Placeholders {
                        left: left - n as u64,
                    };
                    this.owed = this.owed.saturating_sub(n as u64);
                    let data = Bytes::from_static(&PLACEHOLDER[..n]);
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Stage::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.stage, Stage::Done)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.owed)
    }
}

impl Drop for SplicedBody {
    fn drop(&mut self) {
        // Dropped half-way (the browser went away, the server stops): what
        // was written of the response is not all of it.
        if matches!(self.stage, Stage::Handover | Stage::Splicing { .. }) {
            self.client.break_off();
        }
    }
}
