//! Tutorials through the API: the example scenarios of the repository run
//! step by step against the real server, real instances and the real
//! dockerd inside, and the format's corners (assets, scripts, a hanging
//! check, hostile Markdown, an unknown machine type). The page's part is
//! `browser_tutorial.rs`.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use playground_protocol::{
    CatalogEntry, CheckResult, ScenarioInfo, ScriptKind, ScriptRun, SessionEvent, SessionInfo,
    TutorialState,
};
use playground_tests::{binary, images_dir, proxy_client, repo_root, TestServer};
use tokio_tungstenite::tungstenite::Message;

fn scenarios_arg() -> String {
    format!("--scenarios={}", repo_root().join("scenarios").display())
}

async fn create(server: &TestServer, body: serde_json::Value) -> reqwest::Response {
    server
        .http
        .post(server.url("/api/sessions"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn start_scenario(server: &TestServer, id: &str) -> SessionInfo {
    let response = create(server, serde_json::json!({ "scenario": id })).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn check(server: &TestServer, sid: &str) -> CheckResult {
    let response = server
        .http
        .post(server.url(&format!("/api/sessions/{sid}/tutorial/check")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn open_page(server: &TestServer, sid: &str, page: u32) -> reqwest::Response {
    server
        .http
        .post(server.url(&format!("/api/sessions/{sid}/tutorial/page")))
        .json(&serde_json::json!({ "page": page }))
        .send()
        .await
        .unwrap()
}

async fn tutorial(server: &TestServer, sid: &str) -> TutorialState {
    server.session(sid).await.unwrap().tutorial.unwrap()
}

async fn scripts(server: &TestServer, sid: &str) -> Vec<ScriptRun> {
    let path = format!("/api/sessions/{sid}/tutorial/scripts");
    server.get(&path).await.json().await.unwrap()
}

/// Wait until `f` gives a value, polling every 200 ms.
async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_basics_from_start_to_finish_and_after_a_restart() {
    let server = TestServer::start_nesting(&[&scenarios_arg()]).await;

    // The catalog lists both examples in structure.json's order.
    let catalog: Vec<CatalogEntry> = server.get("/api/scenarios").await.json().await.unwrap();
    let ids: Vec<&str> = catalog
        .iter()
        .map(|e| match e {
            CatalogEntry::Scenario(s) => s.id.as_str(),
            CatalogEntry::Course { id, .. } => id.as_str(),
        })
        .collect();
    assert_eq!(ids, ["docker-basics", "two-hosts"]);
    let info: ScenarioInfo = server
        .get("/api/scenarios/docker-basics")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info.pages.len(), 5, "intro, three steps, finish");
    assert!(info.pages[1].has_check && !info.pages[0].has_check);
    assert!(
        info.pages[1].html.contains("<pre class=\"exec\">"),
        "{}",
        info.pages[1].html
    );
    // Scripts stay on the server.
    let raw = server
        .get("/api/scenarios/docker-basics")
        .await
        .text()
        .await
        .unwrap();
    assert!(!raw.contains("docker container inspect"), "{raw}");

    let session = start_scenario(&server, "docker-basics").await;
    let sid = session.id.clone();
    let names: Vec<&str> = session.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["node1"]);
    assert_eq!(session.instances[0].profile, "nesting");
    let state = session.tutorial.clone().unwrap();
    assert_eq!((state.page, state.reached, state.finished), (0, 0, false));

    // The assets are there before the intro shows: a glob into ~/site and
    // an executable script.
    let out = server
        .run(
            &sid,
            "node1",
            "stat -c '%n %a' /root/site/Dockerfile /root/site/index.html /usr/local/bin/site-info",
        )
        .await;
    assert_eq!(
        out.stdout,
        "/root/site/Dockerfile 644\n/root/site/index.html 644\n/usr/local/bin/site-info 755\n"
    );

    // The intro's background script pulls the images out of sight; its
    // output is kept for the author.
    let run = wait_until(
        "the background script",
        Duration::from_secs(120),
        || async {
            scripts(&server, &sid)
                .await
                .into_iter()
                .find(|r| r.kind == ScriptKind::Background && r.exit_code.is_some())
        },
    )
    .await;
    assert_eq!(run.exit_code, Some(0), "{}", run.output);
    assert!(run.output.contains("busybox"), "{}", run.output);

    // A later page is locked.
    let response = open_page(&server, &sid, 3).await;
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("not unlocked"),
        "{body}"
    );

    // The intro has no check: Start moves on.
    let result = check(&server, &sid).await;
    assert!(result.passed && result.page == 0);
    assert_eq!(tutorial(&server, &sid).await.page, 1);

    // Check before doing step 1: the script's words are the hint.
    let result = check(&server, &sid).await;
    assert!(!result.passed && !result.timed_out);
    assert_eq!(
        result.output,
        "There is no container named hello yet: click the docker run command above."
    );

    // The event stream tells the page when the step passes by itself.
    let url = server.ws_url(&format!("/api/sessions/{sid}/events"));
    let (mut events, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let out = server
        .run(
            &sid,
            "node1",
            "docker run --name hello busybox echo \"Hello from a container\"",
        )
        .await;
    assert_eq!(out.exit_code, 0, "{}", out.stderr);
    let passed = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(message)) = events.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            if let Ok(SessionEvent::Tutorial { tutorial }) = serde_json::from_str(&text) {
                return *tutorial;
            }
        }
        panic!("event stream closed");
    })
    .await
    .expect("the automatic check passes within 20 s");
    assert_eq!((passed.page, passed.reached), (2, 2));
    let last = passed.last_check.unwrap();
    assert!(last.passed && last.automatic && last.page == 1);

    // Step 2 by Check.
    assert!(!check(&server, &sid).await.passed);
    let out = server
        .run(&sid, "node1", "docker build -t my-site ~/site")
        .await;
    assert_eq!(out.exit_code, 0, "{}", out.stderr);
    let result = check(&server, &sid).await;
    assert!(result.passed, "{}", result.output);

    // Step 3: the published port is served through the playground's link.
    let out = server
        .run(&sid, "node1", "docker run -d --name web -p 80:80 my-site")
        .await;
    assert_eq!(out.exit_code, 0, "{}", out.stderr);
    let link = session
        .port_url_template
        .replace("{instance}", "node1")
        .replace("{port}", "80");
    let link = reqwest::Url::parse(&link).unwrap();
    let page = wait_until(
        "the site through the proxy",
        Duration::from_secs(30),
        || async {
            let response = proxy_client(&link).get(link.clone()).send().await.ok()?;
            let text = response.text().await.ok()?;
            text.contains("Hello from my-site").then_some(text)
        },
    )
    .await;
    assert!(page.contains("<h1>"), "{page}");
    let result = wait_until("step 3 to pass", Duration::from_secs(30), || async {
        let state = tutorial(&server, &sid).await;
        if state.finished {
            return Some(state);
        }
        check(&server, &sid).await;
        None
    })
    .await;
    assert_eq!((result.page, result.reached), (4, 4), "the finish page");

    // Back to step 1 (done pages open again), then where we were.
    let response = open_page(&server, &sid, 1).await;
    assert_eq!(response.status(), 200);
    // A step done and opened again stays open while the page (the event
    // stream) watches: its check passing again moves nobody on.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(tutorial(&server, &sid).await.page, 1);
    drop(events);
    assert_eq!(open_page(&server, &sid, 4).await.status(), 200);

    // A restart of the server keeps the place.
    let data_dir = server.stop_keeping_instances().await;
    let server =
        TestServer::start_in(data_dir, &["--instance-profile=nesting", &scenarios_arg()]).await;
    let state = tutorial(&server, &sid).await;
    assert_eq!((state.page, state.reached, state.finished), (4, 4, true));
    server.finish(&sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hosts_checks_run_on_the_first_and_reach_the_second() {
    let server = TestServer::start_nesting(&[&scenarios_arg()]).await;
    let session = start_scenario(&server, "two-hosts").await;
    let sid = session.id.clone();
    let names: Vec<&str> = session.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["node1", "node2"]);
    // The intro's foreground script, typed into node1's first terminal.
    let mut terminal = server.terminal(&sid, "node1", "").await;
    terminal
        .wait_for(
            "This is node1; its neighbour is node2 at 10.",
            Duration::from_secs(20),
        )
        .await;
    terminal.close().await;
    assert!(check(&server, &sid).await.passed, "the intro");

    let hint = check(&server, &sid).await;
    assert!(
        !hint.passed && hint.output.contains("node1 gets no page from node2"),
        "{hint:?}"
    );
    let out = server
        .run(&sid, "node2", "docker run -d --name web -p 80:80 nginx")
        .await;
    assert_eq!(out.exit_code, 0, "{}", out.stderr);
    // Automatic checks run only while a page watches the session: none yet.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(tutorial(&server, &sid).await.page, 1);
    // A page's event stream: the check on node1 sees node2's page.
    let url = server.ws_url(&format!("/api/sessions/{sid}/events"));
    let (events, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    wait_until(
        "step 1 to pass by itself",
        Duration::from_secs(30),
        || async { (tutorial(&server, &sid).await.page == 2).then_some(()) },
    )
    .await;
    drop(events);
    let out = server
        .run(&sid, "node1", "curl -s http://node2/ -o ~/from-node2.html")
        .await;
    assert_eq!(out.exit_code, 0, "{}", out.stderr);
    let result = check(&server, &sid).await;
    assert!(result.passed, "{}", result.output);
    let state = tutorial(&server, &sid).await;
    assert!(state.finished && state.page == 3, "{state:?}");
    server.finish(&sid).await;
}

/// A scenario folder written by the test: `files` are (path, contents).
fn write_scenarios(dir: &Path, files: &[(&str, &str)]) {
    for (path, contents) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_formats_corners() {
    let dir = tempfile::tempdir().unwrap();
    write_scenarios(
        dir.path(),
        &[
            (
                "corners/index.json",
                r#"{
                  "title": "Corners",
                  "details": {
                    "intro": {"text": "intro.md", "foreground": "fg.sh"},
                    "steps": [
                      {"text": "hang.md", "verify": "hang.sh"},
                      {"title": "Last", "text": "last.md"}
                    ],
                    "assets": {
                      "host01": [
                        {"file": "conf/**/*.conf", "target": "/etc/corners", "chmod": "0600"},
                        {"file": "tool.sh", "target": "~/bin", "chmod": "+x"}
                      ]
                    }
                  },
                  "backend": {"imageid": "1-instance"}
                }"#,
            ),
            (
                "corners/intro.md",
                "# Hello\n\n<script>alert(1)</script>\n[x](javascript:alert(1))\n<img src=x onerror=alert(2)>\n`ls`{{exec}}\n",
            ),
            ("corners/fg.sh", "echo foreground-$((6*7))\n"),
            ("corners/hang.md", "Nothing to do.\n"),
            ("corners/hang.sh", "echo waiting; sleep 1000\n"),
            ("corners/last.md", "Done.\n"),
            ("corners/assets/conf/a.conf", "a=1\n"),
            ("corners/assets/conf/deep/b.conf", "b=2\n"),
            ("corners/assets/conf/skip.txt", "not copied\n"),
            ("corners/assets/tool.sh", "#!/bin/sh\necho tool ran\n"),
        ],
    );
    let arg = format!("--scenarios={}", dir.path().display());
    let server = TestServer::start(&[&arg]).await;

    // Hostile Markdown arrives inert.
    let info: ScenarioInfo = server
        .get("/api/scenarios/corners")
        .await
        .json()
        .await
        .unwrap();
    let intro = &info.pages[0].html;
    for bad in ["<script", "javascript:", "onerror"] {
        assert!(!intro.contains(bad), "{bad} in {intro}");
    }
    assert!(intro.contains("<code class=\"exec\">ls</code>"), "{intro}");
    // A template as the machine type: its profile is the server's default.
    assert_eq!(info.summary.hosts, ["node1"]);
    assert_eq!(info.summary.profile, "strict");
    assert_eq!(info.pages[1].title, "Step 1");

    let session = start_scenario(&server, "corners").await;
    let sid = session.id;

    // Globs keep the folders below the pattern's first wildcard; chmod applied.
    let out = server
        .run(
            &sid,
            "node1",
            "cd /etc/corners && find . -type f | sort | xargs stat -c '%n %a'; ~/bin/tool.sh",
        )
        .await;
    assert_eq!(out.stdout, "./a.conf 600\n./deep/b.conf 600\ntool ran\n");

    // The foreground script runs in the first terminal.
    let mut terminal = server.terminal(&sid, "node1", "").await;
    terminal
        .wait_for("foreground-42", Duration::from_secs(20))
        .await;
    terminal.close().await;

    // A check that hangs is stopped after its time limit and reported.
    assert!(check(&server, &sid).await.passed, "the intro");
    let started = Instant::now();
    let result = check(&server, &sid).await;
    let took = started.elapsed();
    assert!(!result.passed && result.timed_out, "{result:?}");
    assert!(result.output.starts_with("waiting\n"), "{}", result.output);
    assert!(
        result.output.contains("did not finish within 20 seconds"),
        "{}",
        result.output
    );
    assert!(
        (Duration::from_secs(19)..Duration::from_secs(30)).contains(&took),
        "{took:?}"
    );
    assert_eq!(tutorial(&server, &sid).await.page, 1, "still on the step");
    server.finish(&sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_requests_are_refused_with_their_reason() {
    let server = TestServer::start(&[&scenarios_arg()]).await;
    let response = create(&server, serde_json::json!({"scenario": "nope"})).await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("\"nope\""),
        "{body}"
    );
    let response = create(
        &server,
        serde_json::json!({"scenario": "two-hosts", "template": "1-instance"}),
    )
    .await;
    assert_eq!(response.status(), 422);
    assert_eq!(server.get("/api/scenarios/nope").await.status(), 404);

    let sid = server.create_session().await.id;
    let response = server
        .http
        .post(server.url(&format!("/api/sessions/{sid}/tutorial/check")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("no tutorial"),
        "{body}"
    );
    server.finish(&sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_machine_type_stops_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    write_scenarios(
        dir.path(),
        &[(
            "k8s/index.json",
            r#"{"title": "K", "details": {"steps": []}, "backend": {"imageid": "windows-2022"}}"#,
        )],
    );
    let data = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(binary())
        .arg("--listen=127.0.0.1:0")
        .arg(format!("--data-dir={}", data.path().display()))
        .arg(format!("--images-dir={}", images_dir().display()))
        .arg(format!("--scenarios={}", dir.path().display()))
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("the server stops at once")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("k8s/index.json"), "{stderr}");
    assert!(stderr.contains("\"windows-2022\""), "{stderr}");
    assert!(stderr.contains("neither a template"), "{stderr}");
}
