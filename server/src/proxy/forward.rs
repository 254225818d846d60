//! Forward one request to a port inside an instance and its answer back.
//!
//! Requests go over HTTP/1.1 connections to the instance's port, kept for
//! the next request when the exchange ends cleanly (see [`super::pool`]),
//! and driven by the request's own task while it may end in the pool;
//! a kept one found closed by the program is replaced, and the request sent
//! again when that is safe. Bodies stream frame by frame both ways, so a
//! large download or upload never sits in memory; large response bodies of
//! known length are spliced between the sockets instead (see
//! [`super::splice`]). An `Upgrade` request (WebSocket) that the program
//! accepts with 101 becomes a byte pipe between the two connections until
//! they close.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as _, Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::TrySendError;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use super::body::{SentFlag, TrackedBody};
use super::handover::{Client, UpstreamIo};
use super::page::Page;
use super::pool::{Anchor, Conn, Driver, Key, Pool};
use super::{splice, Forward, Proxy, Target};
use crate::ops::metrics::{self, CountedBody, Direction};
use crate::session::sessions::InstanceEntry;

/// Longest wait for a connection to the instance's port.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the answer's head once the request is sent in full.
const HEADER_TIMEOUT: Duration = Duration::from_secs(60);

/// Headers that describe one connection, not the message (RFC 9110 7.6.1,
/// plus the unofficial `proxy-connection` and `keep-alive`).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// Forward `request` as `forward` says; the program's answer, or a page
/// that says why there is none.
pub(super) async fn forward(proxy: &Proxy, forward: Forward, request: Request) -> Response {
    let Forward {
        target,
        uri,
        prefix,
    } = forward;
    match forward_inner(proxy, &target, uri, prefix, request).await {
        Ok(response) => {
            metrics::get().proxy_answered(response.status());
            response
        }
        Err(page) => {
            metrics::get().proxy_answered(page.status);
            tracing::debug!(
                session = %target.sid,
                instance = %target.instance,
                port = target.port,
                status = page.status.as_u16(),
                "proxy: {}",
                page.message
            );
            page.into_response()
        }
    }
}

/// The instance `target` names, if it exists and runs.
async fn instance_entry(proxy: &Proxy, target: &Target) -> Result<Arc<InstanceEntry>, Page> {
    let session = proxy
        .sessions
        .get(&target.sid)
        .map_err(|_| Page::unknown_session(&target.sid))?;
    let entry = session
        .instance(&target.instance)
        .await
        .map_err(|_| Page::unknown_instance(&target.instance))?;
    if !entry.instance.is_running() {
        return Err(Page::not_running(&target.instance));
    }
    Ok(entry)
}

/// A new connection to `port` in the instance, made inside it, with a task
/// that drives it (see [`drive`]), and the pool watching the instance.
async fn open(
    proxy: &Proxy,
    entry: &Arc<InstanceEntry>,
    key: Key,
    port: u16,
) -> Result<Conn, Page> {
    let name = entry.name.as_str();
    let timeout = CONNECT_TIMEOUT.as_secs();
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, entry.instance.connect(port)).await {
        Ok(Ok(stream)) => stream,
        Err(_) => return Err(Page::connect_timeout(name, port, timeout)),
        Ok(Err(e)) => {
            return Err(match e.kind() {
                std::io::ErrorKind::ConnectionRefused => Page::nothing_listening(name, port),
                std::io::ErrorKind::NotConnected => Page::not_running(name),
                std::io::ErrorKind::TimedOut => Page::connect_timeout(name, port, timeout),
                _ => Page::connect_failed(name, port, &e),
            })
        }
    };
    // Requests and small answers go out at once, not after Nagle's wait.
    let _ = stream.set_nodelay(true);
    let (stream, upstream) = UpstreamIo::new(stream);
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, TrackedBody>(TokioIo::new(stream))
        .await
        .map_err(|e| Page::bad_upstream(name, port, with_causes(&e)))?;
    // When the instance's init exits (deletion kills it), every kept
    // connection to it goes, so none keeps its network namespace alive.
    let instance = entry.instance.clone();
    let anchor: Weak<InstanceEntry> = Arc::downgrade(entry);
    proxy
        .pool
        .watch(key, anchor, async move { instance.exited().await });
    Ok(Conn::new(sender, connection, upstream))
}

/// Give hyper's side of a connection a task of its own, for an exchange
/// whose answer does not end in the pool (spliced, upgraded, closing): it
/// runs until the connection ends.
fn detach(conn: &mut Conn) {
    detach_driver(&mut conn.driver);
}

fn detach_driver(driver: &mut Option<Driver>) {
    let Some(driver) = driver.take() else {
        return;
    };
    tokio::spawn(async move {
        if let Err(e) = driver.with_upgrades().await {
            tracing::debug!("proxy: connection to an instance: {e}");
        }
    });
}

/// Why sending a request on a connection gave no answer.
enum Failure {
    /// Boxed: the request it may hold back is large, and this is rare.
    Hyper(Box<TrySendError<Request<TrackedBody>>>),
    Timeout,
}

/// Send `request` and wait for the answer's head: no time limit while the
/// browser is still uploading; once the request is sent in full (`body_sent`
/// fires, and is then taken), the program has HEADER_TIMEOUT to answer.
/// This task drives the connection meanwhile (see `pool`).
async fn send(
    conn: &mut Conn,
    request: Request<TrackedBody>,
    body_sent: &mut Option<oneshot::Receiver<()>>,
) -> Result<hyper::Response<Incoming>, Failure> {
    let mut answer = std::pin::pin!(conn.sender.try_send_request(request));
    let response = std::future::poll_fn(|cx| {
        // A connection that ends drops hyper's side, which fails the
        // request (giving it back if it never went out).
        let _ = conn.poll_driver(cx);
        answer.as_mut().poll(cx)
    });
    tokio::pin!(response);
    if let Some(sent) = body_sent {
        tokio::select! {
            answer = &mut response => return answer.map_err(|e| Failure::Hyper(Box::new(e))),
            _ = sent => {}
        }
        *body_sent = None;
    }
    match tokio::time::timeout(HEADER_TIMEOUT, response).await {
        Ok(answer) => answer.map_err(|e| Failure::Hyper(Box::new(e))),
        Err(_) => Err(Failure::Timeout),
    }
}

/// Whether `error` says the program closed the connection (or reset it)
/// before answering: what a kept connection meets when the program's own
/// idle timeout closed it just as the request went out.
fn closed_early(error: &hyper::Error) -> bool {
    if error.is_incomplete_message() || error.is_canceled() {
        return true;
    }
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        cause = e.source();
    }
    false
}

/// Methods that may be sent twice (RFC 9110 9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Whether the program lets the connection stay open after this answer.
fn keeps_alive(response: &hyper::Response<Incoming>) -> bool {
    response.version() == Version::HTTP_11
        && !response
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("close"))
}

async fn forward_inner(
    proxy: &Proxy,
    target: &Target,
    uri: Uri,
    prefix: Option<String>,
    mut request: Request,
) -> Result<Response, Page> {
    let (name, port) = (target.instance.as_str(), target.port);
    let entry = instance_entry(proxy, target).await?;
    let (key, anchor) = Key::new(&entry, port);
    let (mut conn, mut reused) = match proxy.pool.checkout(key) {
        Some(conn) => (conn, true),
        None => (open(proxy, &entry, key, port).await?, false),
    };

    // The browser's side of an upgrade, taken before the request moves on.
    let client_upgrade = upgrade_protocol(request.headers())
        .map(|protocol| (protocol, hyper::upgrade::on(&mut request)));
    let upgrading = client_upgrade.is_some();
    let client = request
        .extensions()
        .get::<ConnectInfo<Client>>()
        .map(|c| c.0.clone());
    // Splicing into the browser's socket needs HTTP/1 framing on it, and a
    // body to send (none for HEAD).
    let may_splice = matches!(request.version(), Version::HTTP_11 | Version::HTTP_10)
        && request.method() != Method::HEAD;
    let (mut parts, body) = request.into_parts();
    let headers = &mut parts.headers;
    // HTTP/2 clients send no Host; their authority stands in for it.
    let host = headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    strip_hop_by_hop(headers);
    if let Some((protocol, _)) = &client_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    if let Some(host) = host {
        headers.insert(header::HOST, host.clone());
        headers.insert(X_FORWARDED_HOST, host);
    }
    if let Some(client) = &client {
        append_forwarded_for(headers, client.addr.ip(), client.forwarded_for.as_ref());
    }
    headers.insert(X_FORWARDED_PROTO, proxy.scheme.clone());
    if let Some(value) = prefix
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        headers.insert(X_FORWARDED_PREFIX, value);
    }
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    parts.extensions = Default::default();
    let method = parts.method.clone();
    // A request without a body may be sent again when a kept connection
    // turns out closed; only then is a copy of its head worth making.
    let mut replay = (reused && idempotent(&method) && body.is_end_stream())
        .then(|| (parts.uri.clone(), parts.headers.clone()));
    let body = Body::new(CountedBody::new(body, Direction::to_instance));
    let (body, mut body_sent) = TrackedBody::new(body);
    let mut request_sent = body.sent_flag();
    let mut request = Request::from_parts(parts, body);

    if upgrading {
        // hyper hands an upgraded connection over only from a task of its
        // own; it is never kept.
        detach(&mut conn);
    }
    let mut response = loop {
        let mut failed = match send(&mut conn, request, &mut body_sent).await {
            Ok(response) => break response,
            Err(Failure::Timeout) => {
                return Err(Page::upstream_timeout(name, port, HEADER_TIMEOUT.as_secs()))
            }
            Err(Failure::Hyper(failed)) => failed,
        };
        // Once, on a fresh connection: a request that never went out (the
        // kept connection was found closed), or one without a body that
        // may safely go twice.
        let again = match (reused, failed.take_message()) {
            (true, Some(unsent)) => Some(unsent),
            (true, None) if closed_early(failed.error()) => replay.take().map(|(uri, headers)| {
                let (body, sent) = TrackedBody::new(Body::empty());
                request_sent = body.sent_flag();
                body_sent = sent;
                let mut request = Request::new(body);
                *request.method_mut() = method.clone();
                *request.uri_mut() = uri;
                *request.headers_mut() = headers;
                request
            }),
            _ => None,
        };
        let error = (*failed).into_error();
        match again {
            Some(retry) => {
                tracing::debug!("proxy: a kept connection was closed ({error}); sending again");
                request = retry;
                conn = open(proxy, &entry, key, port).await?;
                reused = false;
                if upgrading {
                    detach(&mut conn);
                }
            }
            None if reused && closed_early(&error) => {
                return Err(Page::closed_before_answer(
                    name,
                    port,
                    &method,
                    idempotent(&method),
                ))
            }
            None => return Err(Page::bad_upstream(name, port, with_causes(&error))),
        }
    };

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some((_, client_upgrade)) = client_upgrade else {
            return Err(Page::bad_upstream(
                name,
                port,
                "it switched protocols although the browser did not ask for it",
            ));
        };
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        let (mut parts, _) = response.into_parts();
        switched_protocols_head(&mut parts);
        tokio::spawn(splice(client_upgrade, upstream_upgrade));
        // The connection is the upgrade's now: never kept.
        return Ok(Response::from_parts(parts, Body::empty()));
    }

    let keep = keeps_alive(&response);
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // Our side speaks HTTP/1.1 (keep-alive) whatever the program speaks.
    parts.version = Version::HTTP_11;
    if let Some(prefix) = &prefix {
        rewrite_location(&mut parts.headers, prefix);
        // The path form serves instance content on the playground's own
        // origin: a sandboxed document gets an opaque origin instead, so it
        // cannot read the page's storage or call the API as the page.
        parts.headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads",
            ),
        );
    }
    // Only once the request is sent in full: the splice then owns the
    // connection to the instance, with nothing left for hyper to write.
    let client_socket = client
        .filter(|_| may_splice && request_sent.is_sent())
        .and_then(|c| c.socket());
    let Conn {
        sender,
        mut driver,
        upstream,
    } = conn;
    let body = match splice::body(body, upstream, client_socket) {
        // A refused upgrade leaves the connection in a state fewer
        // programs get right: not kept either.
        Err((body, upstream)) if keep && !upgrading => Body::new(KeepBody {
            body,
            ended: false,
            failed: false,
            conn: Some(Conn {
                sender,
                driver,
                upstream,
            }),
            release: Some(Release {
                pool: proxy.pool.clone(),
                key,
                anchor,
                request_sent,
            }),
        }),
        // A spliced connection ends with its body; one that closes after
        // it too: hyper's side of them runs on its own until then.
        Ok(spliced) => {
            detach_driver(&mut driver);
            spliced
        }
        Err((body, _)) => {
            detach_driver(&mut driver);
            Body::new(body)
        }
    };
    let body = CountedBody::new(body, Direction::from_instance);
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// Where a response body gives its connection back when it has been read
/// to its end.
struct Release {
    pool: Arc<Pool>,
    key: Key,
    anchor: Anchor,
    request_sent: SentFlag,
}

/// The program's response body, passed on as it is, with the connection
/// it comes over, which it drives; read to its end without error, it gives
/// the connection back to the pool when dropped (hyper's server drops it
/// once done with it, or never polls it when it is empty).
struct KeepBody {
    body: Incoming,
    ended: bool,
    failed: bool,
    /// Until dropped.
    conn: Option<Conn>,
    release: Option<Release>,
}

impl hyper::body::Body for KeepBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        // hyper reads the body's bytes from the instance into `body`; a
        // connection that ends there ends `body` too.
        if let Some(conn) = self.conn.as_mut() {
            let _ = conn.poll_driver(cx);
        }
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.ended = true,
            Poll::Ready(Some(Err(_))) => self.failed = true,
            Poll::Ready(Some(Ok(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for KeepBody {
    fn drop(&mut self) {
        let (Some(release), Some(conn)) = (self.release.take(), self.conn.take()) else {
            return;
        };
        // A body of known length is through when its last byte came in.
        let through = self.ended || self.body.is_end_stream();
        if through && !self.failed && release.request_sent.is_sent() {
            release.pool.put(release.key, release.anchor, conn);
        }
    }
}

/// An error and its causes, e.g. `connection error: Connection reset by peer`.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// The head of a 101 answer passed on to the client: the connection's own
/// headers dropped, but `Connection: upgrade` and the `Upgrade` protocol
/// the program (or node) chose kept, as HTTP/1.1.
pub(crate) fn switched_protocols_head(parts: &mut axum::http::response::Parts) {
    let protocol = parts.headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(protocol) = protocol {
        parts.headers.insert(header::UPGRADE, protocol);
    }
    parts.version = Version::HTTP_11;
}

/// The protocol an `Upgrade` request asks for (`Connection: upgrade` and
/// an `Upgrade` header), if it is one.
pub(crate) fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

/// Remove the hop-by-hop headers, and those that `Connection` names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages have none: one pass over them is cheaper than nine
    // lookups.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// Add the browser's address to `X-Forwarded-For` (after any a front proxy
/// set); `made` is the header for the address alone, if already made.
fn append_forwarded_for(headers: &mut HeaderMap, ip: IpAddr, made: Option<&HeaderValue>) {
    if let (Some(value), false) = (made, headers.contains_key(&X_FORWARDED_FOR)) {
        headers.insert(X_FORWARDED_FOR, value.clone());
        return;
    }
    let ip = ip.to_canonical().to_string();
    let mut chain: Vec<String> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    chain.push(ip);
    if let Ok(value) = HeaderValue::from_str(&chain.join(", ")) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

/// For the path-based form: a redirect to `/x` means `<prefix>/x`.
fn rewrite_location(headers: &mut HeaderMap, prefix: &str) {
    let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let site_absolute = location.starts_with('/') && !location.starts_with("//");
    if !site_absolute || location.starts_with(&format!("{prefix}/")) {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{prefix}{location}")) {
        headers.insert(header::LOCATION, value);
    }
}

/// Copy bytes both ways between the browser and the program after a 101.
async fn splice(client: OnUpgrade, upstream: OnUpgrade) {
    match tokio::join!(client, upstream) {
        (Ok(client), Ok(upstream)) => {
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                Ok((sent, received)) => {
                    metrics::get().proxy_bytes(Direction::to_instance, sent);
                    metrics::get().proxy_bytes(Direction::from_instance, received);
                }
                Err(e) => tracing::debug!("proxy: upgraded connection ended: {e}"),
            }
        }
        (Err(e), _) | (_, Err(e)) => tracing::debug!("proxy: upgrade failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn hop_by_hop_headers_go_and_end_to_end_ones_stay() {
        let mut headers = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic eA=="),
            ("content-type", "text/plain"),
            ("cookie", "a=b"),
        ]);
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["content-type", "cookie"]);
    }

    #[test]
    fn upgrades_are_recognised() {
        let ws = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert_eq!(
            upgrade_protocol(&ws),
            Some(HeaderValue::from_static("websocket"))
        );
        assert_eq!(upgrade_protocol(&map(&[("upgrade", "websocket")])), None);
        assert_eq!(upgrade_protocol(&map(&[("connection", "upgrade")])), None);
    }

    #[test]
    fn forwarded_for_is_a_chain() {
        let made = HeaderValue::from_static("127.0.0.1");
        let mut headers = map(&[("x-forwarded-for", "203.0.113.7")]);
        let ip = "::ffff:127.0.0.1".parse().unwrap();
        append_forwarded_for(&mut headers, ip, Some(&made));
        assert_eq!(headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
        let mut headers = HeaderMap::new();
        append_forwarded_for(&mut headers, "::1".parse().unwrap(), None);
        assert_eq!(headers["x-forwarded-for"], "::1");
        let mut headers = HeaderMap::new();
        append_forwarded_for(&mut headers, ip, Some(&made));
        assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    }

    #[test]
    fn redirects_stay_under_the_path_prefix() {
        let prefix = "/proxy/s/node1/8000";
        for (location, expected) in [
            ("/dir/", "/proxy/s/node1/8000/dir/"),
            ("/proxy/s/node1/8000/x", "/proxy/s/node1/8000/x"),
            ("//elsewhere.example/", "//elsewhere.example/"),
            ("http://example.com/a", "http://example.com/a"),
            ("relative", "relative"),
        ] {
            let mut headers = map(&[("location", location)]);
            rewrite_location(&mut headers, prefix);
            assert_eq!(headers["location"], expected, "{location}");
        }
    }
}
