//! `POST /build`: the classic builder `docker build` uses without BuildKit.
//! The context comes as the request body (a tar, maybe gzipped); the answer
//! is a stream of JSON lines (`{"stream": ...}`, `{"aux": {"ID": ...}}`,
//! errors as `{"errorDetail": ..., "error": ...}`).
//!
//! Files: `dockerfile` (instructions, word processing), `context` (the
//! context's files, COPY targets and layers), `image_fs` (looking up paths
//! in the image so far), `steps` (running the instructions; RUN in
//! `steps/run`, COPY/ADD/WORKDIR in `steps/copy`), `pending`
//! (what a crash in the middle would leave, undone after a restart),
//! `unused` (built images no instance names any more, removed).

mod context;
mod dockerfile;
mod image_fs;
mod pending;
mod steps;
mod unused;

pub use pending::{recover, Pending};
pub use unused::{channel as unused_channel, start as start_unused, sweep as sweep_unused, Check};

use std::collections::{BTreeMap, HashMap, VecDeque};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sandbox::oci::{Digest, Reference};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::ctx::{percent_decode, Ctx};
use super::reply::{json_lines, DockerError, Reply};

/// Largest build context accepted.
pub const MAX_CONTEXT: usize = 256 << 20;
/// How much more of a context over the limit is read (and dropped), and
/// for how long, before the refusal.
const MAX_DRAIN: usize = 4 << 30;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(60);

/// Read the context. One over the limit is still read to its end (up to
/// a bound) before the answer, so the client, still writing, gets the
/// refusal rather than a broken pipe.
async fn read_context(body: Body) -> Result<Vec<u8>, DockerError> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut data = Vec::new();
    let mut too_big = false;
    let mut drained = 0usize;
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    loop {
        let next = if too_big {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(next) => next,
                Err(_) => break,
            }
        } else {
            stream.next().await
        };
        let chunk = match next {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                return Err(bad_request(format!("reading the build context: {e}")));
            }
            None => break,
        };
        if too_big {
            drained += chunk.len();
            if drained > MAX_DRAIN {
                break;
            }
        } else if data.len() + chunk.len() > MAX_CONTEXT {
            too_big = true;
            data = Vec::new();
        } else {
            data.extend_from_slice(&chunk);
        }
    }
    if too_big {
        return Err(DockerError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the build context is larger than {} MiB; leave files out with .dockerignore",
                MAX_CONTEXT >> 20
            ),
        ));
    }
    Ok(data)
}

/// The query's values by key; `t` may come more than once.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_decode(&s.replace('+', " "));
            (decode(k), decode(v))
        })
        .collect()
}

fn bad_request(message: impl Into<String>) -> DockerError {
    DockerError::new(StatusCode::BAD_REQUEST, message)
}

/// A JSON object of strings from the query (`buildargs`, `labels`).
fn string_map(
    pairs: &[(String, String)],
    key: &str,
) -> Result<BTreeMap<String, String>, DockerError> {
    let Some((_, text)) = pairs.iter().find(|(k, _)| k == key) else {
        return Ok(BTreeMap::new());
    };
    if text.is_empty() {
        return Ok(BTreeMap::new());
    }
    let map: BTreeMap<String, Option<String>> =
        serde_json::from_str(text).map_err(|e| bad_request(format!("bad {key}: {e}")))?;
    Ok(map.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
}

pub async fn build(ctx: &Ctx, req: Request<Body>) -> Reply {
    let pairs = query_pairs(req.uri().query());
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(bad_request(
            "building from a remote context (URL or git) is not supported by this playground",
        ));
    }
    let quiet = get("q").is_some_and(|q| q == "1" || q == "true");
    let dockerfile_name = get("dockerfile")
        .filter(|d| !d.is_empty())
        .unwrap_or("Dockerfile")
        .to_string();
    let build_args: HashMap<String, String> =
        string_map(&pairs, "buildargs")?.into_iter().collect();
    let labels = string_map(&pairs, "labels")?;
    let network = crate::engine::containers::network_mode(get("networkmode").unwrap_or(""))?;
    let mut tags = Vec::new();
    for (_, name) in pairs.iter().filter(|(k, _)| k == "t") {
        let reference: Reference = name
            .parse()
            .map_err(|_| bad_request(format!("invalid reference format: {name}")))?;
        if reference.digest.is_some() {
            return Err(bad_request(format!(
                "invalid tag {name}: a tag cannot have a digest"
            )));
        }
        tags.push(reference);
    }

    let body = read_context(req.into_body()).await?;
    let context = context::Context::read(&body).map_err(bad_request)?;
    drop(body);
    let text = context.file(&dockerfile_name).ok_or_else(|| {
        bad_request(format!(
            "Cannot locate specified Dockerfile: {dockerfile_name}"
        ))
    })?;
    let instructions = dockerfile::parse(&String::from_utf8_lossy(text)).map_err(bad_request)?;

    let (tx, rx) = mpsc::unbounded_channel();
    let mut build = steps::Build::new(ctx.clone(), tx.clone(), context, build_args, labels);
    build.network = network.to_string();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let result = build
            .run(&instructions)
            .await
            .and_then(|config| finish(&ctx, &build, &config, &tags));
        let added: Vec<String> = build.added.iter().map(|d| d.to_string()).collect();
        match result {
            Ok(()) => ctx.engine.builds.layers_done(&ctx.instance, &added),
            Err(failure) => {
                match ctx.engine.store.discard_layers(&build.added).await {
                    Ok(()) => ctx.engine.builds.layers_done(&ctx.instance, &added),
                    Err(e) => {
                        tracing::warn!(instance = %ctx.instance, "a failed build's layers: {e}")
                    }
                }
                let _ = tx.send(json!({
                    "errorDetail": { "code": failure.code, "message": failure.message },
                    "error": failure.message,
                }));
            }
        }
    });
    let state = (rx, quiet.then(Quiet::default), VecDeque::new());
    let lines =
        futures_util::stream::unfold(state, |(mut rx, mut quiet, mut pending)| async move {
            let value: Value = loop {
                if let Some(value) = pending.pop_front() {
                    break value;
                }
                let value = rx.recv().await?;
                match quiet.as_mut() {
                    Some(quiet) => pending.extend(quiet.pass(value)),
                    None => break value,
                }
            };
            Some((value, (rx, quiet, pending)))
        });
    Ok(json_lines(lines))
}

/// `docker build -q`: the output is held back and shown only with an
/// error; a success prints just the image id.
#[derive(Default)]
struct Quiet {
    held: Vec<Value>,
    done: bool,
}

impl Quiet {
    /// What to send of `line`.
    fn pass(&mut self, line: Value) -> Vec<Value> {
        if self.done {
            return Vec::new();
        }
        if let Some(id) = line["aux"]["ID"].as_str() {
            self.done = true;
            let id = format!("{id}\n");
            return vec![line.clone(), json!({ "stream": id })];
        }
        if line.get("error").is_some() {
            let mut out = std::mem::take(&mut self.held);
            out.push(line);
            return out;
        }
        self.held.push(line);
        Vec::new()
    }
}

/// Store the image, name it in the instance's view, say so.
fn finish(
    ctx: &Ctx,
    build: &steps::Build,
    config: &[u8],
    tags: &[Reference],
) -> Result<(), steps::Failure> {
    let base = build.base();
    let id: Digest = ctx
        .engine
        .store
        .add_image(config, base.as_ref(), &build.added)
        .map_err(|e| format!("storing the image: {e}"))?;
    let _ = build.out.send(json!({ "aux": { "ID": id.to_string() } }));
    build.say(format!("Successfully built {}\n", &id.hex()[..12]));
    for tag in tags {
        super::images::name_image(ctx, tag, &id.to_string());
        build.say(format!("Successfully tagged {}\n", tag.familiar()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_tags_and_json_maps_from_the_query() {
        let pairs = query_pairs(Some(
            "t=a%3A1&t=b&buildargs=%7B%22X%22%3A%221%22%2C%22Y%22%3Anull%7D&q=0",
        ));
        let tags: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "t")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(tags, ["a:1", "b"]);
        let args = string_map(&pairs, "buildargs").unwrap();
        assert_eq!(
            args.into_iter().collect::<Vec<_>>(),
            [("X".to_string(), "1".to_string())]
        );
    }
}
