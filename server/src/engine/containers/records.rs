//! The containers of every instance: their records (saved per instance,
//! so they outlive a server restart) and, in the server only, their streams.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::bindings::{PortBinding, PublishedPort};
use super::listeners::Publications;
use super::no_such_container;
use super::streams::Streams;
use crate::engine::ctx::Ctx;
use crate::engine::events;
use crate::engine::reply::DockerError;

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
    /// `bridge` (the default), `host` (the instance's network) or `none`.
    #[serde(default)]
    pub network_mode: String,
    /// What `docker stop` sends first (`--stop-signal`, else the image's).
    #[serde(default)]
    pub stop_signal: String,
    /// Published ports as asked (`-p`), in the order given.
    #[serde(default)]
    pub port_bindings: Vec<PortBinding>,
    /// `-P`: every exposed tcp port gets a free port of the instance.
    #[serde(default)]
    pub publish_all: bool,
    /// Exposed ports of the image and the client (`80/tcp`), sorted.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
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
    /// Whether the kernel's OOM killer ended its last run.
    #[serde(default)]
    pub oom_killed: bool,
    /// Its address on the instance's bridge; None: it shares the instance's
    /// network.
    #[serde(default)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// The instance's ports forwarded to it, while it runs.
    #[serde(default)]
    pub published: Vec<PublishedPort>,
}

/// How many exit codes of auto-removed containers are kept for late waits.
pub(super) const KEEP_GONE: usize = 256;

/// A `docker exec` process, by exec id (not saved: execs end with the
/// server).
#[derive(Clone)]
pub(super) struct Exec {
    pub(super) container: String,
    pub(super) instance: String,
    pub(super) argv: Vec<String>,
    pub(super) env: Vec<String>,
    pub(super) user: String,
    pub(super) working_dir: String,
    pub(super) tty: bool,
    pub(super) running: bool,
    pub(super) exit_code: Option<i32>,
    pub(super) pid: i32,
    pub(super) pty: Option<Arc<sandbox::Pty>>,
}

/// Containers of every instance.
pub struct Containers {
    pub(super) dir: PathBuf,
    pub(super) records: Mutex<HashMap<String, Vec<Record>>>,
    pub(super) streams: Mutex<HashMap<String, Arc<Streams>>>,
    /// Exit codes of auto-removed containers (`docker run --rm` may ask
    /// for it after the container is gone).
    pub(super) gone: Mutex<HashMap<String, i32>>,
    /// Bumped on every state change; waiters look again.
    pub(super) changed: watch::Sender<u64>,
    pub(super) execs: Mutex<HashMap<String, Exec>>,
    /// Listeners of published ports, while their containers run.
    pub(super) publications: Publications,
    /// Bridge addresses of `docker build`'s RUN containers (no records).
    building: Mutex<HashMap<String, Vec<std::net::Ipv4Addr>>>,
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
            publications: Publications::default(),
            building: Mutex::new(HashMap::new()),
        })
    }

    pub(super) fn file(&self, instance: &str) -> PathBuf {
        self.dir.join(format!("{instance}.json"))
    }

    pub(super) fn log_path(&self, instance: &str, id: &str) -> PathBuf {
        self.dir.join(instance).join(format!("{id}.log"))
    }

    /// Run `f` on the instance's records; save when it says it changed them.
    pub(super) fn with<T>(
        &self,
        instance: &str,
        f: impl FnOnce(&mut Vec<Record>) -> (T, bool),
    ) -> T {
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

    pub(super) fn update(&self, instance: &str, id: &str, f: impl FnOnce(&mut Record)) {
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

    /// Give container `id` the lowest bridge address no other container of
    /// the instance holds (under the records' lock, so two starts never
    /// share one).
    pub(super) fn claim_address(&self, instance: &str, id: &str) -> Option<std::net::Ipv4Addr> {
        self.with(instance, |records| {
            let mut held: Vec<_> = records.iter().filter_map(|r| r.ip).collect();
            held.extend(
                self.building
                    .lock()
                    .unwrap()
                    .get(instance)
                    .into_iter()
                    .flatten(),
            );
            let free = (1..)
                .map(sandbox::container_network::nth_address)
                .map_while(|a| a)
                .find(|a| !held.contains(a));
            match (free, records.iter_mut().find(|r| r.id == id)) {
                (Some(address), Some(r)) => {
                    r.ip = Some(address);
                    (Some(address), true)
                }
                _ => (None, false),
            }
        })
    }

    /// A bridge address for a build's RUN container, held until
    /// `release_address`.
    pub fn reserve_address(&self, instance: &str) -> Option<std::net::Ipv4Addr> {
        self.with(instance, |records| {
            let mut building = self.building.lock().unwrap();
            let held = building.entry(instance.to_string()).or_default();
            let free = (1..)
                .map(sandbox::container_network::nth_address)
                .map_while(|a| a)
                .find(|a| !held.contains(a) && !records.iter().any(|r| r.ip == Some(*a)));
            held.extend(free);
            (free, false)
        })
    }

    pub fn release_address(&self, instance: &str, address: std::net::Ipv4Addr) {
        if let Some(held) = self.building.lock().unwrap().get_mut(instance) {
            held.retain(|a| *a != address);
        }
    }

    /// The streams of container `id` (made on first use).
    pub(super) fn streams(&self, id: &str) -> Arc<Streams> {
        self.streams
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Streams::new()))
            .clone()
    }

    /// Close the published ports of the instance's containers (their
    /// sockets keep its network namespace alive).
    pub async fn close_ports(&self, instance: &str) {
        self.publications.close_instance(instance).await;
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
}

pub(super) async fn remove_record(ctx: &Ctx, id: &str) -> Result<(), DockerError> {
    // Closed with its exit already; this covers one that never exited.
    ctx.engine.containers.publications.close(id).await;
    let layer = ctx.sandbox.remove_container_layer(id).await;
    let containers = &ctx.engine.containers;
    events::container(ctx, id, "destroy", &[]);
    containers.with(&ctx.instance, |records| {
        records.retain(|r| r.id != id);
        ((), true)
    });
    // Attached clients see the end.
    containers.streams.lock().unwrap().remove(id);
    containers
        .execs
        .lock()
        .unwrap()
        .retain(|_, e| e.container != id);
    let log = containers.log_path(&ctx.instance, id);
    let _ = fs::remove_file(log.with_extension("log.old"));
    let _ = fs::remove_file(log);
    layer.map_err(DockerError::internal)
}
