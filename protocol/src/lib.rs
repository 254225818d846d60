//! Types that cross the wire between the playground server and its clients
//! (the web page, tutorial sites, tests). Defined once here and used by both
//! `server` and `web`, so the two can never disagree about a field.
//!
//! Timestamps are RFC 3339 strings in UTC (`2026-11-22T17:19:29Z`).

use serde::{Deserialize, Serialize};

mod class;
mod tutorial;
pub use class::*;
pub use tutorial::*;

/// A session: a time-limited workspace that owns instances.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Random, unguessable id (UUID v4); also the capability to use the session.
    pub id: String,
    pub created_at: String,
    pub expires_at: String,
    /// Seconds left until expiry when this body was produced; lets a client
    /// count down without trusting its own clock.
    pub expires_in_secs: u64,
    /// How many instances the session may hold at once.
    pub max_instances: u32,
    /// The link for any port of any instance of this session: replace
    /// `{instance}` and `{port}` (for ports that are not listening yet).
    #[serde(default)]
    pub port_url_template: String,
    /// Capability for a read-only view of this session: `GET
    /// /api/view/{viewer_id}` and its terminals show everything and accept
    /// no input. The page shows it at `/v/{viewer_id}`. Empty in a view.
    #[serde(default)]
    pub viewer_id: String,
    /// Whether `POST /api/sessions/{id}/extend` would add time now.
    #[serde(default)]
    pub can_extend: bool,
    /// True when this body came from a read-only view.
    #[serde(default)]
    pub read_only: bool,
    pub instances: Vec<InstanceInfo>,
    /// The session's progress through its scenario, when it was started
    /// from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tutorial: Option<TutorialState>,
    /// Whether an instructor asked to help, or helps (sessions of a class).
    #[serde(default)]
    pub help: HelpState,
    /// How to reach the instances over SSH, when the server offers it (and
    /// never in a read-only view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshAccess>,
}

/// Where the SSH server listens: log in to an instance with
/// `ssh -p {port} {instance}.{session id}@{host}` and a key added to the
/// session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshAccess {
    /// The host name users connect to (`--ssh-host`); empty: the host the
    /// page was loaded from.
    #[serde(default)]
    pub host: String,
    pub port: u16,
}

/// Body of `POST /api/sessions` (it may also be empty).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// Create the session's instances from this template (see `GET /api/templates`).
    #[serde(default)]
    pub template: Option<String>,
    /// Or from this scenario (see `GET /api/scenarios`): its instances, its
    /// files copied in, its first page's scripts started.
    #[serde(default)]
    pub scenario: Option<String>,
}

/// A ready-made set of instances (`GET /api/templates` lists them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateInfo {
    /// Used in `CreateSession.template` and links (`/?template=<name>`).
    pub name: String,
    /// What the page shows.
    pub title: String,
    pub instances: Vec<TemplateInstance>,
    /// The instance profile (`nesting` or `strict`); the server's default
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateInstance {
    /// The instance's name and hostname (lowercase letters, digits, `-`; at most 24).
    pub hostname: String,
    /// Shell commands run once (as `sh -c`) when the instance has started.
    #[serde(default)]
    pub run: Vec<String>,
}

/// One entry of a directory listing (`GET .../files?path=<dir>&list=true`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    pub name: String,
    pub kind: EntryKind,
    /// Bytes, for files.
    #[serde(default)]
    pub size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One sandboxed Linux machine inside a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// Name inside the session, used in URLs (`node1`, `node2`, ...).
    pub name: String,
    pub hostname: String,
    pub created_at: String,
    pub status: InstanceStatus,
    /// The instance's address on its session's network.
    #[serde(default)]
    pub ip: Option<String>,
    /// TCP ports something listens on inside the instance, each with a
    /// ready-made link through the playground's reverse proxy.
    #[serde(default)]
    pub ports: Vec<PortInfo>,
    /// Resource use and limits, while the instance runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<InstanceStats>,
    /// `nesting` (the real dockerd inside) or `strict` (the built-in engine).
    #[serde(default)]
    pub profile: String,
    /// Terminal tabs `0..shells` may have a running shell: one past the
    /// highest tab whose shell runs (an SSH login opens a tab too), so a
    /// page shows at least this many tabs.
    #[serde(default)]
    pub shells: u8,
}

/// A listening TCP port of an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    pub port: u16,
    /// Where a browser reaches it, e.g. `http://<sid>-8080-node1.localhost:8080/`.
    pub url: String,
}

/// An instance's resource use, read from its cgroup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceStats {
    /// Memory in use (page cache included) and the limit, in bytes.
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    /// CPU time used since the instance started, in seconds.
    pub cpu_seconds: f64,
    /// Processes and threads running.
    pub pids: u64,
    pub pids_limit: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    /// Its init is alive; terminals and exec work.
    Running,
    /// Its init died (killed, or the host ran out of something); it can only be deleted.
    Exited,
}

/// Messages on a session's event stream (`GET /api/sessions/{sid}/events`,
/// a WebSocket of JSON text frames), pushed within about a second of the change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionEvent {
    /// First message, and again whenever the client fell behind: the whole
    /// session as it is now.
    Snapshot { session: SessionInfo },
    /// An instance was added (it is running).
    InstanceAdded { instance: InstanceInfo },
    /// An instance was deleted.
    InstanceRemoved { name: String },
    /// An instance's init died; it can only be deleted now.
    InstanceExited { name: String },
    /// The set of listening ports of an instance changed (the full new set).
    PortsChanged { name: String, ports: Vec<PortInfo> },
    /// Fresh resource figures of an instance (every few seconds).
    Stats { name: String, stats: InstanceStats },
    /// The session ends in this many seconds (sent once, five minutes before).
    EndingSoon { expires_in_secs: u64 },
    /// The session's tutorial progress changed (a page opened, a check ran).
    Tutorial { tutorial: Box<TutorialState> },
    /// The instructor asked to help, or help began or ended.
    Help { state: HelpState },
    /// A message from the class's instructor, for the page to show.
    Message { text: String, at: String },
    /// An instance's running shells changed (an SSH login opened a tab):
    /// its new `InstanceInfo::shells`.
    ShellsChanged { name: String, shells: u8 },
    /// The session has ended; the stream closes after this message.
    Ended,
}

/// Body of `POST /api/sessions/{sid}/instances/{name}/exec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Program and arguments, looked up on the instance's `PATH`.
    pub cmd: Vec<String>,
    /// Bytes fed to the command's standard input (then closed).
    #[serde(default)]
    pub stdin: Option<String>,
    /// Kill the command after this many seconds (default 60, at most 600).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// Answer to an exec request. Output is decoded as UTF-8 (invalid bytes replaced).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecResponse {
    /// The exit status; `128 + n` when killed by signal `n`.
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// True when the command ran past its timeout and was killed.
    #[serde(default)]
    pub timed_out: bool,
    /// True when stdout or stderr exceeded the size cap and was cut.
    #[serde(default)]
    pub truncated: bool,
}

/// Answer to a file upload (`POST /api/sessions/{sid}/instances/{name}/files?path=...`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// The file's absolute path inside the instance (relative paths resolved,
    /// symlinks followed).
    pub path: String,
    /// Bytes written.
    pub size: u64,
}

/// Body of `POST /api/sessions/{sid}/ssh-keys`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddSshKey {
    /// A public key line, as in `~/.ssh/id_ed25519.pub`.
    pub key: String,
}

/// A public key a session's owner added for SSH.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SshKeyInfo {
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The key without its comment (`ssh-ed25519 AAAA...`).
    pub key: String,
    #[serde(default)]
    pub comment: String,
}

/// Every error answer of the REST API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// One session as the operator sees it (`GET /api/admin/sessions`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminSession {
    pub id: String,
    pub created_at: String,
    /// Seconds since the session was created.
    pub age_secs: u64,
    pub expires_at: String,
    pub expires_in_secs: u64,
    /// The address the session was created from, when known (the peer of
    /// the connection: a front proxy's address behind one).
    #[serde(default)]
    pub client_addr: Option<String>,
    pub instances: Vec<AdminInstance>,
}

/// One instance in the operator's list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminInstance {
    pub name: String,
    pub status: InstanceStatus,
    #[serde(default)]
    pub ip: Option<String>,
    /// Memory (current and limit), CPU time and processes, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<InstanceStats>,
    /// CPU use over a short sample taken for this answer, in percent of one
    /// CPU (200 means two CPUs busy); absent when it does not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
}

/// JSON text frames a client sends on a terminal WebSocket. Binary frames
/// carry raw keyboard bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalClientMsg {
    /// The visible size of the client's terminal changed.
    Resize { cols: u16, rows: u16 },
    /// The client is behind (its renderer holds too much unwritten output):
    /// stop sending until `Resume`. The shell blocks instead of memory growing.
    Pause,
    /// The client caught up; continue sending.
    Resume,
    /// The client has received all output before `offset`. Only a client
    /// that connected with `?ack=true` sends these; the server then keeps
    /// its output from the last acknowledged offset (instead of the last one
    /// sent), so a connection that drops with bytes in flight loses none of
    /// them when the client comes back with `?from=`.
    Ack { offset: u64 },
}

/// JSON text frames the server sends on a terminal WebSocket. Binary frames
/// carry raw terminal output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalServerMsg {
    /// First frame: the output offset the following bytes start at. A client
    /// that reconnects passes its last offset as `?from=` to resume without
    /// duplicated or lost output.
    Attached { offset: u64 },
    /// Sent right after `Attached` when the client asked to resume from an
    /// offset older than the output the server still keeps: `bytes` of
    /// output are gone, and the stream continues at `Attached`'s offset.
    Missed { bytes: u64 },
    /// The shell exited; the socket closes after this frame.
    Exited { code: i32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_use_the_documented_shape() {
        let m: TerminalClientMsg =
            serde_json::from_str(r#"{"type":"resize","cols":80,"rows":24}"#).unwrap();
        assert_eq!(m, TerminalClientMsg::Resize { cols: 80, rows: 24 });
        let s = serde_json::to_string(&TerminalServerMsg::Exited { code: 3 }).unwrap();
        assert_eq!(s, r#"{"type":"exited","code":3}"#);
        let s = serde_json::to_string(&TerminalServerMsg::Missed { bytes: 9 }).unwrap();
        assert_eq!(s, r#"{"type":"missed","bytes":9}"#);
    }

    #[test]
    fn exec_request_defaults_optional_fields() {
        let r: ExecRequest = serde_json::from_str(r#"{"cmd":["true"]}"#).unwrap();
        assert_eq!(r.stdin, None);
        assert_eq!(r.timeout_secs, None);
    }
}
