//! SSH on the session page, in a real browser: the server runs its SSH
//! server (`--ssh-listen`), the page shows the exact `ssh` command, a key
//! made by the real `ssh-keygen` is pasted into the SSH keys panel (a
//! broken one first, refused with the server's reason), and the real
//! `ssh` logs in with it: the shell it opens appears as a new terminal tab
//! on the page. Needs dist/ (trunk build --release).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::error::CmdError;
use fantoccini::{Client, Locator};
use playground_protocol::SshKeyInfo;
use playground_tests::browser::{
    count, element_text, finish, save_screenshot, screen_text, start_browser, wait_for,
    wait_screen_in, wait_text,
};
use playground_tests::ssh::{fingerprint, keygen, ssh};
use playground_tests::{repo_root, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The id of the element that has the keyboard focus.
async fn focused(browser: &Client) -> String {
    let id = browser
        .execute(
            "return document.activeElement && document.activeElement.id;",
            vec![],
        )
        .await
        .ok();
    id.and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Wait until the panel's toggle counts `n` keys.
async fn keys_shown(browser: &Client, n: usize) {
    let label = format!("SSH keys ({n})");
    wait_text(browser, "#ssh-keys-toggle", &label, Duration::from_secs(5)).await;
}

/// The keys the server holds for `sid`.
async fn stored_keys(server: &TestServer, sid: &str) -> Vec<SshKeyInfo> {
    let path = format!("/api/sessions/{sid}/ssh-keys");
    server.get(&path).await.json().await.unwrap()
}

/// An `<input>`'s or `<textarea>`'s current value.
async fn value(browser: &Client, css: &str) -> String {
    let element = browser.find(Locator::Css(css)).await.unwrap();
    element.prop("value").await.unwrap().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ssh_command_keys_and_the_tab_an_ssh_login_opens() {
    assert!(
        repo_root().join("dist/index.html").exists(),
        "dist/ is missing: build the web app first (trunk build --release)"
    );
    let keys = tempfile::tempdir().unwrap();
    let ada = keygen(keys.path(), "ada", &["-t", "ed25519"]);
    let ada_fingerprint = fingerprint(keys.path(), "ada");
    let bob = keygen(keys.path(), "bob", &["-t", "rsa", "-b", "3072"]);
    let bob_fingerprint = fingerprint(keys.path(), "bob");
    let server = TestServer::start(&["--ssh-listen=127.0.0.1:0"]).await;
    let session = server.create_session().await;
    let (sid, viewer) = (session.id.clone(), session.viewer_id.clone());
    let port = session.ssh.expect("the session's SSH access").port;
    assert_ne!(port, 0);
    server.add_instance(&sid).await;
    let (browser, driver, _profile) = start_browser().await;

    let result = async {
        // A read-only view offers no SSH (the server tells it nothing of it).
        browser.goto(&server.url(&format!("/v/{viewer}"))).await?;
        browser
            .wait()
            .for_element(Locator::Css("#terminal"))
            .await?;
        assert_eq!(count(&browser, ".sshbar").await, 0);

        browser.goto(&server.url(&format!("/s/{sid}"))).await?;
        browser
            .wait()
            .for_element(Locator::Css("#ssh-command"))
            .await?;
        // No --ssh-host: the host the page came from; -p as the port is not 22.
        assert_eq!(
            value(&browser, "#ssh-command").await,
            format!("ssh -p {port} node1.{sid}@127.0.0.1")
        );
        wait_text(
            &browser,
            ".sshbar",
            "Add your public key",
            Duration::from_secs(10),
        )
        .await;

        // The panel opens with the focus in its field, and says where a key
        // comes from.
        browser
            .find(Locator::Css("#ssh-keys-toggle"))
            .await?
            .click()
            .await?;
        browser
            .wait()
            .for_element(Locator::Css("#ssh-keys-panel"))
            .await?;
        wait_text(
            &browser,
            "#ssh-keys-empty",
            "No keys yet",
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(focused(&browser).await, "ssh-key-input");
        let help = element_text(&browser, "#ssh-key-help")
            .await
            .unwrap_or_default();
        assert!(
            help.contains("~/.ssh/id_ed25519.pub") && help.contains("ssh-keygen -t ed25519"),
            "{help}"
        );

        // A broken key: the server's reason under the field, the text kept.
        let field = browser.find(Locator::Css("#ssh-key-input")).await?;
        field.send_keys("ssh-ed25519 AAAAnot").await?;
        browser
            .find(Locator::Css("#ssh-key-add"))
            .await?
            .click()
            .await?;
        let reason = wait_text(
            &browser,
            "#ssh-key-error",
            "not an OpenSSH public key",
            Duration::from_secs(10),
        )
        .await;
        println!("refused: {reason}");
        assert_eq!(
            value(&browser, "#ssh-key-input").await,
            "ssh-ed25519 AAAAnot"
        );
        save_screenshot(&browser, "ssh-key-refused.png").await?;

        // The real key (Enter adds it): listed with its comment and
        // fingerprint, the field emptied.
        field.clear().await?;
        field.send_keys(&format!("{}\u{E007}", ada.trim())).await?;
        let row = format!(".ssh-key[data-fingerprint='{ada_fingerprint}']");
        let listed = wait_text(&browser, &row, "ada@test", Duration::from_secs(10)).await;
        assert!(listed.contains(&ada_fingerprint), "{listed}");
        assert!(listed.contains("ED25519"), "{listed}");
        assert_eq!(count(&browser, "#ssh-key-error").await, 0);
        assert_eq!(value(&browser, "#ssh-key-input").await, "");
        keys_shown(&browser, 1).await;
        let stored = stored_keys(&server, &sid).await;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].fingerprint, ada_fingerprint);

        // A second key (RSA, whose fingerprint may hold '/' and '+'),
        // removed again with its button.
        field.send_keys(bob.trim()).await?;
        browser
            .find(Locator::Css("#ssh-key-add"))
            .await?
            .click()
            .await?;
        let bob_row = format!(".ssh-key[data-fingerprint='{bob_fingerprint}']");
        wait_text(&browser, &bob_row, "bob@test", Duration::from_secs(10)).await;
        keys_shown(&browser, 2).await;
        save_screenshot(&browser, "ssh-keys.png").await?;
        browser
            .find(Locator::Css(&format!("{bob_row} .ssh-key-remove")))
            .await?
            .click()
            .await?;
        wait_for("bob's key to go", Duration::from_secs(10), || async {
            (count(&browser, &bob_row).await == 0).then_some(())
        })
        .await;
        keys_shown(&browser, 1).await;
        let stored = stored_keys(&server, &sid).await;
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert_eq!(count(&browser, "#ssh-keys-error").await, 0);

        // Escape closes the panel and gives the focus back to its button.
        field.send_keys("\u{E00C}").await?;
        wait_for("the panel to close", Duration::from_secs(5), || async {
            (count(&browser, "#ssh-keys-panel").await == 0).then_some(())
        })
        .await;
        assert_eq!(focused(&browser).await, "ssh-keys-toggle");

        // The page's own shell first: one tab.
        wait_for("a shell prompt", Duration::from_secs(30), || async {
            screen_text(&browser)
                .await
                .contains("root@node1")
                .then_some(())
        })
        .await;
        assert_eq!(count(&browser, ".terminal-tab[data-tab]").await, 1);

        // The real ssh with the key pasted, on a PTY.
        let mut login = tokio::process::Command::from(ssh(
            port,
            &keys.path().join("ada"),
            &format!("node1.{sid}"),
            &["-tt"],
        ));
        let mut child = login
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let seen = Arc::new(Mutex::new(String::new()));
        let reader = tokio::spawn({
            let (seen, mut stdout) = (seen.clone(), child.stdout.take().unwrap());
            async move {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stdout.read(&mut buf).await {
                    seen.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        stdin.write_all(b"echo login-$((40+2))\n").await.unwrap();
        wait_for("a shell over ssh", Duration::from_secs(30), || async {
            seen.lock().unwrap().contains("login-42").then_some(())
        })
        .await;

        // Its shell is a second tab on the page, not switched to by itself.
        wait_for(
            "the tab the SSH login opened",
            Duration::from_secs(20),
            || async { (count(&browser, ".terminal-tab[data-tab='1']").await == 1).then_some(()) },
        )
        .await;
        let active = browser
            .find(Locator::Css(".terminal-tab.active"))
            .await?
            .attr("data-tab")
            .await?;
        assert_eq!(
            active.as_deref(),
            Some("0"),
            "the visible tab changed by itself"
        );
        browser
            .find(Locator::Css(".terminal-tab[data-tab='1']"))
            .await?
            .click()
            .await?;
        // What is typed over SSH shows in that tab.
        stdin.write_all(b"echo over-ssh-$((6*7))\n").await.unwrap();
        let screen = wait_screen_in(
            &browser,
            "#terminal",
            "over-ssh-42",
            Duration::from_secs(20),
        )
        .await;
        assert!(screen.contains("echo over-ssh-$((6*7))"), "{screen}");
        save_screenshot(&browser, "ssh-tab.png").await?;

        stdin.write_all(b"exit\n").await.unwrap();
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .expect("ssh to end after exit")
            .unwrap();
        let _ = reader.await;
        assert!(status.success(), "{}", seen.lock().unwrap());
        Ok::<(), CmdError>(())
    }
    .await;
    finish(browser, driver, result, server).await;
}

/// The page shows a tab for every shell running on the server, also one it
/// did not open (here another client's), without switching to it; "+"
/// then opens the next.
#[tokio::test(flavor = "multi_thread")]
async fn shells_running_on_the_server_show_as_tabs() {
    let server = TestServer::start(&[]).await;
    let sid = server.create_session().await.id;
    server.add_instance(&sid).await;
    let mut other = server.terminal(&sid, "node1", "?tab=1").await;
    other.send("echo second-$((2+3))\n").await;
    other.wait_for("second-5", Duration::from_secs(20)).await;
    let (browser, driver, _profile) = start_browser().await;

    let result = async {
        browser.goto(&server.url(&format!("/s/{sid}"))).await?;
        wait_for("two tabs", Duration::from_secs(20), || async {
            (count(&browser, ".terminal-tab[data-tab]").await == 2).then_some(())
        })
        .await;
        let active = browser
            .find(Locator::Css(".terminal-tab.active"))
            .await?
            .attr("data-tab")
            .await?;
        assert_eq!(active.as_deref(), Some("0"));
        browser
            .find(Locator::Css(".terminal-tab[data-tab='1']"))
            .await?
            .click()
            .await?;
        wait_screen_in(&browser, "#terminal", "second-5", Duration::from_secs(20)).await;
        browser
            .find(Locator::Css("#new-tab"))
            .await?
            .click()
            .await?;
        wait_for("a third tab, shown", Duration::from_secs(10), || async {
            let active = browser
                .find(Locator::Css(".terminal-tab.active"))
                .await
                .ok()?;
            (active.attr("data-tab").await.ok()?.as_deref() == Some("2")).then_some(())
        })
        .await;
        Ok::<(), CmdError>(())
    }
    .await;
    other.close().await;
    finish(browser, driver, result, server).await;
}
