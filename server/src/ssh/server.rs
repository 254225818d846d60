//! The SSH server (russh): one connection's handler. Public keys only, and
//! only a key the session's owner added, for `<instance>.<session id>`;
//! every refusal looks the same and takes the same time. A session channel
//! runs a command (with pipes, its exit status sent back), the `sftp`
//! subsystem (the instance's own sftp-server), or a login shell: with a
//! PTY that shell is one of the instance's terminal tabs, which the page
//! shows and which outlives a server restart like any other; window
//! changes follow. `-L` reaches ports inside the instance; agent, X11 and
//! remote forwarding are refused, with a line saying so.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelMsg};
use tokio::io::AsyncWriteExt;

use crate::ops::metrics::{self, SshLogin};
use crate::session::sessions::{InstanceEntry, Session as PlaygroundSession, Sessions};
use crate::session::terminal::{Follower, Terminal};
use crate::ssh::limit::Limiter;
use crate::ssh::{requests, user};
use playground_protocol::SessionEvent;

impl Connection {
    pub fn new(sessions: Arc<Sessions>, limiter: Arc<Limiter>, peer: std::net::IpAddr) -> Self {
        Connection {
            sessions,
            limiter,
            peer,
            login: None,
            channels: HashMap::new(),
            ptys: HashMap::new(),
            shells: HashMap::new(),
            env: HashMap::new(),
            refused: HashMap::new(),
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
    limiter: Arc<Limiter>,
    peer: std::net::IpAddr,
    /// The session and instance this connection logged in to.
    login: Option<(Arc<PlaygroundSession>, Arc<InstanceEntry>)>,
    /// Session channels opened and not yet running anything.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// The PTY a channel asked for: its size and `TERM`.
    ptys: HashMap<ChannelId, (u16, u16, String)>,
    /// Running shells (terminal tabs), for window changes.
    shells: HashMap<ChannelId, Arc<Terminal>>,
    /// Variables a client sent for a channel (`SendEnv`), those allowed.
    env: HashMap<ChannelId, Vec<String>>,
    /// What a channel asked for and was refused, said when its shell starts.
    refused: HashMap<ChannelId, Vec<&'static str>>,
}

impl Connection {
    /// The session and instance `user` names, if `key` may log in to it
    /// and this address has not failed too often.
    async fn admitted(
        &self,
        name: &str,
        key: &russh::keys::PublicKey,
    ) -> Option<(Arc<PlaygroundSession>, Arc<InstanceEntry>)> {
        if !self.limiter.allows(self.peer) {
            return None;
        }
        let target = user::parse(name)?;
        let session = self.sessions.get(&target.session).ok()?;
        if !session.ssh_keys.admits(key) {
            return None;
        }
        let entry = session.instance(&target.instance).await.ok()?;
        Some((session, entry))
    }

    /// A refusal, counted against the address.
    fn refuse(&self) -> Auth {
        self.limiter.failed(self.peer);
        metrics::get().ssh_login(SshLogin::refused);
        reject()
    }

    fn entry(&self) -> Option<Arc<InstanceEntry>> {
        self.login.as_ref().map(|(_, entry)| entry.clone())
    }
}

/// Lines a shell's user sees for what its connection asked and was refused.
const AGENT_REFUSED: &str =
    "playground: agent forwarding is refused: instances never hold your keys";
const X11_REFUSED: &str = "playground: X11 forwarding is not offered";

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
            None => self.refuse(),
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        match self.admitted(user, key.public_key).await {
            Some(login) => {
                self.login = Some(login);
                metrics::get().ssh_login(SshLogin::accepted);
                Ok(Auth::Accept)
            }
            None => Ok(self.refuse()),
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
        term: &str,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (cols, rows) = requests::window(cols, rows);
        self.ptys
            .insert(channel, (cols, rows, requests::terminal_type(term)));
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
        if let Some(terminal) = self.shells.get(&channel) {
            let (cols, rows) = requests::window(cols, rows);
            let _ = terminal.resize(cols, rows);
        }
        Ok(())
    }

    /// With a PTY: a new terminal tab of the instance. Without (`ssh -T`):
    /// a login shell on pipes, as sshd does.
    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some((owner, entry)), Some(ch)) = (self.login.clone(), self.channels.remove(&channel))
        else {
            return session.channel_failure(channel);
        };
        let mut env = self.env.remove(&channel).unwrap_or_default();
        let Some((cols, rows, term)) = self.ptys.remove(&channel) else {
            let argv = vec!["/bin/bash".to_string(), "-l".to_string()];
            return start_piped(&entry, ch, argv, env, session).await;
        };
        env.push(format!("TERM={term}"));
        match entry.open_free_tab(env, cols, rows).await {
            Ok((tab, terminal)) => {
                session.channel_success(channel)?;
                tracing::info!(instance = %entry.name, tab, "ssh shell");
                let notes = self.refused.remove(&channel).unwrap_or_default();
                for note in notes {
                    session.extended_data(channel, 1, format!("{note}\r\n").into_bytes())?;
                }
                self.shells.insert(channel, terminal.clone());
                publish_shells(&owner, &entry);
                tokio::spawn(async move {
                    run_tab(ch, terminal.follow(), entry.instance.clone()).await;
                    // Once ended, the tab is free again (the page may say so).
                    publish_shells(&owner, &entry);
                });
                Ok(())
            }
            Err(e) => {
                // Said on the user's terminal, then the request fails.
                session.extended_data(channel, 1, format!("{}\r\n", e.message).into_bytes())?;
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
        let (Some(entry), Some(ch)) = (self.entry(), self.channels.remove(&channel)) else {
            return session.channel_failure(channel);
        };
        let command = String::from_utf8_lossy(data).into_owned();
        let argv = vec!["/bin/bash".to_string(), "-c".to_string(), command];
        let env = self.env.remove(&channel).unwrap_or_default();
        start_piped(&entry, ch, argv, env, session).await
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match requests::env_var(name, value) {
            Some(var) => {
                self.env.entry(channel).or_default().push(var);
                session.channel_success(channel)
            }
            None => session.channel_failure(channel),
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
        let entry = self.entry();
        let ch = self.channels.remove(&channel);
        let (Some(entry), Some(ch), "sftp") = (entry, ch, name) else {
            return session.channel_failure(channel);
        };
        let argv = vec!["/usr/lib/openssh/sftp-server".to_string()];
        start_piped(&entry, ch, argv, Vec::new(), session).await
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
        let Some(entry) = self.entry() else {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let Some(port) = requests::forward_port(host, port, &entry.name) else {
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
        self.refused.entry(channel).or_default().push(AGENT_REFUSED);
        session.channel_failure(channel)?;
        Ok(false)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refused.entry(channel).or_default().push(X11_REFUSED);
        session.channel_failure(channel)
    }

    /// `ssh -R`: refused (the client says "remote port forwarding failed");
    /// programs in an instance reach the world through its own network,
    /// and the playground's port links publish its ports.
    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        tracing::debug!(address, port = *port, "ssh: remote forwarding refused");
        Ok(false)
    }
}

/// Start `argv` in the instance with pipes for the channel `ch` (a
/// command, a shell without a PTY, sftp-server), and say whether it started.
async fn start_piped(
    entry: &InstanceEntry,
    ch: Channel<Msg>,
    argv: Vec<String>,
    env: Vec<String>,
    session: &mut Session,
) -> Result<(), russh::Error> {
    let channel = ch.id();
    let program = argv.first().cloned().unwrap_or_default();
    match entry.instance.spawn_piped(argv, env).await {
        Ok(process) => {
            session.channel_success(channel)?;
            tokio::spawn(run_command(ch, process));
            Ok(())
        }
        Err(e) => {
            tracing::warn!(instance = %entry.name, %program, "ssh: {e}");
            session.channel_failure(channel)
        }
    }
}

/// Tell the session's pages that `entry`'s running shells changed.
fn publish_shells(owner: &PlaygroundSession, entry: &InstanceEntry) {
    owner.publish(SessionEvent::ShellsChanged {
        name: entry.name.clone(),
        shells: entry.shells(),
    });
}

/// A terminal tab's shell on an SSH channel: its output from the start
/// (the prompt), keystrokes to it, until it exits (its exit status is
/// sent) or the connection ends (the shell is hung up, as sshd does, so
/// tabs of gone logins do not pile up).
async fn run_tab(mut channel: Channel<Msg>, mut follower: Follower, instance: sandbox::Instance) {
    let terminal = follower.terminal().clone();
    let writer = channel.make_writer();
    let output = async move {
        let mut writer = writer;
        loop {
            match follower.next().await {
                Ok(chunk) => {
                    if writer.write_all(&chunk).await.is_err() {
                        return None;
                    }
                }
                Err(code) => {
                    let _ = writer.flush().await;
                    return Some(code);
                }
            }
        }
    };
    let input = async {
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::Data { data } if terminal.type_input(&data).await.is_err() => break,
                ChannelMsg::Eof | ChannelMsg::Close => break,
                _ => {}
            }
        }
    };
    tokio::select! {
        code = output => match code {
            Some(code) => finish(&channel, code).await,
            None => terminal.hang_up(instance),
        },
        () = input => terminal.hang_up(instance),
    }
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
