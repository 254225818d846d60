//! The request body the proxy sends to an instance, telling when it has
//! been sent in full: the answer's time limit starts then (see
//! `forward::send`), and only a connection whose request went out in full
//! may carry another (see `pool`). Its own file because both use it.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use hyper::body::{Bytes, Frame, SizeHint};
use tokio::sync::oneshot;

/// The browser's request body, passed on frame by frame, telling when it
/// has been sent in full (or failed, or was dropped).
pub struct TrackedBody {
    body: Body,
    sent: Option<oneshot::Sender<()>>,
    /// The same news, for whoever asks later.
    sent_flag: SentFlag,
}

/// Whether a request's body has been sent in full.
#[derive(Clone)]
pub enum SentFlag {
    /// There is no body: nothing to wait for (and nothing to allocate).
    Empty,
    Body(Arc<AtomicBool>),
}

impl SentFlag {
    pub fn is_sent(&self) -> bool {
        match self {
            SentFlag::Empty => true,
            SentFlag::Body(flag) => flag.load(Ordering::Acquire),
        }
    }
}

impl TrackedBody {
    /// The body, and news of its end (none when it has no body at all).
    pub fn new(body: Body) -> (TrackedBody, Option<oneshot::Receiver<()>>) {
        if hyper::body::Body::is_end_stream(&body) {
            let tracked = TrackedBody {
                body,
                sent: None,
                sent_flag: SentFlag::Empty,
            };
            return (tracked, None);
        }
        let (tx, rx) = oneshot::channel();
        let tracked = TrackedBody {
            body,
            sent: Some(tx),
            sent_flag: SentFlag::Body(Arc::default()),
        };
        (tracked, Some(rx))
    }

    pub fn sent_flag(&self) -> SentFlag {
        self.sent_flag.clone()
    }

    fn done(&mut self) {
        if let SentFlag::Body(flag) = &self.sent_flag {
            flag.store(true, Ordering::Release);
        }
        if let Some(tx) = self.sent.take() {
            let _ = tx.send(());
        }
    }
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        let finished = match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => self.body.is_end_stream(),
            Poll::Pending => false,
        };
        if finished {
            self.done();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
