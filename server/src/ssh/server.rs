//! The SSH server (russh): one connection's handler. Public keys only, and
//! only a key the session's owner added, for `<instance>.<session id>`;
//! every refusal looks the same and takes the same time. A session channel
//! runs a command (with pipes, its exit status sent back) or, with a PTY,
//! a login shell; window changes follow.
//!
//! In progress (#16): shells are not terminal tabs yet, no sftp, no `-L`,
//! no rate limit or metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelMsg};
use tokio::io::AsyncWriteExt;

use crate::session::sessions::{InstanceEntry, Sessions};
use crate::ssh::user;

/// Makes a handler per connection.
pub struct SshServer {
    pub sessions: Arc<Sessions>,
}

impl russh::server::Server for SshServer {
    type Handler = Connection;

    fn new_client(&mut self, _peer: Option<std::net::SocketAddr>) -> Connection {
        Connection {
            sessions: self.sessions.clone(),
            entry: None,
            channels: HashMap::new(),
            sizes: HashMap::new(),
            ptys: HashMap::new(),
            env: HashMap::new(),
        }
    }
}

/// The russh configuration: the host key, slow and alike refusals.
pub fn config(host_key: russh::keys::PrivateKey) -> russh::server::Config {
    russh::server::Config {
        keys: vec![host_key],
        auth_rejection_time: Duration::from_secs(1),
        auth_rejection_time_initial: Some(Duration::ZERO),
        max_auth_attempts: 6,
        inactivity_timeout: Some(Duration::from_secs(3600)),
        keepalive_interval: Some(Duration::from_secs(60)),
        methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
        nodelay: true,
        ..Default::default()
    }
}

pub struct Connection {
    sessions: Arc<Sessions>,
    /// The instance this connection logged in to.
    entry: Option<Arc<InstanceEntry>>,
    /// Session channels opened and not yet running anything.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// The PTY size a channel asked for.
    sizes: HashMap<ChannelId, (u16, u16)>,
    /// Running shells' PTYs, for window changes.
    ptys: HashMap<ChannelId, Arc<sandbox::Pty>>,
    /// Variables a client sent for a channel (`SendEnv`), those allowed.
    env: HashMap<ChannelId, Vec<String>>,
}

/// Variables a client may set: the locale and the terminal's colours, as
/// OpenSSH's sshd accepts by default (`AcceptEnv LANG LC_*`).
fn allowed_env(name: &str) -> bool {
    name == "LANG" || name.starts_with("LC_") || name == "COLORTERM"
}

impl Connection {
    /// The instance `user` names, if `key` may log in to it.
    async fn admitted(
        &self,
        name: &str,
        key: &russh::keys::PublicKey,
    ) -> Option<Arc<InstanceEntry>> {
        let target = user::parse(name)?;
        let session = self.sessions.get(&target.session).ok()?;
        if !session.ssh_keys.admits(key) {
            return None;
        }
        session.instance(&target.instance).await.ok()
    }
}

fn reject() -> Auth {
    Auth::Reject {
        proceed_with_methods: None,
        partial_success: false,
    }
}

impl Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match self.admitted(user, offer.public_key).await {
            Some(_) => Auth::Accept,
            None => reject(),
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        match self.admitted(user, key.public_key).await {
            Some(entry) => {
                self.entry = Some(entry);
                Ok(Auth::Accept)
            }
            None => Ok(reject()),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // A client whose own input is no terminal (ssh -tt < file) says 0x0.
        let size = match (cols, rows) {
            (0, _) | (_, 0) => (80, 24),
            _ => (cols.clamp(2, 1000) as u16, rows.clamp(2, 1000) as u16),
        };
        self.sizes.insert(channel, size);
        session.channel_success(channel)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(pty) = self.ptys.get(&channel) {
            let _ = pty.resize(cols.clamp(2, 1000) as u16, rows.clamp(2, 1000) as u16);
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(entry), Some(ch)) = (self.entry.clone(), self.channels.remove(&channel)) else {
            return session.channel_failure(channel);
        };
        let (cols, rows) = self.sizes.get(&channel).copied().unwrap_or((80, 24));
        let argv = vec!["/bin/bash".to_string(), "-l".to_string()];
        match entry.instance.spawn_pty(argv, cols, rows).await {
            Ok(process) => {
                session.channel_success(channel)?;
                let pty = Arc::new(process.pty);
                self.ptys.insert(channel, pty.clone());
                tokio::spawn(run_shell(ch, pty, process.exit));
                Ok(())
            }
            Err(e) => {
                tracing::warn!(instance = %entry.name, "ssh shell: {e}");
                session.channel_failure(channel)
            }
        }
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(entry), Some(ch)) = (self.entry.clone(), self.channels.remove(&channel)) else {
            return session.channel_failure(channel);
        };
        let command = String::from_utf8_lossy(data).into_owned();
        let argv = vec!["/bin/bash".to_string(), "-c".to_string(), command];
        let env = self.env.remove(&channel).unwrap_or_default();
        match entry.instance.spawn_piped(argv, env).await {
            Ok(process) => {
                session.channel_success(channel)?;
                tokio::spawn(run_command(ch, process));
                Ok(())
            }
            Err(e) => {
                tracing::warn!(instance = %entry.name, "ssh exec: {e}");
                session.channel_failure(channel)
            }
        }
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let safe = allowed_env(name)
            && value.len() <= 256
            && !value.contains(['\0', '\n'])
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if safe {
            self.env
                .entry(channel)
                .or_default()
                .push(format!("{name}={value}"));
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    /// `sftp` (and `scp`, which speaks SFTP): the instance's own
    /// sftp-server, so paths and permissions are the instance's.
    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let entry = self.entry.clone();
        let ch = self.channels.remove(&channel);
        let (Some(entry), Some(ch), "sftp") = (entry, ch, name) else {
            return session.channel_failure(channel);
        };
        let argv = vec!["/usr/lib/openssh/sftp-server".to_string()];
        match entry.instance.spawn_piped(argv, Vec::new()).await {
            Ok(process) => {
                session.channel_success(channel)?;
                tokio::spawn(run_command(ch, process));
                Ok(())
            }
            Err(e) => {
                tracing::warn!(instance = %entry.name, "ssh sftp: {e}");
                session.channel_failure(channel)
            }
        }
    }

    /// `ssh -L`: a connection to a port inside the instance (only there:
    /// the host named must be the instance itself).
    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(entry) = self.entry.clone() else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let local = matches!(host, "localhost" | "127.0.0.1" | "::1") || host == entry.name;
        let port = u16::try_from(port).ok().filter(|&p| p > 0);
        let (true, Some(port)) = (local, port) else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        match entry.instance.connect(port).await {
            Ok(stream) => {
                reply.accept().await;
                tokio::spawn(async move {
                    let mut stream = stream;
                    let mut ch = channel.into_stream();
                    let _ = tokio::io::copy_bidirectional(&mut stream, &mut ch).await;
                });
            }
            Err(_) => reply.reject(russh::ChannelOpenFailure::ConnectFailed).await,
        }
        Ok(())
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        session.channel_failure(channel)?;
        Ok(false)
    }
}

/// A shell on a PTY: bytes both ways until it exits; its exit status.
async fn run_shell(
    mut channel: Channel<Msg>,
    pty: Arc<sandbox::Pty>,
    exit: tokio::sync::oneshot::Receiver<i32>,
) {
    let writer = channel.make_writer();
    let output = {
        let pty = pty.clone();
        async move {
            let mut writer = writer;
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match pty.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if writer.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
    };
    let input = async {
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::Data { data } if pty.write_all(&data).await.is_err() => break,
                ChannelMsg::Eof | ChannelMsg::Close => break,
                _ => {}
            }
        }
    };
    tokio::select! {
        () = output => {}
        () = input => {}
    }
    let code = exit.await.unwrap_or(128 + libc::SIGKILL);
    finish(&channel, code).await;
}

/// A command with pipes: stdin from the client, stdout and stderr to it,
/// then its exit status.
async fn run_command(mut channel: Channel<Msg>, process: sandbox::PipedProcess) {
    let sandbox::PipedProcess {
        mut stdin,
        mut stdout,
        mut stderr,
        exit,
        ..
    } = process;
    let out = channel.make_writer();
    let err = channel.make_writer_ext(Some(1));
    let copy_out = async move {
        let mut out = out;
        let _ = tokio::io::copy(&mut stdout, &mut out).await;
        let _ = out.flush().await;
    };
    let copy_err = async move {
        let mut err = err;
        let _ = tokio::io::copy(&mut stderr, &mut err).await;
        let _ = err.flush().await;
    };
    let copy_in = async {
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::Data { data } if stdin.write_all(&data).await.is_err() => break,
                ChannelMsg::Eof | ChannelMsg::Close => break,
                _ => {}
            }
        }
        drop(stdin);
    };
    // Output is read to its end, whatever input does.
    let outputs = async { tokio::join!(copy_out, copy_err) };
    tokio::pin!(outputs);
    tokio::select! {
        _ = &mut outputs => {}
        () = copy_in => { outputs.await; }
    }
    let code = exit.await.unwrap_or(128 + libc::SIGKILL);
    finish(&channel, code).await;
}

async fn finish(channel: &Channel<Msg>, code: i32) {
    let _ = channel.exit_status(code as u32).await;
    let _ = channel.eof().await;
    let _ = channel.close().await;
}
