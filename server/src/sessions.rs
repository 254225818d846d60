//! Sessions and their instances: creation within limits, expiry, teardown.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use playground_protocol::{InstanceInfo, InstanceStats, InstanceStatus, SessionInfo};
use sandbox::{Instance, InstanceSpec, Limits, Runtime};
use tokio::sync::Mutex;

use crate::error::ApiError;
use crate::terminal::Terminal;

/// Policy the registry enforces.
#[derive(Clone, Debug)]
pub struct Policy {
    pub session_ttl: Duration,
    pub max_instances: u32,
    pub limits: Limits,
}

/// Every live session, by id.
pub struct Sessions {
    runtime: Runtime,
    policy: Policy,
    sessions: RwLock<HashMap<String, Arc<Session>>>,
}

pub struct Session {
    pub id: String,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
    /// Held while instances are added or removed, so limits and names stay exact.
    instances: Mutex<BTreeMap<String, Arc<InstanceEntry>>>,
    ended: AtomicBool,
}

pub struct InstanceEntry {
    pub name: String,
    pub created_at: SystemTime,
    pub instance: Instance,
    /// The instance's shell, started on the first terminal connection.
    pub terminal: Mutex<Option<Arc<Terminal>>>,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

impl InstanceEntry {
    pub fn info(&self, limits: &Limits) -> InstanceInfo {
        let running = self.instance.is_running();
        let stats = running.then(|| {
            let s = self.instance.stats();
            InstanceStats {
                memory_bytes: s.memory_bytes,
                memory_limit_bytes: s.memory_limit_bytes,
                cpu_seconds: s.cpu_usage_ns as f64 / 1e9,
                pids: s.pids,
                pids_limit: limits.pids,
            }
        });
        InstanceInfo {
            name: self.name.clone(),
            hostname: self.instance.hostname().to_string(),
            created_at: rfc3339(self.created_at),
            status: if running {
                InstanceStatus::Running
            } else {
                InstanceStatus::Exited
            },
            ip: None,
            ports: Vec::new(),
            stats,
        }
    }
}

impl Session {
    fn is_live(&self) -> bool {
        !self.ended.load(Ordering::Acquire) && SystemTime::now() < self.expires_at
    }

    pub async fn info(&self, policy: &Policy) -> SessionInfo {
        let instances = self.instances.lock().await;
        SessionInfo {
            id: self.id.clone(),
            created_at: rfc3339(self.created_at),
            expires_at: rfc3339(self.expires_at),
            expires_in_secs: self
                .expires_at
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .as_secs(),
            max_instances: policy.max_instances,
            instances: instances.values().map(|i| i.info(&policy.limits)).collect(),
        }
    }

    pub async fn instance(&self, name: &str) -> Result<Arc<InstanceEntry>, ApiError> {
        self.instances
            .lock()
            .await
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::instance_not_found(name))
    }

    /// Destroy every instance (the session is already out of the registry).
    async fn tear_down(&self) {
        self.ended.store(true, Ordering::Release);
        let mut instances = self.instances.lock().await;
        for (_, entry) in std::mem::take(&mut *instances) {
            if let Err(e) = entry.instance.destroy().await {
                tracing::error!(session = %self.id, "{e}");
            }
        }
    }
}

impl Sessions {
    pub fn new(runtime: Runtime, policy: Policy) -> Self {
        Sessions {
            runtime,
            policy,
            sessions: RwLock::new(HashMap::new()),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn create(&self) -> Arc<Session> {
        let now = SystemTime::now();
        let session = Arc::new(Session {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: now,
            expires_at: now + self.policy.session_ttl,
            instances: Mutex::new(BTreeMap::new()),
            ended: AtomicBool::new(false),
        });
        self.sessions
            .write()
            .unwrap()
            .insert(session.id.clone(), session.clone());
        tracing::info!(session = %session.id, "session created");
        session
    }

    /// A live session; expired or ended ones are not found.
    pub fn get(&self, sid: &str) -> Result<Arc<Session>, ApiError> {
        self.sessions
            .read()
            .unwrap()
            .get(sid)
            .filter(|s| s.is_live())
            .cloned()
            .ok_or_else(|| ApiError::session_not_found(sid))
    }

    /// End a session and destroy its instances.
    pub async fn end(&self, sid: &str) -> Result<(), ApiError> {
        let session = self.sessions.write().unwrap().remove(sid);
        match session {
            Some(session) => {
                session.tear_down().await;
                tracing::info!(session = %sid, "session ended");
                Ok(())
            }
            None => Err(ApiError::session_not_found(sid)),
        }
    }

    /// End every session whose time is up.
    pub async fn end_expired(&self) {
        let now = SystemTime::now();
        let expired: Vec<String> = self
            .sessions
            .read()
            .unwrap()
            .values()
            .filter(|s| s.expires_at <= now)
            .map(|s| s.id.clone())
            .collect();
        for sid in expired {
            let _ = self.end(&sid).await;
        }
    }

    /// End every session (at shutdown).
    pub async fn end_all(&self) {
        let all: Vec<String> = self.sessions.read().unwrap().keys().cloned().collect();
        for sid in all {
            let _ = self.end(&sid).await;
        }
    }

    pub async fn add_instance(&self, session: &Session) -> Result<Arc<InstanceEntry>, ApiError> {
        let mut instances = session.instances.lock().await;
        if !session.is_live() {
            return Err(ApiError::session_not_found(&session.id));
        }
        let max = self.policy.max_instances as usize;
        if instances.len() >= max {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "this session already has the maximum of {max} instances; delete one first"
                ),
            ));
        }
        let name = (1..)
            .map(|n| format!("node{n}"))
            .find(|n| !instances.contains_key(n))
            .expect("a free name exists below the maximum");
        let spec = InstanceSpec {
            id: format!("{}-{name}", session.id.replace('-', "")),
            hostname: name.clone(),
            limits: self.policy.limits.clone(),
        };
        let started = std::time::Instant::now();
        let instance = self.runtime.create(spec).await?;
        tracing::info!(session = %session.id, instance = %name, elapsed_ms = started.elapsed().as_millis() as u64, "instance created");
        let entry = Arc::new(InstanceEntry {
            name: name.clone(),
            created_at: SystemTime::now(),
            instance,
            terminal: Mutex::new(None),
        });
        instances.insert(name, entry.clone());
        Ok(entry)
    }

    pub async fn remove_instance(&self, session: &Session, name: &str) -> Result<(), ApiError> {
        let entry = session
            .instances
            .lock()
            .await
            .remove(name)
            .ok_or_else(|| ApiError::instance_not_found(name))?;
        entry.instance.destroy().await?;
        tracing::info!(session = %session.id, instance = %name, "instance deleted");
        Ok(())
    }
}
