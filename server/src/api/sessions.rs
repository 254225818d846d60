//! Sessions and their instances: templates, creating, reading, extending
//! and ending sessions (and their read-only views), adding and removing
//! instances, and running a command in one.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use playground_protocol::{CreateSession, ExecRequest, ExecResponse, TemplateInfo};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::api::clients::ClientAddr;
use crate::api::state::AppState;
use crate::error::ApiError;
use crate::session::sessions::{Draw, SessionIds};
use crate::session::tutorial;

/// Default and largest exec timeout.
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
const EXEC_TIMEOUT_MAX: Duration = Duration::from_secs(600);
/// Most bytes of stdout (and of stderr) an exec answer carries.
const EXEC_MAX_OUTPUT: usize = 1 << 20;

/// Parse a JSON body that may also be empty (then `T::default()`), so that
/// `curl -X POST` works as well as a client that sends `{}`.
pub(super) fn optional_json<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
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
pub(super) struct NoOptions {}

pub async fn templates(State(sessions): State<AppState>) -> Json<Vec<TemplateInfo>> {
    Json(sessions.policy().templates.clone())
}

pub async fn create_session(
    State(sessions): State<AppState>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    chosen: Option<Extension<SessionIds>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateSession = optional_json(&body)?;
    // Only a cluster node's guard sets these (from its gateway's headers).
    let ids = chosen.map(|Extension(ids)| ids);
    let session = match (request.template, request.scenario) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "give a template or a scenario, not both",
            ))
        }
        (None, Some(id)) => tutorial::start(&sessions, &id, client, Draw::Free, ids).await?,
        (None, None) => sessions.create(client, ids).await?,
        (Some(name), None) => {
            let template = sessions
                .policy()
                .templates
                .iter()
                .find(|t| t.name == name)
                .cloned()
                .ok_or_else(|| {
                    ApiError::new(StatusCode::NOT_FOUND, format!("no template named {name:?}"))
                })?;
            sessions
                .create_from_template(&template, client, Draw::Free, ids)
                .await?
        }
    };
    let info = session.info(sessions.policy(), false).await;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

pub async fn get_session(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
) -> Result<Response, ApiError> {
    let session = sessions.get(&sid)?;
    Ok(Json(session.info(sessions.policy(), false).await).into_response())
}

pub async fn extend_session(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
) -> Result<Response, ApiError> {
    let session = sessions.get(&sid)?;
    sessions.extend(&session).await?;
    Ok(Json(session.info(sessions.policy(), false).await).into_response())
}

pub async fn get_view(
    State(sessions): State<AppState>,
    Path(vid): Path<String>,
) -> Result<Response, ApiError> {
    let session = sessions.get_view(&vid)?;
    Ok(Json(session.info(sessions.policy(), true).await).into_response())
}

pub async fn delete_session(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
) -> Result<StatusCode, ApiError> {
    sessions.end(&sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_instance(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let NoOptions {} = optional_json(&body)?;
    let session = sessions.get(&sid)?;
    let entry = sessions.add_instance(&session, None, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(entry.info(&session.id, sessions.policy())),
    )
        .into_response())
}

pub async fn delete_instance(
    State(sessions): State<AppState>,
    Path((sid, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let session = sessions.get(&sid)?;
    sessions.remove_instance(&session, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn exec(
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
