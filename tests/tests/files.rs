//! End-to-end tests of the files API: downloads and uploads through the real
//! server, with paths resolved inside the instance (never on the host).
//! They need root (CI runs as root).

use std::time::{Duration, Instant};

use playground_protocol::FileInfo;
use playground_tests::TestServer;

const T: Duration = Duration::from_secs(20);

/// Bytes that do not compress or repeat (xorshift).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn files_url(server: &TestServer, sid: &str, name: &str, path: &str) -> String {
    let url = server.url(&format!("/api/sessions/{sid}/instances/{name}/files"));
    reqwest::Url::parse_with_params(&url, &[("path", path)])
        .unwrap()
        .to_string()
}

async fn download(server: &TestServer, sid: &str, name: &str, path: &str) -> reqwest::Response {
    server
        .http
        .get(files_url(server, sid, name, path))
        .send()
        .await
        .unwrap()
}

async fn upload(
    server: &TestServer,
    sid: &str,
    name: &str,
    path: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    server
        .http
        .post(files_url(server, sid, name, path))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Status and `error` message of an error answer.
async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_and_download_round_trip_and_relative_paths_follow_the_shell() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;

    let data = noise(5 << 20, 0x9e3779b97f4a7c15);
    let response = upload(&server, &sid, &name, "/root/blob.bin", data.clone()).await;
    assert_eq!(response.status(), 201);
    let info: FileInfo = response.json().await.unwrap();
    assert_eq!(
        info,
        FileInfo {
            path: "/root/blob.bin".into(),
            size: data.len() as u64
        }
    );

    let response = download(&server, &sid, &name, "/root/blob.bin").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["content-length"], data.len().to_string().as_str());
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"blob.bin\""
    );
    let got = response.bytes().await.unwrap();
    assert!(got == data, "downloaded bytes differ from the upload");
    let out = server
        .exec(&sid, &name, "sha256sum /root/blob.bin | cut -c1-64")
        .await;
    assert_eq!(out.stdout.trim().len(), 64);

    // Without a shell, relative paths start at /root.
    let response = upload(&server, &sid, &name, "plain.txt", b"in root".to_vec()).await;
    assert_eq!(response.status(), 201);
    let info: FileInfo = response.json().await.unwrap();
    assert_eq!(info.path, "/root/plain.txt");

    // With a shell, at its working directory.
    let mut term = server.terminal(&sid, &name, "").await;
    term.send("cd /tmp && echo cd-done-$((40+2))\n").await;
    term.wait_for("cd-done-42", T).await;
    let response = upload(&server, &sid, &name, "rel.txt", b"relative!".to_vec()).await;
    assert_eq!(response.status(), 201);
    let info: FileInfo = response.json().await.unwrap();
    assert_eq!(info.path, "/tmp/rel.txt");
    let out = server.exec(&sid, &name, "cat /tmp/rel.txt").await;
    assert_eq!(out.stdout, "relative!");
    let response = download(&server, &sid, &name, "rel.txt").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"relative!");
    term.close().await;

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_and_symlinks_never_leave_the_instance() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    let pid = std::process::id();

    // `..` stops at the instance's root: this is the instance's passwd.
    let out = server
        .exec(
            &sid,
            &name,
            "echo '# instance-only-line' >> /etc/passwd && cat /etc/passwd",
        )
        .await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    let response = download(&server, &sid, &name, "../../../../etc/passwd").await;
    assert_eq!(response.status(), 200);
    let passwd = String::from_utf8(response.bytes().await.unwrap().to_vec()).unwrap();
    assert_eq!(passwd, out.stdout);
    let host_passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    assert_ne!(passwd, host_passwd);

    // Absolute paths are the instance's.
    let response = download(&server, &sid, &name, "/etc/hostname").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap().trim(), name);

    // Symlinks resolve inside the instance: the host's marker is out of reach.
    let marker = format!("/tmp/host-marker-{pid}");
    std::fs::write(&marker, "host secret").unwrap();
    let out = server
        .exec(
            &sid,
            &name,
            &format!(
                "ln -s {marker} /root/link && ln -s /proc/1/root{marker} /root/link2 \
                 && ln -s /../../..{marker} /root/link3"
            ),
        )
        .await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    for path in [
        "/root/link".to_string(),
        "/root/link2".to_string(),
        "/root/link3".to_string(),
        marker.clone(),
        format!("/proc/1/root{marker}"),
        format!("../../../..{marker}"),
    ] {
        let response = download(&server, &sid, &name, &path).await;
        let (status, error) = error_of(response).await;
        assert_eq!(status, 404, "{path}: {error}");
        assert!(error.contains("no such file"), "{path}: {error}");
    }

    // Uploads with `..` land inside the instance too.
    let content = format!("written by the test {pid}");
    let response = upload(
        &server,
        &sid,
        &name,
        "../../../tmp/x",
        content.clone().into_bytes(),
    )
    .await;
    assert_eq!(response.status(), 201);
    let info: FileInfo = response.json().await.unwrap();
    assert_eq!(info.path, "/tmp/x");
    let out = server.exec(&sid, &name, "cat /tmp/x").await;
    assert_eq!(out.stdout, content);
    let host = std::fs::read_to_string("/tmp/x").unwrap_or_default();
    assert!(!host.contains(&content), "the upload reached the host");
    let host_marker = std::fs::read_to_string(&marker).unwrap();
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(host_marker, "host secret");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fifos_directories_and_missing_files_are_clear_errors() {
    let (server, sid, name) = TestServer::with_instance(&[]).await;
    let out = server
        .exec(&sid, &name, "mkfifo /root/fifo && mkdir -p /root/dir")
        .await;
    assert_eq!(out.exit_code, 0, "{out:?}");

    // A FIFO neither hangs the download nor the upload (nor init).
    let started = Instant::now();
    let (status, error) = error_of(download(&server, &sid, &name, "/root/fifo").await).await;
    assert_eq!(status, 422, "{error}");
    assert!(error.contains("not a regular file"), "{error}");
    let (status, error) =
        error_of(upload(&server, &sid, &name, "/root/fifo", b"data".to_vec()).await).await;
    assert_eq!(status, 422, "{error}");
    assert!(error.contains("not a regular file"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));

    for path in ["/root/dir", "/root", "dir"] {
        let (status, error) = error_of(download(&server, &sid, &name, path).await).await;
        assert_eq!(status, 422, "{path}: {error}");
        assert!(error.contains("is a directory"), "{path}: {error}");
        let (status, error) =
            error_of(upload(&server, &sid, &name, path, b"data".to_vec()).await).await;
        assert_eq!(status, 422, "{path}: {error}");
        assert!(error.contains("is a directory"), "{path}: {error}");
    }

    let (status, error) = error_of(download(&server, &sid, &name, "/root/missing").await).await;
    assert_eq!(status, 404, "{error}");
    assert!(error.contains("no such file"), "{error}");
    // No parent directories are made.
    let (status, error) =
        error_of(upload(&server, &sid, &name, "/root/no/such/dir/f", b"x".to_vec()).await).await;
    assert_eq!(status, 404, "{error}");
    let (status, _) = error_of(download(&server, &sid, &name, "").await).await;
    assert_eq!(status, 400);
    let (status, _) = error_of(upload(&server, &sid, &name, "", b"x".to_vec()).await).await;
    assert_eq!(status, 400);
    let (status, _) = error_of(download(&server, &sid, "node9", "/etc/hostname").await).await;
    assert_eq!(status, 404);

    // Init still serves after all that.
    let out = server.exec(&sid, &name, "echo alive").await;
    assert_eq!(out.stdout, "alive\n");

    server.stop().await;
}

/// Upload `chunks` chunks of `size` bytes with chunked transfer encoding
/// (no Content-Length) over a raw connection; returns status and error.
async fn chunked_upload(
    server: &TestServer,
    sid: &str,
    name: &str,
    path: &str,
    chunks: usize,
    size: usize,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(&files_url(server, sid, name, path)).unwrap();
    let address = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {}?{} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        url.path(),
        url.query().unwrap()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![1u8; size];
    for _ in 0..chunks {
        let sent = async {
            stream.write_all(format!("{size:x}\r\n").as_bytes()).await?;
            stream.write_all(&chunk).await?;
            stream.write_all(b"\r\n").await
        };
        if sent.await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(T, stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_above_the_limit_are_refused() {
    let (server, sid, name) = TestServer::with_instance(&["--max-upload-mib=1"]).await;
    let (status, error) =
        error_of(upload(&server, &sid, &name, "/root/big", vec![7u8; 2 << 20]).await).await;
    assert_eq!(status, 413, "{error}");
    assert!(error.contains("1 MiB"), "{error}");
    // Just under the limit is fine.
    let response = upload(&server, &sid, &name, "/root/ok", vec![7u8; 1 << 20]).await;
    assert_eq!(response.status(), 201);

    // A streamed (chunked, no length given) body is cut off while streaming.
    let (status, error) =
        chunked_upload(&server, &sid, &name, "/root/streamed", 4, 512 << 10).await;
    assert_eq!(status, 413, "{error}");
    let out = server.exec(&sid, &name, "stat -c %s /root/streamed").await;
    assert_eq!(
        out.stdout.trim(),
        "0",
        "the partial upload was not truncated"
    );

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn filling_the_instance_disk_is_507_and_the_instance_keeps_working() {
    let (server, sid, name) = TestServer::with_instance(&["--instance-disk-mib=64"]).await;
    let response = upload(&server, &sid, &name, "/root/huge", vec![0u8; 100_000_000]).await;
    let (status, error) = error_of(response).await;
    assert_eq!(status, 507, "{error}");
    assert!(error.contains("disk is full"), "{error}");
    let out = server
        .exec(
            &sid,
            &name,
            "echo still-works > /root/after && cat /root/after",
        )
        .await;
    assert_eq!(out.stdout, "still-works\n", "{out:?}");

    server.stop().await;
}
