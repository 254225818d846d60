//! Stopping, signalling, restarting and removing containers.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::flag;
use super::records::{remove_record, Record};
use super::run::{start, wait_for};
use crate::engine::ctx::Ctx;
use crate::engine::events;
use crate::engine::reply::{DockerError, Reply};

/// Send `signal` to the container's first process.
pub(super) async fn signal(ctx: &Ctx, r: &Record, signal: i32) -> Result<(), DockerError> {
    ctx.sandbox
        .signal(r.pid, signal)
        .await
        .map_err(DockerError::internal)?;
    events::container(ctx, &r.id, "kill", &[("signal", signal.to_string())]);
    Ok(())
}

/// Stop: the container's stop signal (SIGTERM unless it or its image says
/// otherwise), then SIGKILL after `t` seconds.
pub(super) async fn stop_record(ctx: &Ctx, r: &Record, timeout: u64) -> Result<(), DockerError> {
    if !r.running {
        return Ok(());
    }
    let first = signal_number(&r.config.stop_signal).unwrap_or(libc::SIGTERM);
    signal(ctx, r, first).await?;
    let stopped = tokio::time::timeout(
        std::time::Duration::from_secs(timeout),
        wait_for(ctx, &r.id, |x| !x.running),
    )
    .await;
    if stopped.is_err() {
        signal(ctx, r, libc::SIGKILL).await?;
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            wait_for(ctx, &r.id, |x| !x.running),
        )
        .await;
    }
    events::container(ctx, &r.id, "stop", &[]);
    Ok(())
}

/// POST /containers/{id}/stop
pub async fn stop(ctx: &Ctx, name: &str, query: &HashMap<String, String>) -> Reply {
    let r = ctx.engine.containers.find(&ctx.instance, name)?;
    if !r.running {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let t = query.get("t").and_then(|t| t.parse().ok()).unwrap_or(10);
    stop_record(ctx, &r, t).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// POST /containers/{id}/restart
pub async fn restart(ctx: &Ctx, name: &str, query: &HashMap<String, String>) -> Reply {
    let r = ctx.engine.containers.find(&ctx.instance, name)?;
    let t = query.get("t").and_then(|t| t.parse().ok()).unwrap_or(10);
    stop_record(ctx, &r, t).await?;
    start(ctx, &r.id).await?;
    events::container(ctx, &r.id, "restart", &[]);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) fn signal_number(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        return Some(n);
    }
    let name = name.trim_start_matches("SIG");
    Some(match name {
        "KILL" => libc::SIGKILL,
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "WINCH" => libc::SIGWINCH,
        _ => return None,
    })
}

/// POST /containers/{id}/kill
pub async fn kill(ctx: &Ctx, name: &str, query: &HashMap<String, String>) -> Reply {
    let r = ctx.engine.containers.find(&ctx.instance, name)?;
    let sig = query.get("signal").map(String::as_str).unwrap_or("KILL");
    let number = signal_number(sig).ok_or_else(|| {
        DockerError::new(StatusCode::BAD_REQUEST, format!("Invalid signal: {sig}"))
    })?;
    if !r.running {
        return Err(DockerError::new(
            StatusCode::CONFLICT,
            format!(
                "Cannot kill container: {name}: Container {} is not running",
                r.id
            ),
        ));
    }
    signal(ctx, &r, number).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// DELETE /containers/{id}
pub async fn remove(ctx: &Ctx, name: &str, query: &HashMap<String, String>) -> Reply {
    let r = ctx.engine.containers.find(&ctx.instance, name)?;
    if r.running {
        if !flag(query, "force") {
            return Err(DockerError::new(
                StatusCode::CONFLICT,
                format!("You cannot remove a running container {}. Stop the container before attempting removal or force remove", r.id),
            ));
        }
        signal(ctx, &r, libc::SIGKILL).await?;
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            wait_for(ctx, &r.id, |x| !x.running),
        )
        .await;
    }
    // An auto-removed container may be gone meanwhile.
    if ctx.engine.containers.find(&ctx.instance, &r.id).is_ok() {
        remove_record(ctx, &r.id).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
