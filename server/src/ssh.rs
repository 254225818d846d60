//! SSH into instances (issue #16, in progress on this branch): the
//! learner's own `ssh`, `scp` and `sftp` reach an instance of their session
//! as `<instance>.<session id>@<host>`, with keys the session's owner added.
//!
//! Done (on this branch): the user name (`user.rs`), the host key
//! (`host_key.rs`), the session's keys (`session/ssh_keys.rs`, stored with
//! the session, API in `api/ssh.rs`), the server on `--ssh-listen`
//! (`server.rs`: publickey only, refusals alike after 1 s, commands with
//! pipes and their exit status, shells on a PTY with window changes,
//! `LANG`/`LC_*` from the client, `-L` to ports inside the instance, the
//! `sftp` subsystem as the instance's own sftp-server, agent forwarding
//! refused). Next: the images need openssh-sftp-server (a version bump of
//! both, done when this lands), shells as terminal tabs (surviving a
//! restart), refusal messages for X11 and remote forwarding, rate limits and
//! metrics, the page's key form and `ssh` command, README, figures.

pub mod host_key;
pub mod server;
pub mod user;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

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
    Ok(tokio::spawn(async move {
        use russh::server::Server as _;
        let mut server = server::SshServer { sessions };
        if let Err(e) = server.run_on_socket(config, &listener).await {
            tracing::error!("ssh: {e}");
        }
    }))
}
