//! SSH into instances (#16, being built): so far the session's keys through
//! the API, with keys made by the real `ssh-keygen`.

use playground_protocol::SshKeyInfo;
use playground_tests::ssh::{fingerprint, keygen, ssh};
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

#[tokio::test(flavor = "multi_thread")]
async fn commands_and_shells_over_ssh_with_added_keys_only() {
    let keys = tempfile::tempdir().unwrap();
    let ada = keygen(keys.path(), "ada", &["-t", "ed25519"]);
    keygen(keys.path(), "eve", &["-t", "ed25519"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("--ssh-listen=127.0.0.1:{port}");
    let server = TestServer::start(&[&listen]).await;
    let sid = server.create_session().await.id;
    server.add_instance(&sid).await;
    assert_eq!(add(&server, &sid, &ada).await.status(), 201);
    let user = format!("node1.{sid}");
    let ada_key = keys.path().join("ada");

    // A command, its output, its error output and its exit status.
    let out = tokio::task::spawn_blocking({
        let (key, user) = (ada_key.clone(), user.clone());
        move || {
            ssh(port, &key, &user, &["hostname; echo oops >&2; exit 3"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "node1\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");

    // A shell on a PTY.
    let out = tokio::task::spawn_blocking({
        let (key, user) = (ada_key.clone(), user.clone());
        move || {
            let mut child = ssh(port, &key, &user, &["-tt"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(b"echo shell-$((6*7)); tty; exit 4\n")
                .unwrap();
            child.wait_with_output().unwrap()
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("shell-42") && text.contains("/dev/pts/"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(4));

    // Environment variables: the locale's pass, others do not.
    let out = tokio::task::spawn_blocking({
        let (key, user) = (ada_key.clone(), user.clone());
        move || {
            ssh(
                port,
                &key,
                &user,
                &[
                    "-o",
                    "SetEnv=LC_GREETING=hello EVIL=1",
                    "echo \"$LC_GREETING-${EVIL:-unset}\"",
                ],
            )
            .output()
            .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello-unset\n");

    // `-L`: a local port reaching a server inside the instance.
    server
        .exec(&sid, "node1", "cd /tmp && echo forwarded > index.html && (setsid python3 -m http.server 8000 >/dev/null 2>&1 &)")
        .await;
    let local = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let forward = format!("{local}:localhost:8000");
    let mut tunnel = ssh(port, &ada_key, &user, &["-N", "-L", &forward])
        .spawn()
        .unwrap();
    let mut body = String::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
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

    // Refused alike: a key not added, an instance or session that is not there.
    for (key, user) in [
        (keys.path().join("eve"), user.clone()),
        (ada_key.clone(), format!("node2.{sid}")),
        (
            ada_key.clone(),
            "node1.00000000-0000-4000-8000-000000000000".to_string(),
        ),
        (ada_key.clone(), "root".to_string()),
    ] {
        let out = tokio::task::spawn_blocking(move || {
            ssh(port, &key, &user, &["true"]).output().unwrap()
        })
        .await
        .unwrap();
        assert_eq!(out.status.code(), Some(255));
        assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied (publickey)"));
    }
    server.finish(&sid).await;
}
