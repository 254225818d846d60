//! SSH keys of a session (#16): the owner adds, lists and removes the
//! public keys that may log in to its instances. Read-only views have no
//! part in it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use playground_protocol::{AddSshKey, SshKeyInfo};

use crate::api::state::AppState;
use crate::error::ApiError;
use crate::session::ssh_keys::{self, SshKey};

fn info(key: SshKey) -> SshKeyInfo {
    SshKeyInfo {
        fingerprint: key.fingerprint,
        key: key.openssh,
        comment: key.comment,
    }
}

pub async fn list(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
) -> Result<Json<Vec<SshKeyInfo>>, ApiError> {
    let session = sessions.get(&sid)?;
    Ok(Json(
        session.ssh_keys.list().into_iter().map(info).collect(),
    ))
}

pub async fn add(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
    body: Result<Json<AddSshKey>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(AddSshKey { key }) = body?;
    let session = sessions.get(&sid)?;
    let (key, _) = ssh_keys::parse(&key)?;
    sessions.add_ssh_key(&session, key.clone())?;
    Ok((StatusCode::CREATED, Json(info(key))).into_response())
}

pub async fn remove(
    State(sessions): State<AppState>,
    Path((sid, fingerprint)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let session = sessions.get(&sid)?;
    sessions.remove_ssh_key(&session, &fingerprint)?;
    Ok(StatusCode::NO_CONTENT)
}
