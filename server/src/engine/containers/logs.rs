//! A container's log file (bounded, JSON lines; survives a server restart)
//! and `docker logs`.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::IntoResponse;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::records::Containers;
use super::streams::{frame, Chunk};
use super::{flag, now};
use crate::engine::ctx::Ctx;
use crate::engine::reply::Reply;

/// Largest log file per container before it is rotated once.
const MAX_LOG: u64 = 8 << 20;

/// One log file opened for reading, and how much of it to read.
pub(super) struct LogFile {
    file: fs::File,
    len: u64,
}

impl Containers {
    pub(super) fn append_log(&self, instance: &str, id: &str, chunk: &Chunk) {
        let path = self.log_path(instance, id);
        if fs::metadata(&path).is_ok_and(|m| m.len() > MAX_LOG) {
            let _ = fs::rename(&path, path.with_extension("log.old"));
        }
        // The bytes exactly: text as it is, anything else (binary output,
        // or a UTF-8 character split between two pieces) in hex, where a
        // lossy conversion once put U+FFFD in their place.
        let mut line = match std::str::from_utf8(&chunk.data) {
            Ok(text) => json!({ "s": chunk.stream, "t": now(), "d": text }),
            Err(_) => json!({ "s": chunk.stream, "t": now(), "x": hex(&chunk.data) }),
        }
        .to_string();
        line.push('\n');
        let _ = fs::create_dir_all(path.parent().expect("in a directory"));
        if let Ok(mut file) = fs::OpenOptions::new().create(true).append(true).open(&path) {
            // One write: a reader never sees half a line.
            let _ = file.write_all(line.as_bytes());
        }
    }

    /// The container's log files as they are now, oldest first: opened,
    /// with their lengths, so a rotation or more output meanwhile changes
    /// nothing of what `read_log` gives.
    pub(super) fn log_files(&self, instance: &str, id: &str) -> Vec<LogFile> {
        let path = self.log_path(instance, id);
        [path.with_extension("log.old"), path]
            .into_iter()
            .filter_map(|p| {
                let file = fs::File::open(p).ok()?;
                let len = file.metadata().ok()?.len();
                Some(LogFile { file, len })
            })
            .collect()
    }

    pub(super) fn read_log(files: Vec<LogFile>) -> Vec<(u8, String, Vec<u8>)> {
        let mut out = Vec::new();
        for LogFile { file, len } in files {
            let mut text = Vec::new();
            if file.take(len).read_to_end(&mut text).is_err() {
                continue;
            }
            for line in text.split(|b| *b == b'\n') {
                let Ok(v) = serde_json::from_slice::<Value>(line) else {
                    continue;
                };
                let data = match (v["d"].as_str(), v["x"].as_str()) {
                    (Some(text), _) => text.as_bytes().to_vec(),
                    (None, Some(x)) => unhex(x),
                    (None, None) => continue,
                };
                out.push((
                    v["s"].as_u64().unwrap_or(1) as u8,
                    v["t"].as_str().unwrap_or("").to_string(),
                    data,
                ));
            }
        }
        out
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks_exact(2)
        .filter_map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
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
    let containers = &ctx.engine.containers;
    let log_files = || containers.log_files(&ctx.instance, &record.id);
    // With `follow`, the log so far and the rest of the run are taken
    // together: nothing falls between them or shows twice (subscribing
    // first, then reading the file, once sent what came in between twice).
    let (files, live) = if follow {
        containers.streams(&record.id).output.follow_run(log_files)
    } else {
        (log_files(), None)
    };
    let mut lines = Containers::read_log(files);
    if let Some(tail) = query.get("tail").and_then(|t| t.parse::<usize>().ok()) {
        // Docker counts lines; we count output pieces, which for line-wise
        // writers are lines.
        let skip = lines.len().saturating_sub(tail);
        lines.drain(..skip);
    }
    let mut body = Vec::new();
    for (stream, time, data) in &lines {
        if let Some(b) = encode(*stream, time, data) {
            body.extend(b);
        }
    }
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let Some(live) = live else {
        return Ok(([(header::CONTENT_TYPE, content_type)], body).into_response());
    };
    // The log so far, then every piece of the run as it comes (taken only
    // as fast as the client reads; see `Followers`), until the run ends.
    // One stream in that order: two tasks once sent the two parts, and live
    // pieces could overtake the log.
    let first = futures_util::stream::once(async move { Ok(Bytes::from(body)) });
    let rest = futures_util::stream::unfold(live, move |mut live| async move {
        loop {
            let chunk = live.recv().await?;
            if let Some(b) = encode(chunk.stream, &now(), &chunk.data) {
                return Some((Ok::<_, std::io::Error>(Bytes::from(b)), live));
            }
        }
    });
    let stream = first.chain(rest);
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_gives_back_every_byte_and_a_snapshot_stays_put() {
        let dir = tempfile::tempdir().unwrap();
        let containers = Containers::open(dir.path(), &[]).unwrap();
        let pieces: Vec<Chunk> = [
            &b"plain text\n"[..],
            // A character split between two reads, then bytes that are no
            // UTF-8 at all.
            &"ü€".as_bytes()[..3],
            &"ü€".as_bytes()[3..],
            &[0xff, 0x00, 0xfe, b'\n'][..],
        ]
        .iter()
        .zip([1u8, 1, 1, 2])
        .map(|(data, stream)| Chunk {
            stream,
            data: data.to_vec(),
        })
        .collect();
        for piece in &pieces {
            containers.append_log("node1", "c1", piece);
        }
        let files = containers.log_files("node1", "c1");
        // Written after the snapshot: not in what it reads.
        containers.append_log("node1", "c1", &pieces[0]);
        let read = Containers::read_log(files);
        let got: Vec<(u8, Vec<u8>)> = read.into_iter().map(|(s, _, d)| (s, d)).collect();
        let want: Vec<(u8, Vec<u8>)> = pieces.into_iter().map(|c| (c.stream, c.data)).collect();
        assert_eq!(got, want);
    }
}
