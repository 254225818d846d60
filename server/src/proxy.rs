//! The reverse proxy to ports inside instances.
//!
//! A request is the proxy's when its Host is `<label>.<proxy domain>` (any
//! path; see [`address`] for the label), or when its path starts with
//! `/proxy/` (the path-based form). Every other request goes to the
//! playground's own router unchanged. [`front`] puts the proxy in front of
//! that router.
//!
//! Forwarding is HTTP/1.1 over connections made inside the instance's
//! network namespace and kept for later requests to the same port (see
//! [`pool`]), with bodies streamed both ways and upgrades (WebSocket)
//! spliced; see [`forward`]. Large response bodies go from socket to socket
//! with splice(2); see [`splice`] and [`handover`].

mod address;
mod body;
mod forward;
mod handover;
mod page;
mod pool;
mod splice;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{header, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_service::Service;
use tracing::Instrument;

use crate::session::sessions::Sessions;
use address::{PathRoute, Target};
use page::Page;

pub use address::{port_url, ProxySettings};
// A cluster's gateway forwards with the same rules for headers.
pub(crate) use forward::{
    strip_hop_by_hop, switched_protocols_head, upgrade_protocol, with_causes,
};
pub use handover::{Client, ClientIo};

/// The proxy: where browsers reach the playground, and the sessions whose
/// instances it forwards to.
pub struct Proxy {
    settings: ProxySettings,
    /// `X-Forwarded-Proto`, made once.
    scheme: HeaderValue,
    sessions: Arc<Sessions>,
    /// Idle connections to instances' ports.
    pool: Arc<pool::Pool>,
}

/// A request the proxy forwards: to which port, with which path.
struct Forward {
    target: Target,
    /// Path and query sent to the instance.
    uri: Uri,
    /// For the path-based form, the path prefix that was taken off.
    prefix: Option<String>,
}

/// What the proxy makes of a request that is its.
enum Claim {
    Forward(Forward),
    Answer(Response),
}

impl Proxy {
    pub fn new(settings: ProxySettings, sessions: Arc<Sessions>) -> Arc<Proxy> {
        tracing::info!(
            "ports are served at {}",
            port_url(&settings, "<session>", "<instance>", 0).replace("-0-", "-<port>-")
        );
        let scheme =
            HeaderValue::from_str(&settings.scheme).unwrap_or(HeaderValue::from_static("http"));
        Arc::new(Proxy {
            settings,
            scheme,
            sessions,
            pool: Arc::default(),
        })
    }

    /// `None` when the request is not the proxy's.
    fn claim(&self, request: &Request) -> Option<Claim> {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        if let Some(host) = host {
            if let Some(prefix) = address::host_prefix(host, &self.settings.domain) {
                let Some(target) = address::parse_label(&prefix) else {
                    let page = Page::bad_host(host, &self.settings.domain);
                    return Some(Claim::Answer(page.into_response()));
                };
                // The request's own bytes, shared, not parsed again.
                let uri = request
                    .uri()
                    .path_and_query()
                    .cloned()
                    .map(Uri::from)
                    .unwrap_or_else(|| Uri::from_static("/"));
                return Some(Claim::Forward(Forward {
                    target,
                    uri,
                    prefix: None,
                }));
            }
        }
        let path = request.uri().path();
        let route = address::parse_path(path)?;
        let query = request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        Some(match route {
            PathRoute::Forward {
                target,
                prefix,
                rest,
            } => match format!("{rest}{query}").parse() {
                Ok(uri) => Claim::Forward(Forward {
                    target,
                    uri,
                    prefix: Some(prefix),
                }),
                Err(_) => Claim::Answer(Page::bad_path(path).into_response()),
            },
            PathRoute::AddSlash(location) => {
                Claim::Answer(page::redirect(&format!("{location}{query}")))
            }
            PathRoute::Malformed => Claim::Answer(Page::bad_path(path).into_response()),
        })
    }
}

/// For a cluster's gateway, which sends a port's requests to the node of
/// its session: `None` when a request (its `Host`, its path) is not for a
/// port; `Some(None)` when it is but names no session (malformed: the node
/// answers it with its own page); else the session's id.
pub fn port_session(host: Option<&str>, path: &str, domain: &str) -> Option<Option<String>> {
    if let Some(prefix) = host.and_then(|h| address::host_prefix(h, domain)) {
        return Some(address::parse_label(&prefix).map(|t| t.sid));
    }
    match address::parse_path(path)? {
        PathRoute::Forward { target, .. } => Some(Some(target.sid)),
        PathRoute::AddSlash(_) | PathRoute::Malformed => Some(None),
    }
}

/// The playground's router with the proxy in front of it.
pub fn front(router: Router, proxy: Arc<Proxy>) -> Front {
    Front { proxy, router }
}

/// Sends each request to the proxy or to the router.
#[derive(Clone)]
pub struct Front {
    proxy: Arc<Proxy>,
    router: Router,
}

impl Service<Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready, and so is the proxy.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.proxy.claim(&request) {
            None => {
                let future = self.router.call(request);
                Box::pin(future)
            }
            Some(Claim::Answer(response)) => Box::pin(async move { Ok(response) }),
            Some(Claim::Forward(forward)) => {
                let proxy = self.proxy.clone();
                let span = tracing::info_span!(
                    "proxy",
                    session = %forward.target.sid,
                    instance = %forward.target.instance,
                    port = forward.target.port,
                );
                let forwarded = async move { Ok(forward::forward(&proxy, forward, request).await) };
                Box::pin(forwarded.instrument(span))
            }
        }
    }
}
