//! What builds in progress would leave behind if the server crashed: their
//! temporary RUN containers (a writable layer on the instance's disk, maybe
//! a running process) and the layers they stored that no image uses yet.
//! Listed per instance (`<data-dir>/engine/builds/<instance>.json`) before
//! the work is done; after a restart the listed work is undone: layers when
//! the engine opens, containers when the instance is served again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::ctx::Ctx;

/// How long a killed RUN process may take to go.
const KILL_WAIT: Duration = Duration::from_secs(10);

#[derive(Default, Serialize, Deserialize)]
struct Work {
    /// Container id to its process's pid in the instance (0 before it runs).
    containers: BTreeMap<String, i32>,
    /// diff_ids of stored layers no image has yet.
    layers: BTreeSet<String>,
}

pub struct Pending {
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Work>>,
}

impl Pending {
    /// Open the lists; the layers of every list and the whole lists of
    /// instances not in `keep` are handed back to be discarded now (no build
    /// runs yet).
    pub fn open(dir: &Path, keep: &[String]) -> io::Result<(Pending, Vec<String>)> {
        fs::create_dir_all(dir)?;
        let mut layers = Vec::new();
        let mut loaded = HashMap::new();
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let id = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            let mut work: Work = fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default();
            layers.extend(std::mem::take(&mut work.layers));
            let known = path.extension().is_some_and(|e| e == "json") && keep.contains(&id);
            if known && !work.containers.is_empty() {
                loaded.insert(id, work);
            } else {
                let _ = fs::remove_file(&path);
            }
        }
        let pending = Pending {
            dir: dir.to_owned(),
            loaded: Mutex::new(HashMap::new()),
        };
        for (id, work) in &loaded {
            pending.save(id, work);
        }
        *pending.loaded.lock().unwrap() = loaded;
        Ok((pending, layers))
    }

    fn save(&self, instance: &str, work: &Work) {
        let path = self.dir.join(format!("{instance}.json"));
        let result = if work.containers.is_empty() && work.layers.is_empty() {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            let tmp = path.with_extension("json.tmp");
            serde_json::to_vec(work)
                .map_err(io::Error::other)
                .and_then(|bytes| fs::write(&tmp, bytes))
                .and_then(|()| fs::rename(&tmp, &path))
        };
        if let Err(e) = result {
            tracing::error!(instance, "cannot save its builds' work: {e}");
        }
    }

    fn with(&self, instance: &str, change: impl FnOnce(&mut Work)) {
        let mut loaded = self.loaded.lock().unwrap();
        let work = loaded.entry(instance.to_string()).or_default();
        change(work);
        self.save(instance, work);
        if work.containers.is_empty() && work.layers.is_empty() {
            loaded.remove(instance);
        }
    }

    pub fn container(&self, instance: &str, id: &str, pid: i32) {
        self.with(instance, |w| {
            w.containers.insert(id.to_string(), pid);
        });
    }

    pub fn container_gone(&self, instance: &str, id: &str) {
        self.with(instance, |w| {
            w.containers.remove(id);
        });
    }

    pub fn layer(&self, instance: &str, diff_id: &str) {
        self.with(instance, |w| {
            w.layers.insert(diff_id.to_string());
        });
    }

    pub fn layers_done(&self, instance: &str, diff_ids: &[String]) {
        self.with(instance, |w| {
            for d in diff_ids {
                w.layers.remove(d);
            }
        });
    }

    /// The instance is gone for good.
    pub fn forget(&self, instance: &str) {
        self.loaded.lock().unwrap().remove(instance);
        let _ = fs::remove_file(self.dir.join(format!("{instance}.json")));
    }

    fn containers(&self, instance: &str) -> Vec<(String, i32)> {
        let loaded = self.loaded.lock().unwrap();
        loaded
            .get(instance)
            .map(|w| w.containers.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }
}

/// A restarted server serves the instance again: end the RUN containers
/// builds left (their process, then their layer).
pub async fn recover(ctx: &Ctx) {
    let pending = &ctx.engine.builds;
    for (id, pid) in pending.containers(&ctx.instance) {
        if pid > 0 {
            if let Some(process) = ctx.sandbox.watch(pid).await {
                let _ = ctx.sandbox.signal(pid, libc::SIGKILL).await;
                let _ = tokio::time::timeout(KILL_WAIT, process.exit).await;
            }
        }
        match ctx.sandbox.remove_container_layer(&id).await {
            Ok(()) => pending.container_gone(&ctx.instance, &id),
            Err(e) => {
                tracing::warn!(instance = %ctx.instance, "an interrupted build's container {id}: {e}")
            }
        }
    }
}
