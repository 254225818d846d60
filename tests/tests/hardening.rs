//! Bad input from the network: slow clients, oversized bodies and messages
//! are cut off with a clear answer, and the server keeps serving others.

use std::time::{Duration, Instant};

use playground_tests::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    let server = TestServer::start(&[]).await;
    let address = server.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // Meanwhile everyone else is served.
    assert!(server.get("/healthz").await.status().is_success());
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(40), slow.read_to_end(&mut buffer)).await;
    assert!(read.is_ok(), "the half-sent request was held open for 40 s");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(15),
        "cut off after only {waited:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_and_messages_are_refused() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    // A 2 MiB exec request: over the API's 1 MiB body limit.
    let stdin = "x".repeat(2 << 20);
    let response = server
        .http
        .post(server.url(&format!("/api/sessions/{sid}/instances/{name}/exec")))
        .json(&serde_json::json!({"cmd": ["cat"], "stdin": stdin}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("length limit"),
        "{body}"
    );

    // A 2 MiB terminal message: the WebSocket is closed, the shell lives on.
    use futures_util::{SinkExt, StreamExt};
    let url = server.ws_url(&format!("/api/sessions/{sid}/instances/{name}/terminal"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let huge = vec![b'y'; 2 << 20];
    let _ = ws
        .send(tokio_tungstenite::tungstenite::Message::Binary(huge.into()))
        .await;
    // The server ends the connection instead of buffering the message.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the oversized message did not end the WebSocket"
    );
    let mut again = server.terminal(&sid, &name, "").await;
    again.send("echo still-$((40+2))\n").await;
    again.wait_for("still-42", Duration::from_secs(10)).await;
    server.stop().await;
}
