//! A container's streams in the server and Docker's stream formats: the
//! multiplexed frame and the hijacked (upgraded) connection.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use tokio::sync::{mpsc, watch};

/// One piece of output: 1 stdout, 2 stderr.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub stream: u8,
    pub data: Vec<u8>,
}

/// Pieces of output a follower may have queued before the container waits
/// for it (16 KiB each at most).
const FOLLOWER_QUEUE: usize = 64;

/// Who follows a container's output (attached clients, `docker logs -f`).
///
/// Every follower gets every piece, in order, until the end of the run
/// (its receiver ends): the container waits while a follower's queue is
/// full, so a slow client slows it down and never misses output (a
/// `broadcast` channel here once skipped what a lagging client had not
/// read yet).
#[derive(Default)]
pub(super) struct Followers {
    inner: Mutex<FollowersInner>,
}

#[derive(Default)]
struct FollowersInner {
    followers: Vec<mpsc::Sender<Chunk>>,
    /// Whether a run's output is being copied (more may come).
    running: bool,
}

impl Followers {
    /// Follow the output from now on, until the end of the current run, or
    /// of the next one when none runs (`docker attach`, `docker run`).
    pub(super) fn follow(&self) -> mpsc::Receiver<Chunk> {
        let (tx, rx) = mpsc::channel(FOLLOWER_QUEUE);
        self.inner.lock().unwrap().followers.push(tx);
        rx
    }

    /// Follow the current run's output from now on; `None` (and no
    /// follower) when none runs. `before` is called under the same lock as
    /// the recording of each piece (see `emit`): what it sees and what the
    /// receiver gets neither overlap nor leave a gap (`docker logs -f`: the
    /// log so far, then the rest).
    pub(super) fn follow_run<T>(
        &self,
        before: impl FnOnce() -> T,
    ) -> (T, Option<mpsc::Receiver<Chunk>>) {
        let mut inner = self.inner.lock().unwrap();
        let seen = before();
        if !inner.running {
            return (seen, None);
        }
        let (tx, rx) = mpsc::channel(FOLLOWER_QUEUE);
        inner.followers.push(tx);
        (seen, Some(rx))
    }

    /// A run starts: its output comes through `emit`, then `end`.
    pub(super) fn start(&self) {
        self.inner.lock().unwrap().running = true;
    }

    /// `record` the piece (under the lock, see `follow_run`), then hand it to
    /// every follower, waiting for room in each queue.
    pub(super) async fn emit(&self, chunk: Chunk, record: impl FnOnce(&Chunk)) {
        let followers = {
            let mut inner = self.inner.lock().unwrap();
            record(&chunk);
            inner.followers.retain(|f| !f.is_closed());
            inner.followers.clone()
        };
        for follower in followers {
            // A follower that went away meanwhile is no error.
            let _ = follower.send(chunk.clone()).await;
        }
    }

    /// The run ended (all of its output was emitted): every follower's
    /// receiver ends once it has taken what is queued.
    pub(super) fn end(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.running = false;
        inner.followers.clear();
    }
}

/// The current run's input side (nothing between runs).
#[derive(Clone, Default)]
pub(super) struct RunIo {
    /// Absent unless the container keeps stdin open (`-i`).
    pub(super) stdin: Option<mpsc::Sender<Vec<u8>>>,
    pub(super) pty: Option<Arc<sandbox::Pty>>,
}

/// A container's streams in the server. They outlive its runs, so a client
/// that attaches before the start (`docker run`) sees the whole run and
/// its end.
pub(super) struct Streams {
    pub(super) output: Followers,
    pub(super) run: watch::Sender<RunIo>,
    /// `runs` when a client last attached to the stopped container: the
    /// run its `wait?condition=next-exit` means, even if that wait arrives
    /// after the (quick) run ended.
    pub(super) attached_at: Mutex<Option<u64>>,
}

impl Streams {
    pub(super) fn new() -> Streams {
        Streams {
            output: Followers::default(),
            run: watch::channel(RunIo::default()).0,
            attached_at: Mutex::new(None),
        }
    }
}

/// Docker's 8-byte header before each piece of a multiplexed stream.
pub(super) fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// The response that hands the connection over to the raw stream, and the
/// upgraded connection once hyper lets go of it.
pub(super) fn hijack(req: &mut Request<Body>) -> (Response, hyper::upgrade::OnUpgrade) {
    let upgrade = hyper::upgrade::on(req);
    let response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, "application/vnd.docker.raw-stream")
        .body(Body::empty())
        .expect("a valid response");
    (response, upgrade)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: u32) -> Chunk {
        Chunk {
            stream: 1,
            data: n.to_be_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn a_slow_follower_gets_every_piece_in_order() {
        let followers = Arc::new(Followers::default());
        followers.start();
        let mut slow = followers.follow();
        let count = (FOLLOWER_QUEUE * 10) as u32;
        let producer = {
            let followers = followers.clone();
            tokio::spawn(async move {
                for n in 0..count {
                    followers.emit(chunk(n), |_| {}).await;
                }
                followers.end();
            })
        };
        let mut next = 0u32;
        while let Some(c) = slow.recv().await {
            if next.is_multiple_of(50) {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert_eq!(c.data, next.to_be_bytes());
            next += 1;
        }
        assert_eq!(next, count);
        producer.await.unwrap();
    }

    #[tokio::test]
    async fn a_gone_follower_holds_nothing_up_and_the_log_meets_the_stream() {
        let followers = Followers::default();
        let gone = followers.follow();
        drop(gone);
        let log = Mutex::new(Vec::new());
        // Nothing runs: nothing to follow.
        assert!(followers.follow_run(|| ()).1.is_none());
        followers.start();
        for n in 0..3 {
            followers
                .emit(chunk(n), |c| log.lock().unwrap().push(c.data.clone()))
                .await;
        }
        let (seen, live) = followers.follow_run(|| log.lock().unwrap().len());
        let mut live = live.expect("a run");
        for n in 3..(FOLLOWER_QUEUE as u32 * 3) {
            let emit = followers.emit(chunk(n), |c| log.lock().unwrap().push(c.data.clone()));
            // The follower reads as it goes: no wait on the gone one.
            let ((), got) = tokio::join!(emit, live.recv());
            assert_eq!(got.unwrap().data, n.to_be_bytes());
        }
        assert_eq!(seen, 3);
        followers.end();
        assert!(live.recv().await.is_none());
    }
}
