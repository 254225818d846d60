//! Session events: a watcher that notices what changes inside instances
//! (ports opened and closed, init exiting, resource figures, the session
//! nearing its end) and the WebSocket that pushes a session's events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use playground_protocol::{PortInfo, SessionEvent};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::sessions::{Session, Sessions};

/// How often ports and init liveness are checked.
const PORT_POLL: Duration = Duration::from_millis(300);
/// How often resource figures are pushed.
const STATS_EVERY: u32 = 7; // polls, about 2 s
/// Warn this long before the session ends.
const ENDING_SOON: Duration = Duration::from_secs(300);

/// Watch every session until the server stops. One task for all sessions:
/// reading /proc/<pid>/net/tcp of a few hundred instances is cheap.
pub async fn watch(sessions: Arc<Sessions>) {
    #[derive(Default)]
    struct Seen {
        ports: Vec<u16>,
        exited: bool,
    }
    let mut seen: HashMap<(String, String), Seen> = HashMap::new();
    let mut warned: HashMap<String, ()> = HashMap::new();
    let mut tick = tokio::time::interval(PORT_POLL);
    let mut round: u32 = 0;
    loop {
        tick.tick().await;
        round = round.wrapping_add(1);
        let all = sessions.all();
        let policy = sessions.policy().clone();
        let mut alive = std::collections::HashSet::new();
        for session in &all {
            if session.has_ended() {
                continue;
            }
            if session.expires_in() <= ENDING_SOON
                && warned.insert(session.id.clone(), ()).is_none()
            {
                session.publish(SessionEvent::EndingSoon {
                    expires_in_secs: session.expires_in().as_secs(),
                });
            }
            for entry in session.instances().await {
                let key = (session.id.clone(), entry.name.clone());
                let state = seen.entry(key.clone()).or_default();
                alive.insert(key);
                if !entry.instance.is_running() {
                    if !state.exited {
                        state.exited = true;
                        session.publish(SessionEvent::InstanceExited {
                            name: entry.name.clone(),
                        });
                    }
                    continue;
                }
                let ports = entry.instance.listening_ports().unwrap_or_default();
                if ports != state.ports {
                    state.ports = ports.clone();
                    session.publish(SessionEvent::PortsChanged {
                        name: entry.name.clone(),
                        ports: ports
                            .into_iter()
                            .map(|port| PortInfo {
                                port,
                                url: (policy.port_url)(&session.id, &entry.name, port),
                            })
                            .collect(),
                    });
                }
                if round.is_multiple_of(STATS_EVERY) {
                    session.publish(SessionEvent::Stats {
                        name: entry.name.clone(),
                        stats: entry.stats(&policy.limits),
                    });
                }
            }
        }
        seen.retain(|key, _| alive.contains(key));
        // An extended session is warned again when its new end nears.
        warned.retain(|sid, _| {
            all.iter()
                .any(|s| &s.id == sid && s.expires_in() <= ENDING_SOON)
        });
    }
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
