//! Downloading and uploading files of an instance
//! (`/api/sessions/{sid}/instances/{name}/files?path=...`).
//!
//! The instance's init opens the file (see `sandbox::Instance::open_file`),
//! so paths are resolved inside the instance and never reach the host; the
//! server then streams the bytes through the descriptor it got, never holding
//! a whole file in memory.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use playground_protocol::{DirEntry, EntryKind, FileInfo};
use sandbox::ListedKind;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::state::AppState;
use crate::error::ApiError;
use crate::session::sessions::InstanceEntry;

/// Size of the chunks a download is sent in.
const CHUNK: usize = 64 * 1024;
/// After refusing an upload, read (and discard) at most this much more of
/// its body, for this long, so the client gets the answer instead of a reset.
const DRAIN_BYTES: usize = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
pub struct FileQuery {
    /// Absolute, or relative to the terminal shell's working directory (or /root).
    path: Option<String>,
    /// With `true` (downloads only), list the directory at `path` instead.
    #[serde(default)]
    list: bool,
}

fn require_path(query: FileQuery) -> Result<String, ApiError> {
    match query.path {
        Some(path) if !path.is_empty() => Ok(path),
        _ => Err(ApiError::bad_request(
            "give the file's path, e.g. ?path=/root/notes.txt",
        )),
    }
}

/// The pid (inside the instance) of the instance's first terminal shell
/// (tab 0), if one runs.
async fn shell_pid(entry: &InstanceEntry) -> Option<i32> {
    let terminals = entry.terminals.lock().await;
    terminals[0]
        .as_ref()
        .filter(|t| !t.has_exited())
        .map(|t| t.pid())
}

/// The last component of `path`, made safe for a quoted header parameter.
fn download_name(path: &str) -> String {
    let name: String = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "download".into()
    } else {
        name
    }
}

pub async fn download(
    State(sessions): State<AppState>,
    Path((sid, name)): Path<(String, String)>,
    Query(query): Query<FileQuery>,
) -> Result<Response, ApiError> {
    let list = query.list;
    let path = require_path(query)?;
    let session = sessions.get(&sid)?;
    let entry = session.instance(&name).await?;
    let cwd_of = shell_pid(&entry).await;
    if list {
        return Ok(Json(list_dir(&entry, &path, cwd_of).await?).into_response());
    }
    let opened = entry.instance.open_file(&path, false, cwd_of).await?;
    let size = opened.size;
    // Send exactly the size announced, even if the file grows meanwhile.
    let reader = opened.file.take(size);
    let stream = futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut buf = vec![0u8; CHUNK];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let disposition = format!("attachment; filename=\"{}\"", download_name(&opened.path));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The entries of a directory of the instance: directories first, then by name.
async fn list_dir(
    entry: &InstanceEntry,
    path: &str,
    cwd_of: Option<i32>,
) -> Result<Vec<DirEntry>, ApiError> {
    let mut entries: Vec<DirEntry> = entry
        .instance
        .list_dir(path, cwd_of)
        .await?
        .into_iter()
        .map(|e| DirEntry {
            name: e.name,
            kind: match e.kind {
                ListedKind::File => EntryKind::File,
                ListedKind::Dir => EntryKind::Dir,
                ListedKind::Symlink => EntryKind::Symlink,
                ListedKind::Other => EntryKind::Other,
            },
            size: e.size,
        })
        .collect();
    entries.sort_by(|a, b| {
        (a.kind != EntryKind::Dir, &a.name).cmp(&(b.kind != EntryKind::Dir, &b.name))
    });
    Ok(entries)
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the file is larger than this playground's upload limit of {} MiB",
            limit >> 20
        ),
    )
}

fn write_error(path: &str, e: std::io::Error) -> ApiError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("the instance's disk is full (writing {path})"),
        ),
        Some(libc::EFBIG) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{path}: the file is too large for the instance"),
        ),
        _ => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing {path} failed: {e}"),
        ),
    }
}

type DataStream = axum::body::BodyDataStream;

pub async fn upload(
    State(sessions): State<AppState>,
    Path((sid, name)): Path<(String, String)>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut stream = body.into_data_stream();
    let result = receive(&sessions, &sid, &name, query, &headers, &mut stream).await;
    if result.is_err() {
        // Let the client finish sending (within bounds) so it reads the answer.
        let _ = tokio::time::timeout(DRAIN_TIME, async {
            let mut drained = 0;
            while let Some(Ok(chunk)) = stream.next().await {
                drained += chunk.len();
                if drained > DRAIN_BYTES {
                    break;
                }
            }
        })
        .await;
    }
    let info = result?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn receive(
    sessions: &AppState,
    sid: &str,
    name: &str,
    query: FileQuery,
    headers: &HeaderMap,
    stream: &mut DataStream,
) -> Result<FileInfo, ApiError> {
    let path = require_path(query)?;
    let limit = sessions.policy().max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let session = sessions.get(sid)?;
    let entry = session.instance(name).await?;
    let cwd_of = shell_pid(&entry).await;
    let opened = entry.instance.open_file(&path, true, cwd_of).await?;
    let mut file = opened.file;
    let resolved = opened.path;
    let copied: Result<u64, ApiError> = async {
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::bad_request(format!("the upload was interrupted: {e}")))?;
            written += chunk.len() as u64;
            if written > limit {
                return Err(too_large(limit));
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| write_error(&resolved, e))?;
        }
        file.flush().await.map_err(|e| write_error(&resolved, e))?;
        Ok(written)
    }
    .await;
    match copied {
        Ok(size) => Ok(FileInfo {
            path: resolved,
            size,
        }),
        Err(e) => {
            // Leave no partial file taking up the instance's disk.
            if let Err(error) = file.set_len(0).await {
                tracing::debug!("cannot truncate {resolved} after a failed upload: {error}");
            }
            Err(e)
        }
    }
}

#[cfg(test)]
#[path = "files_fuzz.rs"]
mod fuzz;
