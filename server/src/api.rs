//! The REST API and the terminal WebSocket endpoint, under `/api`.

pub mod admin;
pub mod clients;
pub mod files;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use playground_protocol::{CreateSession, ExecRequest, ExecResponse, TemplateInfo};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tracing::Instrument;

use crate::api::clients::ClientAddr;
use crate::api::state::AppState;
use crate::error::ApiError;
use crate::ops::metrics;
use crate::session::admission::ConnectionPermit;
use crate::session::sessions::{InstanceEntry, Session, TABS};
use crate::session::terminal::{ClientOptions, Terminal};

/// Default and largest exec timeout.
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
const EXEC_TIMEOUT_MAX: Duration = Duration::from_secs(600);
/// Largest JSON request body (an exec's stdin included).
const API_BODY_LIMIT: usize = 1 << 20;
/// Most bytes of stdout (and of stderr) an exec answer carries.
const EXEC_MAX_OUTPUT: usize = 1 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/templates", get(templates))
        .route("/sessions", post(create_session))
        .route("/sessions/{sid}", get(get_session).delete(delete_session))
        .route("/sessions/{sid}/extend", post(extend_session))
        .route("/sessions/{sid}/instances", post(create_instance))
        .route(
            "/sessions/{sid}/instances/{name}",
            axum::routing::delete(delete_instance),
        )
        .route("/sessions/{sid}/instances/{name}/exec", post(exec))
        .route("/sessions/{sid}/instances/{name}/terminal", get(terminal))
        .route(
            "/sessions/{sid}/instances/{name}/files",
            get(crate::api::files::download)
                .post(crate::api::files::upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/sessions/{sid}/events", get(events))
        .route("/view/{vid}", get(get_view))
        .route("/view/{vid}/instances/{name}/terminal", get(view_terminal))
        .route("/view/{vid}/events", get(view_events))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API endpoint") })
        // JSON bodies are small; uploads (above) have their own limit.
        .layer(axum::extract::DefaultBodyLimit::max(API_BODY_LIMIT))
}

/// Parse a JSON body that may also be empty (then `T::default()`), so that
/// `curl -X POST` works as well as a client that sends `{}`.
fn optional_json<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid request: {e}"),
        ),
        _ => ApiError::bad_request(format!("malformed JSON: {e}")),
    })
}

/// Body of instance creation; no options yet, but unknown fields are
/// rejected so typos do not pass silently.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

async fn templates(State(sessions): State<AppState>) -> Json<Vec<TemplateInfo>> {
    Json(sessions.policy().templates.clone())
}

async fn create_session(
    State(sessions): State<AppState>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateSession = optional_json(&body)?;
    let session = match request.template {
        None => sessions.create(client).await?,
        Some(name) => {
            let template = sessions
                .policy()
                .templates
                .iter()
                .find(|t| t.name == name)
                .cloned()
                .ok_or_else(|| {
                    ApiError::new(StatusCode::NOT_FOUND, format!("no template named {name:?}"))
                })?;
            sessions.create_from_template(&template, client).await?
        }
    };
    let info = session.info(sessions.policy(), false).await;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn get_session(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
) -> Result<Response, ApiError> {
    let session = sessions.get(&sid)?;
    Ok(Json(session.info(sessions.policy(), false).await).into_response())
}

async fn extend_session(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
) -> Result<Response, ApiError> {
    let session = sessions.get(&sid)?;
    sessions.extend(&session).await?;
    Ok(Json(session.info(sessions.policy(), false).await).into_response())
}

async fn get_view(
    State(sessions): State<AppState>,
    Path(vid): Path<String>,
) -> Result<Response, ApiError> {
    let session = sessions.get_view(&vid)?;
    Ok(Json(session.info(sessions.policy(), true).await).into_response())
}

async fn delete_session(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
) -> Result<StatusCode, ApiError> {
    sessions.end(&sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_instance(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let NoOptions {} = optional_json(&body)?;
    let session = sessions.get(&sid)?;
    let entry = sessions.add_instance(&session, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(entry.info(&session.id, sessions.policy())),
    )
        .into_response())
}

async fn delete_instance(
    State(sessions): State<AppState>,
    Path((sid, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let session = sessions.get(&sid)?;
    sessions.remove_instance(&session, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn exec(
    State(sessions): State<AppState>,
    Path((sid, name)): Path<(String, String)>,
    body: Result<Json<ExecRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ExecResponse>, ApiError> {
    let Json(request) = body?;
    if request.cmd.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "cmd must name a program, e.g. [\"sh\", \"-c\", \"echo hi\"]",
        ));
    }
    let timeout = request
        .timeout_secs
        .map(Duration::from_secs)
        .unwrap_or(EXEC_TIMEOUT)
        .min(EXEC_TIMEOUT_MAX);
    let session = sessions.get(&sid)?;
    let entry = session.instance(&name).await?;
    let stdin = request.stdin.unwrap_or_default().into_bytes();
    let out = entry
        .instance
        .exec(request.cmd, stdin, timeout, EXEC_MAX_OUTPUT)
        .await?;
    Ok(Json(ExecResponse {
        exit_code: out.exit_code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        timed_out: out.timed_out,
        truncated: out.truncated,
    }))
}

#[derive(Deserialize)]
struct TerminalQuery {
    /// Resume the output stream from this offset.
    from: Option<u64>,
    /// The client acknowledges what it received (`ack` messages).
    #[serde(default)]
    ack: bool,
    /// Initial size, used when this connection starts the shell.
    cols: Option<u16>,
    rows: Option<u16>,
    /// Which of the instance's shells (0 to 3; default 0).
    tab: Option<usize>,
}

type TerminalQueryResult = Result<Query<TerminalQuery>, axum::extract::rejection::QueryRejection>;

async fn terminal(
    State(sessions): State<AppState>,
    Path((sid, name)): Path<(String, String)>,
    query: TerminalQueryResult,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let session = sessions.get(&sid)?;
    let entry = session.instance(&name).await?;
    let permit = session.open_connection(sessions.policy())?;
    serve_terminal(entry, query, upgrade, false, permit).await
}

async fn view_terminal(
    State(sessions): State<AppState>,
    Path((vid, name)): Path<(String, String)>,
    query: TerminalQueryResult,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let session = sessions.get_view(&vid)?;
    let entry = session.instance(&name).await?;
    let permit = session.open_connection(sessions.policy())?;
    serve_terminal(entry, query, upgrade, true, permit).await
}

async fn serve_terminal(
    entry: Arc<InstanceEntry>,
    query: TerminalQueryResult,
    upgrade: WebSocketUpgrade,
    read_only: bool,
    permit: ConnectionPermit,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let tab = query.tab.unwrap_or(0);
    if tab >= TABS {
        return Err(ApiError::bad_request(format!(
            "tab must be between 0 and {}",
            TABS - 1
        )));
    }
    let name = &entry.name;
    if !entry.instance.is_running() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("instance {name} is not running; delete it and add a new one"),
        ));
    }
    let mut from = query.from;
    let terminal = {
        let mut terminals = entry.terminals.lock().await;
        let slot = &mut terminals[tab];
        match slot.as_ref() {
            Some(t) if !t.has_exited() => t.clone(),
            _ => {
                let cols = query.cols.unwrap_or(80).clamp(2, 1000);
                let rows = query.rows.unwrap_or(24).clamp(2, 1000);
                let t = Terminal::start(&entry.instance, cols, rows).await?;
                *slot = Some(t.clone());
                // Offsets of an earlier shell mean nothing in the new one.
                from = None;
                t
            }
        }
    };
    // The task outlives the request: it keeps the request's span (session
    // and instance ids) for its logs.
    let span = tracing::Span::current();
    Ok(upgrade.max_message_size(1 << 20).on_upgrade(move |socket| {
        let open = metrics::OpenGauge::new(&metrics::get().terminals);
        async move {
            let client = ClientOptions {
                from,
                acks: query.ack,
                read_only,
            };
            terminal.serve(socket, client).await;
            drop(open);
            drop(permit);
        }
        .instrument(span)
    }))
}

async fn events(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let session = sessions.get(&sid)?;
    serve_events(sessions, session, upgrade, false)
}

async fn view_events(
    State(sessions): State<AppState>,
    Path(vid): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let session = sessions.get_view(&vid)?;
    serve_events(sessions, session, upgrade, true)
}

/// A session's event stream, counted against its connections.
fn serve_events(
    sessions: AppState,
    session: Arc<Session>,
    upgrade: WebSocketUpgrade,
    read_only: bool,
) -> Result<Response, ApiError> {
    let permit = session.open_connection(sessions.policy())?;
    Ok(upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| {
            let open = metrics::OpenGauge::new(&metrics::get().event_streams);
            async move {
                crate::session::events::serve(socket, session, sessions, read_only).await;
                drop(open);
                drop(permit);
            }
        }))
}

#[cfg(test)]
#[path = "api_fuzz.rs"]
mod fuzz;
