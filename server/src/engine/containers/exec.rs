//! `docker exec`: one more process in a running container (its output is
//! not logged).

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::process::{base_env, resize};
use super::pump::{pump, ProcessIo};
use super::records::Exec;
use super::streams::{frame, hijack, Chunk};
use super::{random_id, strings};
use crate::engine::ctx::Ctx;
use crate::engine::events;
use crate::engine::reply::{DockerError, Reply};

/// POST /containers/{id}/exec
pub fn exec_create(ctx: &Ctx, name: &str, body: &[u8]) -> Reply {
    let r = ctx.engine.containers.find(&ctx.instance, name)?;
    if !r.running {
        return Err(DockerError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", r.id),
        ));
    }
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| DockerError::new(StatusCode::BAD_REQUEST, format!("bad body: {e}")))?;
    let argv = strings(&body["Cmd"]);
    if argv.is_empty() {
        return Err(DockerError::new(
            StatusCode::BAD_REQUEST,
            "No exec command specified",
        ));
    }
    let tty = body["Tty"].as_bool().unwrap_or(false);
    let mut env = base_env(&r.config, &r.id[..12], tty);
    env.extend(strings(&body["Env"]));
    let id = random_id();
    let action = format!("exec_create: {}", argv.join(" "));
    events::container(ctx, &r.id, &action, &[("execID", id.clone())]);
    ctx.engine.containers.execs.lock().unwrap().insert(
        id.clone(),
        Exec {
            container: r.id.clone(),
            instance: ctx.instance.clone(),
            argv,
            env,
            user: body["User"]
                .as_str()
                .filter(|u| !u.is_empty())
                .unwrap_or(&r.config.user)
                .to_string(),
            working_dir: body["WorkingDir"]
                .as_str()
                .filter(|u| !u.is_empty())
                .unwrap_or(if r.config.working_dir.is_empty() {
                    "/"
                } else {
                    &r.config.working_dir
                })
                .to_string(),
            tty,
            running: false,
            exit_code: None,
            pid: 0,
            pty: None,
        },
    );
    Ok((StatusCode::CREATED, Json(json!({ "Id": id }))).into_response())
}

pub(super) fn find_exec(ctx: &Ctx, id: &str) -> Result<Exec, DockerError> {
    ctx.engine
        .containers
        .execs
        .lock()
        .unwrap()
        .get(id)
        .filter(|e| e.instance == ctx.instance)
        .cloned()
        .ok_or_else(|| {
            DockerError::new(
                StatusCode::NOT_FOUND,
                format!("No such exec instance: {id}"),
            )
        })
}

/// POST /exec/{id}/start
pub async fn exec_start(ctx: &Ctx, id: &str, body: &[u8], mut req: Request<Body>) -> Reply {
    let exec = find_exec(ctx, id)?;
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let detach = body["Detach"].as_bool().unwrap_or(false);
    let r = ctx.engine.containers.find(&ctx.instance, &exec.container)?;
    if !r.running {
        return Err(DockerError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", r.id),
        ));
    }
    let process = ctx
        .sandbox
        .exec_in_container(
            r.pid,
            sandbox::ProcessSpec {
                argv: exec.argv.clone(),
                env: exec.env.clone(),
                cwd: exec.working_dir.clone(),
                user: exec.user.clone(),
                tty: exec
                    .tty
                    .then_some(sandbox::WindowSize { cols: 80, rows: 24 }),
            },
        )
        .await
        .map_err(|e| DockerError::internal(format!("exec failed: {e}")))?;
    let action = format!("exec_start: {}", exec.argv.join(" "));
    events::container(ctx, &r.id, &action, &[("execID", id.to_string())]);
    let io = ProcessIo::new(process.io).map_err(DockerError::internal)?;
    let pty = io.pty();
    {
        let mut execs = ctx.engine.containers.execs.lock().unwrap();
        if let Some(e) = execs.get_mut(id) {
            e.running = true;
            e.pid = process.pid;
            e.pty = pty;
        }
    }
    // The client's only: every piece in order, the process waiting while
    // the client is slow (a broadcast channel here once skipped what a
    // lagging client had not read yet). Detached, nobody reads: the pump
    // keeps draining the pipes.
    let (output, mut rx) = mpsc::channel::<Chunk>(64);
    let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(64);
    let containers = ctx.engine.containers.clone();
    let exec_id = id.to_string();
    let finish = {
        let exec_id = exec_id.clone();
        move |code: i32| {
            let mut execs = containers.execs.lock().unwrap();
            if let Some(e) = execs.get_mut(&exec_id) {
                e.running = false;
                e.exit_code = Some(code);
                e.pty = None;
            }
        }
    };
    let exit = process.exit;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let (ctx, container) = (ctx.clone(), r.id.clone());
    tokio::spawn(async move {
        let code = pump(io, stdin_rx, output, exit).await;
        finish(code);
        let attributes = [("execID", exec_id), ("exitCode", code.to_string())];
        events::container(&ctx, &container, "exec_die", &attributes);
        let _ = done_tx.send(());
    });
    if detach {
        drop(stdin_tx);
        return Ok(StatusCode::OK.into_response());
    }
    let (response, upgrade) = hijack(&mut req);
    let tty = exec.tty;
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let (mut read, mut write) = tokio::io::split(io);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = read.read(&mut buf).await {
                if n == 0 || stdin_tx.send(buf[..n].to_vec()).await.is_err() {
                    break;
                }
            }
        });
        // Until the pump is done with the output (`None`).
        while let Some(chunk) = rx.recv().await {
            let bytes = if tty {
                chunk.data
            } else {
                frame(chunk.stream, &chunk.data)
            };
            if write.write_all(&bytes).await.is_err() {
                break;
            }
        }
        // A client gone early must not hold the process up.
        drop(rx);
        // The exit code is recorded before the client asks for it.
        let _ = done_rx.await;
        let _ = write.flush().await;
        let _ = write.shutdown().await;
    });
    Ok(response)
}

/// POST /exec/{id}/resize
pub fn exec_resize(ctx: &Ctx, id: &str, query: &HashMap<String, String>) -> Reply {
    let exec = find_exec(ctx, id)?;
    resize(exec.pty, query)
}

/// GET /exec/{id}/json
pub fn exec_inspect(ctx: &Ctx, id: &str) -> Reply {
    let e = find_exec(ctx, id)?;
    Ok(Json(json!({
        "ID": id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ContainerID": e.container,
        "Pid": e.pid,
        "OpenStdin": true,
        "ProcessConfig": {
            "tty": e.tty,
            "entrypoint": e.argv.first(),
            "arguments": e.argv.get(1..).unwrap_or_default(),
            "user": e.user,
        },
    }))
    .into_response())
}
