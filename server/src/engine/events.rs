//! What happened to an instance's containers and images, for `docker
//! events`: the places that change state emit an event here; each instance
//! keeps its recent ones (for `--since`) and sends them live to whoever
//! listens. Kept in the server's memory only: a restarted server starts
//! with no history, as a restarted Docker daemon does.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::ctx::Ctx;

/// Events kept per instance for `--since`.
const KEEP: usize = 256;

/// Live events a slow listener may fall behind by before it misses some.
const LIVE_BACKLOG: usize = 256;

#[derive(Clone, Debug)]
pub struct Event {
    /// Nanoseconds since the epoch.
    pub time_nano: u64,
    /// `container` or `image`.
    pub kind: &'static str,
    pub action: String,
    /// The container's id, or the image's id or name.
    pub id: String,
    /// The container's image (container events only).
    pub from: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// Docker's JSON shape (with the old `status`, `id` and, for
    /// containers, `from` fields).
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "status": self.action,
            "id": self.id,
            "Type": self.kind,
            "Action": self.action,
            "Actor": { "ID": self.id, "Attributes": self.attributes },
            "scope": "local",
            "time": self.time_nano / 1_000_000_000,
            "timeNano": self.time_nano,
        });
        if let Some(from) = &self.from {
            value["from"] = json!(from);
        }
        value
    }
}

/// One instance's events.
struct Log {
    recent: VecDeque<Arc<Event>>,
    live: broadcast::Sender<Arc<Event>>,
}

impl Log {
    fn new() -> Log {
        Log {
            recent: VecDeque::with_capacity(KEEP),
            live: broadcast::channel(LIVE_BACKLOG).0,
        }
    }
}

#[derive(Default)]
pub struct Events {
    logs: Mutex<HashMap<String, Log>>,
}

impl Events {
    pub fn emit(&self, instance: &str, event: Event) {
        let event = Arc::new(event);
        let mut logs = self.logs.lock().unwrap();
        let log = logs.entry(instance.to_string()).or_insert_with(Log::new);
        if log.recent.len() == KEEP {
            log.recent.pop_front();
        }
        log.recent.push_back(event.clone());
        // No listener is no error.
        let _ = log.live.send(event);
    }

    /// The instance's recent events and a receiver of the ones after them
    /// (taken together, so none is missed or seen twice).
    pub fn subscribe(&self, instance: &str) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let mut logs = self.logs.lock().unwrap();
        let log = logs.entry(instance.to_string()).or_insert_with(Log::new);
        (log.recent.iter().cloned().collect(), log.live.subscribe())
    }

    /// The instance is gone (its listeners see the end of the stream).
    pub fn forget(&self, instance: &str) {
        self.logs.lock().unwrap().remove(instance);
    }
}

pub fn now_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Emit `action` for the instance's container `id` (a no-op if it is gone),
/// with its name, image and labels, and `extra` attributes.
pub fn container(ctx: &Ctx, id: &str, action: &str, extra: &[(&str, String)]) {
    let Ok(record) = ctx.engine.containers.find(&ctx.instance, id) else {
        return;
    };
    let mut attributes: BTreeMap<String, String> =
        record.config.labels.clone().into_iter().collect();
    attributes.insert("name".into(), record.name.clone());
    attributes.insert("image".into(), record.config.image.clone());
    attributes.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let event = Event {
        time_nano: now_nano(),
        kind: "container",
        action: action.to_string(),
        id: record.id,
        from: Some(record.config.image),
        attributes,
    };
    ctx.engine.events.emit(&ctx.instance, event);
}

/// Emit `action` for image `id` (`name` is the reference it concerns).
pub fn image(ctx: &Ctx, id: &str, action: &str, name: &str) {
    let event = Event {
        time_nano: now_nano(),
        kind: "image",
        action: action.to_string(),
        id: id.to_string(),
        from: None,
        attributes: BTreeMap::from([("name".to_string(), name.to_string())]),
    };
    ctx.engine.events.emit(&ctx.instance, event);
}
