//! Honest capacity and fair shares: a full host refuses new sessions and
//! instances with the reason and a Retry-After (and takes them again once
//! there is room); one client address cannot hold every session, flood the
//! API or open unlimited WebSockets; settings come from a TOML file too.

use std::time::Duration;

use playground_tests::TestServer;
use reqwest::StatusCode;

/// POST `path`; the status, the Retry-After seconds and the error message.
async fn post(server: &TestServer, path: &str) -> (StatusCode, Option<u64>, String) {
    let response = server
        .http
        .post(server.url(path))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After in seconds"));
    let body: serde_json::Value = response.json().await.unwrap();
    let message = body["error"].as_str().unwrap_or_default().to_string();
    (status, retry_after, message)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_host_refuses_with_a_reason_and_takes_requests_again_once_freed() {
    let server = TestServer::start(&["--capacity-instances=2", "--session-ttl=10m"]).await;
    let sid = server.create_session().await.id;
    server.add_instance(&sid).await;
    let second = server.add_instance(&sid).await;

    // Full: a third instance, in this session or a new one, is refused.
    let (status, retry_after, message) =
        post(&server, &format!("/api/sessions/{sid}/instances")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{message}");
    assert!(
        message.starts_with("the playground is full: 1 session running (2 of 2 instances)"),
        "{message}"
    );
    assert!(
        message.contains("try again in about 10 minutes"),
        "{message}"
    );
    let retry_after = retry_after.expect("a Retry-After header");
    assert!((540..=600).contains(&retry_after), "{retry_after}");
    let (status, retry_after, message) = post(&server, "/api/sessions").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{message}");
    assert!(message.contains("the playground is full"), "{message}");
    assert!(retry_after.is_some());
    // The refusal changed nothing: still two instances, one session.
    let info = server.session(&sid).await.unwrap();
    assert_eq!(info.instances.len(), 2);

    // Room again: the next session and instance are admitted.
    server.delete_instance(&sid, &second).await;
    let other = server.create_session().await.id;
    server.add_instance(&other).await;
    let (status, _, _) = post(&server, "/api/sessions").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // Ending a session gives its instances back.
    server.delete_session(&other).await;
    server.add_instance(&sid).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_holds_only_its_share_of_sessions() {
    let server = TestServer::start(&["--max-sessions-per-client=2"]).await;
    let first = server.create_session().await.id;
    server.create_session().await;
    let (status, retry_after, message) = post(&server, "/api/sessions").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{message}");
    assert!(
        message.contains("your address already has 2 sessions running"),
        "{message}"
    );
    assert!(retry_after.is_some());
    server.delete_session(&first).await;
    server.create_session().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_requests_is_slowed_down_not_served() {
    let server = TestServer::start(&["--requests-per-second=2"]).await;
    let sid = server.create_session().await.id;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A burst of five times the rate passes; the rest of a flood does not.
    // (An unknown session counts against the address.)
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let response = server.get("/api/sessions/no-such-session").await;
        statuses.push((
            response.status(),
            response.headers().get("retry-after").cloned(),
        ));
    }
    let passed = statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::NOT_FOUND)
        .count();
    assert!((10..=12).contains(&passed), "{passed} of 30 passed");
    let (status, retry_after) = statuses.last().unwrap();
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_ref().unwrap(), "1");
    // A live session has its own share (a classroom shares one address),
    // and reading the templates costs nothing.
    assert_eq!(
        server.get(&format!("/api/sessions/{sid}")).await.status(),
        200
    );
    assert_eq!(server.get("/api/templates").await.status(), 200);
    // The page itself is not limited, and the API answers again after a pause.
    assert!(server.get("/").await.status().is_success());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        server.get("/api/sessions/no-such-session").await.status(),
        404
    );
    server.finish(&sid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_holds_a_bounded_number_of_websockets() {
    let server = TestServer::start(&["--max-connections-per-session=2"]).await;
    let sid = server.create_session().await.id;
    let url = server.ws_url(&format!("/api/sessions/{sid}/events"));
    let (a, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (_b, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("already has 2 open terminals"), "{body}");
        }
        other => panic!("a third WebSocket was not refused: {other:?}"),
    }
    drop(a);
    // The closed one is given back (the server notices the close at once).
    let mut third = None;
    for _ in 0..50 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(&url).await {
            third = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(third.is_some(), "a closed WebSocket was never given back");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_come_from_a_toml_file_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("playground.toml");
    std::fs::write(
        &file,
        "session-ttl = \"7m\"\nmax_instances = 1\ncapacity-instances = 9\n",
    )
    .unwrap();
    let config = format!("--config={}", file.display());
    let server = TestServer::start(&[&config, "--max-instances=2"]).await;
    let info = server.create_session().await;
    assert!(
        (400..=420).contains(&info.expires_in_secs),
        "{}",
        info.expires_in_secs
    );
    // The flag wins over the file.
    assert_eq!(info.max_instances, 2);
    server.stop().await;

    // A typo stops the start with the file and the key named.
    std::fs::write(&file, "sesion-ttl = \"7m\"\n").unwrap();
    let output = std::process::Command::new(playground_tests::binary())
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown setting \"sesion-ttl\"") && stderr.contains("playground.toml"),
        "{stderr}"
    );
}
