//! Classes through the API against the real server: 30 students joining a
//! class of a scenario, the roster following their checks, the 31st
//! refused, the CSV, a `kill -9` and restart with the class intact, who may
//! see what, help mode with the real terminal WebSockets, broadcasts, and
//! the class's time window. The pages' part is `browser_classes.rs`.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use playground_protocol::{
    ClassInfo, ClassState, HelpGrant, HelpState, InstructorInfo, Joined, Roster, SessionEvent,
};
use playground_tests::TestServer;
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "admin-secret-for-tests";

/// A one-step scenario on strict instances, quick to start by the dozen.
fn write_lab(dir: &Path) {
    let files = [
        (
            "lab/index.json",
            r#"{"title": "Lab", "details": {
                 "intro": {"text": "intro.md"},
                 "steps": [
                   {"title": "Make a file", "text": "one.md", "verify": "one.sh"},
                   {"title": "Make another", "text": "two.md", "verify": "two.sh"}
                 ]},
               "backend": {"imageid": "1-instance"}}"#,
        ),
        ("lab/intro.md", "Hello.\n"),
        ("lab/one.md", "`touch /root/one`{{exec}}\n"),
        (
            "lab/one.sh",
            "test -f /root/one || { echo 'no /root/one yet'; exit 1; }\n",
        ),
        ("lab/two.md", "`touch /root/two`{{exec}}\n"),
        (
            "lab/two.sh",
            "test -f /root/two || { echo 'no /root/two yet'; exit 1; }\n",
        ),
    ];
    for (path, contents) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

struct Lab {
    server: TestServer,
    _scenarios: tempfile::TempDir,
}

async fn start_lab(extra: &[&str]) -> Lab {
    let scenarios = tempfile::tempdir().unwrap();
    write_lab(scenarios.path());
    let arg = format!("--scenarios={}", scenarios.path().display());
    let token = format!("--admin-token={ADMIN}");
    let mut args = vec![arg.as_str(), token.as_str()];
    args.extend_from_slice(extra);
    Lab {
        server: TestServer::start(&args).await,
        _scenarios: scenarios,
    }
}

async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut request = server.http.request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn error_text(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.unwrap();
    body["error"].as_str().unwrap_or_default().to_string()
}

async fn new_instructor(server: &TestServer, name: &str) -> String {
    let response = call(
        server,
        reqwest::Method::POST,
        "/api/admin/instructors",
        Some(ADMIN),
        Some(serde_json::json!({ "name": name })),
    )
    .await;
    assert_eq!(response.status(), 201);
    let info: InstructorInfo = response.json().await.unwrap();
    info.token.unwrap()
}

async fn join(server: &TestServer, code: &str, name: &str) -> reqwest::Response {
    let body = serde_json::json!({ "name": name });
    call(
        server,
        reqwest::Method::POST,
        &format!("/api/join/{code}"),
        None,
        Some(body),
    )
    .await
}

async fn roster(server: &TestServer, token: &str, id: &str) -> Roster {
    let response = call(
        server,
        reqwest::Method::GET,
        &format!("/api/classes/{id}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn check(server: &TestServer, sid: &str) -> bool {
    let path = format!("/api/sessions/{sid}/tutorial/check");
    let response = call(server, reqwest::Method::POST, &path, None, None).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["passed"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_class_of_thirty_through_a_crash() {
    // One address may hold two sessions; a classroom behind one address
    // still gets its 30 seats.
    let lab = start_lab(&["--capacity-instances=32", "--max-sessions-per-client=2"]).await;
    let server = &lab.server;
    let teacher = new_instructor(server, "Grace").await;
    let other = new_instructor(server, "Alan").await;

    let response = call(
        server,
        reqwest::Method::POST,
        "/api/classes",
        Some(&teacher),
        Some(serde_json::json!({"title": "Docker lab", "scenario": "lab", "seats": 30})),
    )
    .await;
    assert_eq!(response.status(), 201);
    let class: ClassInfo = response.json().await.unwrap();
    assert_eq!(
        (class.seats, class.joined, class.state),
        (30, 0, ClassState::Open)
    );
    assert_eq!(class.join_path, format!("/join/{}", class.code));

    // Its seats are reserved: a second class does not fit.
    let response = call(
        server,
        reqwest::Method::POST,
        "/api/classes",
        Some(&other),
        Some(serde_json::json!({"title": "Too big", "template": "1-instance", "seats": 3})),
    )
    .await;
    assert_eq!(response.status(), 503);
    let reason = error_text(response).await;
    assert!(
        reason.contains("need 3 instances, and 2 of 32 are free"),
        "{reason}"
    );

    // 30 students join at once.
    let started = Instant::now();
    let joins = (0..30).map(|i| {
        let code = class.code.clone();
        async move { join(server, &code.to_lowercase(), &format!("Student {i:02}")).await }
    });
    let mut joined: Vec<Joined> = Vec::new();
    for response in futures_util::future::join_all(joins).await {
        assert_eq!(response.status(), 200);
        joined.push(response.json().await.unwrap());
    }
    let all_joined = started.elapsed();
    // Every one has a prompt in their terminal.
    let prompts = joined.iter().map(|j| async move {
        let mut terminal = server.terminal(&j.session.id, "node1", "").await;
        terminal
            .wait_for("root@node1", Duration::from_secs(60))
            .await;
        terminal.close().await;
    });
    futures_util::future::join_all(prompts).await;
    let all_prompts = started.elapsed();
    println!(
        "class start: 30 students joined in {:.2} s; every terminal showed a prompt after {:.2} s",
        all_joined.as_secs_f64(),
        all_prompts.as_secs_f64()
    );
    assert!(all_prompts < Duration::from_secs(30), "{all_prompts:?}");

    // The 31st is refused with the reason.
    let response = join(server, &class.code, "Late").await;
    assert_eq!(response.status(), 409);
    assert!(error_text(response).await.contains("all 30 seats"));

    // The roster follows checks as they pass; a waiting request returns at once.
    let before = roster(server, &teacher, &class.id).await;
    assert_eq!(before.students.len(), 30);
    assert_eq!(before.steps.len(), 2);
    assert!(before.students.iter().all(|s| s.live && s.steps_done == 0));
    for j in &joined[..10] {
        assert!(check(server, &j.session.id).await, "the intro");
        server.exec(&j.session.id, "node1", "touch /root/one").await;
    }
    let version = roster(server, &teacher, &class.id).await.version;
    let waiting = {
        let path = format!("/api/classes/{}?since={version}&wait=20", class.id);
        let url = server.url(&path);
        let http = server.http.clone();
        let teacher = teacher.clone();
        tokio::spawn(async move {
            let response = http.get(url).bearer_auth(teacher).send().await.unwrap();
            (Instant::now(), response.json::<Roster>().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(check(server, &joined[0].session.id).await);
    let passed_at = Instant::now();
    let (answered_at, changed) = waiting.await.unwrap();
    let delay = answered_at.saturating_duration_since(passed_at);
    println!(
        "dashboard update delay: {:.1} ms after the check passed",
        delay.as_secs_f64() * 1000.0
    );
    assert!(delay < Duration::from_secs(2), "{delay:?}");
    assert!(changed.version > version);
    for j in &joined[1..10] {
        assert!(check(server, &j.session.id).await);
    }
    let after = roster(server, &teacher, &class.id).await;
    assert_eq!((after.steps[0].done, after.steps[1].done), (10, 0));
    assert_eq!(after.steps[1].on_it, 10);
    let ada = after
        .students
        .iter()
        .find(|s| s.name == "Student 00")
        .unwrap();
    assert_eq!(ada.steps_done, 1);
    assert!(ada.tutorial.as_ref().is_some_and(|t| t.page == 2));

    // The CSV matches the roster.
    let response = call(
        server,
        reqwest::Method::GET,
        &format!("/api/classes/{}/roster.csv", class.id),
        Some(&teacher),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 31, "{csv}");
    assert!(lines[0].starts_with("name,joined_at,session_live,steps_done,steps_total"));
    for student in &after.students {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{},", student.name)))
            .unwrap();
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[2], "yes");
        assert_eq!(fields[3], student.steps_done.to_string(), "{line}");
        assert_eq!(fields[4], "2");
    }

    // Who may see what: not students, not the join link, not another instructor.
    let path = format!("/api/classes/{}", class.id);
    let response = call(server, reqwest::Method::GET, &path, None, None).await;
    assert_eq!(response.status(), 401);
    let response = call(
        server,
        reqwest::Method::GET,
        &path,
        Some(&joined[0].token),
        None,
    )
    .await;
    assert_eq!(response.status(), 403);
    let response = call(server, reqwest::Method::GET, &path, Some(&class.code), None).await;
    assert_eq!(response.status(), 403);
    let response = call(server, reqwest::Method::GET, &path, Some(&other), None).await;
    assert_eq!(response.status(), 404);
    let listed = call(
        server,
        reqwest::Method::GET,
        "/api/classes",
        Some(&other),
        None,
    )
    .await;
    assert_eq!(listed.json::<Vec<ClassInfo>>().await.unwrap(), vec![]);
    let help = format!(
        "/api/classes/{}/students/{}/help",
        class.id, joined[1].student_id
    );
    let response = call(server, reqwest::Method::POST, &help, Some(&other), None).await;
    assert_eq!(response.status(), 404);
    // What the join link shows: the title and the seats, nothing of anyone.
    let info: serde_json::Value = server
        .get(&format!("/api/join/{}", class.code))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["seats_left"], 0);
    assert!(!info.to_string().contains("Student"), "{info}");

    // kill -9, start again: the class, its seats and progress are intact.
    let data_dir = lab.server.crash().await;
    let scenarios = format!("--scenarios={}", lab._scenarios.path().display());
    let admin = format!("--admin-token={ADMIN}");
    let server = TestServer::start_in(
        data_dir,
        &[
            &scenarios,
            &admin,
            "--capacity-instances=32",
            "--max-sessions-per-client=2",
        ],
    )
    .await;
    let again = roster(&server, &teacher, &class.id).await;
    assert_eq!(again.class.joined, 30);
    assert!(again.students.iter().all(|s| s.live));
    assert_eq!((again.steps[0].done, again.steps[1].done), (10, 0));
    // A student coming back with their token gets their session.
    let body = serde_json::json!({"token": joined[3].token});
    let path = format!("/api/join/{}", class.code);
    let response = call(&server, reqwest::Method::POST, &path, None, Some(body)).await;
    assert_eq!(response.status(), 200);
    let back: Joined = response.json().await.unwrap();
    assert_eq!(back.session.id, joined[3].session.id);
    let mut terminal = server.terminal(&back.session.id, "node1", "").await;
    terminal.send("echo still-$((20+22))\r").await;
    terminal.wait_for("still-42", Duration::from_secs(20)).await;
    terminal.close().await;
    // Still full after the restart: the other instructor's class still does not fit.
    let response = call(
        &server,
        reqwest::Method::POST,
        "/api/classes",
        Some(&other),
        Some(serde_json::json!({"title": "Too big", "template": "1-instance", "seats": 3})),
    )
    .await;
    assert_eq!(response.status(), 503);

    // Ending the class ends every session; the roster stays for the CSV.
    let path = format!("/api/classes/{}", class.id);
    let response = call(
        &server,
        reqwest::Method::DELETE,
        &path,
        Some(&teacher),
        None,
    )
    .await;
    assert_eq!(response.status(), 204);
    for j in &joined {
        assert!(server.session(&j.session.id).await.is_none());
    }
    let ended = roster(&server, &teacher, &class.id).await;
    assert_eq!(ended.class.state, ClassState::Ended);
    assert!(ended.students.iter().all(|s| !s.live));
    let response = join(&server, &class.code, "After").await;
    assert_eq!(response.status(), 410);
    server.stop().await;
}

/// The next session event of `kind` (`help`, `message`), skipping others.
async fn next_event(
    events: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    kind: &str,
) -> SessionEvent {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(message)) = events.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            if value["type"] == kind {
                return serde_json::from_value(value).unwrap();
            }
        }
        panic!("event stream closed");
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind} event"))
}

#[tokio::test(flavor = "multi_thread")]
async fn help_only_while_the_student_agrees_and_broadcasts() {
    let lab = start_lab(&[]).await;
    let server = &lab.server;
    let response = call(
        server,
        reqwest::Method::POST,
        "/api/classes",
        Some(ADMIN),
        Some(serde_json::json!({"title": "Help", "template": "1-instance", "seats": 2})),
    )
    .await;
    assert_eq!(response.status(), 201);
    let class: ClassInfo = response.json().await.unwrap();
    let student: Joined = join(server, &class.code, "Ada").await.json().await.unwrap();
    let sid = student.session.id.clone();
    let (mut events, _) =
        tokio_tungstenite::connect_async(server.ws_url(&format!("/api/sessions/{sid}/events")))
            .await
            .unwrap();
    let mut own = server.terminal(&sid, "node1", "").await;
    own.wait_for("root@node1", Duration::from_secs(20)).await;

    // The instructor asks: the student's page is told.
    let path = format!(
        "/api/classes/{}/students/{}/help",
        class.id, student.student_id
    );
    let response = call(server, reqwest::Method::POST, &path, Some(ADMIN), None).await;
    assert_eq!(response.status(), 200);
    let grant: HelpGrant = response.json().await.unwrap();
    assert_eq!(grant.state, HelpState::Requested);
    assert_eq!(
        next_event(&mut events, "help").await,
        SessionEvent::Help {
            state: HelpState::Requested
        }
    );
    // Not before the student accepts.
    let helper_url = server.ws_url(&format!("/api/help/{}/instances/node1/terminal", grant.key));
    let refused = tokio_tungstenite::connect_async(&helper_url).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("helper connected before the student accepted: {other:?}"),
    }
    let answer = format!("/api/sessions/{sid}/help");
    let response = call(
        server,
        reqwest::Method::POST,
        &answer,
        None,
        Some(serde_json::json!({"accept": true})),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        next_event(&mut events, "help").await,
        SessionEvent::Help {
            state: HelpState::Active
        }
    );
    assert_eq!(server.session(&sid).await.unwrap().help, HelpState::Active);

    // The instructor's typing appears in the student's terminal.
    let (ws, _) = tokio_tungstenite::connect_async(&helper_url).await.unwrap();
    let mut helper = playground_tests::TermClient::from_ws(ws).await;
    helper.send("echo helped-$((40+2))\r").await;
    own.wait_for("helped-42", Duration::from_secs(10)).await;

    // The student ends it: the instructor's terminal closes, typing stops.
    let response = call(server, reqwest::Method::DELETE, &answer, None, None).await;
    assert_eq!(response.status(), 204);
    assert!(
        helper.closed_within(Duration::from_secs(5)).await,
        "the helper's terminal stays open after help ended"
    );
    match tokio_tungstenite::connect_async(&helper_url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 404),
        other => panic!("helper reconnected after help ended: {other:?}"),
    }

    // A broadcast reaches the student's page.
    let response = call(
        server,
        reqwest::Method::POST,
        &format!("/api/classes/{}/broadcast", class.id),
        Some(ADMIN),
        Some(serde_json::json!({"message": "Five minutes left"})),
    )
    .await;
    assert_eq!(response.status(), 200);
    match next_event(&mut events, "message").await {
        SessionEvent::Message { text, .. } => assert_eq!(text, "Five minutes left"),
        other => panic!("{other:?}"),
    }
    own.close().await;
    lab.server.finish(&sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_class_opens_and_ends_on_time() {
    let lab = start_lab(&[]).await;
    let server = &lab.server;
    let soon = |secs: u64| {
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(secs))
            .to_string()
    };
    let create = |body: serde_json::Value| {
        call(
            server,
            reqwest::Method::POST,
            "/api/classes",
            Some(ADMIN),
            Some(body),
        )
    };
    let later: ClassInfo = create(serde_json::json!({
        "title": "Tomorrow", "template": "1-instance", "seats": 1, "starts_at": soon(86400)
    }))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(later.state, ClassState::Scheduled);
    let response = join(server, &later.code, "Early").await;
    assert_eq!(response.status(), 409);
    assert!(error_text(response).await.contains("opens at"));

    let short: ClassInfo = create(serde_json::json!({
        "title": "Short", "template": "1-instance", "seats": 1, "ends_at": soon(4)
    }))
    .await
    .json()
    .await
    .unwrap();
    let student: Joined = join(server, &short.code, "Quick")
        .await
        .json()
        .await
        .unwrap();
    // Refusals name their reason.
    let response = create(serde_json::json!({"title": "x", "seats": 1})).await;
    assert_eq!(response.status(), 422);
    let response =
        create(serde_json::json!({"title": "x", "template": "1-instance", "seats": 0})).await;
    assert_eq!(response.status(), 422);
    let response = join(server, &short.code, "").await;
    assert_eq!(response.status(), 422);
    let response = join(server, "NOSUCH", "Who").await;
    assert_eq!(response.status(), 404);

    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        server.session(&student.session.id).await.is_none(),
        "ended with the class"
    );
    let response = join(server, &short.code, "Late").await;
    assert_eq!(response.status(), 410);
    let roster = roster(server, ADMIN, &short.id).await;
    assert_eq!(roster.class.state, ClassState::Ended);
    lab.server.stop().await;
}
