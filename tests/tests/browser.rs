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

        save_screenshot(&browser, "terminal-hello-42.png").await?;

        // The instance panel: its address and live memory figure.
        let ip = wait_for(
            "the instance's address",
            Duration::from_secs(10),
            || async {
                let text = element_text(&browser, "#instance-ip").await?;
                is_ten_net(&text).then_some(text)
            },
        )
        .await;
        println!("instance ip: {ip}");
        let memory = wait_for("the memory figure", Duration::from_secs(10), || async {
            let text = element_text(&browser, "#instance-memory").await?;
            text.contains("iB").then_some(text)
        })
        .await;
        println!("instance memory: {memory}");

        // A server in the instance becomes a port link within seconds.
        input
            .send_keys("python3 -m http.server 8000 &\u{E007}")
            .await?;
        let href = wait_for("the link of port 8000", Duration::from_secs(5), || async {
            let link = browser
                .find(Locator::Css(".port-link[data-port='8000']"))
                .await
                .ok()?;
            link.attr("href").await.ok().flatten()
        })
        .await;
        assert!(href.contains("8000"), "port link {href}");
        let link = browser
            .find(Locator::Css(".port-link[data-port='8000']"))
            .await?;
        assert_eq!(link.attr("target").await?.as_deref(), Some("_blank"));
        assert!(link.text().await?.contains(":8000"));
        println!("port link: {href}");

        // The "open port" field refuses what is not a port, inline.
        let field = browser.find(Locator::Css("#open-port-input")).await?;
        field.send_keys("70000").await?;
        browser
            .find(Locator::Css("#open-port-button"))
            .await?
            .click()
            .await?;
        let error = browser
            .wait()
            .for_element(Locator::Css("#open-port-error"))
            .await?
            .text()
            .await?;
        assert!(error.contains("65535"), "{error}");
        field.send_keys(&"\u{E003}".repeat(5)).await?;
        wait_for("the error to go", Duration::from_secs(5), || async {
            let gone = browser
                .find(Locator::Css("#open-port-error"))
                .await
                .is_err();
            gone.then_some(())
        })
        .await;

        // Wait for a CPU figure (two stats events) so the screenshot shows it.
        let _ = tokio::time::timeout(
            Duration::from_secs(6),
            wait_for("a CPU figure", Duration::from_secs(60), || async {
                let text = element_text(&browser, "#instance-cpu").await?;
                text.ends_with('%').then_some(())
            }),
        )
        .await;
        save_screenshot(&browser, "ports.png").await?;

        // Click the port's button: the served page opens in a new tab,
        // through the reverse proxy (a *.localhost name, no DNS set-up).
        let before = browser.windows().await?;
        browser
            .find(Locator::Css(".port-link[data-port='8000']"))
            .await?
            .click()
            .await?;
        let tab = wait_for("a new tab", Duration::from_secs(10), || async {
            let now = browser.windows().await.ok()?;
            now.into_iter().find(|w| !before.contains(w))
        })
        .await;
        browser.switch_to_window(tab).await?;
        let page = wait_for("the served page", Duration::from_secs(15), || async {
            let source = browser.source().await.ok()?;
            source.contains("Directory listing for /").then_some(source)
        })
        .await;
        let url = browser.current_url().await?;
        assert!(url.as_str().contains("-8000-node1."), "{url}");
        assert!(
            page.contains(".bashrc") || page.contains(".profile"),
            "{page}"
        );
        save_screenshot(&browser, "port-page.png").await?;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    let _ = driver.kill().await;
    result.expect("browser steps");
    server.stop().await;
}

async fn save_screenshot(
    browser: &fantoccini::Client,
    name: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let shot = browser.screenshot().await?;
    let dir = repo_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, shot).unwrap();
    println!("screenshot: {}", path.display());
    Ok(())
}

/// The trimmed text of the element `css`, if it exists and is not empty.
async fn element_text(browser: &fantoccini::Client, css: &str) -> Option<String> {
    let element = browser.find(Locator::Css(css)).await.ok()?;
    let text = element.text().await.ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// `10.x.y.z`.
fn is_ten_net(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 4 && parts[0] == "10" && parts.iter().all(|p| p.parse::<u8>().is_ok())
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
