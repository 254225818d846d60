//! The HTTP surface under `/api`: the routes, each answered by the file of
//! its feature.

pub mod admin;
pub mod clients;
pub mod events;
pub mod files;
pub mod sessions;
pub mod state;
pub mod terminals;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

use crate::api::state::AppState;
use crate::error::ApiError;

/// Largest JSON request body (an exec's stdin included).
const API_BODY_LIMIT: usize = 1 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/templates", get(sessions::templates))
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
        .route("/view/{vid}", get(sessions::get_view))
        .route(
            "/view/{vid}/instances/{name}/terminal",
            get(terminals::view_terminal),
        )
        .route("/view/{vid}/events", get(events::view_events))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API endpoint") })
        // JSON bodies are small; uploads (above) have their own limit.
        .layer(axum::extract::DefaultBodyLimit::max(API_BODY_LIMIT))
}

#[cfg(test)]
#[path = "api_fuzz.rs"]
mod fuzz;
