//! A container's streams in the server and Docker's stream formats: the
//! multiplexed frame and the hijacked (upgraded) connection.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use tokio::sync::{broadcast, mpsc, watch};

/// One piece of output: 1 stdout, 2 stderr.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub stream: u8,
    pub data: Vec<u8>,
}

/// What attached clients are sent: output, and the end of a run.
#[derive(Clone, Debug)]
pub enum Output {
    Chunk(Chunk),
    End,
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
    pub(super) output: broadcast::Sender<Output>,
    pub(super) run: watch::Sender<RunIo>,
    /// `runs` when a client last attached to the stopped container: the
    /// run its `wait?condition=next-exit` means, even if that wait arrives
    /// after the (quick) run ended.
    pub(super) attached_at: Mutex<Option<u64>>,
}

impl Streams {
    pub(super) fn new() -> Streams {
        Streams {
            output: broadcast::channel(1024).0,
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
