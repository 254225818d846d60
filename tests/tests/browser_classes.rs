//! The class pages in real browsers: headless Chromium twice (the
//! instructor's and a student's) against the real server with a small
//! two-step scenario. The instructor signs in with a token and creates the
//! class; a student joins through `/join/<code>`, a second through the API;
//! the dashboard follows them and their progress; the instructor watches a
//! terminal read-only, asks to help, types once the student accepts, loses
//! the keyboard when the student ends help, and broadcasts; the join link
//! opened again brings the student back to the same session. Needs the web
//! app built into dist/ (`trunk build --release`). The API's side is
//! `classes.rs`.

use std::path::Path;
use std::time::Duration;

use fantoccini::error::CmdError;
use fantoccini::{Client, Locator};
use playground_protocol::{ClassInfo, InstructorInfo, Joined};
use playground_tests::browser::{
    count, element_text, save_screenshot, screen_text_in, start_browser, wait_for, wait_screen_in,
    wait_text,
};
use playground_tests::{repo_root, TestServer};

const ADMIN: &str = "admin-secret-for-browser-tests";
const SHORT: Duration = Duration::from_secs(20);

/// Two steps on strict instances: make a file, make another.
fn write_lab(dir: &Path) {
    let files = [
        (
            "lab/index.json",
            r#"{"title": "Files lab", "details": {
                 "intro": {"text": "intro.md"},
                 "steps": [
                   {"title": "Make a file", "text": "one.md", "verify": "one.sh"},
                   {"title": "Make another", "text": "two.md", "verify": "two.sh"}
                 ]},
               "backend": {"imageid": "1-instance"}}"#,
        ),
        ("lab/intro.md", "# Files lab\n\nTwo files.\n"),
        ("lab/one.md", "`touch /root/one`{{exec}}\n"),
        (
            "lab/one.sh",
            "test -f /root/one || { echo 'no /root/one'; exit 1; }\n",
        ),
        ("lab/two.md", "`touch /root/two`{{exec}}\n"),
        (
            "lab/two.sh",
            "test -f /root/two || { echo 'no /root/two'; exit 1; }\n",
        ),
    ];
    for (path, contents) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

async fn click(browser: &Client, css: &str) -> Result<(), CmdError> {
    browser
        .wait()
        .at_most(SHORT)
        .for_element(Locator::Css(css))
        .await?
        .click()
        .await
}

/// Type `text` into the input `css` (after clearing it).
async fn fill(browser: &Client, css: &str, text: &str) -> Result<(), CmdError> {
    let input = browser
        .wait()
        .at_most(SHORT)
        .for_element(Locator::Css(css))
        .await?;
    input.clear().await?;
    input.send_keys(text).await
}

async fn wait_present(browser: &Client, css: &str, timeout: Duration) {
    wait_for(css, timeout, || async {
        (count(browser, css).await > 0).then_some(())
    })
    .await
}

/// Type into the xterm inside `css`.
async fn type_in(browser: &Client, css: &str, text: &str) -> Result<(), CmdError> {
    let input = browser
        .wait()
        .at_most(SHORT)
        .for_element(Locator::Css(&format!("{css} textarea")))
        .await?;
    input.send_keys(text).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_class_from_the_instructors_and_a_students_browser() {
    assert!(
        repo_root().join("dist/index.html").exists(),
        "dist/ is missing: build the web app first (trunk build --release)"
    );
    let scenarios = tempfile::tempdir().unwrap();
    write_lab(scenarios.path());
    let server = TestServer::start(&[
        &format!("--scenarios={}", scenarios.path().display()),
        &format!("--admin-token={ADMIN}"),
        "--capacity-instances=6",
    ])
    .await;
    let response = server
        .http
        .post(server.url("/api/admin/instructors"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "Grace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let token = response
        .json::<InstructorInfo>()
        .await
        .unwrap()
        .token
        .unwrap();

    let (teacher, teacher_driver, _teacher_profile) = start_browser().await;
    let (student, student_driver, _student_profile) = start_browser().await;
    let result = async {
        // The instructor signs in once with the token.
        teacher.goto(&format!("{}/classes", server.base)).await?;
        fill(&teacher, "#token-input", &token).await?;
        click(&teacher, "#token-save").await?;
        wait_present(&teacher, "#create-class", SHORT).await;

        // A class too big for the host: the API's reason, on the form.
        fill(&teacher, "#class-title", "Files lab, Monday").await?;
        teacher
            .wait()
            .at_most(SHORT)
            .for_element(Locator::Css("#class-kind option[value='scenario:lab']"))
            .await?;
        teacher
            .find(Locator::Css("#class-kind"))
            .await?
            .select_by_value("scenario:lab")
            .await?;
        fill(&teacher, "#class-seats", "40").await?;
        click(&teacher, "#create-button").await?;
        let refused = wait_text(&teacher, "#create-error", "free", SHORT).await;
        println!("refused: {refused}");
        save_screenshot(&teacher, "class-create-refused.png").await?;

        // Three seats fit: the dashboard opens with the code to project.
        fill(&teacher, "#class-seats", "3").await?;
        click(&teacher, "#create-button").await?;
        let code = wait_for("the join code", SHORT, || async {
            element_text(&teacher, "#join-code").await
        })
        .await;
        let url = teacher.current_url().await?;
        assert!(url.path().starts_with("/classes/"), "{url}");
        let link = element_text(&teacher, "#join-link").await.unwrap();
        assert!(link.ends_with(&format!("/join/{code}")), "{link}");
        wait_present(&teacher, "#roster-empty", SHORT).await;

        // A wrong code says so on the join page.
        student
            .goto(&format!("{}/join/NOPE42", server.base))
            .await?;
        let unknown = wait_text(&student, "#join-error", "NOPE42", SHORT).await;
        println!("unknown code: {unknown}");

        // The student types the code on the landing page and joins by name.
        student.goto(&server.base).await?;
        fill(&student, "#join-code-input", &code.to_lowercase()).await?;
        save_screenshot(&student, "class-landing.png").await?;
        click(&student, "#join-code-go").await?;
        wait_text(&student, "#join-title", "Files lab, Monday", SHORT).await;
        wait_text(&student, "#join-seats", "3 seats left", SHORT).await;
        save_screenshot(&student, "class-join.png").await?;
        fill(&student, "#join-name", "Ada").await?;
        click(&student, "#join-button").await?;
        wait_text(
            &student,
            "#tutorial-step",
            "Introduction",
            Duration::from_secs(90),
        )
        .await;
        let session_url = student.current_url().await?;
        assert!(session_url.path().starts_with("/s/"), "{session_url}");
        wait_screen_in(&student, "#terminal", "root@node1", Duration::from_secs(60)).await;

        // A second student joins through the API.
        let response = server
            .http
            .post(server.url(&format!("/api/join/{code}")))
            .json(&serde_json::json!({"name": "Grace"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let grace: Joined = response.json().await.unwrap();

        // The dashboard shows both, live.
        wait_present(&teacher, "tr.student-row[data-name='Ada']", SHORT).await;
        wait_present(&teacher, "tr.student-row[data-name='Grace']", SHORT).await;
        wait_text(&teacher, "#seats-joined", "2 of 3", SHORT).await;

        // Ada starts and does step 1: its check passes by itself and the
        // class's progress moves.
        click(&student, "#tutorial-forward[data-action='start']").await?;
        wait_text(&student, "#tutorial-step", "Step 1 of 2", SHORT).await;
        wait_text(
            &teacher,
            ".step-progress[data-step='1'] .step-on",
            "1 on it",
            SHORT,
        )
        .await;
        type_in(&student, "#terminal", "touch /root/one\u{E007}").await?;
        wait_text(
            &student,
            "#tutorial-step",
            "Step 2 of 2",
            Duration::from_secs(60),
        )
        .await;
        wait_text(
            &teacher,
            ".step-progress[data-step='1'] .step-done",
            "1",
            SHORT,
        )
        .await;
        wait_text(
            &teacher,
            "tr.student-row[data-name='Ada'] .student-done",
            "1 / 2",
            SHORT,
        )
        .await;
        wait_text(
            &teacher,
            "tr.student-row[data-name='Ada'] .student-step",
            "Make another",
            SHORT,
        )
        .await;

        // The instructor opens Ada's terminal: read-only and live.
        click(&teacher, "tr.student-row[data-name='Ada']").await?;
        wait_present(&teacher, "#watch-terminal[data-mode='view']", SHORT).await;
        wait_screen_in(&teacher, "#watch-terminal", "root@node1", SHORT).await;
        type_in(&student, "#terminal", "echo typed-by-ada\u{E007}").await?;
        wait_screen_in(&teacher, "#watch-terminal", "typed-by-ada", SHORT).await;
        save_screenshot(&teacher, "class-dashboard.png").await?;
        // Keys in the read-only view go nowhere.
        type_in(&teacher, "#watch-terminal", "echo from-the-view\u{E007}").await?;

        // Help: the instructor asks, the student's page asks the student.
        click(&teacher, "#help-button").await?;
        wait_text(&teacher, "#watch-mode", "Waiting for Ada", SHORT).await;
        wait_text(
            &student,
            "#help-request",
            "Your instructor asks to help in your terminal",
            SHORT,
        )
        .await;
        save_screenshot(&student, "class-help-request.png").await?;
        click(&student, "#help-accept").await?;
        wait_text(
            &student,
            "#help-active",
            "Your instructor can type in your terminals",
            SHORT,
        )
        .await;
        wait_present(&teacher, "#watch-terminal[data-mode='help']", SHORT).await;
        wait_text(
            &teacher,
            "tr.student-row[data-name='Ada'] .student-help",
            "helping",
            SHORT,
        )
        .await;
        wait_screen_in(&teacher, "#watch-terminal", "root@node1", SHORT).await;
        type_in(&teacher, "#watch-terminal", "echo typed-by-grace\u{E007}").await?;
        wait_screen_in(&student, "#terminal", "typed-by-grace", SHORT).await;
        save_screenshot(&teacher, "class-helping.png").await?;
        save_screenshot(&student, "class-help-active.png").await?;
        let screen = screen_text_in(&student, "#terminal").await;
        assert!(!screen.contains("from-the-view"), "{screen}");

        // The student ends help: the dashboard says so and is read-only again.
        click(&student, "#help-end").await?;
        wait_for("the help banner to go", SHORT, || async {
            (count(&student, "#help-active").await == 0).then_some(())
        })
        .await;
        wait_text(&teacher, "#watch-notice", "Help ended", SHORT).await;
        wait_present(&teacher, "#watch-terminal[data-mode='view']", SHORT).await;
        wait_present(&teacher, "#help-button", SHORT).await;
        type_in(&teacher, "#watch-terminal", "echo after-help\u{E007}").await?;
        save_screenshot(&teacher, "class-help-ended.png").await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let screen = screen_text_in(&student, "#terminal").await;
        assert!(!screen.contains("after-help"), "{screen}");

        // A broadcast shows on the student's page, with its time.
        fill(&teacher, "#broadcast-input", "Five more minutes on step 2").await?;
        click(&teacher, "#broadcast-send").await?;
        wait_text(&teacher, "#broadcast-sent", "Sent", SHORT).await;
        let message = wait_text(
            &student,
            ".class-message",
            "Five more minutes on step 2",
            SHORT,
        )
        .await;
        println!("message: {message}");
        save_screenshot(&student, "class-message.png").await?;
        click(&student, ".class-message .dismiss").await?;
        click(&teacher, "#extend-class").await?;
        let extended = wait_text(&teacher, "#class-extended", "Extended", SHORT).await;
        println!("extend: {extended}");
        wait_for("the message to go", SHORT, || async {
            (count(&student, ".class-message").await == 0).then_some(())
        })
        .await;

        // The join link again, in the same browser: back to the same session.
        student
            .goto(&format!("{}/join/{code}", server.base))
            .await?;
        wait_for("the same session", SHORT, || async {
            let url = student.current_url().await.ok()?;
            (url.path() == session_url.path()).then_some(())
        })
        .await;
        wait_text(&student, "#tutorial-step", "Step 2 of 2", SHORT).await;

        // The roster as CSV, fetched with the token.
        let rows = teacher
            .execute(
                "const a = document.querySelector('#download-csv'); return a ? 1 : 0;",
                vec![],
            )
            .await?;
        assert_eq!(rows, serde_json::json!(1));
        click(&teacher, "#download-csv").await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(count(&teacher, "#error-banner").await, 0);

        // Grace's session is there too; Ada's row says she is live.
        let live = element_text(&teacher, "tr.student-row[data-name='Ada'] .student-live").await;
        assert_eq!(live.as_deref(), Some("live"));
        assert!(!grace.session.id.is_empty());
        save_screenshot(&teacher, "class-dashboard-end.png").await?;

        // The list of classes has it, with its seats; a click opens it again.
        click(&teacher, ".topbar-link").await?;
        let row = wait_text(&teacher, "#class-list .class-row", "2 / 3 joined", SHORT).await;
        assert!(
            row.contains("Files lab, Monday") && row.contains(&code),
            "{row}"
        );
        save_screenshot(&teacher, "class-list.png").await?;
        click(&teacher, "#class-list .class-row").await?;
        wait_text(&teacher, "#join-code", &code, SHORT).await;

        // A class that opens tomorrow says when on its join page.
        let tomorrow = humantime::format_rfc3339_seconds(
            std::time::SystemTime::now() + Duration::from_secs(86_400),
        )
        .to_string();
        let response = server
            .http
            .post(server.url("/api/classes"))
            .bearer_auth(&token)
            .json(
                &serde_json::json!({"title": "Tomorrow's lab", "template": "1-instance",
                                       "seats": 1, "starts_at": tomorrow}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let later: ClassInfo = response.json().await.unwrap();
        student
            .goto(&format!("{}/join/{}", server.base, later.code))
            .await?;
        wait_text(&student, "#join-state", "Opens at", SHORT).await;
        assert_eq!(count(&student, "#join-form").await, 0);
        save_screenshot(&student, "class-join-scheduled.png").await?;

        // The instructor ends the class (after a second click); the join
        // link then says so, and the stored seat is gone.
        click(&teacher, "#end-class").await?;
        click(&teacher, "#end-class-confirm").await?;
        wait_text(&teacher, "#class-state", "Ended", SHORT).await;
        wait_text(
            &teacher,
            "tr.student-row[data-name='Ada'] .student-live",
            "ended",
            SHORT,
        )
        .await;
        student
            .goto(&format!("{}/join/{code}", server.base))
            .await?;
        wait_text(&student, "#join-state", "This class has ended", SHORT).await;
        let gone = wait_text(&student, "#join-error", "not available", SHORT).await;
        println!("after the end: {gone}");
        save_screenshot(&student, "class-join-ended.png").await?;
        Ok::<(), CmdError>(())
    }
    .await;
    if result.is_err() {
        let _ = save_screenshot(&teacher, "class-failure-teacher.png").await;
        let _ = save_screenshot(&student, "class-failure-student.png").await;
    }
    teacher.close().await.ok();
    student.close().await.ok();
    drop((teacher_driver, student_driver));
    result.unwrap();
}
