//! Many hosts, in a real browser: the session page through a gateway, its
//! terminal typing to the node that holds the session; the node killed,
//! the page says the session's host is gone (not an endless
//! "Reconnecting"); the node back, the page's terminal works again. Needs
//! dist/ (trunk build --release), root and Debian's `postgresql`.

use std::time::Duration;

use fantoccini::Locator;
use playground_tests::browser::{
    save_screenshot, screen_text_in, start_browser, wait_for, wait_screen_in, wait_text,
};
use playground_tests::cluster::Cluster;
use playground_tests::repo_root;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn the_page_says_when_its_host_is_gone_and_works_again_when_it_returns() {
    assert!(
        repo_root().join("dist/index.html").exists(),
        "dist/ is missing: build the web app first (trunk build --release)"
    );
    let mut c = Cluster::start(1, 1, &[]).await;
    let sid = c.gateway(0).create_session().await.id;
    c.gateway(0).add_instance(&sid).await;
    let (browser, mut driver, _profile) = start_browser().await;

    let result = async {
        browser
            .goto(&c.gateway(0).url(&format!("/s/{sid}")))
            .await?;
        browser
            .wait()
            .for_element(Locator::Css("#terminal"))
            .await?;
        let typed = browser.find(Locator::Css("#terminal textarea")).await?;
        typed.send_keys("echo via-gateway-$((6*7))\n").await?;
        wait_screen_in(&browser, "#terminal", "via-gateway-42", T).await;

        c.crash_node(0).await;
        let banner = wait_text(&browser, "#host-gone-banner", "host is gone", T).await;
        assert!(
            banner.contains("its sessions come back if it returns"),
            "{banner}"
        );
        save_screenshot(&browser, "cluster-host-gone.png").await?;

        c.start_node(0).await;
        // The page reconnects by itself (keys typed before it has are
        // lost with the connection, so type until the answer shows).
        wait_for(
            "the terminal answering again",
            Duration::from_secs(90),
            || async {
                let typed = browser
                    .find(Locator::Css("#terminal textarea"))
                    .await
                    .ok()?;
                typed.send_keys("echo back-$((1+1))\n").await.ok()?;
                tokio::time::sleep(Duration::from_secs(2)).await;
                screen_text_in(&browser, "#terminal")
                    .await
                    .contains("back-2")
                    .then_some(())
            },
        )
        .await;
        // And the note is gone with the cause.
        wait_for("the note to go", T, || async {
            let notes = browser
                .find_all(Locator::Css("#host-gone-banner"))
                .await
                .ok()?;
            notes.is_empty().then_some(())
        })
        .await;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    let _ = driver.kill().await;
    result.expect("browser steps");
    c.stop().await;
}
