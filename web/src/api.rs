//! The REST calls the page makes. Every body is a `playground-protocol` type.

use std::fmt;

use gloo_net::http::{Request, Response};
use playground_protocol::{ErrorBody, InstanceInfo, SessionInfo};
use serde::de::DeserializeOwned;

/// A failed call: the HTTP status when the server answered, and a message fit
/// to show to a person.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: Option<u16>,
    pub message: String,
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub async fn create_session() -> ApiResult<SessionInfo> {
    json(post("/api/sessions")).await
}

pub async fn get_session(sid: &str) -> ApiResult<SessionInfo> {
    json(Request::get(&session_url(sid)).build()).await
}

pub async fn delete_session(sid: &str) -> ApiResult<()> {
    empty(Request::delete(&session_url(sid)).build()).await
}

pub async fn create_instance(sid: &str) -> ApiResult<InstanceInfo> {
    json(post(&format!("{}/instances", session_url(sid)))).await
}

pub async fn delete_instance(sid: &str, name: &str) -> ApiResult<()> {
    let url = format!("{}/instances/{}", session_url(sid), encode(name));
    empty(Request::delete(&url).build()).await
}

/// Path of an instance's terminal WebSocket (without scheme and host).
pub fn terminal_path(sid: &str, name: &str) -> String {
    format!("{}/instances/{}/terminal", session_url(sid), encode(name))
}

/// Path of a session's event stream WebSocket (without scheme and host).
pub fn events_path(sid: &str) -> String {
    format!("{}/events", session_url(sid))
}

fn session_url(sid: &str) -> String {
    format!("/api/sessions/{}", encode(sid))
}

/// `POST` with the empty JSON object the API expects as body.
fn post(url: &str) -> Result<Request, gloo_net::Error> {
    Request::post(url)
        .header("content-type", "application/json")
        .body("{}")
}

async fn send(req: Result<Request, gloo_net::Error>) -> ApiResult<Response> {
    let req = req.map_err(|e| ApiError {
        status: None,
        message: format!("Could not build the request: {e}"),
    })?;
    let resp = req.send().await.map_err(|e| ApiError {
        status: None,
        message: format!("Could not reach the playground server ({e})."),
    })?;
    if resp.ok() {
        return Ok(resp);
    }
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let message = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => body.error,
        Err(_) if text.trim().is_empty() || text.trim_start().starts_with('<') => {
            format!("The server answered {status} {}.", resp.status_text())
        }
        Err(_) => format!("The server answered {status}: {}", text.trim()),
    };
    Err(ApiError {
        status: Some(status),
        message,
    })
}

async fn json<T: DeserializeOwned>(req: Result<Request, gloo_net::Error>) -> ApiResult<T> {
    let resp = send(req).await?;
    resp.json::<T>().await.map_err(|e| ApiError {
        status: Some(resp.status()),
        message: format!("The server sent an answer this page does not understand: {e}"),
    })
}

async fn empty(req: Result<Request, gloo_net::Error>) -> ApiResult<()> {
    send(req).await.map(|_| ())
}

/// Percent-encode a path segment (ids and names are plain, but be safe).
fn encode(segment: &str) -> String {
    String::from(js_sys::encode_uri_component(segment))
}
