//! The page in a real browser: headless Chromium, driven through
//! chromedriver, against the real server and a real instance. Needs the web
//! app built into dist/ (the README's test command does that).

use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use playground_tests::{repo_root, TestServer};
use tokio::process::Command;

/// A free TCP port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn start_add_instance_and_type_into_the_terminal() {
    assert!(
        repo_root().join("dist/index.html").exists(),
        "dist/ is missing: build the web app first (trunk build --release)"
    );
    let server = TestServer::start(&[]).await;

    let port = free_port();
    let mut driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver (apt-get install chromium-driver)");
    let profile = tempfile::tempdir().unwrap();
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync", "--window-size=1280,800",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let capabilities = match capabilities {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let webdriver = format!("http://127.0.0.1:{port}");
    let browser = wait_for("chromedriver", Duration::from_secs(20), || {
        let mut builder = ClientBuilder::new(connector.clone());
        builder.capabilities(capabilities.clone());
        let url = webdriver.clone();
        async move { builder.connect(&url).await.ok() }
    })
    .await;

    let result = async {
        browser.goto(&server.base).await?;
        browser
            .wait()
            .for_element(Locator::Css("#start"))
            .await?
            .click()
            .await?;
        browser
            .wait()
            .for_element(Locator::Css("#add-instance"))
            .await?
            .click()
            .await?;
        browser
            .wait()
            .for_element(Locator::Css(".instance[data-name='node1']"))
            .await?;
        let input = browser
            .wait()
            .for_element(Locator::Css("#terminal textarea"))
            .await?;
        // Wait for the shell's prompt before typing.
        wait_for("a shell prompt", Duration::from_secs(30), || async {
            let text = screen_text(&browser).await;
            text.contains("root@node1").then_some(())
        })
        .await;
        input.send_keys("echo hello-$((6*7))\u{E007}").await?;
        let text = wait_for(
            "hello-42 on the screen",
            Duration::from_secs(20),
            || async {
                let text = screen_text(&browser).await;
                text.lines().any(|l| l.trim() == "hello-42").then_some(text)
            },
        )
        .await;
        assert!(text.contains("echo hello-$((6*7))"), "{text}");

        let shot = browser.screenshot().await?;
        let dir = repo_root().join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("terminal-hello-42.png");
        std::fs::write(&path, shot).unwrap();
        println!("screenshot: {}", path.display());
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    let _ = driver.kill().await;
    result.expect("browser steps");
    server.stop().await;
}

/// The terminal's visible text (xterm's DOM renderer uses no-break spaces).
async fn screen_text(browser: &fantoccini::Client) -> String {
    let script = "const rows = document.querySelector('#terminal .xterm-rows');\
                  return rows ? Array.from(rows.children).map(r => r.textContent).join('\\n') : '';";
    browser
        .execute(script, vec![])
        .await
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('\u{a0}', " ")))
        .unwrap_or_default()
}
