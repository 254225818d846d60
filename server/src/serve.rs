//! The HTTP/1.1 listener: accepts connections and serves each with a time
//! limit on every read a client controls, a bound on open connections, and
//! a graceful stop that finishes in-flight requests.
//!
//! `axum::serve` has no header read timeout (hyper needs a timer for it), so
//! a client that sends its request head one byte a minute would hold a
//! connection forever; this loop sets one.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower_service::Service;

use crate::proxy::{Client, ClientIo};

/// How long a client may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Idle time after which the kernel probes a connection, so a vanished
/// client (no FIN, e.g. a laptop closed) does not hold a terminal forever.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Open connections at most; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 10_000;
/// How long a stop waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serve `front` (the node's proxy and router, a cluster node's guard
/// around them, or a gateway) on `listener` until `shutdown`.
pub async fn serve<S>(
    listener: TcpListener,
    front: S,
    shutdown: impl std::future::Future<Output = ()>,
) where
    S: Service<axum::extract::Request, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    // Connections watch this and finish their request in flight, then close.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        set_keepalive(&stream);
        // The proxy may splice response bodies straight to this socket.
        let io = ClientIo::new(stream);
        let client = io.client(remote);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(io), service(front.clone(), client))
            .with_upgrades();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                // It only ever changes to true (or closes, when stopping too).
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%remote, "connection: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every connection holds a slot until it is done: all slots free = all done.
    let all = MAX_CONNECTIONS as u32;
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("stopped with requests still in flight");
    }
}

/// The router (or proxy) for one connection, as hyper wants it, with the
/// client's address in every request.
fn service<S>(
    front: S,
    client: Client,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Send,
> + Clone
where
    S: Service<axum::extract::Request, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(client.addr));
        request.extensions_mut().insert(ConnectInfo(client.clone()));
        front.clone().call(request)
    })
}

fn set_keepalive(stream: &TcpStream) {
    let socket = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(Duration::from_secs(10))
        .with_retries(6);
    if let Err(e) = socket.set_tcp_keepalive(&keepalive) {
        tracing::debug!("TCP keepalive: {e}");
    }
    let _ = stream.set_nodelay(true);
}
