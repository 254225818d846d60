//! The session event stream's WebSocket endpoint (read-only through a
//! view): it pushes what the session publishes (see `session/events.rs`
//! for the watcher that publishes changes inside instances).

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::response::Response;
use playground_protocol::SessionEvent;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::api::state::AppState;
use crate::error::ApiError;
use crate::ops::metrics;
use crate::session::events::ENDING_SOON;
use crate::session::sessions::{Session, Sessions};

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
                serve(socket, session, sessions, read_only).await;
                drop(open);
                drop(permit);
            }
        }))
}

/// Serve one client of a session's event stream (with `view`, a read-only
/// viewer: snapshots carry no viewer id).
pub async fn serve(
    mut socket: WebSocket,
    session: Arc<Session>,
    sessions: Arc<Sessions>,
    view: bool,
) {
    let mut events = session.subscribe();
    let snapshot = |info| SessionEvent::Snapshot { session: info };
    let first = snapshot(session.info(sessions.policy(), view).await);
    if send(&mut socket, &first).await.is_err() {
        return;
    }
    // The warning is published once; a client arriving later still gets it.
    if session.expires_in() <= ENDING_SOON {
        let warning = SessionEvent::EndingSoon {
            expires_in_secs: session.expires_in().as_secs(),
        };
        if send(&mut socket, &warning).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            event = next(&mut events) => {
                let event = match event {
                    Next::Event(SessionEvent::Snapshot { .. }) if view => {
                        snapshot(session.info(sessions.policy(), view).await)
                    }
                    Next::Event(event) => event,
                    // Fell behind: start over from the current state.
                    Next::FellBehind => snapshot(session.info(sessions.policy(), view).await),
                    Next::Closed => SessionEvent::Ended,
                };
                let ended = event == SessionEvent::Ended;
                if send(&mut socket, &event).await.is_err() || ended {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                // The client only listens; anything but a close is ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// What a client of the event stream is sent next.
// Made and moved once per event: boxing the large variant would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
enum Next {
    Event(SessionEvent),
    /// It fell behind: a fresh snapshot replaces what it missed.
    FellBehind,
    Closed,
}

/// The next event for a client. After falling behind, its receiver starts
/// over at the newest event, so none of the missed ones (older than the
/// snapshot sent instead) comes after the snapshot: a lagging receiver
/// would otherwise go on with the oldest events it still holds, e.g. an
/// `InstanceAdded` of an instance the snapshot already lists.
async fn next(events: &mut broadcast::Receiver<SessionEvent>) -> Next {
    match events.recv().await {
        Ok(event) => Next::Event(event),
        Err(RecvError::Lagged(_)) => {
            *events = events.resubscribe();
            Next::FellBehind
        }
        Err(RecvError::Closed) => Next::Closed,
    }
}

async fn send(socket: &mut WebSocket, event: &SessionEvent) -> Result<(), axum::Error> {
    let text = serde_json::to_string(event).expect("events serialise");
    socket.send(Message::Text(text.into())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_that_fell_behind_skips_to_the_newest_events() {
        let (tx, mut rx) = broadcast::channel(4);
        let removed = |n: usize| SessionEvent::InstanceRemoved {
            name: format!("node{n}"),
        };
        for n in 0..10 {
            tx.send(removed(n)).unwrap();
        }
        assert_eq!(next(&mut rx).await, Next::FellBehind);
        // Sent after the snapshot that replaces the missed ones: the next.
        tx.send(removed(10)).unwrap();
        assert_eq!(next(&mut rx).await, Next::Event(removed(10)));
        drop(tx);
        assert_eq!(next(&mut rx).await, Next::Closed);
    }
}
