//! Classes over HTTP: the instructor's API (`Authorization: Bearer` with the
//! admin token or an instructor's token; an instructor sees only their own
//! classes), joining by code (no account: a display name, and a token to
//! come back), the student's answer to help, and the operator's
//! instructor tokens under `/api/admin/`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use playground_protocol::{
    Broadcast, ClassInfo, CreateClass, CreateInstructor, HelpAnswer, HelpGrant, HelpState,
    InstructorInfo, JoinClass, JoinInfo, Joined, Roster, SessionEvent,
};
use serde::Deserialize;

use crate::api::clients::ClientAddr;
use crate::api::state::AppState;
use crate::classes::{self, Classes, Who};
use crate::error::ApiError;

/// The longest a roster request waits for a change.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// What the class routes need: the classes, and the admin token to tell
/// the operator from instructors.
#[derive(Clone)]
pub struct ClassAccess {
    pub classes: Arc<Classes>,
    pub admin_token: Option<Arc<String>>,
}

type Json422<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The operator or an instructor, from `Authorization: Bearer <token>`.
fn who(access: &ClassAccess, headers: &HeaderMap) -> Result<Who, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "classes are for instructors: send your instructor token (or the admin token) \
                 as Authorization: Bearer <token>",
            )
        })?;
    if let Some(admin) = &access.admin_token {
        if same_secret(token.as_bytes(), admin.as_bytes()) {
            return Ok(Who::Admin);
        }
    }
    match access.classes.store().instructor_by_token(token) {
        Ok(Some(id)) => Ok(Who::Instructor(id)),
        Ok(None) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this token is neither an instructor's nor the admin token",
        )),
        Err(e) => {
            tracing::error!("class database: {e}");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the playground could not check the token (its database failed)",
            ))
        }
    }
}

pub async fn list(
    Extension(access): Extension<ClassAccess>,
    headers: HeaderMap,
) -> Result<Json<Vec<ClassInfo>>, ApiError> {
    let who = who(&access, &headers)?;
    Ok(Json(access.classes.list(&who)))
}

pub async fn create(
    Extension(access): Extension<ClassAccess>,
    headers: HeaderMap,
    body: Json422<CreateClass>,
) -> Result<Response, ApiError> {
    let who = who(&access, &headers)?;
    let Json(request) = body?;
    let class = access.classes.create(&who, request)?;
    Ok((StatusCode::CREATED, Json(class.info())).into_response())
}

#[derive(Deserialize)]
pub struct RosterQuery {
    /// Answer when the roster's version differs from this one.
    since: Option<u64>,
    /// Seconds to wait for that (default 25, at most 30).
    wait: Option<u64>,
}

pub async fn get(
    Extension(access): Extension<ClassAccess>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<RosterQuery>,
) -> Result<Json<Roster>, ApiError> {
    let who = who(&access, &headers)?;
    let class = access.classes.get(&id, &who)?;
    if let Some(since) = query.since {
        let wait = Duration::from_secs(query.wait.unwrap_or(25)).min(LONGEST_WAIT);
        class.changed_after(since, wait).await;
    }
    Ok(Json(classes::roster(&access.classes, &class).await))
}

pub async fn csv(
    Extension(access): Extension<ClassAccess>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = who(&access, &headers)?;
    let class = access.classes.get(&id, &who)?;
    let roster = classes::roster(&access.classes, &class).await;
    let body = classes::csv(&roster).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing CSV: {e}"),
        )
    })?;
    let name = format!("attachment; filename=\"class-{}.csv\"", roster.class.code);
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

pub async fn end(
    Extension(access): Extension<ClassAccess>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let who = who(&access, &headers)?;
    let class = access.classes.get(&id, &who)?;
    access.classes.end(&class).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn extend(
    Extension(access): Extension<ClassAccess>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ClassInfo>, ApiError> {
    let who = who(&access, &headers)?;
    let class = access.classes.get(&id, &who)?;
    access.classes.extend(&class).await?;
    Ok(Json(class.info()))
}

pub async fn broadcast(
    Extension(access): Extension<ClassAccess>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Json422<Broadcast>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = who(&access, &headers)?;
    let Json(Broadcast { message }) = body?;
    let class = access.classes.get(&id, &who)?;
    let reached = access.classes.broadcast(&class, &message)?;
    Ok(Json(serde_json::json!({ "sessions": reached })))
}

pub async fn request_help(
    Extension(access): Extension<ClassAccess>,
    headers: HeaderMap,
    Path((id, student)): Path<(String, String)>,
) -> Result<Json<HelpGrant>, ApiError> {
    let who = who(&access, &headers)?;
    let class = access.classes.get(&id, &who)?;
    Ok(Json(access.classes.request_help(&class, &student)?))
}

pub async fn end_help(
    Extension(access): Extension<ClassAccess>,
    headers: HeaderMap,
    Path((id, student)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let who = who(&access, &headers)?;
    let class = access.classes.get(&id, &who)?;
    access.classes.end_help(&class, &student)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn join_info(
    Extension(access): Extension<ClassAccess>,
    Path(code): Path<String>,
) -> Result<Json<JoinInfo>, ApiError> {
    Ok(Json(access.classes.join_info(&code)?))
}

pub async fn join(
    Extension(access): Extension<ClassAccess>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    Path(code): Path<String>,
    body: Json422<JoinClass>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    let joined: Joined = access.classes.join(&code, request, client).await?;
    Ok((StatusCode::OK, Json(joined)).into_response())
}

/// The student answers the instructor's request to help.
pub async fn answer_help(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
    body: Json422<HelpAnswer>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(HelpAnswer { accept }) = body?;
    let session = sessions.get(&sid)?;
    let state = session.help.answer(accept)?;
    session.publish(SessionEvent::Help { state });
    Ok(Json(serde_json::json!({ "state": state })))
}

/// The student ends help: the instructor's terminals close at once.
pub async fn stop_help(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
) -> Result<StatusCode, ApiError> {
    let session = sessions.get(&sid)?;
    session.help.end();
    session.publish(SessionEvent::Help {
        state: HelpState::None,
    });
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_instructors(
    Extension(access): Extension<ClassAccess>,
) -> Result<Json<Vec<InstructorInfo>>, ApiError> {
    let list = access.classes.store().instructors().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("class database: {e}"),
        )
    })?;
    Ok(Json(
        list.into_iter()
            .map(|i| InstructorInfo {
                id: i.id,
                name: i.name,
                created_at: humantime::format_rfc3339_seconds(i.created_at).to_string(),
                token: None,
            })
            .collect(),
    ))
}

pub async fn add_instructor(
    Extension(access): Extension<ClassAccess>,
    body: Json422<CreateInstructor>,
) -> Result<Response, ApiError> {
    let Json(CreateInstructor { name }) = body?;
    let (instructor, token) = access.classes.add_instructor(&name)?;
    let info = InstructorInfo {
        id: instructor.id,
        name: instructor.name,
        created_at: humantime::format_rfc3339_seconds(instructor.created_at).to_string(),
        token: Some(token),
    };
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

pub async fn remove_instructor(
    Extension(access): Extension<ClassAccess>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match access.classes.store().remove_instructor(&id) {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no instructor {id}"),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("class database: {e}"),
        )),
    }
}
