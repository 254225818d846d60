//! The REST calls the page makes. Every body is a `playground-protocol` type.

use std::fmt;

use gloo_net::http::{Request, Response};
use playground_protocol::{
    AddSshKey, CatalogEntry, CheckResult, CreateSession, DirEntry, ErrorBody, InstanceInfo,
    OpenPage, ScenarioInfo, SessionInfo, SshKeyInfo, TemplateInfo, TutorialState,
};
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

    /// The session's host (a cluster node) stopped answering: a gateway's
    /// 503, worth showing even while the page is reconnecting.
    pub fn is_host_gone(&self) -> bool {
        self.status == Some(503) && self.message.starts_with("this session's host is gone")
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

/// `POST /api/sessions` with a template: the session comes with its instances.
pub async fn create_session_from(template: &str) -> ApiResult<SessionInfo> {
    let body = CreateSession {
        template: Some(template.to_owned()),
        scenario: None,
    };
    json(post_json("/api/sessions", &body)).await
}

/// `POST /api/sessions` for a tutorial: answers once its instances are up
/// and its files copied in.
pub async fn create_tutorial_session(scenario: &str) -> ApiResult<SessionInfo> {
    let body = CreateSession {
        template: None,
        scenario: Some(scenario.to_owned()),
    };
    json(post_json("/api/sessions", &body)).await
}

/// `GET /api/scenarios` (404 from a server without tutorials).
pub async fn scenarios() -> ApiResult<Vec<CatalogEntry>> {
    json(Request::get("/api/scenarios").build()).await
}

/// `GET /api/scenarios/{id}`: its pages. The id's `/` stay as they are.
pub async fn scenario(id: &str) -> ApiResult<ScenarioInfo> {
    let path: Vec<String> = id.split('/').map(encode).collect();
    json(Request::get(&format!("/api/scenarios/{}", path.join("/"))).build()).await
}

/// Run the shown page's check (also how Start and Next move on).
pub async fn tutorial_check(sid: &str) -> ApiResult<CheckResult> {
    json(post(&format!("{}/tutorial/check", session_url(sid)))).await
}

/// Open a page already reached.
pub async fn tutorial_open(sid: &str, page: u32) -> ApiResult<TutorialState> {
    let url = format!("{}/tutorial/page", session_url(sid));
    json(post_json(&url, &OpenPage { page })).await
}

/// `GET /api/templates` (404 from a server that has none).
pub async fn templates() -> ApiResult<Vec<TemplateInfo>> {
    json(Request::get("/api/templates").build()).await
}

/// A session, or (`view`) the read-only view whose id `sid` is.
pub async fn get_session(sid: &str, view: bool) -> ApiResult<SessionInfo> {
    json(Request::get(&base_url(sid, view)).build()).await
}

pub async fn extend_session(sid: &str) -> ApiResult<SessionInfo> {
    json(post(&format!("{}/extend", session_url(sid)))).await
}

/// URL of one file of an instance (download, upload, `list`).
pub fn file_url(sid: &str, name: &str, path: &str) -> String {
    format!(
        "{}/instances/{}/files?path={}",
        session_url(sid),
        encode(name),
        encode(path)
    )
}

pub async fn list_dir(sid: &str, name: &str, path: &str) -> ApiResult<Vec<DirEntry>> {
    let url = format!("{}&list=true", file_url(sid, name, path));
    json(Request::get(&url).build()).await
}

pub async fn read_file(sid: &str, name: &str, path: &str) -> ApiResult<String> {
    let resp = send(Request::get(&file_url(sid, name, path)).build()).await?;
    resp.text().await.map_err(|e| ApiError {
        status: None,
        message: format!("Could not read the file: {e}"),
    })
}

pub async fn write_file(sid: &str, name: &str, path: &str, text: String) -> ApiResult<()> {
    let req = Request::post(&file_url(sid, name, path))
        .header("content-type", "application/octet-stream")
        .body(text);
    send(req).await.map(|_| ())
}

/// Turn an error body (`{"error": ...}`) or a bare status into a message.
pub fn error_message(status: u16, text: &str) -> String {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => body.error,
        Err(_) => format!("The server answered {status}."),
    }
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

/// The public keys that may log in to the session's instances over SSH.
pub async fn ssh_keys(sid: &str) -> ApiResult<Vec<SshKeyInfo>> {
    json(Request::get(&format!("{}/ssh-keys", session_url(sid))).build()).await
}

/// Add a public key line; a 422's message says why a key cannot be used.
pub async fn add_ssh_key(sid: &str, key: &str) -> ApiResult<SshKeyInfo> {
    let body = AddSshKey {
        key: key.to_owned(),
    };
    json(post_json(&format!("{}/ssh-keys", session_url(sid)), &body)).await
}

/// Remove a key by its fingerprint (`SHA256:...`, whose `/` and `+` are
/// encoded).
pub async fn remove_ssh_key(sid: &str, fingerprint: &str) -> ApiResult<()> {
    let url = format!("{}/ssh-keys/{}", session_url(sid), encode(fingerprint));
    empty(Request::delete(&url).build()).await
}

/// Path of an instance's terminal WebSocket (without scheme and host).
/// `tab` 0 is the first shell (no query, which every server understands).
pub fn terminal_path(sid: &str, name: &str, view: bool, tab: u8) -> String {
    let mut path = format!(
        "{}/instances/{}/terminal",
        base_url(sid, view),
        encode(name)
    );
    if tab > 0 {
        path.push_str(&format!("?tab={tab}"));
    }
    path
}

/// Path of an instance's terminal WebSocket for an instructor helping,
/// through the help key (writable only while the student agrees).
pub fn help_terminal_path(key: &str, name: &str, tab: u8) -> String {
    let mut path = format!(
        "/api/help/{}/instances/{}/terminal",
        encode(key),
        encode(name)
    );
    if tab > 0 {
        path.push_str(&format!("?tab={tab}"));
    }
    path
}

/// Path of a session's event stream WebSocket (without scheme and host).
pub fn events_path(sid: &str, view: bool) -> String {
    format!("{}/events", base_url(sid, view))
}

/// The API root of a session, or of a read-only view (`sid` is then its viewer id).
fn base_url(sid: &str, view: bool) -> String {
    if view {
        format!("/api/view/{}", encode(sid))
    } else {
        session_url(sid)
    }
}

fn session_url(sid: &str) -> String {
    format!("/api/sessions/{}", encode(sid))
}

/// `POST` with a JSON body.
pub(crate) fn post_json<T: serde::Serialize>(
    url: &str,
    body: &T,
) -> Result<Request, gloo_net::Error> {
    let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    Request::post(url)
        .header("content-type", "application/json")
        .body(body)
}

/// `POST` with the empty JSON object the API expects as body.
fn post(url: &str) -> Result<Request, gloo_net::Error> {
    Request::post(url)
        .header("content-type", "application/json")
        .body("{}")
}

pub(crate) async fn send(req: Result<Request, gloo_net::Error>) -> ApiResult<Response> {
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

pub(crate) async fn json<T: DeserializeOwned>(
    req: Result<Request, gloo_net::Error>,
) -> ApiResult<T> {
    let resp = send(req).await?;
    resp.json::<T>().await.map_err(|e| ApiError {
        status: Some(resp.status()),
        message: format!("The server sent an answer this page does not understand: {e}"),
    })
}

pub(crate) async fn empty(req: Result<Request, gloo_net::Error>) -> ApiResult<()> {
    send(req).await.map(|_| ())
}

/// Percent-encode a path segment (ids and names are plain, but be safe).
pub(crate) fn encode(segment: &str) -> String {
    String::from(js_sys::encode_uri_component(segment))
}
