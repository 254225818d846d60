//! A container's log file (bounded, JSON lines; survives a server restart)
//! and `docker logs`.

use std::collections::HashMap;
use std::fs;
use std::io::Write;

use axum::body::Body;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::records::Containers;
use super::streams::{frame, Chunk, Output};
use super::{flag, now};
use crate::engine::reply::Reply;
use crate::engine::routes::Ctx;

/// Largest log file per container before it is rotated once.
const MAX_LOG: u64 = 8 << 20;

impl Containers {
    pub(super) fn append_log(&self, instance: &str, id: &str, chunk: &Chunk) {
        let path = self.log_path(instance, id);
        if fs::metadata(&path).is_ok_and(|m| m.len() > MAX_LOG) {
            let _ = fs::rename(&path, path.with_extension("log.old"));
        }
        let line = json!({
            "s": chunk.stream,
            "t": now(),
            "d": String::from_utf8_lossy(&chunk.data),
        });
        let _ = fs::create_dir_all(path.parent().expect("in a directory"));
        if let Ok(mut file) = fs::OpenOptions::new().create(true).append(true).open(&path) {
            let _ = writeln!(file, "{line}");
        }
    }

    pub(super) fn read_log(&self, instance: &str, id: &str) -> Vec<(u8, String, String)> {
        let path = self.log_path(instance, id);
        let mut out = Vec::new();
        for p in [path.with_extension("log.old"), path] {
            let Ok(text) = fs::read_to_string(&p) else {
                continue;
            };
            for line in text.lines() {
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    out.push((
                        v["s"].as_u64().unwrap_or(1) as u8,
                        v["t"].as_str().unwrap_or("").to_string(),
                        v["d"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        }
        out
    }
}

/// GET /containers/{id}/logs
pub fn logs(ctx: &Ctx, name: &str, query: &HashMap<String, String>) -> Reply {
    let record = ctx.engine.containers.find(&ctx.instance, name)?;
    let (want_out, want_err) = (flag(query, "stdout"), flag(query, "stderr"));
    let timestamps = flag(query, "timestamps");
    let follow = flag(query, "follow");
    let tty = record.config.tty;
    let encode = move |stream: u8, time: &str, data: &[u8]| -> Option<Vec<u8>> {
        if (stream == 1 && !want_out) || (stream == 2 && !want_err) {
            return None;
        }
        let mut payload = Vec::new();
        if timestamps {
            payload.extend_from_slice(time.as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(data);
        Some(if tty {
            payload
        } else {
            frame(stream, &payload)
        })
    };
    // Subscribe first so nothing falls between the file and the stream.
    let live = (follow && record.running)
        .then(|| ctx.engine.containers.streams(&record.id).output.subscribe());
    let mut lines = ctx.engine.containers.read_log(&ctx.instance, &record.id);
    if let Some(tail) = query.get("tail").and_then(|t| t.parse::<usize>().ok()) {
        // Docker counts lines; we count output pieces, which for line-wise
        // writers are lines.
        let skip = lines.len().saturating_sub(tail);
        lines.drain(..skip);
    }
    let mut body = Vec::new();
    for (stream, time, data) in &lines {
        if let Some(b) = encode(*stream, time, data.as_bytes()) {
            body.extend(b);
        }
    }
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let Some(mut live) = live else {
        return Ok(([(header::CONTENT_TYPE, content_type)], body).into_response());
    };
    let stream = async_stream(body, move |tx| async move {
        loop {
            match live.recv().await {
                Ok(Output::Chunk(chunk)) => {
                    if let Some(b) = encode(chunk.stream, &now(), &chunk.data) {
                        if tx.send(b).await.is_err() {
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Ok(Output::End) | Err(_) => return,
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, content_type)], stream).into_response())
}

/// A streamed body: `first`, then what `produce` sends.
pub(super) fn async_stream<F, Fut>(first: Vec<u8>, produce: F) -> Body
where
    F: FnOnce(mpsc::Sender<Vec<u8>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
    let first_tx = tx.clone();
    tokio::spawn(async move {
        if !first.is_empty() {
            let _ = first_tx.send(first).await;
        }
    });
    tokio::spawn(produce(tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(bytes_of(b)), rx))
    });
    Body::from_stream(stream)
}

pub(super) fn bytes_of(v: Vec<u8>) -> axum::body::Bytes {
    axum::body::Bytes::from(v)
}
