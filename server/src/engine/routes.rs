//! From method and path to handler. `docker` prefixes paths with the API
//! version (`/v1.41/images/json`) once it has pinged; both forms are served.
//! Image names may contain slashes (`registry:5000/team/app`), so image
//! paths are matched by hand rather than by axum's router.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;

use super::reply::{DockerError, Reply};
use super::{images, pull, system, Engine};

#[derive(Clone)]
pub struct Ctx {
    pub engine: Arc<Engine>,
    pub instance: String,
}

pub fn router(engine: Arc<Engine>, instance: String) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(Ctx { engine, instance })
}

/// `/v1.41/images/json` -> `/images/json`.
fn strip_version(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(slash) = rest.find('/') {
            let version = &rest[..slash];
            if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return &rest[slash..];
            }
        }
    }
    path
}

async fn dispatch(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let path = strip_version(uri.path());
    let get = method == Method::GET || method == Method::HEAD;
    match path {
        "/_ping" if get => return Ok(system::ping()),
        "/version" if get => return Ok(system::version()),
        "/info" if get => return Ok(system::info(&ctx)),
        "/images/json" if get => return Ok(images::list(&ctx)),
        "/images/create" if method == Method::POST => return pull::create(&ctx, &query).await,
        "/containers/json" if get => return Ok(axum::Json(serde_json::json!([])).into_response()),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/images/") {
        let decoded = percent_decode(rest);
        if let Some(name) = decoded.strip_suffix("/json").filter(|_| get) {
            return images::inspect(&ctx, name);
        }
        if let Some(name) = decoded
            .strip_suffix("/tag")
            .filter(|_| method == Method::POST)
        {
            return images::tag(&ctx, name, &query);
        }
        if method == Method::DELETE {
            return images::remove(&ctx, &decoded, &query);
        }
    }
    if path.starts_with("/containers/") || path.starts_with("/exec/") {
        return Err(DockerError::new(
            StatusCode::NOT_IMPLEMENTED,
            "running containers is not available yet in this playground",
        ));
    }
    Err(DockerError::new(
        StatusCode::NOT_FOUND,
        format!("page not found: {method} {path} is not part of this engine"),
    ))
}

/// Decode `%xx` escapes (the client escapes image names in paths).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_stripped_and_names_decoded() {
        assert_eq!(strip_version("/v1.41/images/json"), "/images/json");
        assert_eq!(strip_version("/_ping"), "/_ping");
        assert_eq!(strip_version("/volumes"), "/volumes");
        assert_eq!(
            percent_decode("localhost%3A5000%2Fa/json"),
            "localhost:5000/a/json"
        );
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
    }
}
