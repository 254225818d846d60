//! The session event stream's WebSocket endpoint (read-only through a view).

use std::sync::Arc;

use axum::extract::{Path, State, WebSocketUpgrade};
use axum::response::Response;

use crate::api::state::AppState;
use crate::error::ApiError;
use crate::ops::metrics;
use crate::session::sessions::Session;

pub async fn events(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let session = sessions.get(&sid)?;
    serve_events(sessions, session, upgrade, false)
}

pub async fn view_events(
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
