//! The class calls: the student's join and help answers (no token), and the
//! instructor's calls, each with `Authorization: Bearer <token>`.

use gloo_net::http::Request;
use playground_protocol::{
    Broadcast, ClassInfo, CreateClass, HelpAnswer, HelpGrant, JoinClass, JoinInfo, Joined, Roster,
};

use crate::api::{empty, encode, json, post_json, send, ApiError, ApiResult};

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn class_url(id: &str) -> String {
    format!("/api/classes/{}", encode(id))
}

/// `GET /api/join/{code}`: the class as a student sees it before joining.
pub async fn join_info(code: &str) -> ApiResult<JoinInfo> {
    json(Request::get(&format!("/api/join/{}", encode(code))).build()).await
}

/// `POST /api/join/{code}`: a new seat (`name`) or back to one (`token`).
pub async fn join(code: &str, body: &JoinClass) -> ApiResult<Joined> {
    json(post_json(&format!("/api/join/{}", encode(code)), body)).await
}

/// The student's answer to the instructor's request to help.
pub async fn answer_help(sid: &str, accept: bool) -> ApiResult<()> {
    let url = format!("/api/sessions/{}/help", encode(sid));
    empty(post_json(&url, &HelpAnswer { accept })).await
}

/// The student ends help.
pub async fn stop_help(sid: &str) -> ApiResult<()> {
    let url = format!("/api/sessions/{}/help", encode(sid));
    empty(Request::delete(&url).build()).await
}

pub async fn list(token: &str) -> ApiResult<Vec<ClassInfo>> {
    json(
        Request::get("/api/classes")
            .header("authorization", &bearer(token))
            .build(),
    )
    .await
}

pub async fn create(token: &str, body: &CreateClass) -> ApiResult<ClassInfo> {
    json(post_auth(token, "/api/classes", body)).await
}

/// The roster; with `since`, a long poll that answers when it changes
/// (or after `wait` seconds).
pub async fn roster(token: &str, id: &str, since: Option<u64>) -> ApiResult<Roster> {
    let mut url = class_url(id);
    if let Some(v) = since {
        url.push_str(&format!("?since={v}&wait=25"));
    }
    json(
        Request::get(&url)
            .header("authorization", &bearer(token))
            .build(),
    )
    .await
}

/// A `POST` with a JSON body and the token.
fn post_auth<T: serde::Serialize>(
    token: &str,
    url: &str,
    body: &T,
) -> Result<Request, gloo_net::Error> {
    let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    Request::post(url)
        .header("authorization", &bearer(token))
        .header("content-type", "application/json")
        .body(body)
}

pub async fn request_help(token: &str, id: &str, student: &str) -> ApiResult<HelpGrant> {
    let url = format!("{}/students/{}/help", class_url(id), encode(student));
    json(post_auth(token, &url, &serde_json::json!({}))).await
}

pub async fn end_help(token: &str, id: &str, student: &str) -> ApiResult<()> {
    let url = format!("{}/students/{}/help", class_url(id), encode(student));
    empty(
        Request::delete(&url)
            .header("authorization", &bearer(token))
            .build(),
    )
    .await
}

pub async fn broadcast(token: &str, id: &str, message: &str) -> ApiResult<()> {
    let url = format!("{}/broadcast", class_url(id));
    let body = Broadcast {
        message: message.to_owned(),
    };
    empty(post_auth(token, &url, &body)).await
}

pub async fn extend(token: &str, id: &str) -> ApiResult<ClassInfo> {
    let url = format!("{}/extend", class_url(id));
    json(post_auth(token, &url, &serde_json::json!({}))).await
}

pub async fn end(token: &str, id: &str) -> ApiResult<()> {
    empty(
        Request::delete(&class_url(id))
            .header("authorization", &bearer(token))
            .build(),
    )
    .await
}

/// The roster as CSV text.
pub async fn csv(token: &str, id: &str) -> ApiResult<String> {
    let url = format!("{}/roster.csv", class_url(id));
    let resp = send(
        Request::get(&url)
            .header("authorization", &bearer(token))
            .build(),
    )
    .await?;
    resp.text().await.map_err(|e| ApiError {
        status: None,
        message: format!("Could not read the CSV: {e}"),
    })
}
