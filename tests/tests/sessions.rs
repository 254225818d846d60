//! End-to-end tests of templates, read-only views, terminal tabs, extending
//! sessions and directory listings, through the real server. Need root.

use std::time::Duration;

use futures_util::StreamExt;
use playground_protocol::{DirEntry, EntryKind, SessionEvent, SessionInfo, TemplateInfo};
use playground_tests::{binary, images_dir, TestServer};
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(20);

async fn create_with(server: &TestServer, body: serde_json::Value) -> reqwest::Response {
    server
        .http
        .post(server.url("/api/sessions"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn names(info: &SessionInfo) -> Vec<String> {
    info.instances.iter().map(|i| i.name.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn built_in_templates_create_instances_that_reach_each_other() {
    let server = TestServer::start(&[]).await;
    let response = server.get("/api/templates").await;
    assert_eq!(response.status(), 200);
    let templates: Vec<TemplateInfo> = response.json().await.unwrap();
    let listed: Vec<(&str, &str, usize)> = templates
        .iter()
        .map(|t| (t.name.as_str(), t.title.as_str(), t.instances.len()))
        .collect();
    assert_eq!(
        listed,
        [
            ("1-instance", "1 instance", 1),
            ("2-instances", "2 instances", 2),
            ("3-instances", "3 instances", 3)
        ]
    );

    let response = create_with(&server, serde_json::json!({"template": "nope"})).await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");

    let response = create_with(&server, serde_json::json!({"template": "3-instances"})).await;
    assert_eq!(response.status(), 201);
    let info: SessionInfo = response.json().await.unwrap();
    assert_eq!(names(&info), ["node1", "node2", "node3"]);
    let hostnames: Vec<&str> = info.instances.iter().map(|i| i.hostname.as_str()).collect();
    assert_eq!(hostnames, ["node1", "node2", "node3"]);
    let sid = info.id.clone();
    for from in ["node1", "node2", "node3"] {
        for to in ["node1", "node2", "node3"] {
            let out = server
                .exec(
                    &sid,
                    from,
                    &format!("ping -c 1 -W 2 {to} >/dev/null && echo ok-$(hostname)"),
                )
                .await;
            assert_eq!(
                out.stdout,
                format!("ok-{from}\n"),
                "{from} -> {to}: {out:?}"
            );
        }
    }
    // A later instance gets the lowest free nodeN and the lowest free address.
    server.delete_instance(&sid, "node2").await;
    assert_eq!(server.add_instance(&sid).await, "node2");
    let info = server.session(&sid).await.unwrap();
    let ips: Vec<String> = info
        .instances
        .iter()
        .map(|i| {
            i.ip.clone()
                .unwrap()
                .rsplit('.')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ips, ["2", "3", "4"]);
    server.stop().await;
}

fn templates_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn a_templates_file_adds_templates_with_hostnames_and_commands() {
    let file = templates_file(
        r#"
[[template]]
name = "pair"
title = "A pair"
[[template.instance]]
hostname = "manager-1"
run = ["echo ready > /root/ready", "echo $(hostname) >> /root/ready"]
[[template.instance]]
hostname = "worker"
"#,
    );
    let arg = format!("--templates={}", file.path().display());
    let server = TestServer::start(&[&arg]).await;
    let templates: Vec<TemplateInfo> = server.get("/api/templates").await.json().await.unwrap();
    let pair = templates.iter().find(|t| t.name == "pair").expect("listed");
    assert_eq!(pair.title, "A pair");
    assert_eq!(pair.instances[0].run.len(), 2);

    let response = create_with(&server, serde_json::json!({"template": "pair"})).await;
    assert_eq!(response.status(), 201);
    let info: SessionInfo = response.json().await.unwrap();
    assert_eq!(names(&info), ["manager-1", "worker"]);
    let sid = info.id.clone();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let out = server
            .exec(&sid, "manager-1", "cat /root/ready 2>/dev/null")
            .await;
        if out.stdout == "ready\nmanager-1\n" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run commands had no effect: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = server
        .exec(
            &sid,
            "worker",
            "ping -c 1 -W 2 manager-1 >/dev/null && echo ok",
        )
        .await;
    assert_eq!(out.stdout, "ok\n");
    // A plain added instance is still called nodeN.
    assert_eq!(server.add_instance(&sid).await, "node1");
    server.stop().await;
}

/// Start the server expecting it to refuse; returns what it printed.
fn refused_start(templates: &str, extra: &[&str]) -> String {
    let file = templates_file(templates);
    let data = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(binary())
        .arg("--listen=127.0.0.1:0")
        .arg(format!("--data-dir={}", data.path().display()))
        .arg(format!("--images-dir={}", images_dir().display()))
        .arg(format!("--templates={}", file.path().display()))
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!output.status.success(), "the server started anyway");
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        text.contains(&file.path().display().to_string()),
        "the message does not name the file: {text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_templates_file_stops_the_start_with_a_clear_message() {
    let one = |hostname: &str| {
        format!(
            "[[template]]\nname = \"t\"\ntitle = \"T\"\n[[template.instance]]\nhostname = \"{hostname}\"\n"
        )
    };
    let text = refused_start(&one("Bad_Name"), &[]);
    assert!(text.contains("Bad_Name"), "{text}");
    let twice = format!("{}{}", one("a"), one("b"));
    let text = refused_start(&twice, &[]);
    assert!(text.contains("more than once"), "{text}");
    let same_host = format!("{}[[template.instance]]\nhostname = \"a\"\n", one("a"));
    let text = refused_start(&same_host, &[]);
    assert!(text.contains("\"a\" is used more than once"), "{text}");
    let three = format!(
        "{}[[template.instance]]\nhostname = \"b\"\n[[template.instance]]\nhostname = \"c\"\n",
        one("a")
    );
    let text = refused_start(&three, &["--max-instances=2"]);
    assert!(text.contains("--max-instances"), "{text}");
    let text = refused_start("this is not toml", &[]);
    assert!(!text.is_empty());
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_event(ws: &mut Ws) -> Option<SessionEvent> {
    loop {
        match tokio::time::timeout(T, ws.next()).await.ok()?? {
            Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_view_shows_everything_and_accepts_no_input() {
    let server = TestServer::start(&[]).await;
    let info = server.create_session().await;
    let sid = info.id.clone();
    let vid = info.viewer_id.clone();
    assert_eq!(vid.len(), 36);
    assert_ne!(vid, sid);
    assert!(!info.read_only);
    let name = server.add_instance(&sid).await;

    let response = server.get(&format!("/api/view/{vid}")).await;
    assert_eq!(response.status(), 200);
    let view: SessionInfo = response.json().await.unwrap();
    assert!(view.read_only);
    assert_eq!(view.viewer_id, "");
    assert_eq!(view.id, sid);
    assert_eq!(view.instances.len(), 1);
    assert_eq!(view.instances[0].name, name);
    for unknown in [sid.as_str(), "nope"] {
        let response = server.get(&format!("/api/view/{unknown}")).await;
        assert_eq!(response.status(), 404);
    }
    // The page's route serves the app.
    let response = server.get(&format!("/v/{vid}")).await;
    assert_ne!(response.status(), 404);

    let mut owner = server.terminal(&sid, &name, "").await;
    let url = server.ws_url(&format!("/api/view/{vid}/instances/{name}/terminal"));
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut viewer = playground_tests::TermClient::from_ws(ws).await;
    owner.send("echo from-owner-$((6*7))\n").await;
    owner.wait_for("from-owner-42", T).await;
    viewer.wait_for("from-owner-42", T).await;

    viewer.send("echo typed-by-viewer\n").await;
    viewer
        .send_control(serde_json::json!({"type": "resize", "cols": 33, "rows": 11}))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    owner.send("stty size; echo size-done\n").await;
    owner.wait_for("size-done\r\n", T).await;
    viewer.wait_for("size-done\r\n", T).await;
    owner.drain(Duration::from_millis(300)).await;
    assert!(
        !owner.text().contains("typed-by-viewer"),
        "{}",
        owner.text()
    );
    assert!(!viewer.text().contains("typed-by-viewer"));
    assert!(owner.text().contains("24 80"), "{}", owner.text());
    assert!(!owner.text().contains("11 33"));

    // The view's event stream: a snapshot without the viewer id.
    let url = server.ws_url(&format!("/api/view/{vid}/events"));
    let (mut events, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    match next_event(&mut events).await {
        Some(SessionEvent::Snapshot { session }) => {
            assert!(session.read_only);
            assert_eq!(session.viewer_id, "");
        }
        other => panic!("expected a snapshot, got {other:?}"),
    }
    server.add_instance(&sid).await;
    loop {
        match next_event(&mut events).await {
            Some(SessionEvent::InstanceAdded { instance }) => {
                assert_eq!(instance.name, "node2");
                break;
            }
            Some(_) => {}
            None => panic!("the view's event stream ended"),
        }
    }
    server.delete_session(&sid).await;
    let response = server.get(&format!("/api/view/{vid}")).await;
    assert_eq!(response.status(), 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tab_is_its_own_shell() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    let mut tab0 = server.terminal(&sid, &name, "").await;
    let mut tab1 = server.terminal(&sid, &name, "?tab=1").await;
    let mut again0 = server.terminal(&sid, &name, "?tab=0").await;
    tab0.send("echo PID:$$:$((40+2))\n").await;
    tab1.send("echo PID:$$:$((40+2))\n").await;
    // The pid printed (not the echoed command line).
    let pid = |text: &str| -> String {
        let end = text.rfind(":42").unwrap();
        let start = text[..end].rfind("PID:").unwrap() + 4;
        text[start..end].to_string()
    };
    let p0 = pid(&tab0.wait_for(":42", T).await);
    let p1 = pid(&tab1.wait_for(":42", T).await);
    assert!(
        p0.parse::<u32>().is_ok() && p1.parse::<u32>().is_ok(),
        "{p0} {p1}"
    );
    assert_ne!(p0, p1);
    // Tab 0 is shared by every client of tab 0, and file paths follow it.
    again0.wait_for(&format!("PID:{p0}:42"), T).await;
    tab1.send("cd /tmp && echo moved\n").await;
    tab1.wait_for(":/tmp# ", T).await;
    let url = server.url(&format!(
        "/api/sessions/{sid}/instances/{name}/files?path=x.txt"
    ));
    let response = server.http.post(url).body("x").send().await.unwrap();
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["path"], "/root/x.txt");

    for bad in ["4", "-1", "x"] {
        let url = server.url(&format!(
            "/api/sessions/{sid}/instances/{name}/terminal?tab={bad}"
        ));
        let response = server
            .http
            .get(url)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "tab={bad}");
    }

    // After a restart every shell is taken back, each on its tab.
    drop((tab0, tab1, again0));
    let data_dir = server.crash().await;
    let server = TestServer::start_in(data_dir, &[]).await;
    for (tab, expected) in [(0, &p0), (1, &p1)] {
        let mut term = server.terminal(&sid, &name, &format!("?tab={tab}")).await;
        term.send("echo PID:$$:$((40+2))\n").await;
        let got = pid(&term.wait_for(":42", T).await);
        assert_eq!(&got, expected, "tab {tab}");
    }
    server.stop().await;
}

async fn extend(server: &TestServer, sid: &str) -> reqwest::Response {
    server
        .http
        .post(server.url(&format!("/api/sessions/{sid}/extend")))
        .send()
        .await
        .unwrap()
}

fn at(text: &str) -> std::time::SystemTime {
    humantime::parse_rfc3339(text).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_extend_up_to_their_maximum_length_and_keep_it_over_a_restart() {
    let server = TestServer::start(&["--session-ttl=1h", "--session-max=2h"]).await;
    let info = server.create_session().await;
    let sid = info.id.clone();
    assert!(info.can_extend);
    let created = at(&info.created_at);
    assert_eq!(
        at(&info.expires_at).duration_since(created).unwrap(),
        Duration::from_secs(3600)
    );
    let response = extend(&server, &sid).await;
    assert_eq!(response.status(), 200);
    let extended: SessionInfo = response.json().await.unwrap();
    assert_eq!(
        at(&extended.expires_at).duration_since(created).unwrap(),
        Duration::from_secs(7200)
    );
    assert!(!extended.can_extend);
    let response = extend(&server, &sid).await;
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["error"],
        "this session cannot be extended further (it may last at most 2h)"
    );
    assert_eq!(extend(&server, "nope").await.status(), 404);

    let data_dir = server.crash().await;
    let server = TestServer::start_in(data_dir, &["--session-ttl=1h", "--session-max=2h"]).await;
    let info = server.session(&sid).await.expect("taken back");
    assert_eq!(info.expires_at, extended.expires_at);
    assert!(!info.can_extend);
    assert_eq!(info.viewer_id, extended.viewer_id);
    server.stop().await;
}

async fn list(server: &TestServer, sid: &str, name: &str, path: &str) -> reqwest::Response {
    let url = server.url(&format!("/api/sessions/{sid}/instances/{name}/files"));
    let url = reqwest::Url::parse_with_params(&url, &[("path", path), ("list", "true")]).unwrap();
    server.http.get(url).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn directories_are_listed_dirs_first() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    server
        .exec(
            &sid,
            &name,
            "cd /root && rm -rf ./* ./.[!.]* && mkdir zdir adir && printf 12345 > bfile \
             && touch afile && ln -s afile link && mkfifo pipe",
        )
        .await;
    let response = list(&server, &sid, &name, "/root").await;
    assert_eq!(response.status(), 200);
    let entries: Vec<DirEntry> = response.json().await.unwrap();
    let got: Vec<(&str, EntryKind, u64)> = entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind, e.size))
        .collect();
    assert_eq!(
        got,
        [
            ("adir", EntryKind::Dir, 0),
            ("zdir", EntryKind::Dir, 0),
            ("afile", EntryKind::File, 0),
            ("bfile", EntryKind::File, 5),
            ("link", EntryKind::Symlink, 0),
            ("pipe", EntryKind::Other, 0),
        ]
    );
    // Relative paths start at /root; `..` never leaves the instance.
    let response = list(&server, &sid, &name, "adir").await;
    assert_eq!(response.status(), 200);
    let entries: Vec<DirEntry> = response.json().await.unwrap();
    assert!(entries.is_empty());
    let response = list(&server, &sid, &name, "/../../..").await;
    assert_eq!(response.status(), 200);
    let entries: Vec<DirEntry> = response.json().await.unwrap();
    assert!(entries
        .iter()
        .any(|e| e.name == "root" && e.kind == EntryKind::Dir));
    assert!(!entries.iter().any(|e| e.name == "state.db"));

    assert_eq!(
        list(&server, &sid, &name, "/root/missing").await.status(),
        404
    );
    assert_eq!(
        list(&server, &sid, &name, "/root/bfile").await.status(),
        422
    );
    assert_eq!(list(&server, &sid, &name, "/root/pipe").await.status(), 422);
    server.stop().await;
}
