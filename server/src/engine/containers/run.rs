//! Running a container: start, attach (the hijacked stream of a run),
//! wait, resize, and following the exits of runs a restarted server
//! finds.

use std::collections::HashMap;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::listeners::Bound;
use super::process::{base_env, resize};
use super::pump::{pump, ProcessIo};
use super::records::{remove_record, Config, Record, KEEP_GONE};
use super::streams::{frame, hijack, Chunk, RunIo};
use super::{flag, now};
use super::{ports, publish};
use crate::engine::ctx::Ctx;
use crate::engine::events;
use crate::engine::reply::{DockerError, Reply};

/// The argv of a container's first process.
pub(super) fn argv(config: &Config) -> Vec<String> {
    config
        .entrypoint
        .iter()
        .chain(config.cmd.iter())
        .cloned()
        .collect()
}

pub(super) fn binds(config: &Config) -> Vec<sandbox::Bind> {
    config
        .binds
        .iter()
        .map(|b| {
            let parts: Vec<&str> = b.split(':').collect();
            sandbox::Bind {
                source: parts[0].to_string(),
                target: parts[1].to_string(),
                read_only: parts
                    .get(2)
                    .is_some_and(|o| o.split(',').any(|o| o == "ro")),
            }
        })
        .collect()
}

/// POST /containers/{id}/start
pub async fn start(ctx: &Ctx, name: &str) -> Reply {
    let mut record = ctx.engine.containers.find(&ctx.instance, name)?;
    if record.running {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let details = ctx
        .engine
        .store
        .inspect(&record.config.image_id)
        .map_err(|e| DockerError::internal(format!("image of the container: {e}")))?;
    let hostname = record.id[..12].to_string();
    let network = match record.config.network_mode.as_str() {
        "host" => sandbox::ContainerNetwork::Instance,
        "none" => sandbox::ContainerNetwork::Loopback,
        _ => {
            let containers = &ctx.engine.containers;
            let address = containers
                .claim_address(&ctx.instance, &record.id)
                .ok_or_else(|| {
                    DockerError::internal("no free address on the instance's container bridge")
                })?;
            // Published ports forward to it.
            record.ip = Some(address);
            sandbox::ContainerNetwork::Bridge { address }
        }
    };
    let spec = sandbox::RunSpec {
        id: record.id.clone(),
        hostname: hostname.clone(),
        layers: details.layers.iter().map(|l| l.path.clone()).collect(),
        disk_image: PathBuf::new(),
        binds: binds(&record.config),
        network,
        process: sandbox::ProcessSpec {
            argv: argv(&record.config),
            env: base_env(&record.config, &hostname, record.config.tty),
            cwd: if record.config.working_dir.is_empty() {
                "/".into()
            } else {
                record.config.working_dir.clone()
            },
            user: record.config.user.clone(),
            tty: record
                .config
                .tty
                .then_some(sandbox::WindowSize { cols: 80, rows: 24 }),
        },
    };
    // Published ports are bound before the process runs: a taken port
    // stops the start, as with Docker.
    // Without a network (`--network none`) there is nothing to forward to.
    let wanted = match network {
        sandbox::ContainerNetwork::Loopback => Vec::new(),
        _ => ports::wanted(&record.config)?,
    };
    let bound = match publish::bind(ctx, &record, &wanted) {
        Ok(bound) => bound,
        Err(e) => {
            release_address(ctx, &record.id);
            return Err(e);
        }
    };
    let published = bound.published.clone();
    let publications = &ctx.engine.containers.publications;
    publications.open(ctx, &record.id, bound);
    // A SIGKILL while the instance's OOM count rose was the OOM killer's.
    let oom_kills = ctx.sandbox.oom_kills();
    let process = match ctx.sandbox.run_container(spec).await {
        Ok(process) => process,
        Err(e) => {
            publications.close(&record.id).await;
            release_address(ctx, &record.id);
            return Err(DockerError::new(
                StatusCode::BAD_REQUEST,
                format!("failed to create task for container: {e}"),
            ));
        }
    };
    let io = ProcessIo::new(process.io).map_err(DockerError::internal)?;
    ctx.engine
        .containers
        .update(&ctx.instance, &record.id, |r| {
            r.running = true;
            r.started = true;
            r.runs += 1;
            r.pid = process.pid;
            r.started_at = now();
            r.oom_killed = false;
            r.published = published;
        });
    events::container(ctx, &record.id, "start", &[]);
    let stdin = record.config.open_stdin;
    follow(ctx, &record.id, io, stdin, process.exit, Some(oom_kills));
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Follow a running container: its output into its log and to whoever is
/// attached, its stdin (with `-i`) from them, then its exit. `oom_kills`:
/// the instance's OOM-kill count at its start (unknown after a restart).
fn follow(
    ctx: &Ctx,
    id: &str,
    io: ProcessIo,
    open_stdin: bool,
    exit: tokio::sync::oneshot::Receiver<i32>,
    oom_kills: Option<u64>,
) {
    let id = id.to_string();
    let streams = ctx.engine.containers.streams(&id);
    let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(64);
    // Without -i its stdin ends at once (the pump closes it when the
    // last sender is gone).
    let stdin = open_stdin.then_some(stdin_tx);
    streams.run.send_replace(RunIo {
        stdin,
        pty: io.pty(),
    });
    // From here until `exited` ends it, the run's output goes to the
    // followers (see `streams::Followers`).
    streams.output.start();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let (out, mut chunks) = mpsc::channel::<Chunk>(16);
        let forward = async {
            let containers = &ctx.engine.containers;
            while let Some(chunk) = chunks.recv().await {
                let log = |chunk: &Chunk| containers.append_log(&ctx.instance, &id, chunk);
                streams.output.emit(chunk, log).await;
            }
        };
        // The pump ends once the output is read; the forwarding once it
        // has all been handed on.
        let (code, ()) = tokio::join!(pump(io, stdin_rx, out, exit), forward);
        let killed = code == 128 + libc::SIGKILL;
        if killed && oom_kills.is_some_and(|before| ctx.sandbox.oom_kills() > before) {
            ctx.engine
                .containers
                .update(&ctx.instance, &id, |r| r.oom_killed = true);
        }
        exited(&ctx, &id, code).await;
    });
}

/// Give back the bridge address of a container that did not start.
fn release_address(ctx: &Ctx, id: &str) {
    ctx.engine
        .containers
        .update(&ctx.instance, id, |r| r.ip = None);
}

/// Record the exit of container `id`, end its attached streams; remove it
/// if it asked for that.
pub(super) async fn exited(ctx: &Ctx, id: &str, code: i32) {
    let containers = &ctx.engine.containers;
    // Closed before it shows as stopped: after `docker stop` the port is free.
    containers.publications.close(id).await;
    let streams = containers.streams(id);
    streams.run.send_replace(RunIo::default());
    let mut auto_remove = false;
    // Before the update, which `docker stop` waits for to tell "stop".
    events::container(ctx, id, "die", &[("exitCode", code.to_string())]);
    containers.update(&ctx.instance, id, |r| {
        r.running = false;
        r.pid = 0;
        r.ip = None;
        r.published.clear();
        r.exit_code = code;
        r.finished_at = now();
        auto_remove = r.config.auto_remove;
    });
    streams.output.end();
    if auto_remove {
        {
            let mut gone = containers.gone.lock().unwrap();
            if gone.len() >= KEEP_GONE {
                gone.clear();
            }
            gone.insert(id.to_string(), code);
        }
        let _ = remove_record(ctx, id).await;
    }
}

/// Wait until `done` holds for the container's record (or it is gone:
/// `None`).
pub(super) async fn wait_for(
    ctx: &Ctx,
    id: &str,
    done: impl Fn(&Record) -> bool,
) -> Option<Record> {
    let mut changed = ctx.engine.containers.changed.subscribe();
    loop {
        let record = ctx
            .engine
            .containers
            .list(&ctx.instance)
            .into_iter()
            .find(|r| r.id == id);
        match record {
            Some(r) if !done(&r) => {}
            other => return other,
        }
        if changed.changed().await.is_err() {
            return None;
        }
    }
}

/// POST /containers/{id}/wait
///
/// The headers go out at once: the client waits for them before it starts
/// the container (`docker run`); the body comes with the exit.
pub fn wait(ctx: &Ctx, name: &str, query: &HashMap<String, String>) -> Reply {
    let containers = &ctx.engine.containers;
    let record = match containers.find(&ctx.instance, name) {
        Ok(r) => r,
        // `docker run --rm`'s wait may come after the quick run's removal.
        Err(e) => match containers.gone.lock().unwrap().get(name) {
            Some(code) => return Ok(status_code(*code)),
            None => return Err(e),
        },
    };
    let condition = query
        .get("condition")
        .map(String::as_str)
        .unwrap_or("not-running");
    // The run the client means for next-exit: the running one, the one
    // after its attach (that start may come and go before this is
    // looked at), or the next.
    let attached = containers
        .streams(&record.id)
        .attached_at
        .lock()
        .unwrap()
        .take();
    let target = if record.running {
        record.runs
    } else {
        attached.map_or(record.runs + 1, |a| a + 1)
    };
    let removed = condition == "removed";
    let next_exit = condition == "next-exit";
    let ctx = ctx.clone();
    let code = async move {
        let containers = &ctx.engine.containers;
        if removed {
            let mut last = record.exit_code;
            let mut changed = containers.changed.subscribe();
            while let Ok(r) = containers.find(&ctx.instance, &record.id) {
                last = r.exit_code;
                if changed.changed().await.is_err() {
                    break;
                }
            }
            let gone = containers.gone.lock().unwrap().get(&record.id).copied();
            return gone.unwrap_or(last);
        }
        wait_for(&ctx, &record.id, |r| {
            if next_exit {
                r.runs > target || (r.runs == target && !r.running)
            } else {
                !r.running
            }
        })
        .await
        .map_or(record.exit_code, |r| r.exit_code)
    };
    let body = futures_util::stream::once(async move {
        let json = json!({ "StatusCode": code.await, "Error": null });
        Ok::<_, std::io::Error>(axum::body::Bytes::from(json.to_string()))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

pub(super) fn status_code(code: i32) -> Response {
    Json(json!({ "StatusCode": code, "Error": null })).into_response()
}

/// POST /containers/{id}/attach: the output of the current run, or of the
/// next one if it is stopped, until that run ends; stdin (`stdin=1`) to it.
pub fn attach(
    ctx: &Ctx,
    name: &str,
    query: &HashMap<String, String>,
    mut req: Request<Body>,
) -> Reply {
    let record = ctx.engine.containers.find(&ctx.instance, name)?;
    events::container(ctx, &record.id, "attach", &[]);
    let streams = ctx.engine.containers.streams(&record.id);
    // Subscribed before the answer, so a start right after misses nothing.
    let mut output = streams.output.follow();
    if !record.running {
        *streams.attached_at.lock().unwrap() = Some(record.runs);
    }
    let (response, upgrade) = hijack(&mut req);
    let want_stdin = flag(query, "stdin");
    let tty = record.config.tty;
    let stdin_once = record.config.stdin_once;
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let (mut read, mut write) = tokio::io::split(io);
        if want_stdin {
            let mut run = streams.run.subscribe();
            let streams = streams.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match read.read(&mut buf).await {
                        Ok(n) if n > 0 => n,
                        _ => break,
                    };
                    // Typed before the start (docker run -i) waits for it.
                    let stdin = loop {
                        if let Some(stdin) = run.borrow_and_update().stdin.clone() {
                            break Some(stdin);
                        }
                        if run.changed().await.is_err() {
                            break None;
                        }
                    };
                    match stdin {
                        Some(stdin) if stdin.send(buf[..n].to_vec()).await.is_ok() => {}
                        _ => break,
                    }
                }
                // The client closed its stdin: so does the container's,
                // if it asked for that (docker run -i without a terminal).
                // (Closed before the start: at the start.)
                if stdin_once {
                    while run.borrow_and_update().stdin.is_none() {
                        if run.changed().await.is_err() {
                            return;
                        }
                    }
                    streams.run.send_modify(|r| r.stdin = None);
                }
            });
        }
        // Until the run ends (`None`), with every piece (see `Followers`).
        while let Some(chunk) = output.recv().await {
            let bytes = if tty {
                chunk.data
            } else {
                frame(chunk.stream, &chunk.data)
            };
            if write.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = write.flush().await;
        let _ = write.shutdown().await;
    });
    Ok(response)
}

pub fn resize_container(ctx: &Ctx, name: &str, query: &HashMap<String, String>) -> Reply {
    let record = ctx.engine.containers.find(&ctx.instance, name)?;
    let pty = ctx
        .engine
        .containers
        .streams(&record.id)
        .run
        .borrow()
        .pty
        .clone();
    resize(pty, query)
}

/// A restarted server: containers that were running either still are
/// (init still tracks them: watch for their exit, publish their ports
/// again) or ended meanwhile.
pub async fn recover(ctx: &Ctx) {
    for r in ctx.engine.containers.list(&ctx.instance) {
        if !r.running {
            continue;
        }
        match ctx.sandbox.watch(r.pid).await {
            Some(process) => {
                republish(ctx, &r);
                // Its output waited in the pipes init kept; its stdin
                // stayed with the server that is gone.
                match ProcessIo::new(process.io) {
                    Ok(io) => follow(ctx, &r.id, io, false, process.exit, None),
                    Err(e) => {
                        tracing::warn!(container = r.id, "its output is lost: {e}");
                        follow(ctx, &r.id, ProcessIo::None, false, process.exit, None);
                    }
                }
            }
            None => exited(ctx, &r.id, 255).await,
        }
    }
}

/// Bind the ports a running container had under the server before
/// (they closed with it), each on its own: one taken meanwhile is lost.
fn republish(ctx: &Ctx, r: &Record) {
    let mut bound = Bound::default();
    for port in &r.published {
        let wanted = ports::Wanted {
            container_port: port.container_port,
            host_ip: port.host_ip,
            host_ports: Some(port.host_port..=port.host_port),
        };
        match publish::bind(ctx, r, std::slice::from_ref(&wanted)) {
            Ok(one) => bound.extend(one),
            Err(e) => tracing::warn!(instance = %ctx.instance, "{}", e.message),
        }
    }
    let published = bound.published.clone();
    if published != r.published {
        ctx.engine
            .containers
            .update(&ctx.instance, &r.id, |r| r.published = published);
    }
    ctx.engine.containers.publications.open(ctx, &r.id, bound);
}
