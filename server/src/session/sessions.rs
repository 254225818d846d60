//! Sessions and their instances: creation within limits, networks and
//! names, expiry, teardown, and the events each session publishes.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, RwLock};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use playground_protocol::{
    InstanceInfo, InstanceStats, InstanceStatus, PortInfo, SessionEvent, SessionInfo, TemplateInfo,
};
use sandbox::{Egress, Instance, InstanceSpec, Limits, Network, Networks, Profile, Runtime};
use tokio::sync::{broadcast, Mutex};

use crate::engine::Engine;
use crate::error::ApiError;
use crate::session::admission::{about_minutes, Capacity, ConnectionPermit, Connections};
use crate::session::help::Help;
use crate::session::progress::Tutorial;
use crate::session::scenarios::Catalog;
use crate::session::ssh_keys::{SshKey, SshKeys};
use crate::session::store::{Store, StoredInstance, StoredSession};
use crate::session::terminal::Terminal;

/// Builds the link for a port: (session id, instance name, port) -> URL.
pub type PortUrl = Arc<dyn Fn(&str, &str, u16) -> String + Send + Sync>;

/// Policy the registry enforces.
#[derive(Clone)]
pub struct Policy {
    pub session_ttl: Duration,
    /// The longest a session may live in total, extensions included.
    pub session_max: Duration,
    /// Built-in and configured templates.
    pub templates: Vec<TemplateInfo>,
    /// The tutorials of `--scenarios`.
    pub scenarios: Arc<Catalog>,
    pub max_instances: u32,
    pub limits: Limits,
    pub port_url: PortUrl,
    /// Largest file upload, in bytes.
    pub max_upload_bytes: u64,
    /// Live sessions one client address may hold (0: no limit).
    pub max_sessions_per_client: u32,
    /// Open WebSockets one session may have.
    pub max_connections_per_session: u32,
    /// The instance profile when a template does not choose one.
    pub profile: Profile,
    /// Each profile's image.
    pub images: Images,
    /// Where the SSH server listens, once it does (`--ssh-listen`).
    pub ssh: std::sync::OnceLock<playground_protocol::SshAccess>,
}

/// The read-only root file system each profile's instances start from.
#[derive(Clone, Debug)]
pub struct Images {
    pub strict: std::path::PathBuf,
    pub nesting: std::path::PathBuf,
}

impl Images {
    fn root(&self, profile: Profile) -> std::path::PathBuf {
        match profile {
            Profile::Strict => self.strict.clone(),
            Profile::Nesting => self.nesting.clone(),
        }
    }
}

/// Every live session, by id.
pub struct Sessions {
    runtime: Runtime,
    networks: Networks,
    store: Store,
    policy: Policy,
    capacity: Capacity,
    sessions: RwLock<HashMap<String, Arc<Session>>>,
    /// Serves every strict instance's /var/run/docker.sock.
    engine: Arc<Engine>,
    /// The registry mirror every nesting instance's dockerd pulls through.
    mirror: axum::Router,
}

pub struct Session {
    pub id: String,
    /// Capability for the read-only view of this session.
    pub viewer_id: String,
    pub created_at: SystemTime,
    /// The address that created it (unknown for sessions of an earlier run).
    pub client: Option<IpAddr>,
    /// Its open terminals and event streams.
    connections: Connections,
    /// Moves later when the session is extended.
    expires_at: StdMutex<SystemTime>,
    network: Network,
    /// Held while instances are added or removed, so limits and names stay exact.
    instances: Mutex<BTreeMap<String, Arc<InstanceEntry>>>,
    ended: AtomicBool,
    events: broadcast::Sender<SessionEvent>,
    /// Its scenario and the learner's progress, when started from one.
    pub tutorial: Option<Arc<Tutorial>>,
    /// Someone else typing in its terminals, while its owner agrees.
    pub help: Help,
    /// Unix seconds of the owner's last keystroke in a terminal (0: none yet).
    pub last_input: Arc<AtomicU64>,
    /// Public keys its owner added for SSH.
    pub ssh_keys: SshKeys,
}

pub struct InstanceEntry {
    pub name: String,
    pub created_at: SystemTime,
    pub ip: Ipv4Addr,
    pub instance: Instance,
    pub profile: Profile,
    /// The instance's shells, one per terminal tab, each started on the
    /// first connection to its tab. Tab 0's is the one file paths follow.
    pub terminals: Mutex<[Option<Arc<Terminal>>; TABS]>,
}

/// Where a new session's first instances take their share of the host from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Draw {
    /// What is free, within the per-address limit of sessions.
    Free,
    /// A reservation (a class's seats): no per-address limit, since a
    /// classroom often shares one address.
    Reserved,
}

/// The ids a new session takes when a cluster's gateway chose them (it
/// records which node holds the session before the node makes it); `None`
/// everywhere else, and the session model draws its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionIds {
    pub id: String,
    pub viewer_id: String,
}

/// Terminal tabs per instance (`?tab=0` to `?tab=3`).
pub const TABS: usize = 4;

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

impl InstanceEntry {
    /// The shell of terminal tab `tab`, started (at `cols` x `rows`) if it
    /// has none or it exited; and whether it was started now.
    pub async fn terminal(
        &self,
        tab: usize,
        cols: u16,
        rows: u16,
    ) -> Result<(Arc<Terminal>, bool), ApiError> {
        let mut terminals = self.terminals.lock().await;
        let slot = &mut terminals[tab];
        match slot.as_ref() {
            Some(t) if !t.has_exited() => Ok((t.clone(), false)),
            _ => {
                let t = Terminal::start(&self.instance, Vec::new(), cols, rows).await?;
                *slot = Some(t.clone());
                Ok((t, true))
            }
        }
    }

    /// Start a shell (at `cols` x `rows`, `env` added) in the first tab that
    /// has none running: an SSH login's, which the page then shows as a tab.
    pub async fn open_free_tab(
        &self,
        env: Vec<String>,
        cols: u16,
        rows: u16,
    ) -> Result<(usize, Arc<Terminal>), ApiError> {
        let mut terminals = self.terminals.lock().await;
        let Some(tab) = (terminals.iter()).position(|t| t.as_ref().is_none_or(|t| t.has_exited()))
        else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "{} already has {TABS} shells open, the most an instance has; \
                     exit one (on the page or over SSH) and log in again",
                    self.name
                ),
            ));
        };
        let t = Terminal::start(&self.instance, env, cols, rows).await?;
        terminals[tab] = Some(t.clone());
        Ok((tab, t))
    }

    pub fn stats(&self, limits: &Limits) -> InstanceStats {
        let s = self.instance.stats();
        InstanceStats {
            memory_bytes: s.memory_bytes,
            memory_limit_bytes: s.memory_limit_bytes,
            cpu_seconds: s.cpu_usage_ns as f64 / 1e9,
            pids: s.pids,
            pids_limit: limits.pids,
        }
    }

    pub fn ports(&self, sid: &str, policy: &Policy) -> Vec<PortInfo> {
        self.instance
            .listening_ports()
            .unwrap_or_default()
            .into_iter()
            .map(|port| PortInfo {
                port,
                url: (policy.port_url)(sid, &self.name, port),
            })
            .collect()
    }

    pub fn info(&self, sid: &str, policy: &Policy) -> InstanceInfo {
        let running = self.instance.is_running();
        InstanceInfo {
            name: self.name.clone(),
            hostname: self.instance.hostname().to_string(),
            created_at: rfc3339(self.created_at),
            status: if running {
                InstanceStatus::Running
            } else {
                InstanceStatus::Exited
            },
            ip: Some(self.ip.to_string()),
            ports: if running {
                self.ports(sid, policy)
            } else {
                Vec::new()
            },
            stats: running.then(|| self.stats(&policy.limits)),
            profile: self.profile.name().to_string(),
            shells: self.shells(),
        }
    }

    /// One past the highest tab whose shell runs (0: none). Read without
    /// waiting: while a tab's shell is being started the answer is the one
    /// from before it (the start then publishes the change).
    pub fn shells(&self) -> u8 {
        let Ok(terminals) = self.terminals.try_lock() else {
            return 0;
        };
        (terminals.iter())
            .rposition(|t| t.as_ref().is_some_and(|t| !t.has_exited()))
            .map_or(0, |i| i as u8 + 1)
    }
}

impl Session {
    fn is_live(&self) -> bool {
        !self.ended.load(Ordering::Acquire) && SystemTime::now() < self.expires_at()
    }

    pub fn expires_at(&self) -> SystemTime {
        *self.expires_at.lock().unwrap()
    }

    pub fn expires_in(&self) -> Duration {
        self.expires_at()
            .duration_since(SystemTime::now())
            .unwrap_or_default()
    }

    /// The expiry an extension would give now: one more TTL, never past
    /// the session's maximum length.
    fn extended_expiry(&self, policy: &Policy) -> SystemTime {
        (self.expires_at() + policy.session_ttl).min(self.created_at + policy.session_max)
    }

    /// Whether extending would add (at least a second of) time.
    pub fn can_extend(&self, policy: &Policy) -> bool {
        unix_secs(self.extended_expiry(policy)) > unix_secs(self.expires_at())
    }

    /// The session as its owner (or, with `view`, a read-only viewer) sees it.
    pub async fn info(&self, policy: &Policy, view: bool) -> SessionInfo {
        let instances = self.instances.lock().await;
        SessionInfo {
            id: self.id.clone(),
            created_at: rfc3339(self.created_at),
            expires_at: rfc3339(self.expires_at()),
            expires_in_secs: self.expires_in().as_secs(),
            max_instances: policy.max_instances,
            viewer_id: if view {
                String::new()
            } else {
                self.viewer_id.clone()
            },
            can_extend: self.can_extend(policy),
            read_only: view,
            // A marker name that survives any case folding of the link.
            port_url_template: (policy.port_url)(&self.id, "pgxinstancexpg", 65535)
                .replace("pgxinstancexpg", "{instance}")
                .replace("65535", "{port}"),
            instances: instances
                .values()
                .map(|i| i.info(&self.id, policy))
                .collect(),
            ssh: if view {
                None
            } else {
                policy.ssh.get().cloned()
            },
            tutorial: self.tutorial.as_ref().map(|t| t.state()),
            help: self.help.state(),
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

    /// The instances now (a copy of the list).
    pub async fn instances(&self) -> Vec<Arc<InstanceEntry>> {
        self.instances.lock().await.values().cloned().collect()
    }

    /// Receive this session's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    pub fn publish(&self, event: SessionEvent) {
        // No subscribers is fine.
        let _ = self.events.send(event);
    }

    /// Whether a page (or any client) has a terminal or the event stream
    /// of this session open.
    pub fn is_watched(&self) -> bool {
        self.connections.open() > 0
    }

    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Count one more WebSocket of this session, or refuse it past the limit.
    pub fn open_connection(&self, policy: &Policy) -> Result<ConnectionPermit, ApiError> {
        let limit = policy.max_connections_per_session as usize;
        self.connections.try_open(limit).ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "this session already has {limit} open terminals and event streams \
                     (the most it may have); close some first"
                ),
            )
        })
    }

    /// Give every instance an /etc/hosts that names all instances of the session.
    async fn update_hosts(instances: &BTreeMap<String, Arc<InstanceEntry>>) {
        let mut hosts =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for entry in instances.values() {
            hosts.push_str(&format!("{}\t{}\n", entry.ip, entry.instance.hostname()));
        }
        for entry in instances.values() {
            if let Err(e) = entry.instance.write_file("/etc/hosts", &hosts).await {
                tracing::debug!(instance = %entry.name, "cannot update /etc/hosts: {e}");
            }
        }
    }
}

fn store_error(e: rusqlite::Error) -> ApiError {
    tracing::error!("state database: {e}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the playground could not record this change: {e}"),
    )
}

impl Sessions {
    pub fn new(
        runtime: Runtime,
        networks: Networks,
        store: Store,
        policy: Policy,
        capacity: u32,
        engine: Arc<Engine>,
        mirror: axum::Router,
    ) -> Self {
        Sessions {
            engine,
            mirror,
            runtime,
            networks,
            store,
            policy,
            capacity: Capacity::new(capacity),
            sessions: RwLock::new(HashMap::new()),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn capacity(&self) -> &Capacity {
        &self.capacity
    }

    /// The refusal when the host runs all the instances it may: how full,
    /// and when the first session ends (and so frees instances).
    pub(super) fn full_error(&self) -> ApiError {
        let sessions = self.sessions.read().unwrap();
        let running = sessions.len();
        let wait = sessions
            .values()
            .filter(|s| s.instances.try_lock().map_or(true, |i| !i.is_empty()))
            .map(|s| s.expires_in().as_secs())
            .min()
            .unwrap_or(60);
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the playground is full: {running} session{} running ({} of {} instances); \
                 try again in {}",
                if running == 1 { "" } else { "s" },
                self.capacity.used(),
                self.capacity.limit(),
                about_minutes(wait)
            ),
        )
        .retry_after(wait.max(1))
    }

    /// Refuse a new session when the host is full or `client` holds its
    /// share of sessions already.
    fn admit_session(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        if self.capacity.is_full() {
            return Err(self.full_error());
        }
        let limit = self.policy.max_sessions_per_client as usize;
        let Some(client) = client.filter(|_| limit > 0) else {
            return Ok(());
        };
        let sessions = self.sessions.read().unwrap();
        let theirs: Vec<&Arc<Session>> = sessions
            .values()
            .filter(|s| s.client == Some(client) && s.is_live())
            .collect();
        if theirs.len() >= limit {
            let wait = theirs
                .iter()
                .map(|s| s.expires_in().as_secs())
                .min()
                .unwrap_or(60);
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "your address already has {limit} sessions running, the most one address \
                     may have; end one, or try again in {}",
                    about_minutes(wait)
                ),
            )
            .retry_after(wait));
        }
        Ok(())
    }

    pub async fn create(
        &self,
        client: Option<IpAddr>,
        ids: Option<SessionIds>,
    ) -> Result<Arc<Session>, ApiError> {
        self.open_session(client, None, Draw::Free, ids).await
    }

    pub(super) async fn open_session(
        &self,
        client: Option<IpAddr>,
        tutorial: Option<Arc<Tutorial>>,
        draw: Draw,
        ids: Option<SessionIds>,
    ) -> Result<Arc<Session>, ApiError> {
        if draw == Draw::Free {
            self.admit_session(client)?;
        }
        let SessionIds { id, viewer_id } = match ids {
            Some(ids) => {
                if self.sessions.read().unwrap().contains_key(&ids.id) {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        format!("a session {} exists already on this node", ids.id),
                    ));
                }
                ids
            }
            None => SessionIds {
                id: uuid::Uuid::new_v4().to_string(),
                viewer_id: uuid::Uuid::new_v4().to_string(),
            },
        };
        let network = self.networks.create(&id).await?;
        let now = SystemTime::now();
        let expires_at = now + self.policy.session_ttl.min(self.policy.session_max);
        if let Err(e) = self.store.add_session(&id, &viewer_id, now, expires_at) {
            let _ = self.networks.remove(&network).await;
            return Err(store_error(e));
        }
        let session = Arc::new(Session {
            id,
            viewer_id,
            created_at: now,
            client,
            connections: Connections::default(),
            expires_at: StdMutex::new(expires_at),
            network,
            instances: Mutex::new(BTreeMap::new()),
            ended: AtomicBool::new(false),
            events: broadcast::channel(256).0,
            tutorial,
            help: Help::default(),
            last_input: Arc::new(AtomicU64::new(0)),
            ssh_keys: SshKeys::default(),
        });
        self.sessions
            .write()
            .unwrap()
            .insert(session.id.clone(), session.clone());
        tracing::info!(session = %session.id, "session created");
        Ok(session)
    }

    /// Create a session with the instances of `template`, then run each
    /// instance's `run` commands in the background. If an instance cannot
    /// be created the session is ended and the error returned.
    pub async fn create_from_template(
        &self,
        template: &TemplateInfo,
        client: Option<IpAddr>,
        draw: Draw,
        ids: Option<SessionIds>,
    ) -> Result<Arc<Session>, ApiError> {
        if draw == Draw::Free && self.capacity.free() < template.instances.len() {
            return Err(self.full_error());
        }
        let session = self.open_session(client, None, draw, ids).await?;
        let mut created = Vec::new();
        // Checked when the templates were loaded.
        let profile = template.profile.as_deref().and_then(|p| p.parse().ok());
        for spec in &template.instances {
            match self
                .add_instance_drawing(&session, Some(&spec.hostname), profile, draw)
                .await
            {
                Ok(entry) => created.push((entry, spec.run.clone())),
                Err(e) => {
                    let _ = self.end(&session.id).await;
                    return Err(e);
                }
            }
        }
        for (entry, commands) in created {
            if commands.is_empty() {
                continue;
            }
            let sid = session.id.clone();
            tokio::spawn(async move {
                for command in commands {
                    let argv = vec!["sh".to_string(), "-c".to_string(), command.clone()];
                    let result = entry
                        .instance
                        .exec(argv, Vec::new(), Duration::from_secs(600), 64 * 1024)
                        .await;
                    match result {
                        Ok(out) if out.exit_code == 0 => {}
                        Ok(out) => tracing::warn!(
                            session = %sid, instance = %entry.name,
                            "template command {command:?} exited with {}{}: {}",
                            out.exit_code,
                            if out.timed_out { " (timed out)" } else { "" },
                            String::from_utf8_lossy(&out.stderr).trim()
                        ),
                        Err(e) => tracing::warn!(
                            session = %sid, instance = %entry.name,
                            "template command {command:?} failed: {e}"
                        ),
                    }
                }
            });
        }
        Ok(session)
    }

    /// Add a public key for SSH to the session (stored with it).
    pub fn add_ssh_key(&self, session: &Session, key: SshKey) -> Result<(), ApiError> {
        if session.ssh_keys.add(key.clone())? {
            if let Err(e) = self.store.add_ssh_key(&session.id, &key) {
                session.ssh_keys.remove(&key.fingerprint);
                return Err(store_error(e));
            }
        }
        Ok(())
    }

    pub fn remove_ssh_key(&self, session: &Session, fingerprint: &str) -> Result<(), ApiError> {
        if !session.ssh_keys.remove(fingerprint) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("this session has no key {fingerprint}"),
            ));
        }
        self.store
            .remove_ssh_key(&session.id, fingerprint)
            .map_err(store_error)
    }

    /// Store where a session is in its tutorial.
    pub fn save_tutorial(&self, session: &Session, tutorial: &Tutorial) -> Result<(), ApiError> {
        self.store
            .set_tutorial(&session.id, &tutorial.stored())
            .map_err(store_error)
    }

    /// The live session whose active help `key` opens.
    pub fn get_helped(&self, key: &str) -> Result<Arc<Session>, ApiError> {
        let sessions = self.sessions.read().unwrap();
        let session = sessions
            .values()
            .find(|s| s.help.knows(key) && s.is_live())
            .cloned();
        match session {
            Some(s) if s.help.admits(key) => Ok(s),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "the student has not accepted help (yet)",
            )),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "this help has ended: ask again",
            )),
        }
    }

    /// A live session by its viewer id (for read-only views).
    pub fn get_view(&self, viewer_id: &str) -> Result<Arc<Session>, ApiError> {
        self.sessions
            .read()
            .unwrap()
            .values()
            .find(|s| !viewer_id.is_empty() && s.viewer_id == viewer_id && s.is_live())
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "this view does not exist or its session has ended",
                )
            })
    }

    /// Give a session one more TTL, up to its maximum length.
    pub async fn extend(&self, session: &Session) -> Result<(), ApiError> {
        {
            let mut expires_at = session.expires_at.lock().unwrap();
            let current = *expires_at;
            let extended = (current + self.policy.session_ttl)
                .min(session.created_at + self.policy.session_max);
            if unix_secs(extended) <= unix_secs(current) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "this session cannot be extended further (it may last at most {})",
                        humantime::format_duration(self.policy.session_max)
                    ),
                ));
            }
            self.store
                .set_expiry(&session.id, extended)
                .map_err(store_error)?;
            *expires_at = extended;
        }
        tracing::info!(session = %session.id, "session extended");
        session.publish(SessionEvent::Snapshot {
            session: session.info(&self.policy, false).await,
        });
        Ok(())
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

    /// Every live session.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.sessions.read().unwrap().values().cloned().collect()
    }

    /// End a session: destroy its instances and its network.
    pub async fn end(&self, sid: &str) -> Result<(), ApiError> {
        let session = self.sessions.write().unwrap().remove(sid);
        let Some(session) = session else {
            return Err(ApiError::session_not_found(sid));
        };
        session.ended.store(true, Ordering::Release);
        let mut instances = session.instances.lock().await;
        for (_, entry) in std::mem::take(&mut *instances) {
            self.engine.close_ports(entry.instance.id()).await;
            if let Err(e) = entry.instance.destroy().await {
                tracing::error!(session = %sid, "{e}");
            }
            self.engine.forget(entry.instance.id());
            self.capacity.release(1);
        }
        if let Err(e) = self.networks.remove(&session.network).await {
            tracing::error!(session = %sid, "{e}");
        }
        if let Err(e) = self.store.remove_session(sid) {
            tracing::error!(session = %sid, "forget session: {e}");
        }
        session.publish(SessionEvent::Ended);
        tracing::info!(session = %sid, "session ended");
        Ok(())
    }

    /// End every session whose time is up.
    pub async fn end_expired(&self) {
        let now = SystemTime::now();
        let expired: Vec<String> = self
            .sessions
            .read()
            .unwrap()
            .values()
            .filter(|s| s.expires_at() <= now)
            .map(|s| s.id.clone())
            .collect();
        for sid in expired {
            let _ = self.end(&sid).await;
        }
    }

    /// Add an instance named `name` (a template's hostname), or the lowest
    /// free `nodeN`, of `profile` (or the server's default).
    pub async fn add_instance(
        &self,
        session: &Session,
        name: Option<&str>,
        profile: Option<Profile>,
    ) -> Result<Arc<InstanceEntry>, ApiError> {
        self.add_instance_drawing(session, name, profile, Draw::Free)
            .await
    }

    pub(super) async fn add_instance_drawing(
        &self,
        session: &Session,
        name: Option<&str>,
        profile: Option<Profile>,
        draw: Draw,
    ) -> Result<Arc<InstanceEntry>, ApiError> {
        let profile = profile.unwrap_or(self.policy.profile);
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
        let name = match name {
            Some(name) => {
                if instances.contains_key(name) {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        format!("this session already has an instance named {name}"),
                    ));
                }
                name.to_string()
            }
            None => {
                let n = (1..)
                    .find(|n| !instances.contains_key(&format!("node{n}")))
                    .expect("a free name exists below the maximum");
                format!("node{n}")
            }
        };
        // The lowest free host number from .2: the gateway address .1 stays free.
        let host = (2..=254u8)
            .find(|&n| {
                let ip = session.network.address(n);
                !instances.values().any(|i| i.ip == ip)
            })
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "no free address on this session's network",
                )
            })?;
        let ip = session.network.address(host);
        let slot = match draw {
            Draw::Free => self.capacity.try_take(),
            Draw::Reserved => self.capacity.take_reserved(),
        };
        let slot = slot.ok_or_else(|| self.full_error())?;
        let spec = InstanceSpec {
            id: format!("{}-{name}", session.id.replace('-', "")),
            hostname: name.clone(),
            limits: self.policy.limits.clone(),
            image: self.policy.images.root(profile),
            profile,
        };
        let started = std::time::Instant::now();
        let instance = self.runtime.create(spec).await?;
        if let Err(e) = self
            .networks
            .attach(&session.network, instance.host_pid(), ip)
            .await
        {
            let _ = instance.destroy().await;
            return Err(e.into());
        }
        crate::ops::metrics::get()
            .instance_start_seconds
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(session = %session.id, instance = %name, elapsed_ms = started.elapsed().as_millis() as u64, "instance created");
        let entry = Arc::new(InstanceEntry {
            name: name.clone(),
            created_at: SystemTime::now(),
            ip,
            instance,
            profile,
            terminals: Mutex::new(Default::default()),
        });
        let stored = StoredInstance {
            name: name.clone(),
            runtime_id: entry.instance.id().to_string(),
            ip,
            created_at: entry.created_at,
            profile,
        };
        if let Err(e) = self.store.add_instance(&session.id, &stored) {
            let _ = entry.instance.destroy().await;
            return Err(store_error(e));
        }
        let resolv = match self.networks.egress() {
            Egress::Nat { dns } => dns.iter().map(|ip| format!("nameserver {ip}\n")).collect(),
            Egress::Off => {
                "# No DNS: this playground gives instances no outside access.\n".to_string()
            }
        };
        if let Err(e) = entry.instance.write_file("/etc/resolv.conf", &resolv).await {
            tracing::warn!(instance = %name, "cannot write /etc/resolv.conf: {e}");
        }
        slot.keep();
        self.serve_docker(&entry.instance, profile);
        instances.insert(name, entry.clone());
        Session::update_hosts(&instances).await;
        session.publish(SessionEvent::InstanceAdded {
            instance: entry.info(&session.id, &self.policy),
        });
        Ok(entry)
    }

    pub async fn remove_instance(&self, session: &Session, name: &str) -> Result<(), ApiError> {
        let mut instances = session.instances.lock().await;
        let entry = instances
            .remove(name)
            .ok_or_else(|| ApiError::instance_not_found(name))?;
        self.engine.close_ports(entry.instance.id()).await;
        let result = entry.instance.destroy().await;
        self.engine.forget(entry.instance.id());
        self.capacity.release(1);
        if let Err(e) = self.store.remove_instance(&session.id, name) {
            tracing::error!(session = %session.id, "forget instance: {e}");
        }
        Session::update_hosts(&instances).await;
        session.publish(SessionEvent::InstanceRemoved {
            name: name.to_string(),
        });
        result?;
        tracing::info!(session = %session.id, instance = %name, "instance deleted");
        Ok(())
    }
}

impl Sessions {
    /// What answers `docker` in the instance: the built-in engine on its
    /// socket (strict), or, for the real dockerd (nesting), the registry
    /// mirror on the listener init made in the instance's network namespace.
    /// Either is served until the instance ends; init owns the listener, so
    /// a restarted server calls this again.
    fn serve_docker(&self, instance: &Instance, profile: Profile) {
        if profile == Profile::Strict {
            self.engine.serve(instance.clone());
            return;
        }
        let (instance, app) = (instance.clone(), self.mirror.clone());
        tokio::spawn(async move {
            let listener = instance.mirror_listener().await.and_then(|l| {
                l.set_nonblocking(true)
                    .and_then(|()| tokio::net::TcpListener::from_std(l))
                    .map_err(|e| sandbox::Error::Setup(e.to_string()))
            });
            let listener = match listener {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(instance = %instance.id(), "no registry mirror: {e}");
                    return;
                }
            };
            // Ends with the instance: the listener would keep its network
            // namespace (and so its veth) alive.
            let served = axum::serve(listener, app).with_graceful_shutdown({
                let instance = instance.clone();
                async move { instance.exited().await }
            });
            if let Err(e) = served.await {
                tracing::warn!(instance = %instance.id(), "registry mirror: {e}");
            }
        });
    }

    /// Take back the sessions an earlier run of the server left: their
    /// networks, their still-running instances and the shells on their
    /// terminals. What cannot be taken back is removed and forgotten;
    /// sessions that expired while no server ran are ended.
    pub async fn restore(&self, stored: Vec<StoredSession>) {
        let now = SystemTime::now();
        for saved in stored {
            let sid = saved.id.clone();
            if saved.expires_at <= now {
                // Not kept at start-up: the runtime and networks removed its parts.
                let _ = self.store.remove_session(&sid);
                tracing::info!(session = %sid, "session expired while the server was down");
                continue;
            }
            let network = match self.networks.reattach(&sid).await {
                Ok(network) => network,
                Err(e) => {
                    tracing::warn!(session = %sid, "cannot take back its network ({e}); ending it");
                    for instance in &saved.instances {
                        let _ = self.runtime.remove(&instance.runtime_id);
                    }
                    let _ = self.store.remove_session(&sid);
                    continue;
                }
            };
            let mut instances = BTreeMap::new();
            for stored in saved.instances {
                let spec = InstanceSpec {
                    id: stored.runtime_id.clone(),
                    hostname: stored.name.clone(),
                    limits: self.policy.limits.clone(),
                    image: self.policy.images.root(stored.profile),
                    profile: stored.profile,
                };
                match self.runtime.reattach(spec).await {
                    Ok((instance, mut shells)) => {
                        self.serve_docker(&instance, stored.profile);
                        // Tabs in the order their shells were started.
                        shells.sort_by_key(|s| s.pid);
                        let mut terminals: [Option<Arc<Terminal>>; TABS] = Default::default();
                        for (slot, shell) in terminals.iter_mut().zip(shells) {
                            *slot = Some(Terminal::attach(shell));
                        }
                        let entry = InstanceEntry {
                            name: stored.name.clone(),
                            created_at: stored.created_at,
                            ip: stored.ip,
                            instance,
                            profile: stored.profile,
                            terminals: Mutex::new(terminals),
                        };
                        instances.insert(stored.name, Arc::new(entry));
                    }
                    Err(e) => {
                        tracing::warn!(session = %sid, instance = %stored.name, "cannot take back instance ({e}); removing it");
                        let _ = self.runtime.remove(&stored.runtime_id);
                        let _ = self.store.remove_instance(&sid, &stored.name);
                    }
                }
            }
            tracing::info!(session = %sid, instances = instances.len(), "session taken back");
            self.capacity.add_existing(instances.len());
            let viewer_id = if saved.viewer_id.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                saved.viewer_id.clone()
            };
            let tutorial = saved.tutorial.as_ref().and_then(|t| {
                let scenario = self.policy.scenarios.scenario(&t.scenario);
                if scenario.is_none() {
                    tracing::warn!(session = %sid, scenario = %t.scenario, "its scenario is no longer in --scenarios; the session goes on without its tutorial");
                }
                Some(Arc::new(Tutorial::new(Arc::new(scenario?.clone()), Some(t))))
            });
            let session = Arc::new(Session {
                id: sid.clone(),
                viewer_id,
                created_at: saved.created_at,
                client: None,
                connections: Connections::default(),
                expires_at: StdMutex::new(saved.expires_at),
                network,
                instances: Mutex::new(instances),
                ended: AtomicBool::new(false),
                events: broadcast::channel(256).0,
                tutorial,
                help: Help::default(),
                last_input: Arc::new(AtomicU64::new(0)),
                ssh_keys: SshKeys::new(saved.ssh_keys.clone()),
            });
            self.sessions.write().unwrap().insert(sid, session);
        }
    }
}
