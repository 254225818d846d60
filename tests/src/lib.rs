//! Helpers for end-to-end tests: start the real `playground` binary on a free
//! port with a temporary data directory, talk to it over HTTP and WebSocket,
//! and look at the host for anything it left behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use playground_protocol::{ExecResponse, SessionInfo, TerminalServerMsg};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod browser;
pub mod cluster;
pub mod postgres;
pub mod ssh;
pub mod walkthrough;

/// The image cache shared by every test server (built once, ~1 minute).
pub fn images_dir() -> PathBuf {
    std::env::var_os("PLAYGROUND_TEST_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/playground/images"))
}

/// Marks a start with the server's default profile: no
/// `--instance-profile` flag is added (see [`TestServer::start_nesting`]).
const NESTING: &str = "--instance-profile";

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `playground` binary of this build (next to the test executable's
/// `deps/` folder), or `$PLAYGROUND_BIN`.
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("PLAYGROUND_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("playground");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p playground)",
        bin.display()
    );
    bin
}

/// A running playground server, stopped (SIGTERM, then SIGKILL) on drop.
pub struct TestServer {
    child: Option<Child>,
    pub base: String,
    /// The `--admin-listen` address's base URL, when one was given.
    pub admin_base: Option<String>,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

/// The binary with `args`, the page from `dist/`, on a free loopback port
/// unless `args` choose the address (a cluster's nodes on 127.0.0.2-4);
/// its standard output piped for the "listening" line, killed on drop.
fn playground(args: &[&str]) -> Command {
    let listen =
        (!args.iter().any(|a| a.starts_with("--listen"))).then_some("--listen=127.0.0.1:0");
    let mut command = Command::new(binary());
    command
        .args(listen)
        .arg(format!("--web-dir={}", repo_root().join("dist").display()))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// A TCP port free on loopback now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestServer {
    /// Start with default settings plus `args`. Instances are of the
    /// `strict` profile (the built-in engine) unless `args` choose one with
    /// `--instance-profile=...`: most tests were written for it, and tests
    /// of the real dockerd say so (see [`TestServer::start_nesting`]).
    pub async fn start(args: &[&str]) -> TestServer {
        let data_dir = tempfile::Builder::new()
            .prefix("playground-test-")
            .tempdir()
            .unwrap();
        Self::start_in(data_dir, args).await
    }

    /// Start with the server's own default profile (`nesting`: the real
    /// dockerd in every instance) plus `args`.
    pub async fn start_nesting(args: &[&str]) -> TestServer {
        let mut all = vec![NESTING];
        all.extend_from_slice(args);
        Self::start(&all).await
    }

    /// Start on an existing data directory (e.g. one a killed server left).
    pub async fn start_in(data_dir: impl Into<DataDir>, args: &[&str]) -> TestServer {
        let data_dir = data_dir.into().take();
        let profile = if args.iter().any(|a| a.starts_with("--instance-profile")) {
            None
        } else {
            Some("--instance-profile=strict")
        };
        let args: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| *a != NESTING)
            .chain(profile)
            .collect();
        let child = playground(&args)
            .arg(format!("--data-dir={}", data_dir.path().display()))
            .arg(format!("--images-dir={}", images_dir().display()))
            .spawn()
            .expect("start playground");
        Self::started(child, data_dir).await
    }

    /// Start `playground gateway` with `args` (global flags): it runs no
    /// instances; its data directory stays empty.
    pub async fn start_gateway(args: &[&str]) -> TestServer {
        let data_dir = tempfile::Builder::new()
            .prefix("playground-gateway-")
            .tempdir()
            .unwrap();
        let child = playground(args)
            .arg("gateway")
            .spawn()
            .expect("start playground gateway");
        Self::started(child, data_dir).await
    }

    /// Wait for a started server's "listening" line.
    async fn started(mut child: Child, data_dir: tempfile::TempDir) -> TestServer {
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // The first start on a machine builds the image: allow for it.
        let mut admin_base = None;
        let base = tokio::time::timeout(Duration::from_secs(600), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("playground admin listening on ") {
                    admin_base = Some(url.trim_end_matches('/').to_string());
                }
                if let Some(url) = line.strip_prefix("playground listening on ") {
                    return url.trim_end_matches('/').to_string();
                }
            }
            panic!("playground exited before listening");
        })
        .await
        .expect("playground did not start listening");
        // Keep draining stdout so the server never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        TestServer {
            child: Some(child),
            base,
            admin_base,
            data_dir,
            http: reqwest::Client::new(),
        }
    }

    /// Start with `args`, make a session and add one instance: the set-up
    /// most tests begin with. Returns the server, session id and instance name.
    pub async fn with_instance(args: &[&str]) -> (TestServer, String, String) {
        let server = TestServer::start(args).await;
        let sid = server.create_session().await.id;
        let name = server.add_instance(&sid).await;
        (server, sid, name)
    }

    /// `GET path` on the server.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id().unwrap() as i32
    }

    pub async fn create_session(&self) -> SessionInfo {
        let response = self
            .http
            .post(self.url("/api/sessions"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// Add an instance; returns its name.
    pub async fn add_instance(&self, sid: &str) -> String {
        let response = self
            .http
            .post(self.url(&format!("/api/sessions/{sid}/instances")))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body["name"].as_str().unwrap().to_string()
    }

    /// The session, or None when the server answers 404.
    pub async fn session(&self, sid: &str) -> Option<SessionInfo> {
        let response = self
            .http
            .get(self.url(&format!("/api/sessions/{sid}")))
            .send()
            .await
            .unwrap();
        if response.status() == 404 {
            return None;
        }
        assert_eq!(response.status(), 200);
        Some(response.json().await.unwrap())
    }

    /// End a session; it must exist.
    pub async fn delete_session(&self, sid: &str) {
        let url = self.url(&format!("/api/sessions/{sid}"));
        let response = self.http.delete(url).send().await.unwrap();
        assert_eq!(response.status(), 204, "delete session {sid}");
    }

    /// Delete an instance; it must exist.
    pub async fn delete_instance(&self, sid: &str, name: &str) {
        let url = self.url(&format!("/api/sessions/{sid}/instances/{name}"));
        let response = self.http.delete(url).send().await.unwrap();
        assert_eq!(response.status(), 204, "delete instance {name}");
    }

    pub async fn exec(&self, sid: &str, name: &str, script: &str) -> ExecResponse {
        let response = self
            .http
            .post(self.url(&format!("/api/sessions/{sid}/instances/{name}/exec")))
            .json(&serde_json::json!({ "cmd": ["sh", "-c", script] }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// End session `sid`, check that the host holds nothing of it any more
    /// (30 s at most), and stop the server.
    pub async fn finish(self, sid: &str) {
        let data_dir = self.data_dir.path().to_path_buf();
        self.delete_session(sid).await;
        let left = wait_until_clean(sid, &data_dir, Duration::from_secs(30)).await;
        assert!(left.is_empty(), "left behind: {left:?}");
        self.stop().await;
    }

    /// `exec`, with the command and what it printed logged (shown when a
    /// test fails).
    pub async fn run(&self, sid: &str, name: &str, script: &str) -> ExecResponse {
        let out = self.exec(sid, name, script).await;
        eprintln!(
            "[{name}] $ {script}\n{}{}[exit {}]",
            out.stdout, out.stderr, out.exit_code
        );
        out
    }

    pub async fn terminal(&self, sid: &str, name: &str, query: &str) -> TermClient {
        let url = self.ws_url(&format!(
            "/api/sessions/{sid}/instances/{name}/terminal{query}"
        ));
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket");
        TermClient::from_ws(ws).await
    }

    /// Kill the server with SIGKILL, as a crash would, and hand back its
    /// data directory.
    pub async fn crash(mut self) -> DataDir {
        let mut child = self.child.take().unwrap();
        child.kill().await.unwrap();
        let placeholder = tempfile::tempdir().unwrap();
        DataDir(Some(std::mem::replace(&mut self.data_dir, placeholder)))
    }

    /// Stop gracefully and wait for the process to exit. Instances keep
    /// running after a stop, so this also runs `playground teardown` on the
    /// data directory, as an operator would, to leave nothing behind.
    pub async fn stop(mut self) {
        self.stop_inner().await;
        teardown(self.data_dir.path());
    }

    /// Stop gracefully, with no teardown (a gateway, which has no
    /// instances).
    pub async fn stop_process(mut self) {
        self.stop_inner().await;
    }

    /// Stop gracefully but leave the instances running (to start again on
    /// the same data directory).
    pub async fn stop_keeping_instances(mut self) -> DataDir {
        self.stop_inner().await;
        let placeholder = tempfile::tempdir().unwrap();
        DataDir(Some(std::mem::replace(&mut self.data_dir, placeholder)))
    }

    async fn stop_inner(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // SAFETY: sending a signal to our own child process.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            if tokio::time::timeout(Duration::from_secs(20), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // SAFETY: sending a signal to our own child process.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = child.start_kill();
            // A failed test must not leave instances behind either.
            let _ = run_teardown(self.data_dir.path());
        }
    }
}

/// The data directory of a server that is not running (crashed or stopped
/// keeping its instances). Given to the next server with
/// [`TestServer::start_in`]; dropped without one (a test that failed in
/// between), it tears down what the directory still holds, so a failed test
/// leaves no instances running on the host.
pub struct DataDir(Option<tempfile::TempDir>);

impl DataDir {
    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("the data directory").path()
    }

    fn take(mut self) -> tempfile::TempDir {
        self.0.take().expect("the data directory")
    }
}

impl From<tempfile::TempDir> for DataDir {
    fn from(dir: tempfile::TempDir) -> DataDir {
        DataDir(Some(dir))
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            // No assertion here: this may run while a test unwinds.
            let _ = run_teardown(dir.path());
        }
    }
}

/// The instance's listed ports and their proxy links.
pub async fn listed_ports(server: &TestServer, sid: &str) -> Vec<(u16, String)> {
    let session: serde_json::Value = server
        .get(&format!("/api/sessions/{sid}"))
        .await
        .json()
        .await
        .unwrap();
    session["instances"][0]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p["port"].as_u64().unwrap() as u16;
            (port, p["url"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Wait up to `within` for `port` to be listed (`listed`) or not; the link
/// when listed.
pub async fn wait_listed(
    server: &TestServer,
    sid: &str,
    port: u16,
    listed: bool,
    within: Duration,
) -> Option<String> {
    let deadline = Instant::now() + within;
    loop {
        let ports = listed_ports(server, sid).await;
        let link = ports
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, l)| l.clone());
        if link.is_some() == listed {
            return link;
        }
        assert!(
            Instant::now() < deadline,
            "port {port} {} within {within:?}: {ports:?}",
            if listed { "not listed" } else { "still listed" }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client for the playground's proxy links: their `*.localhost` names
/// reach loopback, as in browsers.
pub fn proxy_client(link: &reqwest::Url) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .resolve(
            link.host_str().unwrap(),
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `playground teardown` on a data directory: removes every session,
/// instance and network it holds.
pub fn teardown(data_dir: &Path) {
    assert!(run_teardown(data_dir), "playground teardown failed");
}

/// `playground teardown`, if the directory holds a state; whether it worked.
fn run_teardown(data_dir: &Path) -> bool {
    if !data_dir.join("state.db").exists() {
        return true;
    }
    std::process::Command::new(binary())
        .arg(format!("--data-dir={}", data_dir.display()))
        .arg(format!("--images-dir={}", images_dir().display()))
        .arg("teardown")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A terminal WebSocket with everything received so far.
pub struct TermClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// All output bytes received.
    pub screen: Vec<u8>,
    /// Stream offset after the last byte received.
    pub offset: u64,
    pub exited: Option<i32>,
}

impl TermClient {
    /// Wrap a terminal WebSocket just connected (any terminal URL, e.g. a
    /// read-only view's); reads the `attached` message.
    pub async fn from_ws(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> TermClient {
        let mut client = TermClient {
            ws,
            screen: Vec::new(),
            offset: 0,
            exited: None,
        };
        match client.next_message().await {
            Some(TerminalServerMsg::Attached { offset }) => client.offset = offset,
            other => panic!("expected attached first, got {other:?}"),
        }
        client
    }

    /// The next control message, collecting output bytes on the way.
    async fn next_message(&mut self) -> Option<TerminalServerMsg> {
        while let Some(message) = self.ws.next().await {
            match message.ok()? {
                Message::Binary(bytes) => {
                    self.offset += bytes.len() as u64;
                    self.screen.extend_from_slice(&bytes);
                }
                Message::Text(text) => return serde_json::from_str(&text).ok(),
                Message::Close(_) => return None,
                _ => {}
            }
        }
        None
    }

    pub async fn send(&mut self, input: &str) {
        self.ws
            .send(Message::Binary(input.as_bytes().to_vec().into()))
            .await
            .unwrap();
    }

    pub async fn send_control(&mut self, json: serde_json::Value) {
        self.ws
            .send(Message::Text(json.to_string().into()))
            .await
            .unwrap();
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen).into_owned()
    }

    /// Read until the output contains `needle` (after `skip` bytes), or panic after `timeout`.
    pub async fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let result = tokio::time::timeout(timeout, async {
            loop {
                if self.text().contains(needle) {
                    return;
                }
                match self.ws.next().await {
                    Some(Ok(Message::Binary(bytes))) => {
                        self.offset += bytes.len() as u64;
                        self.screen.extend_from_slice(&bytes);
                    }
                    Some(Ok(Message::Text(text))) => {
                        if let Ok(TerminalServerMsg::Exited { code }) = serde_json::from_str(&text)
                        {
                            self.exited = Some(code);
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                }
            }
        })
        .await;
        let text = self.text();
        assert!(
            result.is_ok() && text.contains(needle),
            "terminal never showed {needle:?}; it showed:\n{text}"
        );
        text
    }

    /// Read whatever arrives within `window`.
    pub async fn drain(&mut self, window: Duration) {
        let _ = tokio::time::timeout(window, async {
            while let Some(Ok(message)) = self.ws.next().await {
                match message {
                    Message::Binary(bytes) => {
                        self.offset += bytes.len() as u64;
                        self.screen.extend_from_slice(&bytes);
                    }
                    Message::Text(text) => {
                        if let Ok(TerminalServerMsg::Exited { code }) = serde_json::from_str(&text)
                        {
                            self.exited = Some(code);
                        }
                    }
                    Message::Close(_) => return,
                    _ => {}
                }
            }
        })
        .await;
    }

    /// Whether the server ends the connection within `window` (output
    /// arriving meanwhile is kept).
    pub async fn closed_within(&mut self, window: Duration) -> bool {
        tokio::time::timeout(window, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Binary(bytes))) => {
                        self.offset += bytes.len() as u64;
                        self.screen.extend_from_slice(&bytes);
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// What the host still holds of a session's instances: cgroup directories,
/// processes in those cgroups, mounts, and instance directories.
#[derive(Debug, Default, PartialEq)]
pub struct Leftovers {
    pub cgroups: Vec<PathBuf>,
    pub processes: Vec<i32>,
    pub mounts: Vec<String>,
    pub instance_dirs: Vec<PathBuf>,
    /// Loop devices still backed by an instance disk of this session.
    pub loop_devices: Vec<String>,
    /// The session's network bridge, if it still exists.
    pub bridges: Vec<String>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        *self == Leftovers::default()
    }
}

/// Scan the host for anything belonging to session `sid` (instance ids
/// start with the session id without dashes) under `data_dir`.
pub fn leftovers(sid: &str, data_dir: &Path) -> Leftovers {
    let tag = sid.replace('-', "");
    let mut found = Leftovers::default();
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let Ok(hierarchies) = std::fs::read_dir(root) else {
            continue;
        };
        let mut parents = vec![Path::new(root).join("playground")];
        parents.extend(hierarchies.flatten().map(|h| h.path().join("playground")));
        for parent in parents {
            if let Ok(entries) = std::fs::read_dir(&parent) {
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().starts_with(&tag) {
                        found.cgroups.push(e.path());
                    }
                }
            }
        }
    }
    found.cgroups.sort();
    found.cgroups.dedup();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(cgroup) = std::fs::read_to_string(p.path().join("cgroup")) {
                if cgroup.contains(&format!("/playground/{tag}")) {
                    found.processes.push(pid);
                }
            }
        }
    }
    let data = data_dir.to_string_lossy().into_owned();
    if let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") {
        found.mounts = mountinfo
            .lines()
            .filter(|l| l.contains(&data) || l.contains(&tag))
            .map(String::from)
            .collect();
    }
    if let Ok(blocks) = std::fs::read_dir("/sys/block") {
        for block in blocks.flatten() {
            let backing = block.path().join("loop/backing_file");
            if let Ok(file) = std::fs::read_to_string(&backing) {
                if file.contains(&data) && file.contains(&tag) {
                    found
                        .loop_devices
                        .push(block.file_name().to_string_lossy().into_owned());
                }
            }
        }
    }
    let bridge = bridge_name(sid);
    if Path::new("/sys/class/net").join(&bridge).exists() {
        found.bridges.push(bridge);
    }
    if let Ok(dirs) = std::fs::read_dir(data_dir.join("instances")) {
        found.instance_dirs = dirs
            .flatten()
            .map(|d| d.path())
            .filter(|p| p.to_string_lossy().contains(&tag))
            .collect();
    }
    found
}
/// The IPv6 link-local address of the host's bridge of session `sid`, for
/// probes of the host's filter. The playground keeps IPv6 off on its
/// bridges; the probe turns it back on (the bridge goes with the session),
/// so that what it tests is the filter, the second line of defence.
pub fn bridge_link_local(sid: &str) -> String {
    let bridge = bridge_name(sid);
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6"),
        "0",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let out = std::process::Command::new("ip")
            .args(["-6", "-o", "addr", "show", "dev", &bridge])
            .output()
            .unwrap();
        let found = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .map(str::to_string);
        match found {
            // Not "tentative" any more: usable as a destination.
            Some(a) if !String::from_utf8_lossy(&out.stdout).contains("tentative") => return a,
            _ if std::time::Instant::now() > deadline => {
                panic!("the bridge {bridge} got no IPv6 link-local address")
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The name of a session's bridge on the host.
pub fn bridge_name(sid: &str) -> String {
    format!("pgb{}", &sid.replace('-', "")[..12])
}

/// Poll `leftovers` until nothing is left or `timeout` passes.
pub async fn wait_until_clean(sid: &str, data_dir: &Path, timeout: Duration) -> Leftovers {
    let deadline = Instant::now() + timeout;
    loop {
        let left = leftovers(sid, data_dir);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
