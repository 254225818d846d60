//! `docker run / ps / logs / stop / kill / rm / wait / attach / exec /
//! inspect` on an instance's containers (nested sandboxes, see
//! `sandbox::RunSpec`).
//!
//! Records are saved per instance (`<data>/engine/containers/<instance>.json`)
//! so they outlive a server restart; a container's output goes to a bounded
//! log file next to them (`<instance>/<id>.log`, JSON lines) and to attached
//! clients. The process's pipes or terminal are the server's, with copies
//! kept by the instance's init (see `sandbox::Instance::watch`), so a
//! restarted server follows running containers on, output included.
//!
//! Files: `records` (the store), `streams` (output to attached clients,
//! Docker's stream formats), `pump` (copying a process's terminal or
//! pipes), `process` (a process's base environment and terminal size, for
//! runs and execs), `create`, `run` (start, attach, wait, resize), `logs`,
//! `list_inspect` (ps, inspect), `lifecycle` (stop, kill, restart, rm),
//! `exec`, `bindings` (the port data records keep), `ports` (published
//! ports as the API spells them), `publish` (binding their listeners on the
//! instance), `listeners` (serving them, forwarding to the container),
//! `stats`.

mod bindings;
mod create;
mod exec;
mod lifecycle;
mod list_inspect;
mod listeners;
mod logs;
mod ports;
mod process;
mod publish;
mod pump;
mod records;
mod run;
mod stats;
mod streams;

use std::collections::HashMap;
use std::fs;

use axum::http::StatusCode;
use serde_json::Value;

use super::reply::DockerError;

pub use create::{create, network_mode};
pub use exec::{exec_create, exec_inspect, exec_resize, exec_start};
pub use lifecycle::{kill, remove, restart, stop};
pub use list_inspect::{inspect, list};
pub use logs::logs;
pub use records::Containers;
pub use run::{attach, recover, resize_container, start, wait};
pub use stats::stats;

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

pub(super) fn random_id() -> String {
    let mut bytes = [0u8; 32];
    let _ = fs::File::open("/dev/urandom").and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut bytes)
    });
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn no_such_container(name: &str) -> DockerError {
    DockerError::new(StatusCode::NOT_FOUND, format!("No such container: {name}"))
}

fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    query
        .get(key)
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}
