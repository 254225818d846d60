//! SSH into instances (`--ssh-listen`): the learner's own `ssh`, `scp` and
//! `sftp` reach an instance of their session as `<instance>.<session
//! id>@<host>`, with keys the session's owner added (`session/ssh_keys.rs`,
//! API in `api/ssh.rs`). The user name (`user.rs`), the host key made once
//! and kept in the data directory (`host_key.rs`), per-address limits
//! (`limit.rs`), a connection's handler (`server.rs`).

pub mod host_key;
pub mod limit;
pub mod server;
pub mod user;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::ops::metrics;
use crate::session::sessions::Sessions;

/// Listen on `address` and serve SSH until the task is aborted.
pub async fn serve(
    address: SocketAddr,
    public_host: Option<String>,
    data_dir: &Path,
    sessions: Arc<Sessions>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let host_key = host_key::load_or_create(data_dir)?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listen on {address} (--ssh-listen)"))?;
    let address = listener.local_addr()?;
    let _ = sessions.policy().ssh.set(playground_protocol::SshAccess {
        host: public_host.unwrap_or_default(),
        port: address.port(),
    });
    let config = Arc::new(server::config(host_key));
    // Tests and scripts may wait for this line.
    println!("playground ssh listening on {address}");
    let limiter = Arc::new(limit::Limiter::default());
    Ok(tokio::spawn(async move {
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!("ssh: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(permit) = limiter.connect(peer.ip()) else {
                metrics::get().ssh_login(metrics::SshLogin::turned_away);
                tracing::debug!(%peer, "ssh: address over its limits, turned away");
                continue;
            };
            let handler = server::Connection::new(sessions.clone(), limiter.clone(), peer.ip());
            let config = config.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let _open = metrics::OpenGauge::new(&metrics::get().ssh_connections);
                let _ = socket.set_nodelay(true);
                match russh::server::run_stream(config, socket, handler).await {
                    Ok(session) => {
                        if let Err(e) = session.await {
                            tracing::debug!(%peer, "ssh: connection ended: {e}");
                        }
                    }
                    Err(e) => tracing::debug!(%peer, "ssh: handshake: {e}"),
                }
            });
        }
    }))
}
