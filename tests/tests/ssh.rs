//! SSH into instances (#16) with the real OpenSSH client (`ssh`, `scp`,
//! `sftp`) against the real binary: the session's keys through the API,
//! who may log in, commands, shells that are terminal tabs, files both
//! ways, forwarding, the per-address limit, and a login after a crash.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use playground_protocol::{SessionInfo, SshKeyInfo};
use playground_tests::free_port;
use playground_tests::ssh::{file_client, fingerprint, keygen, ssh, PtySsh};
use playground_tests::TestServer;

async fn add(server: &TestServer, sid: &str, key: &str) -> reqwest::Response {
    server
        .http
        .post(server.url(&format!("/api/sessions/{sid}/ssh-keys")))
        .json(&serde_json::json!({ "key": key }))
        .send()
        .await
        .unwrap()
}

async fn list(server: &TestServer, sid: &str) -> Vec<SshKeyInfo> {
    let path = format!("/api/sessions/{sid}/ssh-keys");
    server.get(&path).await.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sessions_keys_are_checked_kept_and_removed() {
    let keys = tempfile::tempdir().unwrap();
    let ada = keygen(keys.path(), "ada", &["-t", "ed25519"]);
    let rsa = keygen(keys.path(), "rsa", &["-t", "rsa", "-b", "3072"]);
    let weak = keygen(keys.path(), "weak", &["-t", "rsa", "-b", "1024"]);
    let server = TestServer::start(&[]).await;
    let sid = server.create_session().await.id;
    let other = server.create_session().await.id;

    let response = add(&server, &sid, &ada).await;
    assert_eq!(response.status(), 201);
    let added: SshKeyInfo = response.json().await.unwrap();
    assert_eq!(added.fingerprint, fingerprint(keys.path(), "ada"));
    assert_eq!(added.comment, "ada@test");
    assert_eq!(
        add(&server, &sid, &ada).await.status(),
        201,
        "the same key again"
    );
    assert_eq!(add(&server, &sid, &rsa).await.status(), 201);
    assert_eq!(list(&server, &sid).await.len(), 2);
    assert!(
        list(&server, &other).await.is_empty(),
        "keys are per session"
    );

    for (line, reason) in [
        (weak.as_str(), "fewer than 2048"),
        ("ssh-ed25519 AAAAnot", "not an OpenSSH public key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
    ] {
        let response = add(&server, &sid, line).await;
        assert_eq!(response.status(), 422);
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(reason), "{body}");
    }

    // A read-only view has no part in SSH: its id opens no key list.
    let viewer = server.session(&sid).await.unwrap().viewer_id;
    let response = add(&server, &viewer, &ada).await;
    assert_eq!(response.status(), 404);

    // Kept across a restart of the server.
    let data_dir = server.stop_keeping_instances().await;
    let server = TestServer::start_in(data_dir, &[]).await;
    let kept = list(&server, &sid).await;
    assert_eq!(kept.len(), 2);

    // Removed by fingerprint (which may hold '/' and '+').
    let rsa_fingerprint = fingerprint(keys.path(), "rsa");
    let url = server.url(&format!("/api/sessions/{sid}/ssh-keys/{rsa_fingerprint}"));
    let response = server.http.delete(url.clone()).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(server.http.delete(url).send().await.unwrap().status(), 404);
    let left = list(&server, &sid).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].fingerprint, added.fingerprint);
    server.delete_session(&other).await;
    server.finish(&sid).await;
}

/// Run a client to its end, off the async threads.
async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// A server with SSH on, a session with node1, and `ada`'s key added.
struct Setup {
    server: TestServer,
    port: u16,
    sid: String,
    user: String,
    keys: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Setup {
        let keys = tempfile::tempdir().unwrap();
        let ada = keygen(keys.path(), "ada", &["-t", "ed25519"]);
        let port = free_port();
        let server = TestServer::start(&[
            &format!("--ssh-listen=127.0.0.1:{port}"),
            "--admin-listen=127.0.0.1:0",
        ])
        .await;
        let sid = server.create_session().await.id;
        server.add_instance(&sid).await;
        assert_eq!(add(&server, &sid, &ada).await.status(), 201);
        let user = format!("node1.{sid}");
        Setup {
            server,
            port,
            sid,
            user,
            keys,
        }
    }

    fn key(&self) -> PathBuf {
        self.keys.path().join("ada")
    }

    fn ssh(&self, args: &[&str]) -> Command {
        ssh(self.port, &self.key(), &self.user, args)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_forwarding_and_who_may_log_in() {
    let setup = Setup::start().await;
    let (server, sid, port) = (&setup.server, &setup.sid, setup.port);

    // A command, its output, its error output and its exit status.
    let out = output(setup.ssh(&["hostname; echo oops >&2; exit 3"])).await;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "node1\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");

    // Environment variables: the locale's pass, others do not.
    let out = output(setup.ssh(&[
        "-o",
        "SetEnv=LC_GREETING=hello EVIL=1",
        "echo \"$LC_GREETING-${EVIL:-unset}\"",
    ]))
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello-unset\n");

    // `-L`: a local port reaching a server inside the instance.
    server
        .exec(sid, "node1", "cd /tmp && echo forwarded > index.html && (setsid python3 -m http.server 8000 >/dev/null 2>&1 &)")
        .await;
    let local = free_port();
    let forward = format!("{local}:localhost:8000");
    let mut tunnel = setup.ssh(&["-N", "-L", &forward]).spawn().unwrap();
    let mut body = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{local}/")).await {
            body = response.text().await.unwrap_or_default();
            if body.contains("forwarded") {
                break;
            }
        }
    }
    let _ = tunnel.kill();
    let _ = tunnel.wait();
    assert_eq!(body, "forwarded\n");

    // Remote forwarding is refused, and the client says so.
    let out = output(setup.ssh(&[
        "-o",
        "ExitOnForwardFailure=yes",
        "-R",
        "9000:localhost:80",
        "true",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("remote port forwarding failed"), "{stderr}");

    // Refused alike: a key not added, a key of another session, an
    // instance or session that is not there, a user name that is none.
    keygen(setup.keys.path(), "eve", &["-t", "ed25519"]);
    let other = server.create_session().await.id;
    server.add_instance(&other).await;
    let eve = std::fs::read_to_string(setup.keys.path().join("eve.pub")).unwrap();
    assert_eq!(add(server, &other, &eve).await.status(), 201);
    let eve_key = setup.keys.path().join("eve");
    let ada_key = setup.key();
    // Eve's key works for her own session...
    let out = output(ssh(port, &eve_key, &format!("node1.{other}"), &["echo in"])).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in\n");
    // ...and nowhere else.
    for (key, user) in [
        (eve_key.clone(), setup.user.clone()),
        (ada_key.clone(), format!("node1.{other}")),
        (ada_key.clone(), format!("node2.{sid}")),
        (
            ada_key.clone(),
            "node1.00000000-0000-4000-8000-000000000000".to_string(),
        ),
        (ada_key.clone(), "root".to_string()),
        (ada_key.clone(), format!("node1.{sid}.extra")),
    ] {
        let out = output(ssh(port, &key, &user, &["true"])).await;
        assert_eq!(out.status.code(), Some(255), "{user}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Permission denied (publickey)"),
            "{user}: {stderr}"
        );
    }

    // An ended session's keys let no one in.
    server.delete_session(&other).await;
    let out = output(ssh(port, &eve_key, &format!("node1.{other}"), &["true"])).await;
    assert_eq!(out.status.code(), Some(255));

    // Logins are counted.
    let metrics = metrics(server).await;
    assert!(
        metrics.contains("playground_ssh_logins_total{result=\"accepted\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("playground_ssh_logins_total{result=\"refused\"}"),
        "{metrics}"
    );
    setup.server.finish(&setup.sid).await;
}

async fn metrics(server: &TestServer) -> String {
    let base = server.admin_base.as_ref().expect("--admin-listen");
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    response.text().await.unwrap()
}

/// `ssh` from a terminal window: the shell is a new terminal tab of the
/// instance (the page sees it), at the window's size, following resizes;
/// refused forwarding is said in it; `exit` ends it with its status.
#[tokio::test(flavor = "multi_thread")]
async fn an_ssh_shell_is_a_terminal_tab_of_the_instance() {
    let setup = Setup::start().await;
    let (server, sid) = (&setup.server, &setup.sid);
    // The page's first tab, open before the login.
    let mut page = server.terminal(sid, "node1", "?tab=0").await;
    page.wait_for("#", Duration::from_secs(10)).await;

    // A real agent, as a learner's desktop has, asked to be forwarded.
    let agent_sock = setup.keys.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&agent_sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if agent_sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // X11 too, as from a desktop's terminal.
    let mut command = setup.ssh(&["-A", "-X"]);
    command
        .env("SSH_AUTH_SOCK", &agent_sock)
        .env("DISPLAY", ":0");
    let mut ssh = PtySsh::spawn(command, 100, 30);
    let refused = ssh.wait_for("agent forwarding is refused", Duration::from_secs(20));
    ssh.wait_for("X11 forwarding is not offered", Duration::from_secs(5));
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(
        !refused.contains("authentication agent"),
        "no agent inside: {refused}"
    );
    ssh.type_text("stty size; echo tab-$((6*7)); echo agent=${SSH_AUTH_SOCK:-none}\r");
    ssh.wait_for("agent=none", Duration::from_secs(10));
    ssh.wait_for("30 100", Duration::from_secs(10));
    ssh.wait_for("tab-42", Duration::from_secs(10));

    // The instance now has two running shells: the page's and this one,
    // in the second tab; the page's own tab saw nothing of it.
    let info: SessionInfo = server.session(sid).await.unwrap();
    assert_eq!(info.instances[0].shells, 2);
    assert!(!page.text().contains("tab-42"));
    // A page opening the second tab sees the SSH shell, and what is typed there.
    let mut second = server.terminal(sid, "node1", "?tab=1").await;
    second.wait_for("tab-42", Duration::from_secs(10)).await;
    second.send("echo from-page-$((2*3))\r").await;
    ssh.wait_for("from-page-6", Duration::from_secs(10));

    ssh.resize(120, 40);
    tokio::time::sleep(Duration::from_millis(300)).await;
    ssh.type_text("stty size\r");
    ssh.wait_for("40 120", Duration::from_secs(10));

    ssh.type_text("exit 5\r");
    let code = tokio::task::spawn_blocking(move || ssh.wait(Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(code, Some(5));
    second.close().await;
    page.close().await;

    // A login whose connection drops hangs its shell up: the tab is free
    // again, not held by a shell no one can reach.
    let ssh = PtySsh::spawn(setup.ssh(&[]), 80, 24);
    ssh.wait_for("#", Duration::from_secs(20));
    drop(ssh);
    let mut shells = 0;
    for _ in 0..50 {
        shells = server.session(sid).await.unwrap().instances[0].shells;
        if shells <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shells, 1, "only the page's first tab is left");
    setup.server.finish(&setup.sid).await;
}

/// `scp` both ways with 50 MB, checksums compared; `sftp` lists and
/// fetches, with the instance's own paths and permissions.
#[tokio::test(flavor = "multi_thread")]
async fn scp_and_sftp_move_files_both_ways() {
    let setup = Setup::start().await;
    let (server, sid, port) = (&setup.server, &setup.sid, setup.port);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("upload.bin");
    let status = Command::new("head")
        .args(["-c", "50M", "/dev/urandom"])
        .stdout(std::fs::File::create(&local).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let sum = |path: &Path| {
        let out = Command::new("sha256sum").arg(path).output().unwrap();
        String::from_utf8_lossy(&out.stdout)[..64].to_string()
    };
    let local_sum = sum(&local);
    let remote = format!("{}@127.0.0.1", setup.user);

    let mut up = file_client("scp", port, &setup.key());
    up.arg(&local).arg(format!("{remote}:/root/upload.bin"));
    let out = output(up).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inside = server
        .exec(sid, "node1", "sha256sum /root/upload.bin")
        .await;
    assert_eq!(&inside.stdout[..64], local_sum);

    let back = dir.path().join("back.bin");
    let mut down = file_client("scp", port, &setup.key());
    down.arg(format!("{remote}:upload.bin")).arg(&back);
    let out = output(down).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sum(&back), local_sum);

    // sftp: a listing with the instance's modes, and a fetch.
    server
        .exec(
            sid,
            "node1",
            "mkdir -p /srv/notes && echo hello > /srv/notes/a.txt && chmod 640 /srv/notes/a.txt",
        )
        .await;
    let batch = dir.path().join("batch");
    let fetched = dir.path().join("a.txt");
    std::fs::write(
        &batch,
        format!(
            "ls -l /srv/notes\nget /srv/notes/a.txt {}\n",
            fetched.display()
        ),
    )
    .unwrap();
    let mut sftp = file_client("sftp", port, &setup.key());
    sftp.arg("-b").arg(&batch).arg(&remote);
    let out = output(sftp).await;
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{listing} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        listing.contains("-rw-r-----") && listing.contains("a.txt"),
        "{listing}"
    );
    assert_eq!(std::fs::read_to_string(&fetched).unwrap(), "hello\n");
    setup.server.finish(&setup.sid).await;
}

/// An address that fails too often is turned away for a while, and the
/// metrics say so; a `kill -9` of the server and a restart later, a new
/// login works and what the instance held is intact.
#[tokio::test(flavor = "multi_thread")]
async fn failures_are_limited_and_logins_survive_a_crash() {
    let setup = Setup::start().await;
    let (sid, port, key) = (setup.sid.clone(), setup.port, setup.key());
    let out = output(setup.ssh(&["echo kept > /root/state"])).await;
    assert!(out.status.success());
    // A shell over SSH with something only it knows.
    let mut shell = PtySsh::spawn(setup.ssh(&[]), 80, 24);
    shell.wait_for("# ", Duration::from_secs(20));
    shell.type_text("export MARK=kept-$((40+2))\r");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let data_dir = setup.server.crash().await;
    drop(shell);
    let listen = format!("--ssh-listen=127.0.0.1:{port}");
    let server = TestServer::start_in(data_dir, &[&listen, "--admin-listen=127.0.0.1:0"]).await;
    let out = output(ssh(port, &key, &setup.user, &["cat /root/state"])).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kept\n");
    // The SSH login's shell is a tab like the page's: it outlived the crash.
    let mut tab = server.terminal(&sid, "node1", "?tab=0").await;
    tab.send("echo $MARK\r").await;
    tab.wait_for("kept-42", Duration::from_secs(10)).await;
    tab.close().await;

    // Twenty refusals at once (each takes a second), then the address is
    // turned away before any key is looked at, even the right one.
    keygen(setup.keys.path(), "eve", &["-t", "ed25519"]);
    let eve = setup.keys.path().join("eve");
    let tries: Vec<_> = (0..20)
        .map(|_| output(ssh(port, &eve, &setup.user, &["true"])))
        .collect();
    for out in futures_util::future::join_all(tries).await {
        assert_eq!(out.status.code(), Some(255));
    }
    let out = output(ssh(port, &key, &setup.user, &["true"])).await;
    assert_eq!(out.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Permission denied"),
        "turned away before auth: {stderr}"
    );
    let metrics = metrics(&server).await;
    assert!(
        metrics.contains("playground_ssh_logins_total{result=\"turned_away\"} 1"),
        "{metrics}"
    );
    server.finish(&sid).await;
}
