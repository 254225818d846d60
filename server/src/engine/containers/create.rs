//! `docker create`: a container's record from the client's configuration
//! and the image's.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::ports;
use super::records::{Config, Record};
use super::{now, random_id, strings};
use crate::engine::ctx::Ctx;
use crate::engine::events;
use crate::engine::reply::{DockerError, Reply};

/// POST /containers/create
pub fn create(ctx: &Ctx, query: &HashMap<String, String>, body: &[u8]) -> Reply {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| DockerError::new(StatusCode::BAD_REQUEST, format!("bad body: {e}")))?;
    let image = body["Image"].as_str().unwrap_or("").to_string();
    if image.is_empty() {
        return Err(DockerError::new(StatusCode::BAD_REQUEST, "no image given"));
    }
    let image_id = crate::engine::images::resolve(ctx, &image)?;
    let details = ctx
        .engine
        .store
        .inspect(&image_id)
        .map_err(|_| DockerError::no_such_image(&image))?;
    let image_config = details.config.config().clone().unwrap_or_default();
    let mut cmd = strings(&body["Cmd"]);
    let mut entrypoint = strings(&body["Entrypoint"]);
    let entrypoint_given = !body["Entrypoint"].is_null();
    if !entrypoint_given {
        entrypoint = image_config.entrypoint().clone().unwrap_or_default();
    }
    if cmd.is_empty() && !entrypoint_given {
        cmd = image_config.cmd().clone().unwrap_or_default();
    }
    if cmd.is_empty() && entrypoint.is_empty() {
        return Err(DockerError::new(
            StatusCode::BAD_REQUEST,
            "No command specified",
        ));
    }
    let mut env = image_config.env().clone().unwrap_or_default();
    for e in strings(&body["Env"]) {
        let key = e.split('=').next().unwrap_or("").to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(e);
    }
    let working_dir = body["WorkingDir"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
        .or_else(|| image_config.working_dir().clone())
        .unwrap_or_default();
    let user = body["User"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
        .or_else(|| image_config.user().clone())
        .unwrap_or_default();
    let host = &body["HostConfig"];
    let image_exposed = image_config.exposed_ports().clone().unwrap_or_default();
    let (port_bindings, publish_all, exposed_ports) = ports::from_create(&body, &image_exposed)?;
    let network_mode = network_mode(host["NetworkMode"].as_str().unwrap_or(""))?;
    let stop_signal = body["StopSignal"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
        .or_else(|| image_config.stop_signal().clone())
        .unwrap_or_default();
    if !stop_signal.is_empty() && super::lifecycle::signal_number(&stop_signal).is_none() {
        return Err(DockerError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid signal: {stop_signal}"),
        ));
    }
    let restart = host["RestartPolicy"]["Name"].as_str().unwrap_or("");
    if !["", "no"].contains(&restart) {
        return Err(DockerError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("restart policy {restart:?} is not available in this playground: containers run once (restart policy \"no\"); start one again with docker start"),
        ));
    }
    let binds = strings(&host["Binds"]);
    for b in &binds {
        let parts: Vec<&str> = b.split(':').collect();
        if parts.len() < 2 || !parts[0].starts_with('/') || !parts[1].starts_with('/') {
            return Err(DockerError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid mount config: {b:?}: only binds of absolute instance paths (/src:/dst[:ro]) are supported; named volumes are not available yet"),
            ));
        }
    }
    let labels = body["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let config = Config {
        image,
        image_id,
        cmd,
        entrypoint,
        env,
        working_dir,
        user,
        tty: body["Tty"].as_bool().unwrap_or(false),
        open_stdin: body["OpenStdin"].as_bool().unwrap_or(false),
        stdin_once: body["StdinOnce"].as_bool().unwrap_or(false),
        binds,
        auto_remove: body["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false),
        labels,
        network_mode: network_mode.into(),
        stop_signal,
        port_bindings,
        publish_all,
        exposed_ports,
    };
    let id = random_id();
    let name = match query.get("name").filter(|n| !n.is_empty()) {
        Some(n) => {
            let n = n.trim_start_matches('/').to_string();
            let valid = n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !valid || !n.as_bytes()[0].is_ascii_alphanumeric() {
                return Err(DockerError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    ),
                ));
            }
            n
        }
        None => generated_name(&id),
    };
    let record = Record {
        id: id.clone(),
        name: name.clone(),
        created: now(),
        config,
        ..Record::default()
    };
    ctx.engine.containers.with(&ctx.instance, |records| {
        if let Some(other) = records.iter().find(|r| r.name == name) {
            return (
                Err(DockerError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                        other.id
                    ),
                )),
                false,
            );
        }
        records.push(record);
        (Ok(()), true)
    })?;
    events::container(ctx, &id, "create", &[]);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "Id": id, "Warnings": [] })),
    )
        .into_response())
}

/// The network a client names (`--network`): `bridge` (the default),
/// `host` or `none`; others do not exist here.
pub fn network_mode(name: &str) -> Result<&'static str, DockerError> {
    match name {
        "" | "default" | "bridge" => Ok("bridge"),
        "host" => Ok("host"),
        "none" => Ok("none"),
        other => Err(DockerError::new(
            StatusCode::NOT_FOUND,
            format!("network {other} not found"),
        )),
    }
}

/// A name like Docker's (`adjective_noun`), from the id.
pub(super) fn generated_name(id: &str) -> String {
    const LEFT: [&str; 8] = [
        "brave", "calm", "eager", "gentle", "happy", "jolly", "keen", "quiet",
    ];
    const RIGHT: [&str; 8] = [
        "turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth", "liskov",
    ];
    let n = u32::from_str_radix(&id[..6], 16).unwrap_or(0) as usize;
    format!("{}_{}{}", LEFT[n % 8], RIGHT[(n / 8) % 8], n % 1000)
}
