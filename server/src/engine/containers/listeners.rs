//! The listeners of published ports, held by the server while their
//! containers run ([`Publications`], kept in the containers' store), and
//! the forwarding of every connection they accept to the container.
//! `publish` binds them ([`Bound`]) before a container starts.
//!
//! Listeners and forwarded connections are sockets of the instance's
//! network namespace and keep it alive: they are closed when the container
//! stops, and before its instance is destroyed.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::bindings::PublishedPort;
use crate::engine::ctx::Ctx;

/// Buffer per direction of a forwarded connection.
const BUFFER: usize = 64 * 1024;
/// How long closing waits for listeners and connections to be dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The open listeners of every container, by container id.
#[derive(Default)]
pub struct Publications {
    open: Mutex<HashMap<String, Publication>>,
}

/// One container's listeners and connections: each of their tasks holds a
/// receiver of `stop`, so when every receiver is gone, every socket is.
struct Publication {
    instance: String,
    stop: watch::Sender<bool>,
}

impl Publication {
    /// Stop its tasks and wait until their sockets are closed.
    async fn close(self) {
        self.stop.send_replace(true);
        if tokio::time::timeout(CLOSE_WAIT, self.stop.closed())
            .await
            .is_err()
        {
            tracing::warn!(instance = %self.instance, "published ports still open after {CLOSE_WAIT:?}");
        }
    }
}

/// The ports a container publishes, and the listeners that serve them.
#[derive(Default)]
pub struct Bound {
    pub published: Vec<PublishedPort>,
    pub(super) listeners: Vec<(PublishedPort, TcpListener)>,
}

impl Bound {
    pub fn extend(&mut self, other: Bound) {
        self.published.extend(other.published);
        self.listeners.extend(other.listeners);
    }
}

impl Publications {
    /// Serve the listeners of `bound` for container `id` until
    /// [`Publications::close`].
    pub fn open(&self, ctx: &Ctx, id: &str, bound: Bound) {
        if bound.listeners.is_empty() {
            return;
        }
        let (stop, stopped) = watch::channel(false);
        for (port, listener) in bound.listeners {
            let task = accept(ctx.clone(), id.to_string(), port, listener, stopped.clone());
            tokio::spawn(task);
        }
        let publication = Publication {
            instance: ctx.instance.clone(),
            stop,
        };
        let earlier = self
            .open
            .lock()
            .unwrap()
            .insert(id.to_string(), publication);
        if let Some(earlier) = earlier {
            // Not expected (a start ends the last run's first): never leak it.
            earlier.stop.send_replace(true);
        }
    }

    /// Close container `id`'s listeners and connections; returns once
    /// their sockets are closed.
    pub async fn close(&self, id: &str) {
        let publication = self.open.lock().unwrap().remove(id);
        if let Some(p) = publication {
            p.close().await;
        }
    }

    /// Close those of every container of `instance`.
    pub async fn close_instance(&self, instance: &str) {
        let closing: Vec<Publication> = {
            let mut open = self.open.lock().unwrap();
            let ids: Vec<String> = open
                .iter()
                .filter(|(_, p)| p.instance == instance)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| open.remove(id)).collect()
        };
        futures_util::future::join_all(closing.into_iter().map(Publication::close)).await;
    }
}

/// Accept connections on a published port until told to stop.
async fn accept(
    ctx: Ctx,
    id: String,
    port: PublishedPort,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            accepted = listener.accept() => accepted,
        };
        let client = match accepted {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of descriptors, say: try again soon rather than spin.
                tracing::debug!(instance = %ctx.instance, "published port: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        let id = id.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => {}
                () = forward(&ctx, &id, port, client) => {}
            }
        });
    }
}

/// Where the container's port is reached from the instance: its bridge
/// address, or loopback when it shares the instance's network. Looked up
/// per connection (the address is known only once it runs). None when
/// that is the published port itself: a connection to ourselves would
/// loop.
fn target(ctx: &Ctx, id: &str, port: PublishedPort) -> Option<SocketAddr> {
    let ip = ctx.engine.containers.with(&ctx.instance, |records| {
        let found = records.iter().find(|r| r.id == id).map(|r| r.ip);
        (found, false)
    })?;
    match ip {
        Some(ip) => Some(SocketAddr::from((ip, port.container_port))),
        None if port.container_port == port.host_port => None,
        None => Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port.container_port))),
    }
}

/// Copy bytes both ways between a client of the published port and the
/// container; each side's end of input is passed on as a half-close. A
/// container that does not accept closes the client.
async fn forward(ctx: &Ctx, id: &str, port: PublishedPort, mut client: TcpStream) {
    let Some(addr) = target(ctx, id, port) else {
        return;
    };
    let mut upstream = match ctx.sandbox.connect_to(addr).await {
        Ok(upstream) => upstream,
        Err(e) => {
            tracing::debug!(instance = %ctx.instance, "published port: connect to {addr}: {e}");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ =
        tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, BUFFER, BUFFER).await;
}
