//! A read-only Docker registry (the part of the Distribution API v2 that a
//! pull uses) served from the offline images' OCI image layout.
//!
//! Why: the real dockerd inside an instance is configured with this as its
//! Docker Hub mirror (`registry-mirrors`), so `docker pull nginx` works on a
//! host without internet, from the images built out of Debian packages.
//! Whatever the mirror answers 404 for, dockerd fetches from Docker Hub
//! itself, so this only has to know the layout's own images. Nothing is ever
//! written: any other method than GET and HEAD gets 405.
//!
//! Every name and digest in a request is only compared with the layout's
//! entries, except a blob's digest, which becomes a file name below
//! `blobs/sha256/` and is therefore accepted only as 64 lower-case hex digits.

// Not yet served to instances (their listeners are wired up separately).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde::Deserialize;
use tower_http::services::ServeFile;

const API_VERSION: &str = "docker-distribution-api-version";
const CONTENT_DIGEST: &str = "docker-content-digest";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// A blob larger than this is not a manifest (registries refuse larger
/// manifests too), so a digest lookup never reads a layer into memory.
const MAX_MANIFEST: u64 = 4 << 20;

/// The registry's routes, answering from the OCI image layout at `layout`.
/// The layout is read on every request, so it may be rebuilt meanwhile.
pub fn router(layout: PathBuf) -> Router {
    Router::new()
        .route("/v2", any(handle))
        .route("/v2/", any(handle))
        .route("/v2/{*rest}", any(handle))
        .layer(axum::middleware::map_response(api_version))
        .with_state(Arc::new(layout))
}

/// Clients tell a v2 registry by this header, on errors too.
async fn api_version(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

async fn handle(State(layout): State<Arc<PathBuf>>, request: Request) -> Response {
    serve(&layout, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn serve(layout: &Arc<PathBuf>, request: Request) -> Result<Response, RegistryError> {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        return Err(RegistryError::unsupported(method));
    }
    let path = request.uri().path().to_owned();
    let rest = path.strip_prefix("/v2").unwrap_or(&path);
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest.is_empty() {
        let json = [(header::CONTENT_TYPE, "application/json")];
        return Ok((json, "{}").into_response());
    }
    // `<name>/manifests/<reference>` or `<name>/blobs/<digest>`; the name may
    // hold slashes, so the last marker counts, and a reference holding
    // slashes is then malformed rather than another route.
    let marker = |m: &'static str| rest.rfind(m).map(|at| (at, m));
    let Some((at, marker)) = marker("/manifests/").max(marker("/blobs/")) else {
        return Err(RegistryError::new(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            "only manifests and blobs are served",
        ));
    };
    let (name, reference) = (&rest[..at], &rest[at + marker.len()..]);
    if !valid_name(name) {
        return Err(RegistryError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("invalid repository name {name:?}"),
        ));
    }
    if marker == "/blobs/" {
        return blob(layout, parse_digest(reference)?, request).await;
    }
    let (layout, name, reference) = (layout.clone(), name.to_owned(), reference.to_owned());
    let found = tokio::task::spawn_blocking(move || find_manifest(&layout, &name, &reference))
        .await
        .map_err(|e| RegistryError::internal(format!("manifest lookup: {e}")))??;
    // A HEAD answer keeps the Content-Length and loses the body (axum).
    Ok((
        [
            (header::CONTENT_TYPE, found.media_type),
            (
                header::HeaderName::from_static(CONTENT_DIGEST),
                found.digest,
            ),
        ],
        found.bytes,
    )
        .into_response())
}

/// A blob streamed from its file; ServeFile also answers Range requests,
/// which dockerd uses to resume an interrupted layer download.
async fn blob(layout: &Path, hex: &str, request: Request) -> Result<Response, RegistryError> {
    let path = layout.join("blobs").join("sha256").join(hex);
    let (parts, _) = request.into_parts();
    let request = Request::from_parts(parts, Body::empty());
    let response = ServeFile::new(path)
        .try_call(request)
        .await
        .map_err(|e| RegistryError::internal(format!("blob sha256:{hex}: {e}")))?;
    if response.status() == StatusCode::NOT_FOUND {
        return Err(RegistryError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob sha256:{hex} is not in the mirror"),
        ));
    }
    let mut response = response.map(Body::new);
    if response.status().is_success() {
        let headers = response.headers_mut();
        let digest = HeaderValue::from_str(&format!("sha256:{hex}")).expect("hex digits");
        headers.insert(CONTENT_DIGEST, digest);
        // ServeFile guesses from the file name; a blob has no type of its own.
        let octets = HeaderValue::from_static("application/octet-stream");
        headers.insert(header::CONTENT_TYPE, octets);
    }
    Ok(response)
}

struct Found {
    bytes: Vec<u8>,
    media_type: String,
    digest: String,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// The manifest (or index) a tag or digest names. Blocking: reads files.
fn find_manifest(layout: &Path, name: &str, reference: &str) -> Result<Found, RegistryError> {
    let index = read_index(layout)?;
    if reference.contains(':') {
        let hex = parse_digest(reference)?;
        // Content-addressed, so the repository name does not matter; dockerd
        // asks by digest for the platform's manifest of an index.
        let listed = index.manifests.iter().find(|e| e.digest == reference);
        let bytes = read_small_blob(layout, hex)?.ok_or_else(|| manifest_unknown(reference))?;
        let media_type = listed
            .and_then(|e| e.media_type.clone())
            .or_else(|| manifest_media_type(&bytes))
            .ok_or_else(|| manifest_unknown(reference))?;
        return Ok(Found {
            bytes,
            media_type,
            digest: reference.to_owned(),
        });
    }
    let wanted = short_name(name);
    let mut name_known = false;
    for entry in &index.manifests {
        let Some((entry_name, tag)) = entry.annotations.get(REF_NAME).and_then(|r| split_ref(r))
        else {
            continue;
        };
        if short_name(entry_name) != wanted {
            continue;
        }
        name_known = true;
        if tag != reference {
            continue;
        }
        let hex = parse_digest(&entry.digest).map_err(|_| {
            RegistryError::internal(format!("index.json: bad digest {:?}", entry.digest))
        })?;
        // Missing while the layout is being rebuilt: unknown for now.
        let bytes = read_small_blob(layout, hex)?.ok_or_else(|| manifest_unknown(reference))?;
        let media_type = entry
            .media_type
            .clone()
            .or_else(|| manifest_media_type(&bytes))
            .unwrap_or_else(|| OCI_MANIFEST.to_owned());
        return Ok(Found {
            bytes,
            media_type,
            digest: entry.digest.clone(),
        });
    }
    if name_known {
        Err(manifest_unknown(reference))
    } else {
        Err(RegistryError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository {name:?} is not in the mirror"),
        ))
    }
}

/// index.json, read each time: it is small, and the layout may be rebuilt
/// while the server runs. No layout means an empty one.
fn read_index(layout: &Path) -> Result<Index, RegistryError> {
    match std::fs::read(layout.join("index.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::internal(format!("index.json: {e}"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index {
            manifests: Vec::new(),
        }),
        Err(e) => Err(RegistryError::internal(format!("index.json: {e}"))),
    }
}

/// A blob's bytes, or None when it is missing or too large to be a manifest.
fn read_small_blob(layout: &Path, hex: &str) -> Result<Option<Vec<u8>>, RegistryError> {
    let path = layout.join("blobs").join("sha256").join(hex);
    let read = std::fs::metadata(&path).and_then(|meta| {
        if meta.is_file() && meta.len() <= MAX_MANIFEST {
            std::fs::read(&path).map(Some)
        } else {
            Ok(None)
        }
    });
    match read {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::internal(format!("blob sha256:{hex}: {e}"))),
    }
}

/// The media type of a manifest or index, from its own field or its shape;
/// None for any other blob (a config, a layer), which is not served as one.
fn manifest_media_type(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if value.get("schemaVersion")?.as_u64()? != 2 {
        return None;
    }
    match value.get("mediaType").and_then(|t| t.as_str()) {
        Some(t) if [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_LIST].contains(&t) => {
            Some(t.to_owned())
        }
        Some(_) => None,
        None if value.get("manifests").is_some_and(|m| m.is_array()) => Some(OCI_INDEX.into()),
        None if value.get("layers").is_some_and(|l| l.is_array()) => Some(OCI_MANIFEST.into()),
        None => None,
    }
}

/// The hex part of `sha256:<64 lower-case hex>`; anything else is refused,
/// which is what keeps a blob's path inside `blobs/sha256/`.
fn parse_digest(text: &str) -> Result<&str, RegistryError> {
    let hex = text.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(hex)
    } else {
        Err(RegistryError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("invalid digest {text:?} (only sha256 is served)"),
        ))
    }
}

/// Docker's repository name grammar, loosely: components of lower-case
/// letters, digits and `._-` that begin and end with a letter or digit,
/// separated by single slashes.
fn valid_name(name: &str) -> bool {
    let alnum = |b: &u8| matches!(b, b'a'..=b'z' | b'0'..=b'9');
    name.split('/').all(|c| {
        c.bytes().next().as_ref().is_some_and(alnum)
            && c.bytes().last().as_ref().is_some_and(alnum)
            && c.bytes()
                .all(|b| alnum(&b) || matches!(b, b'.' | b'_' | b'-'))
    })
}

/// The name as the layout's annotations spell it: `library/nginx`,
/// `docker.io/library/nginx` and `nginx` are the same Docker Hub image.
fn short_name(name: &str) -> &str {
    let name = ["docker.io/", "index.docker.io/", "registry-1.docker.io/"]
        .iter()
        .find_map(|host| name.strip_prefix(host))
        .unwrap_or(name);
    name.strip_prefix("library/").unwrap_or(name)
}

/// `name:tag` from a ref.name annotation; a bare tag (no name) matches
/// nothing, as the layout then does not say which repository it belongs to.
fn split_ref(reference: &str) -> Option<(&str, &str)> {
    let colon = reference.rfind(':')?;
    if reference[colon..].contains('/') {
        return None; // the colon was a registry's port
    }
    Some((&reference[..colon], &reference[colon + 1..]))
}

fn manifest_unknown(reference: &str) -> RegistryError {
    RegistryError::new(
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
        format!("manifest {reference:?} is not in the mirror"),
    )
}

/// An answer in the registry's error format, which clients show and which
/// tells dockerd to fall back to Docker Hub.
#[derive(Debug)]
struct RegistryError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl RegistryError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        RegistryError {
            status,
            code,
            message: message.into(),
        }
    }

    fn unsupported(method: &Method) -> Self {
        let message = format!("{method} is not served: the mirror is read-only");
        RegistryError::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", message)
    }

    fn internal(message: String) -> Self {
        tracing::warn!("registry mirror: {message}");
        RegistryError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", message)
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "errors": [{ "code": self.code, "message": self.message }]
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            let allow = HeaderValue::from_static("GET, HEAD");
            response.headers_mut().insert(header::ALLOW, allow);
        }
        response
    }
}

#[cfg(test)]
#[path = "mirror_test.rs"]
mod tests;
