//! The mirror against a real OCI layout on a real loopback listener: pulled by
//! the real `skopeo` (installed by `scripts/setup`), and checked at the HTTP
//! level with hyper's client.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use sandbox::oci::Digest;
use serde_json::json;
use tempfile::TempDir;

/// A layout holding one image under three tags: `mini:latest` (the manifest,
/// its entry with a media type), `docker.io/library/mini:bare` (the same,
/// without one) and `mini:multi` (an image index around the manifest).
struct Layout {
    dir: TempDir,
    layer: Digest,
    config: Digest,
    manifest: Digest,
    index: Digest,
}

fn put_blob(layout: &Path, bytes: &[u8]) -> Digest {
    let digest = Digest::of(bytes);
    std::fs::write(layout.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
    digest
}

fn layout() -> Layout {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();

    let mut tar = tar::Builder::new(Vec::new());
    let text = b"hello from the mirror\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "hello.txt", &text[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let layer = put_blob(root, &gz);

    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["cat", "/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(&tar).to_string()]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = put_blob(root, &config);

    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": super::OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer.to_string(),
            "size": gz.len(),
        }],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = put_blob(root, &manifest);

    let index = json!({
        "schemaVersion": 2,
        "mediaType": super::OCI_INDEX,
        "manifests": [{
            "mediaType": super::OCI_MANIFEST,
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    });
    let index = serde_json::to_vec(&index).unwrap();
    let index_digest = put_blob(root, &index);

    let entries = json!({
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": super::OCI_MANIFEST,
                "digest": manifest_digest.to_string(),
                "size": manifest.len(),
                "annotations": {super::REF_NAME: "mini:latest"},
            },
            {
                "digest": manifest_digest.to_string(),
                "size": manifest.len(),
                "annotations": {super::REF_NAME: "docker.io/library/mini:bare"},
            },
            {
                "mediaType": super::OCI_INDEX,
                "digest": index_digest.to_string(),
                "size": index.len(),
                "annotations": {super::REF_NAME: "mini:multi"},
            },
        ],
    });
    std::fs::write(
        root.join("index.json"),
        serde_json::to_vec(&entries).unwrap(),
    )
    .unwrap();
    Layout {
        dir,
        layer,
        config: config_digest,
        manifest: manifest_digest,
        index: index_digest,
    }
}

/// The router on a loopback listener; it stops with the test's runtime.
async fn serve(layout: &Path) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = super::router(layout.to_owned());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    fn error_code(&self) -> String {
        assert_eq!(self.header("content-type"), "application/json");
        let value: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        value["errors"][0]["code"].as_str().unwrap().to_owned()
    }
}

/// One request on a fresh connection; the path is sent as given (no
/// normalisation of `..`, which is what an attacker would send).
async fn fetch(addr: SocketAddr, method: Method, path: &str, headers: &[(&str, &str)]) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(Body::new(body), usize::MAX)
        .await
        .unwrap();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// `skopeo copy` from the mirror into a new OCI layout; returns its directory.
async fn skopeo_copy(addr: SocketAddr, image: &str, extra: &[&str]) -> TempDir {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--insecure-policy".to_owned(),
        "copy".to_owned(),
        "--quiet".to_owned(),
        // Plain HTTP: skopeo tries HTTPS first, then falls back when allowed.
        "--src-tls-verify=false".to_owned(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args.push(format!("docker://{addr}/{image}"));
    args.push(format!("oci:{}:x", out.path().join("copy").display()));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("skopeo")
            .args(&args)
            .output()
            .expect("skopeo (a Debian package that scripts/setup installs)")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "skopeo copy {image}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

fn assert_same_blobs(from: &Path, to: &Path, digests: &[&Digest]) {
    for digest in digests {
        let path = |root: &Path| root.join("blobs/sha256").join(digest.hex());
        let copied = std::fs::read(path(to)).unwrap_or_else(|e| panic!("{digest} copied: {e}"));
        assert!(
            copied == std::fs::read(path(from)).unwrap(),
            "{digest} differs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_skopeo_pulls_by_library_and_short_name() {
    let layout = layout();
    let addr = serve(layout.dir.path()).await;
    let blobs = [&layout.layer, &layout.config, &layout.manifest];
    for image in [
        "library/mini:latest",
        "mini:latest",
        "docker.io/library/mini:bare",
    ] {
        let out = skopeo_copy(addr, image, &[]).await;
        assert_same_blobs(layout.dir.path(), &out.path().join("copy"), &blobs);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_skopeo_pulls_an_index_and_by_digest() {
    let layout = layout();
    let addr = serve(layout.dir.path()).await;
    let out = skopeo_copy(addr, "library/mini:multi", &["--all"]).await;
    let blobs = [
        &layout.index,
        &layout.manifest,
        &layout.config,
        &layout.layer,
    ];
    assert_same_blobs(layout.dir.path(), &out.path().join("copy"), &blobs);

    let by_digest = format!("library/mini@{}", layout.manifest);
    let out = skopeo_copy(addr, &by_digest, &[]).await;
    let blobs = [&layout.manifest, &layout.config, &layout.layer];
    assert_same_blobs(layout.dir.path(), &out.path().join("copy"), &blobs);
}

#[tokio::test]
async fn mirror_answers_the_version_check() {
    let layout = layout();
    let addr = serve(layout.dir.path()).await;
    for path in ["/v2/", "/v2"] {
        let answer = fetch(addr, Method::GET, path, &[]).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.header("docker-distribution-api-version"),
            "registry/2.0"
        );
        assert_eq!(&answer.body[..], b"{}");
    }
}

#[tokio::test]
async fn mirror_manifests_by_tag_and_digest() {
    let layout = layout();
    let addr = serve(layout.dir.path()).await;
    let manifest = std::fs::read(
        layout
            .dir
            .path()
            .join("blobs/sha256")
            .join(layout.manifest.hex()),
    )
    .unwrap();
    let length = manifest.len().to_string();
    let digest = layout.manifest.to_string();
    for path in [
        "/v2/library/mini/manifests/latest".to_owned(),
        "/v2/mini/manifests/bare".to_owned(),
        "/v2/docker.io/library/mini/manifests/latest".to_owned(),
        format!("/v2/library/mini/manifests/{digest}"),
    ] {
        let head = fetch(addr, Method::HEAD, &path, &[]).await;
        assert_eq!(head.status, StatusCode::OK, "{path}");
        assert_eq!(head.header("content-length"), length, "{path}");
        assert_eq!(head.header("docker-content-digest"), digest, "{path}");
        assert_eq!(head.header("content-type"), super::OCI_MANIFEST, "{path}");
        assert!(head.body.is_empty());
        let get = fetch(addr, Method::GET, &path, &[]).await;
        assert_eq!(get.status, StatusCode::OK, "{path}");
        assert_eq!(get.body, manifest, "{path}");
        assert_eq!(get.header("docker-content-digest"), digest, "{path}");
    }
    let index = fetch(addr, Method::GET, "/v2/library/mini/manifests/multi", &[]).await;
    assert_eq!(index.header("content-type"), super::OCI_INDEX);
    assert_eq!(
        index.header("docker-content-digest"),
        layout.index.to_string()
    );
    // A config is a blob, not a manifest.
    let path = format!("/v2/library/mini/manifests/{}", layout.config);
    let config = fetch(addr, Method::GET, &path, &[]).await;
    assert_eq!(config.status, StatusCode::NOT_FOUND);
    assert_eq!(config.error_code(), "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn mirror_unknown_things_are_404() {
    let layout = layout();
    let addr = serve(layout.dir.path()).await;
    let cases = [
        ("/v2/library/mini/manifests/nope", "MANIFEST_UNKNOWN"),
        ("/v2/library/nginx/manifests/latest", "NAME_UNKNOWN"),
        ("/v2/library/mini/tags/list", "UNSUPPORTED"),
    ];
    for (path, code) in cases {
        let answer = fetch(addr, Method::GET, path, &[]).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.error_code(), code, "{path}");
        assert_eq!(
            answer.header("docker-distribution-api-version"),
            "registry/2.0"
        );
    }
    let missing = format!("/v2/library/mini/blobs/sha256:{}", "0".repeat(64));
    let answer = fetch(addr, Method::GET, &missing, &[]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error_code(), "BLOB_UNKNOWN");
    // Without an index.json (a layout being rebuilt), nothing is known.
    std::fs::remove_file(layout.dir.path().join("index.json")).unwrap();
    let answer = fetch(addr, Method::GET, "/v2/library/mini/manifests/latest", &[]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error_code(), "NAME_UNKNOWN");
}

#[tokio::test]
async fn mirror_refuses_bad_digests_and_names() {
    let layout = layout();
    let addr = serve(layout.dir.path()).await;
    let upper = format!("sha256:{}", layout.layer.hex().to_uppercase());
    let short = format!("sha256:{}", &layout.layer.hex()[..63]);
    let other = format!("sha512:{}", layout.layer.hex());
    for digest in [
        "sha256:../../etc",
        "sha256:../../../../etc/passwd",
        &upper,
        &short,
        &other,
    ] {
        for kind in ["blobs", "manifests"] {
            let path = format!("/v2/library/mini/{kind}/{digest}");
            let answer = fetch(addr, Method::GET, &path, &[]).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(answer.error_code(), "DIGEST_INVALID", "{path}");
        }
    }
    let path = format!("/v2/../../mini/blobs/{}", layout.layer);
    let answer = fetch(addr, Method::GET, &path, &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.error_code(), "NAME_INVALID");
}

#[tokio::test]
async fn mirror_refuses_writes() {
    let layout = layout();
    let addr = serve(layout.dir.path()).await;
    let blob = format!("/v2/library/mini/blobs/{}", layout.layer);
    let cases = [
        (Method::PUT, "/v2/library/mini/manifests/latest"),
        (Method::DELETE, "/v2/library/mini/manifests/latest"),
        (Method::POST, "/v2/library/mini/blobs/uploads/"),
        (Method::PATCH, "/v2/library/mini/blobs/uploads/x"),
        (Method::DELETE, &blob),
        (Method::PUT, "/v2/"),
    ];
    for (method, path) in cases {
        let answer = fetch(addr, method.clone(), path, &[]).await;
        assert_eq!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(answer.error_code(), "UNSUPPORTED");
        assert_eq!(answer.header("allow"), "GET, HEAD");
    }
    let after = fetch(addr, Method::GET, &blob, &[]).await;
    assert_eq!(after.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_streams_a_large_blob() {
    let layout = layout();
    // 50 MB of xorshift noise: gzip-like, so nothing along the way shrinks it.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let big: Vec<u8> = (0..50 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let digest = put_blob(layout.dir.path(), &big);
    let addr = serve(layout.dir.path()).await;
    let path = format!("/v2/library/mini/blobs/{digest}");

    let head = fetch(addr, Method::HEAD, &path, &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), big.len().to_string());
    assert_eq!(head.header("docker-content-digest"), digest.to_string());
    assert_eq!(head.header("content-type"), "application/octet-stream");
    assert!(head.body.is_empty());

    let get = fetch(addr, Method::GET, &path, &[]).await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.header("content-length"), big.len().to_string());
    assert_eq!(get.body.len(), big.len());
    assert_eq!(Digest::of(&get.body), digest);

    // dockerd resumes an interrupted layer download with a Range request.
    let range = fetch(addr, Method::GET, &path, &[("range", "bytes=1000-1999")]).await;
    assert_eq!(range.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&range.body[..], &big[1000..2000]);
}
