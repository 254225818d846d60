//! `GET /images/{name}/history` (`docker history`): the image config's
//! history, newest first, each entry that made a layer with that layer's
//! size. Like Docker for pulled images, only the top entry has an id.

use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::ctx::Ctx;
use super::reply::{DockerError, Reply};

pub fn history(ctx: &Ctx, name: &str) -> Reply {
    let id = super::images::resolve(ctx, name)?;
    let store = &ctx.engine.store;
    let details = store
        .inspect(&id)
        .map_err(|_| DockerError::no_such_image(name))?;
    let config: Value = store
        .config_bytes(&details.summary.id)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    let tags: Vec<String> = super::images::visible(ctx)
        .into_iter()
        .find(|i| i.id.to_string() == id)
        .map(|i| i.repo_tags)
        .unwrap_or_default();
    let mut sizes = details.layers.iter().map(|l| l.size);
    let mut entries: Vec<Value> = config["history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|h| {
            let empty = h["empty_layer"].as_bool().unwrap_or(false);
            let size = if empty { 0 } else { sizes.next().unwrap_or(0) };
            json!({
                "Id": "<missing>",
                "Created": unix(h["created"].as_str()),
                "CreatedBy": h["created_by"].as_str().unwrap_or(""),
                "Tags": null,
                "Size": size,
                "Comment": h["comment"].as_str().unwrap_or(""),
            })
        })
        .collect();
    entries.reverse();
    if let Some(top) = entries.first_mut() {
        top["Id"] = id.into();
        top["Tags"] = tags.into();
    }
    Ok(Json(entries).into_response())
}

fn unix(created: Option<&str>) -> i64 {
    created
        .and_then(|c| humantime::parse_rfc3339_weak(c.split('.').next().unwrap_or(c)).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}
