//! The HTTP surface: the app the listener serves (health check, `/api`,
//! metrics and admin, the web app) and the routes under `/api`, each
//! answered by the file of its feature.

pub mod admin;
pub mod classes;
pub mod clients;
pub mod embed;
pub mod events;
pub mod files;
pub mod sessions;
pub mod ssh;
pub mod state;
pub mod terminals;
pub mod tutorials;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::api::clients::ClientPolicy;
use crate::api::state::AppState;
use crate::error::ApiError;
use crate::ops::{logging, metrics, web};

/// Largest JSON request body (an exec's stdin included).
const API_BODY_LIMIT: usize = 1 << 20;

/// The playground's own HTTP app: the health check, the API (each client
/// within its request rate, callable from the pages of `embedding`'s
/// origins), metrics and the admin API, the SDK and the web app, each
/// request timed and logged, and only `/embed/...` pages framable.
pub fn app(
    sessions: AppState,
    clients: Arc<ClientPolicy>,
    admin_token: Option<String>,
    classes: Arc<crate::classes::Classes>,
    web_dir: &Path,
    embedding: embed::Embedding,
) -> Router {
    let mut api = router().layer(axum::middleware::from_fn_with_state(
        (clients, sessions.clone()),
        clients::limit,
    ));
    if let Some(cors) = embedding.cors() {
        api = api.layer(cors);
    }
    let access = classes::ClassAccess {
        classes,
        admin_token: admin_token.clone().map(Arc::new),
    };
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .nest("/api", api)
        .merge(admin::guarded(admin_token))
        .with_state(sessions)
        .merge(embed::router())
        .layer(axum::Extension(access))
        .merge(web::router(web_dir))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(embedding),
            embed::frame_policy,
        ))
        // A client that stops sending a body half-way does not hold the request.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            Duration::from_secs(30),
        ))
        .layer(axum::middleware::from_fn(metrics::track_requests))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(logging::request_span))
}

/// The routes under `/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/templates", get(sessions::templates))
        .route("/scenarios", get(tutorials::list))
        .route("/scenarios/{*id}", get(tutorials::get))
        .route("/sessions", post(sessions::create_session))
        .route(
            "/sessions/{sid}",
            get(sessions::get_session).delete(sessions::delete_session),
        )
        .route("/sessions/{sid}/extend", post(sessions::extend_session))
        .route("/sessions/{sid}/instances", post(sessions::create_instance))
        .route(
            "/sessions/{sid}/instances/{name}",
            axum::routing::delete(sessions::delete_instance),
        )
        .route(
            "/sessions/{sid}/instances/{name}/exec",
            post(sessions::exec),
        )
        .route(
            "/sessions/{sid}/instances/{name}/terminal",
            get(terminals::terminal),
        )
        .route(
            "/sessions/{sid}/instances/{name}/files",
            get(files::download)
                .post(files::upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/sessions/{sid}/events", get(events::events))
        .route(
            "/sessions/{sid}/help",
            post(classes::answer_help).delete(classes::stop_help),
        )
        .route("/classes", get(classes::list).post(classes::create))
        .route("/classes/{id}", get(classes::get).delete(classes::end))
        .route("/classes/{id}/roster.csv", get(classes::csv))
        .route("/classes/{id}/extend", post(classes::extend))
        .route("/classes/{id}/broadcast", post(classes::broadcast))
        .route(
            "/classes/{id}/students/{student}/help",
            post(classes::request_help).delete(classes::end_help),
        )
        .route("/join/{code}", get(classes::join_info).post(classes::join))
        .route("/sessions/{sid}/ssh-keys", get(ssh::list).post(ssh::add))
        .route(
            "/sessions/{sid}/ssh-keys/{*fingerprint}",
            axum::routing::delete(ssh::remove),
        )
        .route("/sessions/{sid}/tutorial/check", post(tutorials::check))
        .route("/sessions/{sid}/tutorial/page", post(tutorials::open_page))
        .route("/sessions/{sid}/tutorial/scripts", get(tutorials::scripts))
        .route("/view/{vid}", get(sessions::get_view))
        .route(
            "/view/{vid}/instances/{name}/terminal",
            get(terminals::view_terminal),
        )
        .route("/view/{vid}/events", get(events::view_events))
        .route(
            "/help/{key}/instances/{name}/terminal",
            get(terminals::help_terminal),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API endpoint") })
        // JSON bodies are small; uploads (above) have their own limit.
        .layer(axum::extract::DefaultBodyLimit::max(API_BODY_LIMIT))
}

#[cfg(test)]
#[path = "api_fuzz.rs"]
mod fuzz;
