//! `POST /images/create?fromImage=&tag=`: pull through the shared store and
//! stream Docker's JSON progress lines. When no mirror nor the registry can
//! serve the image but the store has it (the offline images, or an earlier
//! pull), the pull is served from the store: on hosts without Docker Hub
//! access the offline names still pull.

use std::collections::HashMap;

use axum::http::StatusCode;
use sandbox::oci::{Digest, Error as StoreError, Progress, Reference};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::ctx::Ctx;
use super::events;
use super::images::name_image;
use super::reply::{json_lines, DockerError, Reply};

enum Message {
    Line(Value),
    /// The pull failed; before any line, this becomes the response status.
    Failed(DockerError),
}

fn short(digest: &Digest) -> String {
    digest.hex()[..12].to_string()
}

fn layer_line(status: &str, layer: &Digest) -> Value {
    json!({ "status": status, "progressDetail": {}, "id": short(layer) })
}

fn progress_line(progress: Progress) -> Value {
    match progress {
        Progress::Resolved { .. } => Value::Null,
        Progress::LayerExists { layer } => layer_line("Already exists", &layer),
        Progress::LayerWaiting { layer } => layer_line("Pulling fs layer", &layer),
        Progress::Downloading {
            layer,
            current,
            total,
        } => json!({
            "status": "Downloading",
            "progressDetail": { "current": current, "total": total },
            "id": short(&layer),
        }),
        Progress::Downloaded { layer } => layer_line("Download complete", &layer),
        Progress::Extracting { layer } => layer_line("Extracting", &layer),
        Progress::LayerDone { layer } => layer_line("Pull complete", &layer),
    }
}

pub async fn create(ctx: &Ctx, query: &HashMap<String, String>) -> Reply {
    let from = query.get("fromImage").map(String::as_str).unwrap_or("");
    if from.is_empty() {
        return Err(DockerError::new(
            StatusCode::BAD_REQUEST,
            "importing images (fromSrc) is not available; give fromImage",
        ));
    }
    let tag = query.get("tag").map(String::as_str).unwrap_or("");
    let name = if tag.is_empty() || from.contains('@') {
        from.to_string()
    } else if tag.starts_with("sha256:") {
        format!("{from}@{tag}")
    } else {
        format!("{from}:{tag}")
    };
    let reference: Reference = name
        .parse()
        .map_err(|_| DockerError::new(StatusCode::BAD_REQUEST, "invalid reference format"))?;

    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(pull(ctx.clone(), reference, tx));
    let first = match rx.recv().await {
        Some(Message::Line(line)) => line,
        Some(Message::Failed(e)) => return Err(e),
        None => return Err(DockerError::internal("the pull stopped")),
    };
    let lines = futures_util::stream::unfold((Some(first), rx), |(first, mut rx)| async move {
        let value = match first {
            Some(line) => line,
            None => match rx.recv().await? {
                Message::Line(line) => line,
                Message::Failed(e) => json!({
                    "errorDetail": { "message": e.message },
                    "error": e.message,
                }),
            },
        };
        Some((value, (None, rx)))
    });
    Ok(json_lines(lines))
}

async fn pull(ctx: Ctx, reference: Reference, tx: mpsc::UnboundedSender<Message>) {
    let send = |line: Value| {
        if !line.is_null() {
            let _ = tx.send(Message::Line(line));
        }
    };
    let header = json!({
        "status": format!("Pulling from {}", reference.path),
        "id": reference.registry_reference(),
    });
    let started = std::sync::atomic::AtomicBool::new(false);
    let progress = |p: Progress| {
        if !started.swap(true, std::sync::atomic::Ordering::Relaxed) {
            send(header.clone());
        }
        send(progress_line(p));
    };
    let store = &ctx.engine.store;
    let (id, digest) = match store.pull(&reference.to_string(), &progress).await {
        Ok(outcome) => (outcome.id, outcome.digest),
        Err(e @ StoreError::DigestMismatch { .. }) => {
            let _ = tx.send(Message::Failed(DockerError::internal(e)));
            return;
        }
        Err(e) => match from_store(&ctx, &reference) {
            Some((id, digest, layers)) => {
                tracing::debug!("pull of {reference} served from the store ({e})");
                if !started.load(std::sync::atomic::Ordering::Relaxed) {
                    send(header.clone());
                }
                for layer in &layers {
                    send(layer_line("Already exists", layer));
                }
                (id, digest)
            }
            None => {
                let _ = tx.send(Message::Failed(pull_error(&reference, e)));
                return;
            }
        },
    };
    // A digest-only pull names the image by its digest.
    let newer = name_image(&ctx, &reference, &id.to_string());
    events::image(
        &ctx,
        &reference.familiar(),
        "pull",
        &reference.familiar_repository(),
    );
    send(json!({ "status": format!("Digest: {digest}") }));
    let familiar = reference.familiar();
    let status = if newer {
        format!("Status: Downloaded newer image for {familiar}")
    } else {
        format!("Status: Image is up to date for {familiar}")
    };
    send(json!({ "status": status }));
}

/// The store's own copy of `reference`: id, the digest it was pulled as,
/// and its layers.
fn from_store(ctx: &Ctx, reference: &Reference) -> Option<(Digest, Digest, Vec<Digest>)> {
    let details = ctx.engine.store.inspect(&reference.to_string()).ok()?;
    let digest = match &reference.digest {
        Some(digest) => digest.clone(),
        None => {
            let repository = reference.familiar_repository();
            details
                .summary
                .repo_digests
                .iter()
                .filter_map(|d| d.split_once('@'))
                .find(|(repo, _)| *repo == repository)
                .and_then(|(_, digest)| digest.parse().ok())?
        }
    };
    let layers = details.layers.iter().map(|l| l.diff_id.clone()).collect();
    Some((details.summary.id, digest, layers))
}

/// Docker's wording, so people recognise it, with our reason after it.
fn pull_error(reference: &Reference, e: StoreError) -> DockerError {
    let repository = reference.familiar_repository();
    match e {
        StoreError::Invalid(m) => DockerError::new(StatusCode::BAD_REQUEST, m),
        StoreError::NotFound(_) | StoreError::Unauthorized(_) | StoreError::Registry(_) => {
            DockerError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "pull access denied for {repository}, repository does not exist or may require 'docker login': {e}"
                ),
            )
        }
        e => DockerError::internal(format!("pulling {}: {e}", reference.familiar())),
    }
}
