//! Embedding in another site (`/sdk.js`, `/embed/...`, `--embed-origins`),
//! in a real browser: a tutorial page served from another origin (a small
//! HTTP server in the test, on another loopback port) starts a session with
//! the SDK, shows two terminals and runs its code blocks in the second.
//! Also: what is refused to origins that are not listed, and that nothing is
//! embeddable without the setting. Needs the web app built into dist/.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use playground_tests::browser::{save_screenshot, screen_text_in, start_browser, wait_for};
use playground_tests::{binary, repo_root, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The tutorial page: the SDK from the playground, two terminals, a code
/// block bound to node2. `window.result` says how starting went.
fn tutorial_page(playground: &str) -> String {
    format!(
        r##"<!doctype html>
<html><head><meta charset="utf-8"><title>A tutorial</title>
<script src="{playground}/sdk.js"></script>
<style>
  body {{ font-family: sans-serif; margin: 16px; }}
  .terms {{ display: flex; gap: 12px; }}
  .term {{ flex: 1; height: 360px; border: 1px solid #888; }}
  pre {{ background: #eee; padding: 8px; }}
</style></head>
<body>
<h1>Two hosts, one tutorial</h1>
<p>Click the block to run it on node2:</p>
<pre id="code" class="run-node2">echo embedded-$((6*7)) > /tmp/from-site
echo "ran-on-$(hostname)"</pre>
<div class="terms"><div id="t1" class="term"></div><div id="t2" class="term"></div></div>
<script>
  window.result = null;
  (async () => {{
    try {{
      const pg = Playground.connect();
      const s = await pg.createSession({{template: "2-instances"}});
      window.session = s;
      s.terminal("node1", "#t1");
      s.terminal("node2", document.getElementById("t2"), {{theme: "light", fontSize: 16}});
      s.bindCode("pre.run-node2", "node2");
      window.result = {{id: s.id, instances: s.instances, port: s.portUrl("node1", 80)}};
    }} catch (e) {{
      window.result = {{error: String(e.message), status: e.status}};
    }}
  }})();
</script>
</body></html>"##
    )
}

/// Serve `page` for every request on `listener` (HTTP/1.1, one answer per
/// connection), until the test ends.
fn serve_page(listener: tokio::net::TcpListener, page: String) {
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let page = page.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
}

/// `window.result` of the tutorial page, once its script has set it.
async fn page_result(browser: &fantoccini::Client) -> serde_json::Value {
    wait_for("the page's session", Duration::from_secs(60), || async {
        let v = browser
            .execute("return window.result;", vec![])
            .await
            .ok()?;
        (!v.is_null()).then_some(v)
    })
    .await
}

/// The visible text of the terminal in the page's `index`th frame.
async fn frame_text(browser: &fantoccini::Client, index: u16) -> String {
    if browser.enter_frame(index).await.is_err() {
        return String::new();
    }
    let text = screen_text_in(browser, "#embed").await;
    browser.enter_parent_frame().await.unwrap();
    text
}

/// Wait for a line reading `line` in the `index`th frame's terminal; on
/// time-out, keep a screenshot and show both frames' text.
async fn wait_frame_line(browser: &fantoccini::Client, index: u16, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = frame_text(browser, index).await;
        if text.lines().any(|l| l.trim() == line) {
            return text;
        }
        if Instant::now() > deadline {
            let _ = save_screenshot(browser, "embed-failure.png").await;
            let others = frame_text(browser, 1 - index.min(1)).await;
            panic!("no {line:?} in frame {index}:\n{text}\nthe other frame:\n{others}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tutorial_site_runs_its_code_blocks_in_the_chosen_terminal() {
    assert!(
        repo_root().join("dist/index.html").exists(),
        "dist/ is missing: build the web app first (trunk build --release)"
    );
    let site = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site_port = site.local_addr().unwrap().port();
    let site_origin = format!("http://127.0.0.1:{site_port}");
    let scenarios = repo_root().join("scenarios");
    let server = TestServer::start(&[
        "--embed-origins",
        &site_origin,
        "--scenarios",
        scenarios.to_str().unwrap(),
    ])
    .await;
    serve_page(site, tutorial_page(&server.base));

    // What the server says, before any browser.
    let embed = server.get("/embed/s/x/node1").await;
    assert_eq!(embed.status(), 200);
    assert_eq!(
        embed.headers()["content-security-policy"],
        format!("frame-ancestors {site_origin}").as_str()
    );
    let landing = server.get("/").await;
    assert_eq!(
        landing.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
    let sdk = server.get("/sdk.js").await;
    assert!(sdk.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let preflight = |origin: String| {
        server
            .http
            .request(reqwest::Method::OPTIONS, server.url("/api/sessions"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let allowed = preflight(site_origin.clone()).await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        site_origin.as_str()
    );
    let other = preflight(format!("http://localhost:{site_port}"))
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let (browser, driver, _profile) = start_browser().await;
    let result = async {
        browser.goto(&format!("{site_origin}/tutorial")).await?;
        let started = page_result(&browser).await;
        let sid = started["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {started}"))
            .to_string();
        assert_eq!(started["instances"], serde_json::json!(["node1", "node2"]));
        let info = server.session(&sid).await.expect("the session exists");
        let expected_port = info
            .port_url_template
            .replace("{instance}", "node1")
            .replace("{port}", "80");
        assert_eq!(started["port"], expected_port.as_str());

        // Clicked at once, before the terminals are connected: the command
        // waits for node2's terminal, then runs there.
        browser.find(Locator::Css("#code")).await?.click().await?;
        let node2 = wait_frame_line(&browser, 1, "ran-on-node2").await;
        assert!(node2.contains("echo embedded-$((6*7))"), "{node2}");
        browser.enter_frame(1).await?;
        let look = browser
            .execute(
                "return [document.documentElement.dataset.theme, \
                         getComputedStyle(document.querySelector('.xterm-rows')).fontSize];",
                vec![],
            )
            .await?;
        browser.enter_parent_frame().await?;
        assert_eq!(look, serde_json::json!(["light", "16px"]));
        let written = server.run(&sid, "node2", "cat /tmp/from-site").await.stdout;
        assert_eq!(written.trim(), "embedded-42");
        let node1 = frame_text(&browser, 0).await;
        assert!(node1.contains("root@node1"), "node1's terminal: {node1}");
        assert!(!node1.contains("embedded"), "ran in node1 too: {node1}");
        let on_node1 = server.exec(&sid, "node1", "test -e /tmp/from-site").await;
        assert_ne!(on_node1.exit_code, 0, "node1 has the file");
        save_screenshot(&browser, "embed-two-terminals.png").await?;

        // The same from code, into node1, interrupting what runs there.
        browser
            .execute("window.session.run('node1', 'sleep 600');", vec![])
            .await?;
        wait_frame_line(&browser, 0, "root@node1:~# sleep 600").await;
        browser
            .execute(
                "window.session.run('node1', 'echo from-code-$((2+3))', {interrupt: true});",
                vec![],
            )
            .await?;
        wait_frame_line(&browser, 0, "from-code-5").await;

        // A frame takes orders from its parent page only: node1's frame
        // posting to node2's is ignored.
        browser.enter_frame(0).await?;
        browser
            .execute(
                "parent.frames[1].postMessage(\
                   {type: 'playground:run', text: 'echo from-sibling-$((1+1))\\n'}, '*');",
                vec![],
            )
            .await?;
        browser.enter_parent_frame().await?;
        browser
            .execute("window.session.run('node2', 'echo after-sibling');", vec![])
            .await?;
        let node2 = wait_frame_line(&browser, 1, "after-sibling").await;
        assert!(!node2.contains("from-sibling"), "{node2}");
        save_screenshot(&browser, "embed-run-from-code.png").await?;

        // Ending it from the page ends the session.
        let ended = browser
            .execute_async(
                "const done = arguments[0];\
                 window.session.end().then(() => done('ended'), (e) => done(String(e)));",
                vec![],
            )
            .await?;
        assert_eq!(ended, "ended");
        assert!(
            server.session(&sid).await.is_none(),
            "the session is still there"
        );

        // From a scenario; an API error rejects with the API's own message.
        let create = "const done = arguments[1];\
                      Playground.connect().createSession({scenario: arguments[0]}).then(\
                        async (s) => { const info = s.info; await s.end(); done({info}); },\
                        (e) => done({error: e.message, status: e.status}));";
        let tutorial = browser
            .execute_async(create, vec![serde_json::json!("two-hosts")])
            .await?;
        let names: Vec<&str> = tutorial["info"]["instances"]
            .as_array()
            .unwrap_or_else(|| panic!("no session from the scenario: {tutorial}"))
            .iter()
            .filter_map(|i| i["name"].as_str())
            .collect();
        assert_eq!(names, ["node1", "node2"], "{tutorial}");
        assert!(tutorial["info"]["tutorial"].is_object(), "{tutorial}");
        let unknown = browser
            .execute_async(create, vec![serde_json::json!("no-such-scenario")])
            .await?;
        let direct: playground_protocol::ErrorBody = server
            .http
            .post(server.url("/api/sessions"))
            .json(&serde_json::json!({"scenario": "no-such-scenario"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(unknown["status"], 404, "{unknown}");
        assert_eq!(unknown["error"], direct.error.as_str(), "{unknown}");

        // The same page from an origin that is not listed (localhost is
        // not 127.0.0.1 to a browser): the SDK's promise rejects.
        browser
            .goto(&format!("http://localhost:{site_port}/tutorial"))
            .await?;
        let refused = page_result(&browser).await;
        let error = refused["error"].as_str().unwrap_or_default();
        assert!(error.contains("--embed-origins"), "{refused}");
        // Nor may it frame an embed page: the browser shows its own error
        // page in the frame instead.
        browser
            .execute(
                "const f = document.createElement('iframe');\
                 f.onload = () => { window.frameLoaded = true; };\
                 f.src = arguments[0];\
                 document.getElementById('t1').append(f);",
                vec![serde_json::json!(server.url("/embed/s/x/node1"))],
            )
            .await?;
        wait_for("the frame to load", Duration::from_secs(20), || async {
            let v = browser.execute("return window.frameLoaded;", vec![]).await;
            (v.ok()? == serde_json::Value::Bool(true)).then_some(())
        })
        .await;
        browser.enter_frame(0).await?;
        let inside = browser.execute("return location.href;", vec![]).await?;
        println!("the unlisted origin's frame shows {inside}");
        browser.enter_parent_frame().await?;
        assert!(
            !inside
                .as_str()
                .unwrap_or_default()
                .starts_with(&server.base),
            "the embed page loaded in an unlisted origin's frame: {inside}"
        );
        save_screenshot(&browser, "embed-refused-origin.png").await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    if result.is_err() {
        let _ = save_screenshot(&browser, "embed-failure.png").await;
    }
    browser.close().await.unwrap();
    drop(driver);
    result.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_embeddable_without_embed_origins() {
    let server = TestServer::start(&[]).await;
    for path in ["/embed/s/x/node1", "/embed/s/x/node1?tab=2"] {
        let page = server.get(path).await;
        assert_eq!(
            page.headers()["content-security-policy"],
            "frame-ancestors 'none'",
            "{path}"
        );
    }
    let landing = server.get("/").await;
    assert_eq!(landing.headers()["x-frame-options"], "DENY");
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/api/sessions"))
        .header("Origin", "http://127.0.0.1:9")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let post = server
        .http
        .post(server.url("/api/sessions"))
        .header("Origin", "http://127.0.0.1:9")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert!(post.headers().get("access-control-allow-origin").is_none());
    let session: playground_protocol::SessionInfo = post.json().await.unwrap();
    server.delete_session(&session.id).await;

    // A bad origin stops the start, saying why.
    let bad = tokio::process::Command::new(binary())
        .args(["--embed-origins", "https://tutorial.example/docs"])
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("--embed-origins") && stderr.contains("no path"),
        "{stderr}"
    );
}
