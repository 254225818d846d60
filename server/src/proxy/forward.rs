//! Forward one request to a port inside an instance and its answer back.
//!
//! Each request gets its own HTTP/1.1 connection to the instance (the
//! browser's connection to us stays alive across requests). Bodies stream
//! frame by frame both ways, so a large download or upload never sits in
//! memory; large response bodies of known length are spliced between the
//! sockets instead (see [`super::splice`]). An `Upgrade` request (WebSocket) that the program accepts with
//! 101 becomes a byte pipe between the two connections until they close.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Version};
use axum::response::{IntoResponse, Response};
use hyper::body::{Bytes, Frame, SizeHint};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::handover::{Client, UpstreamIo};
use super::page::Page;
use super::{splice, Forward, Proxy, Target};
use crate::ops::metrics::{self, CountedBody, Direction};

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
    let target = forward.target.clone();
    match forward_inner(proxy, forward, request).await {
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

/// A connection to the target port, made inside the instance.
async fn connect(proxy: &Proxy, target: &Target) -> Result<TcpStream, Page> {
    let Target {
        sid,
        instance: name,
        port,
    } = target;
    let session = proxy
        .sessions
        .get(sid)
        .map_err(|_| Page::unknown_session(sid))?;
    let entry = session
        .instance(name)
        .await
        .map_err(|_| Page::unknown_instance(name))?;
    if !entry.instance.is_running() {
        return Err(Page::not_running(name));
    }
    let timeout = CONNECT_TIMEOUT.as_secs();
    match tokio::time::timeout(CONNECT_TIMEOUT, entry.instance.connect(*port)).await {
        Ok(Ok(stream)) => Ok(stream),
        Err(_) => Err(Page::connect_timeout(name, *port, timeout)),
        Ok(Err(e)) => Err(match e.kind() {
            std::io::ErrorKind::ConnectionRefused => Page::nothing_listening(name, *port),
            std::io::ErrorKind::NotConnected => Page::not_running(name),
            std::io::ErrorKind::TimedOut => Page::connect_timeout(name, *port, timeout),
            _ => Page::connect_failed(name, *port, &e),
        }),
    }
}

async fn forward_inner(
    proxy: &Proxy,
    forward: Forward,
    mut request: Request,
) -> Result<Response, Page> {
    let Forward {
        target,
        uri,
        prefix,
    } = forward;
    let (name, port) = (target.instance.as_str(), target.port);
    let stream = connect(proxy, &target).await?;
    let _ = stream.set_nodelay(true);
    let (stream, upstream) = UpstreamIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, TrackedBody>(TokioIo::new(stream))
        .await
        .map_err(|e| Page::bad_upstream(name, port, with_causes(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!("proxy: connection to an instance: {e}");
        }
    });

    // The browser's side of an upgrade, taken before the request moves on.
    let client_upgrade = upgrade_protocol(request.headers())
        .map(|protocol| (protocol, hyper::upgrade::on(&mut request)));
    let client = request
        .extensions()
        .get::<ConnectInfo<Client>>()
        .map(|c| c.0.clone());
    let client_ip = client.as_ref().map(|c| c.addr.ip());
    // Splicing into the browser's socket needs HTTP/1 framing on it, and a
    // body to send (none for HEAD).
    let may_splice = matches!(request.version(), Version::HTTP_11 | Version::HTTP_10)
        && request.method() != axum::http::Method::HEAD;
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
    if let Some(ip) = client_ip {
        append_forwarded_for(headers, ip);
    }
    if let Ok(scheme) = HeaderValue::from_str(&proxy.settings.scheme) {
        headers.insert(X_FORWARDED_PROTO, scheme);
    }
    if let Some(value) = prefix
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        headers.insert(X_FORWARDED_PREFIX, value);
    }
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    parts.extensions = Default::default();
    let body = Body::new(CountedBody::new(body, Direction::to_instance));
    let (body, body_sent) = TrackedBody::new(body);
    let request_sent = body.sent_flag();

    // No time limit while the browser is still uploading; once the request
    // is sent in full, the program has HEADER_TIMEOUT to answer.
    let response = sender.send_request(Request::from_parts(parts, body));
    tokio::pin!(response);
    let answered = tokio::select! {
        answer = &mut response => Ok(answer),
        _ = body_sent => tokio::time::timeout(HEADER_TIMEOUT, &mut response).await,
    };
    let mut response = match answered {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => return Err(Page::bad_upstream(name, port, with_causes(&e))),
        Err(_) => return Err(Page::upstream_timeout(name, port, HEADER_TIMEOUT.as_secs())),
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
        let protocol = parts.headers.get(header::UPGRADE).cloned();
        strip_hop_by_hop(&mut parts.headers);
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(protocol) = protocol {
            parts.headers.insert(header::UPGRADE, protocol);
        }
        parts.version = Version::HTTP_11;
        tokio::spawn(splice(client_upgrade, upstream_upgrade));
        return Ok(Response::from_parts(parts, Body::empty()));
    }

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
        .filter(|_| may_splice && request_sent.load(Ordering::Acquire))
        .and_then(|c| c.socket());
    let body = splice::body(body, upstream, client_socket);
    let body = CountedBody::new(body, Direction::from_instance);
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// An error and its causes, e.g. `connection error: Connection reset by peer`.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// The protocol an `Upgrade` request asks for (`Connection: upgrade` and
/// an `Upgrade` header), if it is one.
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
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
fn strip_hop_by_hop(headers: &mut HeaderMap) {
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

/// Add the browser's address to `X-Forwarded-For` (after any a front proxy set).
fn append_forwarded_for(headers: &mut HeaderMap, ip: IpAddr) {
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

/// The browser's request body, passed on frame by frame, telling when it
/// has been sent in full (or failed, or was dropped).
struct TrackedBody {
    body: Body,
    sent: Option<oneshot::Sender<()>>,
    /// The same news, for whoever asks later.
    sent_flag: Arc<AtomicBool>,
}

impl TrackedBody {
    fn new(body: Body) -> (TrackedBody, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut tracked = TrackedBody {
            body,
            sent: Some(tx),
            sent_flag: Arc::default(),
        };
        if hyper::body::Body::is_end_stream(&tracked.body) {
            tracked.done();
        }
        (tracked, rx)
    }

    fn sent_flag(&self) -> Arc<AtomicBool> {
        self.sent_flag.clone()
    }

    fn done(&mut self) {
        self.sent_flag.store(true, Ordering::Release);
        if let Some(tx) = self.sent.take() {
            let _ = tx.send(());
        }
    }
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        let finished = match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => self.body.is_end_stream(),
            Poll::Pending => false,
        };
        if finished {
            self.done();
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
        let mut headers = map(&[("x-forwarded-for", "203.0.113.7")]);
        append_forwarded_for(&mut headers, "::ffff:127.0.0.1".parse().unwrap());
        assert_eq!(headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
        let mut headers = HeaderMap::new();
        append_forwarded_for(&mut headers, "::1".parse().unwrap());
        assert_eq!(headers["x-forwarded-for"], "::1");
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
