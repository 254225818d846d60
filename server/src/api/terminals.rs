//! The terminal WebSocket endpoint: one socket per shell of an instance
//! (read-only through a view).

use std::sync::Arc;

use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tracing::Instrument;

use crate::api::state::AppState;
use crate::error::ApiError;
use crate::ops::metrics;
use crate::session::admission::ConnectionPermit;
use crate::session::sessions::{InstanceEntry, TABS};
use crate::session::terminal::ClientOptions;

#[derive(Deserialize)]
pub struct TerminalQuery {
    /// Resume the output stream from this offset.
    pub(super) from: Option<u64>,
    /// The client acknowledges what it received (`ack` messages).
    #[serde(default)]
    pub(super) ack: bool,
    /// Initial size, used when this connection starts the shell.
    pub(super) cols: Option<u16>,
    pub(super) rows: Option<u16>,
    /// Which of the instance's shells (0 to 3; default 0).
    pub(super) tab: Option<usize>,
}

type TerminalQueryResult = Result<Query<TerminalQuery>, axum::extract::rejection::QueryRejection>;

pub async fn terminal(
    State(sessions): State<AppState>,
    Path((sid, name)): Path<(String, String)>,
    query: TerminalQueryResult,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let session = sessions.get(&sid)?;
    let entry = session.instance(&name).await?;
    let permit = session.open_connection(sessions.policy())?;
    let access = Access::Owner(session.last_input.clone());
    serve_terminal(entry, query, upgrade, access, permit).await
}

/// A helper's terminal: writable while the session's owner accepts help.
pub async fn help_terminal(
    State(sessions): State<AppState>,
    Path((key, name)): Path<(String, String)>,
    query: TerminalQueryResult,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let session = sessions.get_helped(&key)?;
    let entry = session.instance(&name).await?;
    let permit = session.open_connection(sessions.policy())?;
    let access = Access::Helper(session.help.watch());
    serve_terminal(entry, query, upgrade, access, permit).await
}

/// Who is at the keyboard.
enum Access {
    /// The session's owner: each keystroke is its activity.
    Owner(Arc<std::sync::atomic::AtomicU64>),
    /// A read-only view.
    Viewer,
    /// A helper, while help is active.
    Helper(tokio::sync::watch::Receiver<bool>),
}

pub async fn view_terminal(
    State(sessions): State<AppState>,
    Path((vid, name)): Path<(String, String)>,
    query: TerminalQueryResult,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let session = sessions.get_view(&vid)?;
    let entry = session.instance(&name).await?;
    let permit = session.open_connection(sessions.policy())?;
    serve_terminal(entry, query, upgrade, Access::Viewer, permit).await
}

async fn serve_terminal(
    entry: Arc<InstanceEntry>,
    query: TerminalQueryResult,
    upgrade: WebSocketUpgrade,
    access: Access,
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
    let cols = query.cols.unwrap_or(80).clamp(2, 1000);
    let rows = query.rows.unwrap_or(24).clamp(2, 1000);
    let (terminal, started) = entry.terminal(tab, cols, rows).await?;
    if started {
        // Offsets of an earlier shell mean nothing in the new one.
        from = None;
    }
    // The task outlives the request: it keeps the request's span (session
    // and instance ids) for its logs.
    let span = tracing::Span::current();
    Ok(upgrade.max_message_size(1 << 20).on_upgrade(move |socket| {
        let open = metrics::OpenGauge::new(&metrics::get().terminals);
        async move {
            let (read_only, input_while, activity) = match access {
                Access::Owner(activity) => (false, None, Some(activity)),
                Access::Viewer => (true, None, None),
                Access::Helper(active) => (false, Some(active), None),
            };
            let client = ClientOptions {
                from,
                acks: query.ack,
                read_only,
                input_while,
                activity,
            };
            terminal.serve(socket, client).await;
            drop(open);
            drop(permit);
        }
        .instrument(span)
    }))
}
