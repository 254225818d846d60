//! `docker ps` and `docker inspect`.

use std::collections::HashMap;

use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::records::{Config, Record};
use super::run::{argv, binds};
use super::{flag, ports};
use crate::engine::ctx::Ctx;
use crate::engine::reply::Reply;
use sandbox::container_network;

pub(super) fn state_text(r: &Record) -> &'static str {
    if r.running {
        "running"
    } else if r.started {
        "exited"
    } else {
        "created"
    }
}

pub(super) fn unix(time: &str) -> i64 {
    humantime::parse_rfc3339_weak(time.split('.').next().unwrap_or(time))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

pub(super) fn ago(time: &str) -> String {
    let secs = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        - unix(time))
    .max(0);
    match secs {
        0 => "Less than a second".into(),
        1..=59 => format!("{secs} seconds"),
        60..=3599 => format!("{} minutes", secs / 60),
        _ => format!("{} hours", secs / 3600),
    }
}

pub(super) fn status_text(r: &Record) -> String {
    if r.running {
        format!("Up {}", ago(&r.started_at))
    } else if r.started {
        format!("Exited ({}) {} ago", r.exit_code, ago(&r.finished_at))
    } else {
        "Created".into()
    }
}

/// GET /containers/json
pub fn list(ctx: &Ctx, query: &HashMap<String, String>) -> Reply {
    let all = flag(query, "all");
    let filters: HashMap<String, Vec<String>> = query
        .get("filters")
        .and_then(|f| serde_json::from_str::<HashMap<String, Value>>(f).ok())
        .map(|m| {
            m.into_iter()
                .map(|(k, v)| {
                    let values = match v {
                        Value::Object(o) => o.keys().cloned().collect(),
                        Value::Array(a) => a
                            .iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect(),
                        _ => Vec::new(),
                    };
                    (k, values)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut records = ctx.engine.containers.list(&ctx.instance);
    records.sort_by(|a, b| b.created.cmp(&a.created));
    let matches = |r: &Record| {
        filters.iter().all(|(key, values)| {
            values.iter().any(|v| match key.as_str() {
                "name" => r.name.contains(v.trim_start_matches('/')),
                "id" => r.id.starts_with(v),
                "status" => state_text(r) == v,
                "ancestor" => r.config.image == *v || r.config.image_id.contains(v),
                "label" => match v.split_once('=') {
                    Some((k, val)) => r.config.labels.get(k).is_some_and(|x| x == val),
                    None => r.config.labels.contains_key(v),
                },
                _ => true,
            })
        })
    };
    let has_status_filter = filters.contains_key("status");
    let items: Vec<Value> = records
        .iter()
        .filter(|r| all || r.running || has_status_filter)
        .filter(|r| matches(r))
        .map(|r| {
            json!({
                "Id": r.id,
                "Names": [format!("/{}", r.name)],
                "Image": r.config.image,
                "ImageID": r.config.image_id,
                "Command": shell_words(&argv(&r.config)),
                "Created": unix(&r.created),
                "Ports": ports::list_view(r),
                "Labels": r.config.labels,
                "State": state_text(r),
                "Status": status_text(r),
                "HostConfig": {"NetworkMode": network_mode(&r.config)},
                "NetworkSettings": {"Networks": networks(r)},
                "Mounts": [],
            })
        })
        .collect();
    Ok(Json(Value::Array(items)).into_response())
}

fn network_mode(config: &Config) -> &str {
    match config.network_mode.as_str() {
        "" => "bridge",
        mode => mode,
    }
}

fn address(r: &Record) -> String {
    r.ip.map(|a| a.to_string()).unwrap_or_default()
}

fn gateway(r: &Record) -> String {
    r.ip.map(|_| container_network::GATEWAY.to_string())
        .unwrap_or_default()
}

fn mac(r: &Record) -> String {
    r.ip.map(|a| {
        let bytes = container_network::mac_address(a);
        bytes.map(|b| format!("{b:02x}")).join(":")
    })
    .unwrap_or_default()
}

/// The network the container is on, as Docker describes it (addresses only
/// while it runs on the bridge).
fn networks(r: &Record) -> Value {
    let mode = network_mode(&r.config);
    json!({ mode: {
        "NetworkID": mode,
        "Gateway": gateway(r),
        "IPAddress": address(r),
        "IPPrefixLen": if r.ip.is_some() { container_network::PREFIX } else { 0 },
        "MacAddress": mac(r),
    }})
}

pub(super) fn shell_words(argv: &[String]) -> String {
    argv.join(" ")
}

/// GET /containers/{id}/json
pub fn inspect(ctx: &Ctx, name: &str) -> Reply {
    let r = ctx.engine.containers.find(&ctx.instance, name)?;
    let argv = argv(&r.config);
    let never = "0001-01-01T00:00:00Z";
    Ok(Json(json!({
        "Id": r.id,
        "Created": r.created,
        "Path": argv.first(),
        "Args": argv.get(1..).unwrap_or_default(),
        "State": {
            "Status": state_text(&r),
            "Running": r.running,
            "Paused": false,
            "Restarting": false,
            "OOMKilled": r.oom_killed,
            "Dead": false,
            "Pid": r.pid,
            "ExitCode": r.exit_code,
            "Error": "",
            "StartedAt": if r.started_at.is_empty() { never } else { &r.started_at },
            "FinishedAt": if r.finished_at.is_empty() { never } else { &r.finished_at },
        },
        "Image": r.config.image_id,
        "Name": format!("/{}", r.name),
        "RestartCount": 0,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": {
            "Binds": r.config.binds,
            "AutoRemove": r.config.auto_remove,
            "NetworkMode": network_mode(&r.config),
            "PortBindings": ports::asked_view(&r.config),
            "PublishAllPorts": r.config.publish_all,
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        },
        "Mounts": binds(&r.config).iter().map(|b| json!({
            "Type": "bind", "Source": b.source, "Destination": b.target,
            "Mode": if b.read_only { "ro" } else { "" }, "RW": !b.read_only,
            "Propagation": "rprivate",
        })).collect::<Vec<_>>(),
        "Config": {
            "Hostname": &r.id[..12],
            "User": r.config.user,
            "Tty": r.config.tty,
            "OpenStdin": r.config.open_stdin,
            "StdinOnce": r.config.stdin_once,
            "Env": r.config.env,
            "Cmd": r.config.cmd,
            "Entrypoint": if r.config.entrypoint.is_empty() { Value::Null } else { json!(r.config.entrypoint) },
            "Image": r.config.image,
            "WorkingDir": r.config.working_dir,
            "Labels": r.config.labels,
            "StopSignal": if r.config.stop_signal.is_empty() { Value::Null } else { json!(r.config.stop_signal) },
            "ExposedPorts": ports::exposed_view(&r.config),
        },
        "NetworkSettings": {
            "Networks": networks(&r),
            "Ports": ports::bound_view(&r),
            "IPAddress": address(&r),
            "IPPrefixLen": if r.ip.is_some() { container_network::PREFIX } else { 0 },
            "Gateway": gateway(&r),
            "MacAddress": mac(&r),
            "Bridge": "",
            "SandboxKey": "",
        },
    }))
    .into_response())
}
