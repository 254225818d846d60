//! Test fixtures for the image store: a real `docker-registry` on loopback,
//! OCI layouts built from tar entries and pushed with `skopeo`, and a small
//! HTTP front for the registry that counts requests and can demand a token,
//! Basic auth, or redirect blob downloads to another host name.

#![allow(dead_code)]

use std::convert::Infallible;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use sandbox::oci::Digest;
use serde_json::{json, Value};

/// Debian's `docker-registry` serving a temporary directory on 127.0.0.1.
pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .expect("docker-registry missing: apt-get install docker-registry skopeo");
        let registry = Registry { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Push `tag` of the layout at `layout` as `repo:tag`, every platform.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str) {
        let status = Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--all",
                "--preserve-digests",
                "-q",
            ])
            .arg("--dest-tls-verify=false")
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.host()))
            .status()
            .expect("skopeo missing: apt-get install skopeo");
        assert!(status.success(), "skopeo copy failed");
    }

    /// The file the registry keeps blob `digest` in.
    pub fn blob_file(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One layer as it will be pushed.
pub struct Layer {
    pub blob: Vec<u8>,
    pub diff_id: Digest,
    pub gzip: bool,
}

impl Layer {
    /// A layer of regular files (`(path, content)`); a name such as
    /// `etc/.wh.x` is a whiteout to the store, an empty file to tar.
    pub fn tar(files: &[(&str, &str)]) -> Layer {
        let tar = tar_of(files);
        Layer {
            diff_id: Digest::of(&tar),
            blob: tar,
            gzip: false,
        }
    }

    pub fn gzip(files: &[(&str, &str)]) -> Layer {
        let tar = tar_of(files);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        Layer {
            diff_id: Digest::of(&tar),
            blob: gz.finish().unwrap(),
            gzip: true,
        }
    }
}

fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, content.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

/// An OCI image layout being written.
pub struct Layout {
    pub dir: PathBuf,
    tags: Vec<Value>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_owned(),
            tags: Vec::new(),
        }
    }

    pub fn blob(&self, bytes: &[u8], media_type: &str) -> Value {
        let digest = Digest::of(bytes);
        fs::write(self.dir.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
    }

    /// An image manifest; `config_diff_ids` overrides the layers' own
    /// diff_ids (to make a lying config).
    pub fn image(&self, arch: &str, layers: &[&Layer], label: &str) -> Value {
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
        self.image_with_diff_ids(arch, layers, label, diff_ids)
    }

    pub fn image_with_diff_ids(
        &self,
        arch: &str,
        layers: &[&Layer],
        label: &str,
        diff_ids: Vec<String>,
    ) -> Value {
        let config = json!({
            "created": "2026-01-01T00:00:00Z",
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Labels": {"test": label}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = self.blob(
            &serde_json::to_vec(&config).unwrap(),
            "application/vnd.oci.image.config.v1+json",
        );
        let layers: Vec<Value> = layers
            .iter()
            .map(|l| {
                let media_type = if l.gzip {
                    "application/vnd.oci.image.layer.v1.tar+gzip"
                } else {
                    "application/vnd.oci.image.layer.v1.tar"
                };
                self.blob(&l.blob, media_type)
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": layers,
        });
        let mut descriptor = self.blob(
            &serde_json::to_vec(&manifest).unwrap(),
            "application/vnd.oci.image.manifest.v1+json",
        );
        descriptor["platform"] = json!({"os": "linux", "architecture": arch});
        descriptor
    }

    pub fn index(&self, manifests: &[Value]) -> Value {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        self.blob(
            &serde_json::to_vec(&index).unwrap(),
            "application/vnd.oci.image.index.v1+json",
        )
    }

    /// Name `descriptor` `name` in the layout's index.json.
    pub fn tag(&mut self, name: &str, descriptor: &Value) {
        let mut entry = descriptor.clone();
        if let Some(object) = entry.as_object_mut() {
            object.remove("platform");
        }
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        self.tags.push(entry);
        let index = json!({"schemaVersion": 2, "manifests": self.tags});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }
}

pub fn digest_of(descriptor: &Value) -> Digest {
    descriptor["digest"].as_str().unwrap().parse().unwrap()
}

/// How the front asks clients to authenticate.
#[derive(Clone)]
pub enum FrontAuth {
    Anonymous,
    /// A token from `/token`, which wants these Basic credentials.
    Bearer {
        username: String,
        password: String,
    },
    Basic {
        username: String,
        password: String,
    },
}

/// One request the front saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub host: String,
    pub path: String,
    pub authorization: Option<String>,
}

/// A loopback HTTP front for the registry. Its address is 127.0.0.1:port;
/// blob redirects (when on) go to `localhost:port/raw/...`, another origin.
pub struct Front {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    redirect_blobs: bool,
    task: tokio::task::JoinHandle<()>,
}

const TOKEN: &str = "test-token-1";

impl Front {
    pub async fn start(upstream: u16, auth: FrontAuth, redirect_blobs: bool) -> Front {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(FrontState {
            port,
            upstream: format!("http://127.0.0.1:{upstream}"),
            auth,
            redirect_blobs,
            seen: seen.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.handle(req).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Front {
            port,
            seen,
            redirect_blobs,
            task,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Blob downloads served: the redirect targets when blobs are
    /// redirected, else the blob GETs themselves.
    pub fn blob_gets(&self) -> Vec<String> {
        let prefix = if self.redirect_blobs {
            "/raw/v2/"
        } else {
            "/v2/"
        };
        self.seen()
            .into_iter()
            .filter(|s| s.path.starts_with(prefix) && s.path.contains("/blobs/"))
            .map(|s| s.path)
            .collect()
    }

    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct FrontState {
    port: u16,
    upstream: String,
    auth: FrontAuth,
    redirect_blobs: bool,
    seen: Arc<Mutex<Vec<Seen>>>,
    http: reqwest::Client,
}

fn basic_header(username: &str, password: &str) -> String {
    let request = reqwest::Client::new()
        .get("http://unused/")
        .basic_auth(username, Some(password))
        .build()
        .unwrap();
    request.headers()["authorization"]
        .to_str()
        .unwrap()
        .to_owned()
}

fn reply(status: StatusCode, headers: &[(&str, String)], body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response.body(Full::new(Bytes::from(body))).unwrap()
}

impl FrontState {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let path = req.uri().path().to_owned();
        let authorization = header("authorization");
        self.seen.lock().unwrap().push(Seen {
            host: header("host").unwrap_or_default(),
            path: path.clone(),
            authorization: authorization.clone(),
        });
        if path == "/token" {
            let FrontAuth::Bearer { username, password } = &self.auth else {
                return reply(StatusCode::NOT_FOUND, &[], Vec::new());
            };
            if authorization.as_deref() != Some(&basic_header(username, password)) {
                return reply(StatusCode::UNAUTHORIZED, &[], b"bad credentials".to_vec());
            }
            return reply(
                StatusCode::OK,
                &[],
                format!(r#"{{"token":"{TOKEN}"}}"#).into_bytes(),
            );
        }
        if let Some(raw) = path.strip_prefix("/raw") {
            return self.forward(raw, header("accept")).await;
        }
        let allowed = match &self.auth {
            FrontAuth::Anonymous => None,
            FrontAuth::Bearer { .. } => Some((
                format!("Bearer {TOKEN}"),
                format!(
                    r#"Bearer realm="http://127.0.0.1:{}/token",service="test",scope="repository:x:pull""#,
                    self.port
                ),
            )),
            FrontAuth::Basic { username, password } => Some((
                basic_header(username, password),
                r#"Basic realm="test""#.to_owned(),
            )),
        };
        if let Some((expected, challenge)) = allowed {
            if authorization.as_deref() != Some(&expected) {
                return reply(
                    StatusCode::UNAUTHORIZED,
                    &[("www-authenticate", challenge)],
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                        .to_vec(),
                );
            }
        }
        if self.redirect_blobs && path.contains("/blobs/") {
            let location = format!("http://localhost:{}/raw{path}", self.port);
            return reply(
                StatusCode::TEMPORARY_REDIRECT,
                &[("location", location)],
                Vec::new(),
            );
        }
        self.forward(&path, header("accept")).await
    }

    async fn forward(&self, path: &str, accept: Option<String>) -> Response<Full<Bytes>> {
        let mut request = self.http.get(format!("{}{path}", self.upstream));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let mut headers = Vec::new();
        for name in ["content-type", "docker-content-digest"] {
            if let Some(value) = response.headers().get(name) {
                headers.push((name, value.to_str().unwrap().to_owned()));
            }
        }
        let body = response.bytes().await.unwrap().to_vec();
        reply(status, &headers, body)
    }
}
