//! `docker run / ps / logs / stop / kill / rm / wait / attach / inspect` on
//! an instance's containers (nested sandboxes, see `sandbox::RunSpec`).
//!
//! Records are saved per instance (`<data>/engine/containers/<instance>.json`)
//! so they outlive a server restart; a container's output goes to a bounded
//! log file next to them (`<instance>/<id>.log`, JSON lines) and to attached
//! clients. What lives only in the server: the process's pipes or terminal
//! (a restarted server finds running containers and their exits, but no
//! longer their output).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch};

use super::reply::{DockerError, Reply};
use super::routes::Ctx;

/// Largest log file per container before it is rotated once.
const MAX_LOG: u64 = 8 << 20;

/// What `docker create` asked for (the parts we honour).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Config {
    pub image: String,
    pub image_id: String,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub binds: Vec<String>,
    pub auto_remove: bool,
    pub labels: HashMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: String,
    pub config: Config,
    pub running: bool,
    /// Pid of its first process in the instance (when running).
    pub pid: i32,
    pub exit_code: i32,
    pub started_at: String,
    pub finished_at: String,
    /// Whether it ever started (created vs. exited).
    pub started: bool,
    /// How many times it started (run `runs` is the current or last one).
    #[serde(default)]
    pub runs: u64,
}

/// One piece of output: 1 stdout, 2 stderr.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub stream: u8,
    pub data: Vec<u8>,
}

/// What attached clients are sent: output, and the end of a run.
#[derive(Clone, Debug)]
pub enum Output {
    Chunk(Chunk),
    End,
}

/// The current run's input side (nothing between runs).
#[derive(Clone, Default)]
struct RunIo {
    /// Absent unless the container keeps stdin open (`-i`).
    stdin: Option<mpsc::Sender<Vec<u8>>>,
    pty: Option<Arc<sandbox::Pty>>,
}

/// A container's streams in the server. They outlive its runs, so a client
/// that attaches before the start (`docker run`) sees the whole run and
/// its end.
struct Streams {
    output: broadcast::Sender<Output>,
    run: watch::Sender<RunIo>,
    /// `runs` when a client last attached to the stopped container: the
    /// run its `wait?condition=next-exit` means, even if that wait arrives
    /// after the (quick) run ended.
    attached_at: Mutex<Option<u64>>,
}

impl Streams {
    fn new() -> Streams {
        Streams {
            output: broadcast::channel(1024).0,
            run: watch::channel(RunIo::default()).0,
            attached_at: Mutex::new(None),
        }
    }
}

/// How many exit codes of auto-removed containers are kept for late waits.
const KEEP_GONE: usize = 256;

/// Containers of every instance.
pub struct Containers {
    dir: PathBuf,
    records: Mutex<HashMap<String, Vec<Record>>>,
    streams: Mutex<HashMap<String, Arc<Streams>>>,
    /// Exit codes of auto-removed containers (`docker run --rm` may ask
    /// for it after the container is gone).
    gone: Mutex<HashMap<String, i32>>,
    /// Bumped on every state change; waiters look again.
    changed: watch::Sender<u64>,
    execs: Mutex<HashMap<String, Exec>>,
}

#[derive(Clone)]
struct Exec {
    container: String,
    instance: String,
    argv: Vec<String>,
    env: Vec<String>,
    user: String,
    working_dir: String,
    tty: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: i32,
    pty: Option<Arc<sandbox::Pty>>,
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

fn random_id() -> String {
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

impl Containers {
    pub fn open(dir: &Path, keep: &[String]) -> std::io::Result<Containers> {
        fs::create_dir_all(dir)?;
        for entry in fs::read_dir(dir)?.flatten() {
            let path = entry.path();
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            if !keep.contains(&stem) {
                if path.is_dir() {
                    let _ = fs::remove_dir_all(&path);
                } else {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        Ok(Containers {
            dir: dir.to_owned(),
            records: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            gone: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
            execs: Mutex::new(HashMap::new()),
        })
    }

    fn file(&self, instance: &str) -> PathBuf {
        self.dir.join(format!("{instance}.json"))
    }

    fn log_path(&self, instance: &str, id: &str) -> PathBuf {
        self.dir.join(instance).join(format!("{id}.log"))
    }

    /// Run `f` on the instance's records; save when it says it changed them.
    fn with<T>(&self, instance: &str, f: impl FnOnce(&mut Vec<Record>) -> (T, bool)) -> T {
        let mut all = self.records.lock().unwrap();
        let records = all.entry(instance.to_string()).or_insert_with(|| {
            fs::read(self.file(instance))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default()
        });
        let (result, changed) = f(records);
        if changed {
            let path = self.file(instance);
            let tmp = path.with_extension("json.tmp");
            let saved = serde_json::to_vec(records)
                .map_err(std::io::Error::other)
                .and_then(|b| fs::write(&tmp, b))
                .and_then(|()| fs::rename(&tmp, &path));
            if let Err(e) = saved {
                tracing::error!(instance, "cannot save its containers: {e}");
            }
            self.changed.send_modify(|n| *n += 1);
        }
        result
    }

    pub fn list(&self, instance: &str) -> Vec<Record> {
        self.with(instance, |r| (r.clone(), false))
    }

    /// The record `name` stands for: full id, unique id prefix or name.
    pub fn find(&self, instance: &str, name: &str) -> Result<Record, DockerError> {
        let name = name.trim_start_matches('/');
        let records = self.list(instance);
        if let Some(r) = records.iter().find(|r| r.id == name || r.name == name) {
            return Ok(r.clone());
        }
        let matches: Vec<&Record> = records
            .iter()
            .filter(|r| !name.is_empty() && r.id.starts_with(name))
            .collect();
        match matches[..] {
            [one] => Ok(one.clone()),
            [] => Err(no_such_container(name)),
            _ => Err(DockerError::new(
                StatusCode::NOT_FOUND,
                format!("Multiple IDs found with provided prefix: {name}"),
            )),
        }
    }

    /// Whether a container of the instance uses image `id`.
    pub fn using_image(&self, instance: &str, image_id: &str) -> Option<String> {
        self.list(instance)
            .into_iter()
            .find(|r| r.config.image_id == image_id)
            .map(|r| r.id)
    }

    fn update(&self, instance: &str, id: &str, f: impl FnOnce(&mut Record)) {
        self.with(instance, |records| {
            match records.iter_mut().find(|r| r.id == id) {
                Some(r) => {
                    f(r);
                    ((), true)
                }
                None => ((), false),
            }
        })
    }

    /// The streams of container `id` (made on first use).
    fn streams(&self, id: &str) -> Arc<Streams> {
        self.streams
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Streams::new()))
            .clone()
    }

    /// The instance is gone: forget its containers.
    pub fn forget(&self, instance: &str) {
        let records = self.records.lock().unwrap().remove(instance);
        let mut streams = self.streams.lock().unwrap();
        for r in records.unwrap_or_default() {
            streams.remove(&r.id);
        }
        drop(streams);
        let _ = fs::remove_file(self.file(instance));
        let _ = fs::remove_dir_all(self.dir.join(instance));
    }

    fn append_log(&self, instance: &str, id: &str, chunk: &Chunk) {
        let path = self.log_path(instance, id);
        if fs::metadata(&path).is_ok_and(|m| m.len() > MAX_LOG) {
            let _ = fs::rename(&path, path.with_extension("log.old"));
        }
        let line = json!({
            "s": chunk.stream,
            "t": now(),
            "d": String::from_utf8_lossy(&chunk.data),
        });
        let _ = fs::create_dir_all(path.parent().expect("in a directory"));
        if let Ok(mut file) = fs::OpenOptions::new().create(true).append(true).open(&path) {
            let _ = writeln!(file, "{line}");
        }
    }

    fn read_log(&self, instance: &str, id: &str) -> Vec<(u8, String, String)> {
        let path = self.log_path(instance, id);
        let mut out = Vec::new();
        for p in [path.with_extension("log.old"), path] {
            let Ok(text) = fs::read_to_string(&p) else {
                continue;
            };
            for line in text.lines() {
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    out.push((
                        v["s"].as_u64().unwrap_or(1) as u8,
                        v["t"].as_str().unwrap_or("").to_string(),
                        v["d"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        }
        out
    }
}

/// Docker's 8-byte header before each piece of a multiplexed stream.
fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
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

/// POST /containers/create
pub fn create(ctx: &Ctx, query: &HashMap<String, String>, body: &[u8]) -> Reply {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| DockerError::new(StatusCode::BAD_REQUEST, format!("bad body: {e}")))?;
    let image = body["Image"].as_str().unwrap_or("").to_string();
    if image.is_empty() {
        return Err(DockerError::new(StatusCode::BAD_REQUEST, "no image given"));
    }
    let image_id = super::images::resolve(ctx, &image)?;
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
    let binds = strings(&body["HostConfig"]["Binds"]);
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
    Ok((
        StatusCode::CREATED,
        Json(json!({ "Id": id, "Warnings": [] })),
    )
        .into_response())
}

/// A name like Docker's (`adjective_noun`), from the id.
fn generated_name(id: &str) -> String {
    const LEFT: [&str; 8] = [
        "brave", "calm", "eager", "gentle", "happy", "jolly", "keen", "quiet",
    ];
    const RIGHT: [&str; 8] = [
        "turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth", "liskov",
    ];
    let n = u32::from_str_radix(&id[..6], 16).unwrap_or(0) as usize;
    format!("{}_{}{}", LEFT[n % 8], RIGHT[(n / 8) % 8], n % 1000)
}

/// The argv of a container's first process.
fn argv(config: &Config) -> Vec<String> {
    config
        .entrypoint
        .iter()
        .chain(config.cmd.iter())
        .cloned()
        .collect()
}

fn base_env(config: &Config, hostname: &str, tty: bool) -> Vec<String> {
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

fn binds(config: &Config) -> Vec<sandbox::Bind> {
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
    let record = ctx.engine.containers.find(&ctx.instance, name)?;
    if record.running {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let details = ctx
        .engine
        .store
        .inspect(&record.config.image_id)
        .map_err(|e| DockerError::internal(format!("image of the container: {e}")))?;
    let hostname = record.id[..12].to_string();
    let spec = sandbox::RunSpec {
        id: record.id.clone(),
        hostname: hostname.clone(),
        layers: details.layers.iter().map(|l| l.path.clone()).collect(),
        disk_image: PathBuf::new(),
        binds: binds(&record.config),
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
    let process = ctx.sandbox.run_container(spec).await.map_err(|e| {
        DockerError::new(
            StatusCode::BAD_REQUEST,
            format!("failed to create task for container: {e}"),
        )
    })?;
    let containers = ctx.engine.containers.clone();
    let id = record.id.clone();
    let streams = containers.streams(&id);
    let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(64);
    let (pty, pipes) = match process.io {
        sandbox::ProcessIo::Tty(master) => (
            Some(Arc::new(
                sandbox::Pty::new(master).map_err(DockerError::internal)?,
            )),
            None,
        ),
        sandbox::ProcessIo::Pipes {
            stdin,
            stdout,
            stderr,
        } => (None, Some((stdin, stdout, stderr))),
    };
    // Without -i its stdin ends at once (the pump closes it when the
    // last sender is gone).
    let stdin = record.config.open_stdin.then_some(stdin_tx);
    streams.run.send_replace(RunIo {
        stdin,
        pty: pty.clone(),
    });
    containers.update(&ctx.instance, &id, |r| {
        r.running = true;
        r.started = true;
        r.runs += 1;
        r.pid = process.pid;
        r.started_at = now();
    });
    let ctx2 = ctx.clone();
    tokio::spawn(async move {
        pump(&ctx2, &id, pty, pipes, stdin_rx, streams, process.exit).await;
    });
    Ok(StatusCode::NO_CONTENT.into_response())
}

type Pipes = (
    std::os::fd::OwnedFd,
    std::os::fd::OwnedFd,
    std::os::fd::OwnedFd,
);

/// Copy the container's output to its log and attached clients and its
/// stdin from them, until it exits; then record the exit.
async fn pump(
    ctx: &Ctx,
    id: &str,
    pty: Option<Arc<sandbox::Pty>>,
    pipes: Option<Pipes>,
    mut stdin_rx: mpsc::Receiver<Vec<u8>>,
    streams: Arc<Streams>,
    exit: tokio::sync::oneshot::Receiver<i32>,
) {
    let emit = {
        let containers = ctx.engine.containers.clone();
        let instance = ctx.instance.clone();
        let id = id.to_string();
        let streams = streams.clone();
        move |chunk: Chunk| {
            containers.append_log(&instance, &id, &chunk);
            let _ = streams.output.send(Output::Chunk(chunk));
        }
    };
    let mut readers = Vec::new();
    match (pty, pipes) {
        (Some(pty), _) => {
            let writer = pty.clone();
            tokio::spawn(async move {
                while let Some(data) = stdin_rx.recv().await {
                    if writer.write_all(&data).await.is_err() {
                        break;
                    }
                }
            });
            let emit = emit.clone();
            readers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = pty.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    emit(Chunk {
                        stream: 1,
                        data: buf[..n].to_vec(),
                    });
                }
            }));
        }
        (None, Some((stdin, stdout, stderr))) => {
            if let Ok(mut stdin) = tokio::net::unix::pipe::Sender::from_owned_fd(stdin) {
                tokio::spawn(async move {
                    // Dropping the sender (stdin closed) closes the pipe.
                    while let Some(data) = stdin_rx.recv().await {
                        if stdin.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                });
            }
            for (fd, stream) in [(stdout, 1u8), (stderr, 2u8)] {
                let emit = emit.clone();
                readers.push(tokio::spawn(async move {
                    let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
                        return;
                    };
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = pipe.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        emit(Chunk {
                            stream,
                            data: buf[..n].to_vec(),
                        });
                    }
                }));
            }
        }
        _ => {}
    }
    let code = exit.await.unwrap_or(255);
    // The rest of the output, unless something in the background keeps
    // the pipes open.
    for reader in readers {
        let abort = reader.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_millis(300), reader)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    exited(ctx, id, code).await;
}

/// Record the exit of container `id`, end its attached streams; remove it
/// if it asked for that.
async fn exited(ctx: &Ctx, id: &str, code: i32) {
    let containers = &ctx.engine.containers;
    let streams = containers.streams(id);
    streams.run.send_replace(RunIo::default());
    let mut auto_remove = false;
    containers.update(&ctx.instance, id, |r| {
        r.running = false;
        r.pid = 0;
        r.exit_code = code;
        r.finished_at = now();
        auto_remove = r.config.auto_remove;
    });
    let _ = streams.output.send(Output::End);
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

async fn remove_record(ctx: &Ctx, id: &str) -> Result<(), DockerError> {
    let layer = ctx.sandbox.remove_container_layer(id).await;
    let containers = &ctx.engine.containers;
    containers.with(&ctx.instance, |records| {
        records.retain(|r| r.id != id);
        ((), true)
    });
    // Attached clients see the end.
    containers.streams.lock().unwrap().remove(id);
    let log = containers.log_path(&ctx.instance, id);
    let _ = fs::remove_file(log.with_extension("log.old"));
    let _ = fs::remove_file(log);
    layer.map_err(DockerError::internal)
}

/// Wait until `done` holds for the container's record (or it is gone:
/// `None`).
async fn wait_for(ctx: &Ctx, id: &str, done: impl Fn(&Record) -> bool) -> Option<Record> {
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
pub async fn wait(ctx: &Ctx, name: &str, query: &HashMap<String, String>) -> Reply {
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
    let code = match condition {
        "removed" => {
            let mut last = record.exit_code;
            let mut changed = containers.changed.subscribe();
            loop {
                match containers.find(&ctx.instance, &record.id) {
                    Ok(r) => last = r.exit_code,
                    Err(_) => break,
                }
                if changed.changed().await.is_err() {
                    break;
                }
            }
            containers
                .gone
                .lock()
                .unwrap()
                .get(&record.id)
                .copied()
                .unwrap_or(last)
        }
        "next-exit" => {
            // The run the client means: the running one, the one after its
            // attach (its start may have come and gone before this wait),
            // or the next.
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
            wait_for(ctx, &record.id, |r| {
                r.runs > target || (r.runs == target && !r.running)
            })
            .await
            .map_or(record.exit_code, |r| r.exit_code)
        }
        _ => wait_for(ctx, &record.id, |r| !r.running)
            .await
            .map_or(record.exit_code, |r| r.exit_code),
    };
    Ok(status_code(code))
}

fn status_code(code: i32) -> Response {
    Json(json!({ "StatusCode": code, "Error": null })).into_response()
}

/// The response that hands the connection over to the raw stream, and the
/// upgraded connection once hyper lets go of it.
fn hijack(req: &mut Request<Body>) -> (Response, hyper::upgrade::OnUpgrade) {
    let upgrade = hyper::upgrade::on(req);
    let response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, "application/vnd.docker.raw-stream")
        .body(Body::empty())
        .expect("a valid response");
    (response, upgrade)
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
    let streams = ctx.engine.containers.streams(&record.id);
    // Subscribed before the answer, so a start right after misses nothing.
    let mut output = streams.output.subscribe();
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
                if stdin_once {
                    streams.run.send_modify(|r| r.stdin = None);
                }
            });
        }
        loop {
            match output.recv().await {
                Ok(Output::Chunk(chunk)) => {
                    let bytes = if tty {
                        chunk.data
                    } else {
                        frame(chunk.stream, &chunk.data)
                    };
                    if write.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Ok(Output::End) | Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        let _ = write.flush().await;
        let _ = write.shutdown().await;
    });
    Ok(response)
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

/// GET /containers/{id}/logs
pub fn logs(ctx: &Ctx, name: &str, query: &HashMap<String, String>) -> Reply {
    let record = ctx.engine.containers.find(&ctx.instance, name)?;
    let (want_out, want_err) = (flag(query, "stdout"), flag(query, "stderr"));
    let timestamps = flag(query, "timestamps");
    let follow = flag(query, "follow");
    let tty = record.config.tty;
    let encode = move |stream: u8, time: &str, data: &[u8]| -> Option<Vec<u8>> {
        if (stream == 1 && !want_out) || (stream == 2 && !want_err) {
            return None;
        }
        let mut payload = Vec::new();
        if timestamps {
            payload.extend_from_slice(time.as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(data);
        Some(if tty {
            payload
        } else {
            frame(stream, &payload)
        })
    };
    // Subscribe first so nothing falls between the file and the stream.
    let live = (follow && record.running).then(|| {
        ctx.engine
            .containers
            .streams(&record.id)
            .output
            .subscribe()
    });
    let mut lines = ctx.engine.containers.read_log(&ctx.instance, &record.id);
    if let Some(tail) = query.get("tail").and_then(|t| t.parse::<usize>().ok()) {
        // Docker counts lines; we count output pieces, which for line-wise
        // writers are lines.
        let skip = lines.len().saturating_sub(tail);
        lines.drain(..skip);
    }
    let mut body = Vec::new();
    for (stream, time, data) in &lines {
        if let Some(b) = encode(*stream, time, data.as_bytes()) {
            body.extend(b);
        }
    }
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let Some(mut live) = live else {
        return Ok(([(header::CONTENT_TYPE, content_type)], body).into_response());
    };
    let stream = async_stream(body, move |tx| async move {
        loop {
            match live.recv().await {
                Ok(Output::Chunk(chunk)) => {
                    if let Some(b) = encode(chunk.stream, &now(), &chunk.data) {
                        if tx.send(b).await.is_err() {
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Ok(Output::End) | Err(_) => return,
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, content_type)], stream).into_response())
}

/// A streamed body: `first`, then what `produce` sends.
fn async_stream<F, Fut>(first: Vec<u8>, produce: F) -> Body
where
    F: FnOnce(mpsc::Sender<Vec<u8>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
    let first_tx = tx.clone();
    tokio::spawn(async move {
        if !first.is_empty() {
            let _ = first_tx.send(first).await;
        }
    });
    tokio::spawn(produce(tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(bytes_of(b)), rx))
    });
    Body::from_stream(stream)
}

fn bytes_of(v: Vec<u8>) -> axum::body::Bytes {
    axum::body::Bytes::from(v)
}

fn state_text(r: &Record) -> &'static str {
    if r.running {
        "running"
    } else if r.started {
        "exited"
    } else {
        "created"
    }
}

fn unix(time: &str) -> i64 {
    humantime::parse_rfc3339_weak(time.split('.').next().unwrap_or(time))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

fn ago(time: &str) -> String {
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

fn status_text(r: &Record) -> String {
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
                "Ports": [],
                "Labels": r.config.labels,
                "State": state_text(r),
                "Status": status_text(r),
                "HostConfig": {"NetworkMode": "host"},
                "Mounts": [],
            })
        })
        .collect();
    Ok(Json(Value::Array(items)).into_response())
}

fn shell_words(argv: &[String]) -> String {
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
            "OOMKilled": false,
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
            // The container shares the instance's network namespace; bridge
            // networks and published ports are not available yet.
            "NetworkMode": "host",
            "PortBindings": {},
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
        },
        "NetworkSettings": {
            "Networks": {"host": {"NetworkID": "host", "IPAddress": ""}},
            "Ports": {},
            "IPAddress": "",
            "Note": "containers share the instance's network (like --network host); bridge networks and -p are not available yet",
        },
    }))
    .into_response())
}

/// Send `signal` to the container's first process.
async fn signal(ctx: &Ctx, r: &Record, signal: i32) -> Result<(), DockerError> {
    ctx.sandbox
        .signal(r.pid, signal)
        .await
        .map_err(DockerError::internal)
}

/// Stop: SIGTERM, then SIGKILL after `t` seconds.
async fn stop_record(ctx: &Ctx, r: &Record, timeout: u64) -> Result<(), DockerError> {
    if !r.running {
        return Ok(());
    }
    signal(ctx, r, libc::SIGTERM).await?;
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
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn signal_number(name: &str) -> Option<i32> {
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

/// A restarted server: containers that were running either still are
/// (init still tracks them: watch for their exit) or ended meanwhile.
pub async fn recover(ctx: &Ctx) {
    for r in ctx.engine.containers.list(&ctx.instance) {
        if !r.running {
            continue;
        }
        match ctx.sandbox.watch(r.pid).await {
            Some(exit) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let code = exit.await.unwrap_or(255);
                    exited(&ctx, &r.id, code).await;
                });
            }
            None => exited(ctx, &r.id, 255).await,
        }
    }
}

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

fn find_exec(ctx: &Ctx, id: &str) -> Result<Exec, DockerError> {
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
    let (pty, pipes) = match process.io {
        sandbox::ProcessIo::Tty(master) => (
            Some(Arc::new(
                sandbox::Pty::new(master).map_err(DockerError::internal)?,
            )),
            None,
        ),
        sandbox::ProcessIo::Pipes {
            stdin,
            stdout,
            stderr,
        } => (None, Some((stdin, stdout, stderr))),
    };
    {
        let mut execs = ctx.engine.containers.execs.lock().unwrap();
        if let Some(e) = execs.get_mut(id) {
            e.running = true;
            e.pid = process.pid;
            e.pty = pty.clone();
        }
    }
    let (output, _) = broadcast::channel(1024);
    let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(64);
    let mut rx = output.subscribe();
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
    tokio::spawn(async move {
        let code = pump_exec(pty, pipes, stdin_rx, output, exit).await;
        finish(code);
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
        loop {
            match rx.recv().await {
                Ok(chunk) => {
                    let bytes = if tty {
                        chunk.data
                    } else {
                        frame(chunk.stream, &chunk.data)
                    };
                    if write.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        // The exit code is recorded before the client asks for it.
        let _ = done_rx.await;
        let _ = write.flush().await;
        let _ = write.shutdown().await;
    });
    Ok(response)
}

/// Like `pump`, for an exec'd process (its output is not logged).
async fn pump_exec(
    pty: Option<Arc<sandbox::Pty>>,
    pipes: Option<Pipes>,
    mut stdin_rx: mpsc::Receiver<Vec<u8>>,
    output: broadcast::Sender<Chunk>,
    exit: tokio::sync::oneshot::Receiver<i32>,
) -> i32 {
    let mut readers = Vec::new();
    match (pty, pipes) {
        (Some(pty), _) => {
            let writer = pty.clone();
            tokio::spawn(async move {
                while let Some(data) = stdin_rx.recv().await {
                    if writer.write_all(&data).await.is_err() {
                        break;
                    }
                }
            });
            let output = output.clone();
            readers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = pty.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let _ = output.send(Chunk {
                        stream: 1,
                        data: buf[..n].to_vec(),
                    });
                }
            }));
        }
        (None, Some((stdin, stdout, stderr))) => {
            if let Ok(mut stdin) = tokio::net::unix::pipe::Sender::from_owned_fd(stdin) {
                tokio::spawn(async move {
                    while let Some(data) = stdin_rx.recv().await {
                        if stdin.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                });
            }
            for (fd, stream) in [(stdout, 1u8), (stderr, 2u8)] {
                let output = output.clone();
                readers.push(tokio::spawn(async move {
                    let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
                        return;
                    };
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = pipe.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let _ = output.send(Chunk {
                            stream,
                            data: buf[..n].to_vec(),
                        });
                    }
                }));
            }
        }
        _ => {}
    }
    let code = exit.await.unwrap_or(255);
    for reader in readers {
        let abort = reader.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_millis(300), reader)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    code
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
