//! Session events: a watcher that notices what changes inside instances
//! (ports opened and closed, init exiting, resource figures, the session
//! nearing its end) and publishes it to the session's subscribers (the
//! WebSocket that pushes them to clients is `api/events.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use playground_protocol::{PortInfo, SessionEvent};

use crate::session::sessions::Sessions;

/// How often ports and init liveness are checked.
const PORT_POLL: Duration = Duration::from_millis(300);
/// How often resource figures are pushed.
const STATS_EVERY: u32 = 7; // polls, about 2 s
/// Warn this long before the session ends.
pub const ENDING_SOON: Duration = Duration::from_secs(300);

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
