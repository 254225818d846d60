//! The operator's side: Prometheus metrics at `/metrics` and the admin API
//! under `/api/admin/` (every session with its instances' resource use,
//! ending a session, and the instructors' tokens).
//!
//! On the main address these answer only `Authorization: Bearer <--admin-token>`;
//! without a token configured they are off there (404). On `--admin-listen`,
//! an address meant for the operator's network only, they need no token.
//! `/admin` is a page that lists sessions with a button to end each.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use playground_protocol::{AdminInstance, AdminSession, InstanceStatus};

use crate::api::classes;
use crate::api::state::AppState;
use crate::error::ApiError;
use crate::ops::metrics;
use crate::session::sessions::Sessions;

/// How long CPU use is sampled for the session list.
const CPU_SAMPLE: Duration = Duration::from_millis(250);

fn routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/api/admin/sessions", get(list_sessions))
        .route("/api/admin/sessions/{sid}", delete(end_session))
        .route(
            "/api/admin/instructors",
            get(classes::list_instructors).post(classes::add_instructor),
        )
        .route(
            "/api/admin/instructors/{id}",
            delete(classes::remove_instructor),
        )
}

/// The admin page: it holds no data, and asks for the token itself.
const PAGE: &str = include_str!("../../../static/admin.html");

/// The routes for the main address: open to the token only, or off.
pub fn guarded(token: Option<String>) -> Router<AppState> {
    let enabled = token.is_some();
    routes()
        .route_layer(middleware::from_fn_with_state(
            Arc::new(token),
            require_token,
        ))
        .route(
            "/admin",
            get(move || async move {
                if enabled {
                    Html(PAGE).into_response()
                } else {
                    off().into_response()
                }
            }),
        )
}

/// The routes for `--admin-listen`: open to whoever reaches that address.
pub fn open() -> Router<AppState> {
    routes().route("/admin", get(|| async { Html(PAGE) }))
}

fn off() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "metrics and the admin API are off on this address: start the playground \
         with --admin-token (then send Authorization: Bearer <token>) or --admin-listen",
    )
}

async fn require_token(
    State(token): State<Arc<Option<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = token.as_deref() else {
        return off().into_response();
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(given) if same_secret(given.as_bytes(), token.as_bytes()) => next.run(request).await,
        Some(_) => ApiError::new(StatusCode::FORBIDDEN, "wrong admin token").into_response(),
        None => {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "send the admin token as Authorization: Bearer <token>",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// Compare without stopping at the first difference, so the time taken
/// tells nothing about how much of a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn serve_metrics(State(sessions): State<AppState>) -> Response {
    let text = metrics::get().render(live_counts(&sessions).await);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

/// Sessions, and instances by status, as they are now.
async fn live_counts(sessions: &Sessions) -> metrics::Live {
    let all = sessions.all();
    let (mut running, mut exited) = (0, 0);
    for session in &all {
        for entry in session.instances().await {
            if entry.instance.is_running() {
                running += 1;
            } else {
                exited += 1;
            }
        }
    }
    metrics::Live {
        sessions: all.len() as i64,
        running_instances: running,
        exited_instances: exited,
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

async fn list_sessions(State(sessions): State<AppState>) -> Json<Vec<AdminSession>> {
    let policy = sessions.policy();
    let mut all = sessions.all();
    all.sort_by_key(|s| s.created_at);
    let mut listed = Vec::new();
    // CPU time of every running instance now and a moment later.
    let mut entries = Vec::new();
    for session in &all {
        entries.push(session.instances().await);
    }
    let before: Vec<Vec<u64>> = entries
        .iter()
        .map(|list| {
            list.iter()
                .map(|e| e.instance.stats().cpu_usage_ns)
                .collect()
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(CPU_SAMPLE).await;
    let now = SystemTime::now();
    for (session, (list, before)) in all.iter().zip(entries.iter().zip(before)) {
        let instances = list
            .iter()
            .zip(before)
            .map(|(entry, cpu_before)| {
                let running = entry.instance.is_running();
                let stats = running.then(|| entry.stats(&policy.limits));
                let cpu_percent = running.then(|| {
                    let used = entry
                        .instance
                        .stats()
                        .cpu_usage_ns
                        .saturating_sub(cpu_before);
                    let percent = used as f64 / started.elapsed().as_nanos() as f64 * 100.0;
                    (percent * 10.0).round() / 10.0
                });
                AdminInstance {
                    name: entry.name.clone(),
                    status: if running {
                        InstanceStatus::Running
                    } else {
                        InstanceStatus::Exited
                    },
                    ip: Some(entry.ip.to_string()),
                    stats,
                    cpu_percent,
                }
            })
            .collect();
        listed.push(AdminSession {
            id: session.id.clone(),
            created_at: rfc3339(session.created_at),
            age_secs: now
                .duration_since(session.created_at)
                .unwrap_or_default()
                .as_secs(),
            expires_at: rfc3339(session.expires_at()),
            expires_in_secs: session.expires_in().as_secs(),
            client_addr: session.client.map(|ip| ip.to_string()),
            instances,
        });
    }
    Json(listed)
}

async fn end_session(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
) -> Result<StatusCode, ApiError> {
    sessions.end(&sid).await?;
    tracing::info!(session = %sid, "session ended by the operator");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3cre"));
        assert!(!same_secret(b"s3cret", b"s3creT"));
        assert!(!same_secret(b"", b"x"));
    }
}
