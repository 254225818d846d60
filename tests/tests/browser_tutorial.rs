//! The tutorial page in a real browser: headless Chromium against the real
//! server started with the repository's example scenarios (`scenarios/`),
//! with real `nesting` instances and the real dockerd inside them. Needs the
//! web app built into dist/ (`trunk build --release`).

use std::time::Duration;

use fantoccini::error::CmdError;
use fantoccini::{Client, Locator};
use playground_tests::browser::{
    count, element_text, finish, save_screenshot, start_browser, wait_for, wait_screen_in,
    wait_text,
};
use playground_tests::{repo_root, TestServer};

/// Docker pulls come from the offline mirror, but builds and the first
/// dockerd start take a while on a busy machine.
const DOCKER: Duration = Duration::from_secs(180);

async fn start_server() -> TestServer {
    assert!(
        repo_root().join("dist/index.html").exists(),
        "dist/ is missing: build the web app first (trunk build --release)"
    );
    let scenarios = repo_root().join("scenarios");
    TestServer::start_nesting(&["--scenarios", scenarios.to_str().unwrap()]).await
}

async fn click(browser: &Client, css: &str) -> Result<(), CmdError> {
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await?
        .click()
        .await
}

/// Wait until the visible terminal shows `needle`.
async fn wait_screen(browser: &Client, needle: &str, timeout: Duration) -> String {
    wait_screen_in(browser, "#terminal", needle, timeout).await
}

/// The step indicator reads `label` (a check passing moves it on).
async fn wait_step(browser: &Client, label: &str, timeout: Duration) {
    wait_text(browser, "#tutorial-step", label, timeout).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_basics_from_the_landing_page_to_the_finish() {
    let server = start_server().await;
    let (browser, driver, _profile) = start_browser().await;
    let result = async {
        // The landing page lists the tutorials; pick Docker basics.
        browser.goto(&server.base).await?;
        browser
            .wait()
            .for_element(Locator::Css(".tutorial-card[data-scenario='two-hosts']"))
            .await?;
        save_screenshot(&browser, "tutorial-landing.png").await?;
        click(&browser, ".tutorial-card[data-scenario='docker-basics']").await?;

        // The session starts, its address replaces /tutorials/..., the intro shows.
        wait_step(&browser, "Introduction", Duration::from_secs(120)).await;
        let url = browser.current_url().await?;
        assert!(url.path().starts_with("/s/"), "{url}");
        wait_screen(&browser, "root@node1", Duration::from_secs(30)).await;
        let title = element_text(&browser, "#tutorial-title").await;
        assert_eq!(title.as_deref(), Some("Docker basics"));
        save_screenshot(&browser, "tutorial-intro.png").await?;
        click(&browser, "#tutorial-forward[data-action='start']").await?;

        // Step 1: a click on the command runs it in the terminal.
        wait_step(&browser, "Step 1 of 3", Duration::from_secs(20)).await;
        click(&browser, "#tutorial-text pre.exec").await?;
        wait_screen(&browser, "Hello from a container", DOCKER).await;
        // Its check passes by itself.
        wait_step(&browser, "Step 2 of 3", Duration::from_secs(30)).await;
        let notice = wait_text(
            &browser,
            "#tutorial-notice",
            "Step 1 done",
            Duration::from_secs(5),
        )
        .await;
        println!("notice: {notice}");
        save_screenshot(&browser, "tutorial-step1-done.png").await?;

        // Step 2, Check before doing it: the verify script's words as the hint.
        click(&browser, "#tutorial-forward[data-action='check']").await?;
        let hint = wait_text(
            &browser,
            "#tutorial-hint",
            "There is no image named my-site yet",
            Duration::from_secs(30),
        )
        .await;
        println!("hint: {hint}");
        save_screenshot(&browser, "tutorial-step2-hint.png").await?;
        // Do it: build the image (the second exec block of the page).
        click(&browser, "#tutorial-text pre.exec").await?;
        wait_step(&browser, "Step 3 of 3", DOCKER).await;
        assert_eq!(
            count(&browser, "#tutorial-hint").await,
            0,
            "the hint stayed"
        );

        // A reload lands on the same step.
        browser.refresh().await?;
        wait_step(&browser, "Step 3 of 3", Duration::from_secs(30)).await;
        wait_screen(&browser, "root@node1", Duration::from_secs(30)).await;

        // {{exec interrupt}}: Ctrl-C stops what runs, then the command runs.
        let input = browser
            .wait()
            .for_element(Locator::Css("#terminal textarea"))
            .await?;
        input.send_keys("clear; sleep 600\u{E007}").await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        click(&browser, "#tutorial-text code.exec.interrupt").await?;
        let screen = wait_screen(&browser, "CONTAINER ID", Duration::from_secs(60)).await;
        assert!(screen.contains("^C"), "no Ctrl-C seen:\n{screen}");
        save_screenshot(&browser, "tutorial-interrupt.png").await?;

        // Step 3: run the site, then follow the page's link to it.
        click(&browser, "#tutorial-text pre.exec").await?;
        let href = wait_for(
            "the traffic link's address",
            Duration::from_secs(10),
            || async {
                let a = browser
                    .find(Locator::Css("#tutorial-text a.traffic"))
                    .await
                    .ok()?;
                a.attr("href")
                    .await
                    .ok()
                    .flatten()
                    .filter(|h| h.starts_with("http"))
            },
        )
        .await;
        println!("traffic link: {href}");
        assert!(href.contains("node1") && href.contains("80"), "{href}");
        let a = browser
            .find(Locator::Css("#tutorial-text a.traffic"))
            .await?;
        assert_eq!(a.attr("target").await?.as_deref(), Some("_blank"));
        let home = browser.window().await?;
        let before = browser.windows().await?;
        a.click().await?;
        let tab = wait_for("a new tab", Duration::from_secs(10), || async {
            let now = browser.windows().await.ok()?;
            now.into_iter().find(|w| !before.contains(w))
        })
        .await;
        browser.switch_to_window(tab).await?;
        // Until nginx is up the proxy answers with its own page: reload.
        wait_for("the site through the link", DOCKER, || async {
            let source = browser.source().await.ok()?;
            if source.contains("Hello from my-site") {
                return Some(());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = browser.refresh().await;
            None
        })
        .await;
        let url = browser.current_url().await?;
        assert!(
            url.as_str().starts_with(href.trim_end_matches('/')),
            "{url}"
        );
        save_screenshot(&browser, "tutorial-site.png").await?;
        browser.close_window().await?;
        browser.switch_to_window(home).await?;

        // The last check passes: the finish page, marked finished.
        wait_step(&browser, "Finish", Duration::from_secs(60)).await;
        browser
            .wait()
            .for_element(Locator::Css("#tutorial-finished"))
            .await?;
        let notice = wait_text(
            &browser,
            "#tutorial-notice",
            "Step 3 done",
            Duration::from_secs(5),
        )
        .await;
        println!("notice: {notice}");
        assert_eq!(count(&browser, "#tutorial-forward").await, 0);
        save_screenshot(&browser, "tutorial-finished.png").await?;
        let title = element_text(&browser, "#tutorial-title").await;
        assert_eq!(title.as_deref(), Some("Done"), "the finish's own heading");

        // A done page opens again from its dot (the intro: steps with a
        // check pass again by themselves and move on).
        click(&browser, ".step-dot[data-page='0']").await?;
        wait_step(&browser, "Introduction", Duration::from_secs(10)).await;
        assert_eq!(count(&browser, "#tutorial-finished").await, 0);

        // The light theme covers the pane too.
        click(&browser, "#theme-toggle").await?;
        browser
            .wait()
            .for_element(Locator::Css("html[data-theme='light']"))
            .await?;
        // (after the colours' transitions)
        tokio::time::sleep(Duration::from_millis(500)).await;
        save_screenshot(&browser, "tutorial-light.png").await?;
        Ok::<(), CmdError>(())
    }
    .await;
    finish(browser, driver, result, server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hosts_commands_run_on_their_host() {
    let server = start_server().await;
    let (browser, driver, _profile) = start_browser().await;
    let result = async {
        // An unknown tutorial: the API's error, on the page.
        browser
            .goto(&server.url("/tutorials/no-such-tutorial"))
            .await?;
        let error = wait_text(
            &browser,
            "#tutorial-start-error",
            "could not start",
            Duration::from_secs(20),
        )
        .await;
        println!("unknown tutorial: {error}");
        // The API's own words follow the page's heading.
        assert!(
            error.len() > "This tutorial could not start.".len() + 3,
            "{error}"
        );
        save_screenshot(&browser, "tutorial-unknown.png").await?;

        // A tutorial's link opens it directly.
        browser.goto(&server.url("/tutorials/two-hosts")).await?;
        // The progress shows while the machines start (if it lasts long enough to see).
        let starting = browser
            .wait()
            .at_most(Duration::from_secs(3))
            .for_element(Locator::Css("#tutorial-starting"))
            .await;
        if starting.is_ok() {
            save_screenshot(&browser, "tutorial-starting.png").await?;
        }
        wait_step(&browser, "Introduction", Duration::from_secs(120)).await;
        browser
            .wait()
            .for_element(Locator::Css(".instance.selected[data-name='node1']"))
            .await?;
        // The intro's foreground script was typed into node1's first terminal.
        wait_screen(&browser, "This is node1", Duration::from_secs(30)).await;
        click(&browser, "#tutorial-forward[data-action='start']").await?;
        wait_step(&browser, "Step 1 of 2", Duration::from_secs(20)).await;

        // {{exec host2}}: node2's terminal is shown and runs it.
        click(&browser, "#tutorial-text pre.exec[data-host='2']").await?;
        browser
            .wait()
            .for_element(Locator::Css(".instance.selected[data-name='node2']"))
            .await?;
        let screen = wait_screen(
            &browser,
            "docker run -d --name web",
            Duration::from_secs(30),
        )
        .await;
        assert!(screen.contains("root@node2"), "{screen}");
        wait_step(&browser, "Step 2 of 2", DOCKER).await;
        save_screenshot(&browser, "tutorial-two-hosts-node2.png").await?;

        // {{exec host1}}: back to node1, which fetches node2's page.
        click(&browser, "#tutorial-text code.exec[data-host='1']").await?;
        browser
            .wait()
            .for_element(Locator::Css(".instance.selected[data-name='node1']"))
            .await?;
        let screen =
            wait_screen(&browser, "<title>Welcome to nginx", Duration::from_secs(60)).await;
        assert!(screen.contains("root@node1"), "{screen}");
        wait_step(&browser, "Finish", Duration::from_secs(30)).await;
        browser
            .wait()
            .for_element(Locator::Css("#tutorial-finished"))
            .await?;
        save_screenshot(&browser, "tutorial-two-hosts-finished.png").await?;
        // A narrow window: the tutorial above the terminals.
        browser.set_window_size(760, 900).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        save_screenshot(&browser, "tutorial-narrow.png").await?;
        Ok::<(), CmdError>(())
    }
    .await;
    finish(browser, driver, result, server).await;
}

/// A scenario of the test's own for what the examples do not use: a port
/// link inside a command, text to copy, the port picker, a step without a
/// check, and a check that runs past its time limit.
fn ui_scenario() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ui-bits");
    std::fs::create_dir_all(&root).unwrap();
    let files = [
        (
            "index.json",
            r#"{"title": "UI bits", "details": {"steps": [
                {"title": "Ports and copies", "text": "ports.md"},
                {"title": "A slow check", "text": "slow.md", "verify": "slow.sh"}]},
               "backend": {"imageid": "ubuntu"}}"#,
        ),
        (
            "ports.md",
            "Serve: `docker run -d -p 8000:80 nginx`{{exec}}\n\n\
             Its link: `echo \"link={{TRAFFIC_HOST1_8000}}\"`{{exec}}\n\n\
             Copy `copied-text`{{copy}} or pick [a port]({{TRAFFIC_SELECTOR}}).\n",
        ),
        ("slow.md", "This check never ends.\n"),
        ("slow.sh", "#!/bin/sh\nsleep 600\n"),
    ];
    for (name, text) in files {
        std::fs::write(root.join(name), text).unwrap();
    }
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn port_links_copy_picker_and_a_check_that_times_out() {
    let scenarios = ui_scenario();
    let server =
        TestServer::start_nesting(&["--scenarios", scenarios.path().to_str().unwrap()]).await;
    let (browser, driver, _profile) = start_browser().await;
    let exec = |text: &str| {
        format!(
            "//div[@id='tutorial-text']//code[contains(@class, 'exec') and contains(., '{text}')]"
        )
    };
    let result = async {
        browser.goto(&server.url("/tutorials/ui-bits")).await?;
        wait_step(&browser, "Step 1 of 2", Duration::from_secs(120)).await;
        wait_screen(&browser, "root@node1", Duration::from_secs(30)).await;

        // The placeholder inside a command becomes the port's link.
        browser.find(Locator::XPath(&exec("docker run"))).await?.click().await?;
        // (By keyboard: the commands take the focus, Enter runs them.)
        let echo = browser.find(Locator::XPath(&exec("link="))).await?;
        echo.send_keys("\u{E007}").await?;
        let screen = wait_screen(&browser, "-8000-node1", Duration::from_secs(30)).await;
        assert!(screen.contains("link=http"), "{screen}");

        // Copy: marked copied for a moment.
        browser.find(Locator::Css("#tutorial-text code.copy")).await?.click().await?;
        wait_for("the copied mark", Duration::from_secs(5), || async {
            let marked = browser
                .execute(
                    "return document.querySelector('#tutorial-text code.copy').classList.contains('copied');",
                    vec![],
                )
                .await
                .ok()?;
            (marked == serde_json::Value::Bool(true)).then_some(())
        })
        .await;

        // The port picker lists the port once nginx listens.
        click(&browser, "#tutorial-text a.traffic-selector").await?;
        browser.wait().for_element(Locator::Css("#traffic-selector")).await?;
        let href = wait_for("port 8000 in the picker", DOCKER, || async {
            let a = browser
                .find(Locator::Css("#traffic-selector .port-pick[data-port='8000']"))
                .await
                .ok()?;
            a.attr("href").await.ok().flatten()
        })
        .await;
        assert!(href.contains("-8000-node1"), "{href}");
        save_screenshot(&browser, "tutorial-port-picker.png").await?;

        // A step without a check: Next. Then a check that hangs: said so.
        click(&browser, "#tutorial-forward[data-action='next']").await?;
        wait_step(&browser, "Step 2 of 2", Duration::from_secs(20)).await;
        click(&browser, "#tutorial-forward[data-action='check']").await?;
        let hint = wait_text(&browser, "#tutorial-hint", "took too long", Duration::from_secs(60)).await;
        println!("timed out: {hint}");
        save_screenshot(&browser, "tutorial-check-timeout.png").await?;
        Ok::<(), CmdError>(())
    }
    .await;
    finish(browser, driver, result, server).await;
}
