//! Driving headless Chromium through chromedriver, shared by the browser
//! tests: start it, wait for things on the page, read a terminal's screen,
//! keep screenshots.

use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use tokio::process::Command;

use crate::{free_port, repo_root, TestServer};

pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
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

/// The browser's profile directory, kept while the test runs. Dropped (at
/// the end of the test, or while a failing one unwinds) it kills every
/// process still started with it: killing chromedriver leaves Chromium's
/// own processes behind, and a test that fails before `finish` never even
/// closes the browser.
pub struct Profile {
    dir: tempfile::TempDir,
}

impl Profile {
    /// The processes whose command line names this profile.
    pub fn processes(&self) -> Vec<libc::pid_t> {
        let flag = format!("--user-data-dir={}", self.dir.path().display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|cmdline| cmdline.split(|b| *b == 0).any(|arg| arg == flag.as_bytes()))
                    .unwrap_or(false)
            })
            .collect()
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        for pid in self.processes() {
            // SAFETY: kill(2) on a pid read from /proc; at worst the
            // process is already gone (ESRCH).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Whether `pid` has exited (gone, or a zombie nobody reaped yet).
pub fn exited(pid: libc::pid_t) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
        Err(_) => true,
    }
}

/// Headless Chromium through chromedriver, and the profile directory that
/// cleans up after it (see [`Profile`]).
pub async fn start_browser() -> (fantoccini::Client, tokio::process::Child, Profile) {
    let port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver (apt-get install chromium-driver)");
    let profile = Profile {
        dir: tempfile::tempdir().unwrap(),
    };
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync", "--window-size=1280,800",
                format!("--user-data-dir={}", profile.dir.path().display()),
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

    (browser, driver, profile)
}

/// Number of elements matching `css`.
pub async fn count(browser: &fantoccini::Client, css: &str) -> usize {
    browser
        .find_all(Locator::Css(css))
        .await
        .map(|v| v.len())
        .unwrap_or(0)
}

pub async fn save_screenshot(
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
pub async fn element_text(browser: &fantoccini::Client, css: &str) -> Option<String> {
    let element = browser.find(Locator::Css(css)).await.ok()?;
    let text = element.text().await.ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The session page's terminal's visible text.
pub async fn screen_text(browser: &fantoccini::Client) -> String {
    screen_text_in(browser, "#terminal").await
}

/// The visible text of the terminal inside the element `css` (xterm's DOM
/// renderer uses no-break spaces).
pub async fn screen_text_in(browser: &fantoccini::Client, css: &str) -> String {
    let script = "const rows = document.querySelector(arguments[0] + ' .xterm-rows');\
                  return rows ? Array.from(rows.children).map(r => r.textContent).join('\\n') : '';";
    browser
        .execute(script, vec![serde_json::json!(css)])
        .await
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('\u{a0}', " ")))
        .unwrap_or_default()
}

/// Wait until the element `css` holds `needle`; its text then.
pub async fn wait_text(
    browser: &fantoccini::Client,
    css: &str,
    needle: &str,
    timeout: Duration,
) -> String {
    let what = format!("{needle:?} in {css}");
    wait_for(&what, timeout, || async {
        element_text(browser, css)
            .await
            .filter(|t| t.contains(needle))
    })
    .await
}

/// Wait until the terminal inside `css` shows `needle`; its screen then.
pub async fn wait_screen_in(
    browser: &fantoccini::Client,
    css: &str,
    needle: &str,
    timeout: Duration,
) -> String {
    let what = format!("{needle:?} in the terminal {css}");
    wait_for(&what, timeout, || async {
        let text = screen_text_in(browser, css).await;
        text.contains(needle).then_some(text)
    })
    .await
}

/// Close the browser and its driver, then fail if the steps failed (after
/// cleaning up), then stop the server.
pub async fn finish(
    browser: fantoccini::Client,
    mut driver: tokio::process::Child,
    result: Result<(), fantoccini::error::CmdError>,
    server: TestServer,
) {
    let _ = browser.close().await;
    let _ = driver.kill().await;
    result.expect("browser steps");
    server.stop().await;
}
