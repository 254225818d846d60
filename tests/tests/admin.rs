//! End-to-end tests of the operator's side: `/metrics` and the admin API,
//! their access rules (token on the main address, none on --admin-listen),
//! metrics that follow what happens, and ending a session as the operator.

use std::time::Duration;

use playground_protocol::{AdminSession, ErrorBody, InstanceStatus};
use playground_tests::{wait_until_clean, TestServer};

const TOKEN: &str = "test-admin-token-5b1f";

/// The value of one series (name with its labels, as exposed) in a scrape.
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .map(|(_, v)| v.parse().unwrap())
}

async fn scrape(server: &TestServer) -> String {
    let response = server
        .http
        .get(server.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("application/openmetrics-text"));
    response.text().await.unwrap()
}

/// Poll `/metrics` until `series` has `expected`, or fail showing the scrape.
async fn wait_for_value(server: &TestServer, series: &str, expected: f64) {
    let mut text = String::new();
    for _ in 0..50 {
        text = scrape(server).await;
        if value(&text, series) == Some(expected) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{series} never became {expected}:\n{text}");
}

#[tokio::test]
async fn metrics_and_admin_api_are_off_without_a_token_and_locked_with_one() {
    let off = TestServer::start(&[]).await;
    for path in ["/metrics", "/api/admin/sessions", "/admin"] {
        let response = off.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: ErrorBody = response.json().await.unwrap();
        assert!(body.error.contains("--admin-token"), "{}", body.error);
    }
    // A token is no use when none is configured.
    let response = off
        .http
        .get(off.url("/metrics"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    off.stop().await;

    let locked = TestServer::start(&[&format!("--admin-token={TOKEN}")]).await;
    let response = locked.get("/metrics").await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: ErrorBody = response.json().await.unwrap();
    assert!(body.error.contains("Bearer"), "{}", body.error);
    for wrong in ["wrong", &TOKEN[..TOKEN.len() - 1], &format!("{TOKEN}x")] {
        let url = locked.url("/api/admin/sessions");
        let response = locked
            .http
            .get(url)
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{wrong}");
    }
    let url = locked.url("/api/admin/sessions/00000000-0000-4000-8000-000000000000");
    let response = locked.http.delete(url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    // The page holds no data: it loads without the token, then asks for it.
    let page = locked.get("/admin").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/api/admin/sessions"));
    // With the token: metrics, and the session list (empty).
    let text = scrape(&locked).await;
    assert_eq!(value(&text, "playground_sessions"), Some(0.0));
    assert!(value(&text, "playground_capacity_instances").unwrap() >= 1.0);
    let response = locked
        .http
        .get(locked.url("/api/admin/sessions"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sessions: Vec<AdminSession> = response.json().await.unwrap();
    assert!(sessions.is_empty());
    locked.stop().await;
}

#[tokio::test]
async fn metrics_follow_sessions_instances_terminals_and_proxied_requests() {
    let server =
        TestServer::start(&[&format!("--admin-token={TOKEN}"), "--capacity-instances=7"]).await;
    let before = scrape(&server).await;
    assert_eq!(value(&before, "playground_capacity_instances"), Some(7.0));
    assert_eq!(value(&before, "playground_sessions"), Some(0.0));
    assert_eq!(value(&before, "playground_terminals"), Some(0.0));

    let sid = server.create_session().await.id;
    let name = server.add_instance(&sid).await;
    let mut terminal = server.terminal(&sid, &name, "").await;
    terminal.send("echo ready-$((6*7))\n").await;
    terminal.wait_for("ready-42", Duration::from_secs(10)).await;
    let out = server
        .exec(
            &sid,
            &name,
            "mkdir -p /srv/www && printf 'hello from the instance' > /srv/www/index.html && \
             { python3 -m http.server 8000 --bind 127.0.0.1 --directory /srv/www \
               >/dev/null 2>&1 </dev/null & } && \
             for i in $(seq 100); do grep -qi ':1F40 0*:0000 0A' /proc/net/tcp && exit 0; sleep 0.05; done; exit 1",
        )
        .await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    let page = server
        .get(&format!("/proxy/{sid}/{name}/8000/index.html"))
        .await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), "hello from the instance");
    // Nothing listens on 8001: a proxy error.
    let missing = server.get(&format!("/proxy/{sid}/{name}/8001/")).await;
    assert_eq!(missing.status(), 502);
    // An unknown session: an API error.
    let unknown = server
        .get("/api/sessions/00000000-0000-4000-8000-000000000000")
        .await;
    assert_eq!(unknown.status(), 404);

    // A made-up method does not get a series of its own.
    let odd = reqwest::Method::from_bytes(b"BREW").unwrap();
    let brewed = server
        .http
        .request(odd, server.url("/api/templates"))
        .send()
        .await
        .unwrap();
    assert_eq!(brewed.status(), 405);

    let text = scrape(&server).await;
    assert!(!text.contains("BREW"), "{text}");
    let expect = |series: &str, expected: f64| {
        assert_eq!(value(&text, series), Some(expected), "{series} in:\n{text}");
    };
    expect("playground_sessions", 1.0);
    expect("playground_instances{status=\"running\"}", 1.0);
    expect("playground_instances{status=\"exited\"}", 0.0);
    expect("playground_terminals", 1.0);
    expect("playground_instance_start_seconds_count", 1.0);
    expect("playground_proxy_requests_total{status_class=\"2xx\"}", 1.0);
    expect("playground_proxy_requests_total{status_class=\"5xx\"}", 1.0);
    expect(
        "playground_proxy_bytes_total{direction=\"from_instance\"}",
        "hello from the instance".len() as f64,
    );
    expect(
        "playground_errors_total{source=\"proxy\",status=\"502\"}",
        1.0,
    );
    expect(
        "playground_errors_total{source=\"api\",status=\"404\"}",
        1.0,
    );
    // Latency by route template: the session id is not in the label.
    expect(
        "playground_http_request_duration_seconds_count{method=\"POST\",route=\"/api/sessions/{sid}/instances\",status_class=\"2xx\"}",
        1.0,
    );
    assert!(
        !text.contains(&sid),
        "a raw path leaked into a label:\n{text}"
    );
    let start = value(&text, "playground_instance_start_seconds_sum").unwrap();
    assert!(start > 0.0 && start < 60.0, "instance start took {start} s");

    terminal.close().await;
    wait_for_value(&server, "playground_terminals", 0.0).await;
    server.delete_session(&sid).await;
    wait_for_value(&server, "playground_sessions", 0.0).await;
    wait_for_value(&server, "playground_instances{status=\"running\"}", 0.0).await;
    server.stop().await;
}

#[tokio::test]
async fn the_admin_address_lists_sessions_with_resource_use_and_ends_them() {
    let server = TestServer::start(&["--admin-listen=127.0.0.1:0"]).await;
    let admin = server.admin_base.clone().expect("admin address announced");
    // No token is needed on the admin address; the main one stays closed.
    assert_eq!(server.get("/api/admin/sessions").await.status(), 404);
    let metrics = server
        .http
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("playground_sessions 0"));
    let page = server
        .http
        .get(format!("{admin}/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);

    let sid = server.create_session().await.id;
    let name = server.add_instance(&sid).await;
    // Something that uses memory and CPU while the list is taken.
    let out = server
        .exec(
            &sid,
            &name,
            "{ python3 -c 'b = bytearray(64 << 20)\nwhile True: pass' >/dev/null 2>&1 </dev/null & } ; sleep 1",
        )
        .await;
    assert_eq!(out.exit_code, 0, "{out:?}");

    let list: Vec<AdminSession> = server
        .http
        .get(format!("{admin}/api/admin/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    let listed = &list[0];
    assert_eq!(listed.id, sid);
    assert_eq!(listed.client_addr.as_deref(), Some("127.0.0.1"));
    assert!(listed.age_secs < 60);
    assert!(listed.expires_in_secs > 3 * 3600, "default TTL is 4h");
    assert_eq!(listed.instances.len(), 1);
    let instance = &listed.instances[0];
    assert_eq!(instance.name, name);
    assert_eq!(instance.status, InstanceStatus::Running);
    let stats = instance
        .stats
        .as_ref()
        .expect("a running instance has stats");
    assert_eq!(stats.memory_limit_bytes, 1024 << 20);
    assert!(stats.memory_bytes > 64 << 20, "{stats:?}");
    assert!(stats.cpu_seconds > 0.5, "{stats:?}");
    // The busy loop keeps one CPU (the instance's cap) about fully used.
    let cpu = instance.cpu_percent.unwrap();
    assert!(cpu > 40.0 && cpu < 130.0, "cpu {cpu}%");

    let end = |sid: String| {
        let url = format!("{admin}/api/admin/sessions/{sid}");
        let http = server.http.clone();
        async move { http.delete(url).send().await.unwrap().status() }
    };
    assert_eq!(end(sid.clone()).await, 204);
    assert!(server.session(&sid).await.is_none());
    assert_eq!(end(sid.clone()).await, 404);
    let left = wait_until_clean(&sid, server.data_dir.path(), Duration::from_secs(10)).await;
    assert!(left.is_empty(), "{left:?}");
    server.stop().await;
}
