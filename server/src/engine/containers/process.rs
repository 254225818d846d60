//! What a container's first process and an exec's share: the base
//! environment they start with and resizing their terminal.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::records::Config;
use crate::engine::reply::Reply;

/// The environment of a process in a container: the configured one, with
/// Docker's defaults (`PATH`, `HOSTNAME`, `TERM` with a terminal, `HOME`).
pub(super) fn base_env(config: &Config, hostname: &str, tty: bool) -> Vec<String> {
    let mut env = config.env.clone();
    let has = |env: &Vec<String>, k: &str| env.iter().any(|e| e.starts_with(&format!("{k}=")));
    if !has(&env, "PATH") {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    env.push(format!("HOSTNAME={hostname}"));
    if tty && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    if !has(&env, "HOME") {
        env.push("HOME=/root".into());
    }
    env
}

/// POST /containers/{id}/resize and /exec/{id}/resize
pub fn resize(pty: Option<Arc<sandbox::Pty>>, query: &HashMap<String, String>) -> Reply {
    let size = |k: &str| {
        query
            .get(k)
            .and_then(|v| v.parse::<u16>().ok())
            .unwrap_or(0)
    };
    if let Some(pty) = pty {
        let _ = pty.resize(size("w"), size("h"));
    }
    Ok(StatusCode::OK.into_response())
}
