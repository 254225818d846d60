//! `docker image ls / inspect / tag / rmi` on the instance's own view of
//! the shared store. Removing drops the instance's names; the store keeps
//! the content, so a later pull of it (here or elsewhere) is instant.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use sandbox::oci::{ImageSummary, Reference};
use serde_json::{json, Value};

use super::ctx::Ctx;
use super::events;
use super::reply::{DockerError, Reply};

/// The familiar form `docker` prints (`busybox:latest`).
fn familiar(full: &str) -> String {
    full.parse::<Reference>()
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_string())
}

/// The store's summaries of the images the instance names, with only the
/// instance's own names as their tags.
pub fn visible(ctx: &Ctx) -> Vec<ImageSummary> {
    let view = ctx.engine.views.get(&ctx.instance);
    let mut names: HashMap<&str, Vec<String>> = HashMap::new();
    for (reference, id) in &view {
        names
            .entry(id.as_str())
            .or_default()
            .push(familiar(reference));
    }
    ctx.engine
        .store
        .list()
        .into_iter()
        .filter_map(|mut image| {
            let tags = names.get(image.id.to_string().as_str())?;
            let repositories: Vec<String> = tags
                .iter()
                .map(|t| {
                    t.rsplit_once(':')
                        .map_or(t.as_str(), |(r, _)| r)
                        .to_string()
                })
                .collect();
            image.repo_digests.retain(|d| {
                d.split_once('@')
                    .is_some_and(|(repo, _)| repositories.iter().any(|r| r == repo))
            });
            image.repo_tags = tags.clone();
            Some(image)
        })
        .collect()
}

/// The image id `name` stands for in the instance's view: one of its
/// references, or an id (prefix) of an image it names.
pub fn resolve(ctx: &Ctx, name: &str) -> Result<String, DockerError> {
    let view = ctx.engine.views.get(&ctx.instance);
    if let Ok(reference) = name.parse::<Reference>() {
        if reference.digest.is_none() {
            if let Some(id) = view.get(&reference.to_string()) {
                return Ok(id.clone());
            }
        }
    }
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut ids: Vec<&String> = view
            .values()
            .filter(|id| {
                id.strip_prefix("sha256:")
                    .is_some_and(|h| h.starts_with(hex))
            })
            .collect();
        ids.dedup();
        if let [id] = ids[..] {
            return Ok(id.clone());
        }
    }
    Err(DockerError::no_such_image(name))
}

fn created_unix(created: Option<&str>) -> i64 {
    created
        .and_then(|c| humantime::parse_rfc3339_weak(c.split('.').next().unwrap_or(c)).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn list(ctx: &Ctx) -> axum::response::Response {
    let images: Vec<Value> = visible(ctx)
        .into_iter()
        .map(|image| {
            json!({
                "Id": image.id.to_string(),
                "ParentId": "",
                "RepoTags": image.repo_tags,
                "RepoDigests": image.repo_digests,
                "Created": created_unix(image.created.as_deref()),
                "Size": image.size,
                "VirtualSize": image.size,
                "SharedSize": -1,
                "Labels": null,
                "Containers": -1,
            })
        })
        .collect();
    Json(images).into_response()
}

pub fn inspect(ctx: &Ctx, name: &str) -> Reply {
    let id = resolve(ctx, name)?;
    let summary = visible(ctx)
        .into_iter()
        .find(|i| i.id.to_string() == id)
        .ok_or_else(|| DockerError::no_such_image(name))?;
    let details = ctx
        .engine
        .store
        .inspect(&id)
        .map_err(|_| DockerError::no_such_image(name))?;
    let config: Value = ctx
        .engine
        .store
        .config_bytes(&details.summary.id)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    let layers: Vec<String> = details
        .layers
        .iter()
        .map(|l| l.diff_id.to_string())
        .collect();
    Ok(Json(json!({
        "Id": id,
        "RepoTags": summary.repo_tags,
        "RepoDigests": summary.repo_digests,
        "Parent": "",
        "Comment": config.get("comment").cloned().unwrap_or(json!("")),
        "Created": summary.created.clone().unwrap_or_default(),
        "Container": "",
        "DockerVersion": "",
        "Author": config.get("author").cloned().unwrap_or(json!("")),
        "Config": config.get("config").cloned().unwrap_or(Value::Null),
        "Architecture": config.get("architecture").cloned().unwrap_or(json!("amd64")),
        "Os": config.get("os").cloned().unwrap_or(json!("linux")),
        "Size": summary.size,
        "VirtualSize": summary.size,
        "GraphDriver": { "Name": "overlay", "Data": null },
        "RootFS": { "Type": "layers", "Layers": layers },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    }))
    .into_response())
}

/// `POST /images/{name}/tag?repo=mybox&tag=1`.
pub fn tag(ctx: &Ctx, name: &str, query: &HashMap<String, String>) -> Reply {
    let id = resolve(ctx, name)?;
    let repo = query.get("repo").map(String::as_str).unwrap_or("");
    let tag = query
        .get("tag")
        .filter(|t| !t.is_empty())
        .map_or("latest", String::as_str);
    let target: Reference = format!("{repo}:{tag}")
        .parse()
        .map_err(|e| DockerError::new(StatusCode::BAD_REQUEST, format!("{e}")))?;
    ctx.engine.views.with(&ctx.instance, |view| {
        view.insert(target.to_string(), id.clone());
        ((), true)
    });
    events::image(ctx, &id, "tag", &target.familiar());
    Ok(StatusCode::CREATED.into_response())
}

/// `DELETE /images/{name}?force=`: a name untags it (and the image is gone
/// from the instance with its last name); an id removes all its names,
/// several only with `force`.
pub fn remove(ctx: &Ctx, name: &str, query: &HashMap<String, String>) -> Reply {
    let force = query.get("force").is_some_and(|f| f == "1" || f == "true");
    let as_reference = name
        .parse::<Reference>()
        .ok()
        .filter(|r| r.digest.is_none())
        .map(|r| r.to_string());
    let id = resolve(ctx, name)?;
    let names_of_image = ctx
        .engine
        .views
        .get(&ctx.instance)
        .values()
        .filter(|i| **i == id)
        .count();
    if let (false, true, Some(container)) = (
        force,
        names_of_image <= 1,
        ctx.engine.containers.using_image(&ctx.instance, &id),
    ) {
        let short = id.strip_prefix("sha256:").unwrap_or(&id);
        return Err(DockerError::new(
            StatusCode::CONFLICT,
            format!(
                "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                &container[..12],
                &short[..12.min(short.len())]
            ),
        ));
    }
    let result = ctx.engine.views.with(&ctx.instance, |view| {
        let names: Vec<String> = match as_reference.filter(|r| view.contains_key(r)) {
            Some(reference) => vec![reference],
            None => {
                let all: Vec<String> = view
                    .iter()
                    .filter(|(_, i)| **i == id)
                    .map(|(r, _)| r.clone())
                    .collect();
                if all.len() > 1 && !force {
                    let short = id.strip_prefix("sha256:").unwrap_or(&id);
                    return (
                        Err(DockerError::new(
                            StatusCode::CONFLICT,
                            format!(
                                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                                &short[..12.min(short.len())]
                            ),
                        )),
                        false,
                    );
                }
                all
            }
        };
        let mut answer: Vec<Value> = Vec::new();
        for reference in names {
            view.remove(&reference);
            answer.push(json!({ "Untagged": familiar(&reference) }));
        }
        if !view.values().any(|i| *i == id) {
            answer.push(json!({ "Deleted": id }));
        }
        (Ok(answer), true)
    });
    let answer = result?;
    for line in &answer {
        if let Some(name) = line["Untagged"].as_str() {
            events::image(ctx, &id, "untag", name);
        }
        if line["Deleted"].is_string() {
            events::image(ctx, &id, "delete", &id);
        }
    }
    ctx.engine
        .image_may_be_unused(id, Some(ctx.instance.clone()));
    Ok(Json(answer).into_response())
}

/// Name `id` as `reference` in the instance's view; whether it named
/// another image (or nothing) before.
pub fn name_image(ctx: &Ctx, reference: &Reference, id: &str) -> bool {
    ctx.engine.views.with(&ctx.instance, |view| {
        let previous = view.insert(reference.to_string(), id.to_string());
        let changed = previous.as_deref() != Some(id);
        (changed, changed)
    })
}
