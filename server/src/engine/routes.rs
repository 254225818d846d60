//! From method and path to handler. `docker` prefixes paths with the API
//! version (`/v1.41/images/json`) once it has pinged; both forms are served.
//! Image names may contain slashes (`registry:5000/team/app`), so image
//! paths are matched by hand rather than by axum's router.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use std::collections::HashMap;

use super::ctx::{percent_decode, Ctx};
use super::reply::{DockerError, Reply};
use super::{build, containers, event_stream, history, images, pull, system};

pub fn router(ctx: Ctx) -> Router {
    Router::new().fallback(dispatch).with_state(ctx)
}

/// Largest request body read (container and exec configurations).
const MAX_BODY: usize = 1 << 20;

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

async fn dispatch(State(ctx): State<Ctx>, mut req: Request<Body>) -> Reply {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let Query(query) = Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map_err(|e| DockerError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let path = strip_version(uri.path());
    let post = method == Method::POST;
    // The build context streams in, larger than other bodies.
    if path == "/build" && post {
        return build::build(&ctx, req).await;
    }
    let body = if post && !path.ends_with("/attach") {
        // The hijacked exec start has a small JSON body before the stream.
        let taken = std::mem::take(req.body_mut());
        axum::body::to_bytes(taken, MAX_BODY)
            .await
            .map_err(|e| DockerError::new(StatusCode::BAD_REQUEST, e.to_string()))?
    } else {
        Default::default()
    };

    let get = method == Method::GET || method == Method::HEAD;
    match path {
        "/_ping" if get => return Ok(system::ping()),
        "/version" if get => return Ok(system::version()),
        "/info" if get => return Ok(system::info(&ctx)),
        "/images/json" if get => return Ok(images::list(&ctx)),
        "/images/create" if method == Method::POST => return pull::create(&ctx, &query).await,
        "/containers/json" if get => return containers::list(&ctx, &query),
        "/events" if get => return event_stream::events(&ctx, &query),
        "/containers/create" if post => return containers::create(&ctx, &query, &body),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/containers/") {
        let (name, action) = rest.split_once('/').unwrap_or((rest, ""));
        return match (action, &method) {
            ("json", _) if get => containers::inspect(&ctx, name),
            ("start", _) if post => containers::start(&ctx, name).await,
            ("attach", _) if post => containers::attach(&ctx, name, &query, req),
            ("wait", _) if post => containers::wait(&ctx, name, &query),
            ("resize", _) if post => containers::resize_container(&ctx, name, &query),
            ("logs", _) if get => containers::logs(&ctx, name, &query),
            ("stats", _) if get => containers::stats(&ctx, name, &query).await,
            ("stop", _) if post => containers::stop(&ctx, name, &query).await,
            ("restart", _) if post => containers::restart(&ctx, name, &query).await,
            ("kill", _) if post => containers::kill(&ctx, name, &query).await,
            ("exec", _) if post => containers::exec_create(&ctx, name, &body),
            ("", &Method::DELETE) => containers::remove(&ctx, name, &query).await,
            _ => Err(DockerError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!(
                    "{method} /containers/{{id}}/{action} is not available yet in this playground"
                ),
            )),
        };
    }
    if let Some(rest) = path.strip_prefix("/exec/") {
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        return match action {
            "start" if post => containers::exec_start(&ctx, id, &body, req).await,
            "resize" if post => containers::exec_resize(&ctx, id, &query),
            "json" if get => containers::exec_inspect(&ctx, id),
            _ => Err(DockerError::new(
                StatusCode::NOT_FOUND,
                format!("page not found: {method} {path}"),
            )),
        };
    }
    if let Some(rest) = path.strip_prefix("/images/") {
        let decoded = percent_decode(rest);
        if let Some(name) = decoded.strip_suffix("/json").filter(|_| get) {
            return images::inspect(&ctx, name);
        }
        if let Some(name) = decoded.strip_suffix("/history").filter(|_| get) {
            return history::history(&ctx, name);
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
    Err(DockerError::new(
        StatusCode::NOT_FOUND,
        format!("page not found: {method} {path} is not part of this engine"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_stripped() {
        assert_eq!(strip_version("/v1.41/images/json"), "/images/json");
        assert_eq!(strip_version("/_ping"), "/_ping");
        assert_eq!(strip_version("/volumes"), "/volumes");
    }
}
