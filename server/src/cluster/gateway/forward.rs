//! Forward one request from a browser to a node and the node's answer
//! back: over kept HTTP/1.1 connections (hyper's pooled client), bodies
//! streamed both ways, an `Upgrade` (terminal and event WebSockets, and a
//! port's own WebSockets) becoming a byte pipe once the node answers 101.
//! Every request carries the cluster's secret and the client's address.

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri, Version};
use axum::response::Response;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::api::clients::last_forwarded_for;
use crate::cluster::{Secret, SECRET_HEADER, SESSION_ID_HEADER, VIEWER_ID_HEADER};
use crate::proxy::{
    strip_hop_by_hop, switched_protocols_head, upgrade_protocol, with_causes, Client,
};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Why a node gave no answer.
#[derive(Debug)]
pub struct Unreachable(pub String);

pub struct Forwarder {
    http: HttpClient<HttpConnector, Body>,
    secret: HeaderValue,
    trust_forwarded_for: bool,
}

impl Forwarder {
    pub fn new(secret: &Secret, trust_forwarded_for: bool) -> Forwarder {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
        let http = HttpClient::builder(TokioExecutor::new()).build(connector);
        Forwarder {
            http,
            secret: secret.header(),
            trust_forwarded_for,
        }
    }

    /// The browser's address: the connection's, or with
    /// --trust-forwarded-for the last one a proxy in front added.
    fn client_ip(&self, request: &Request) -> Option<IpAddr> {
        if self.trust_forwarded_for {
            if let Some(forwarded) = last_forwarded_for(request.headers()) {
                return Some(forwarded);
            }
        }
        request
            .extensions()
            .get::<ConnectInfo<Client>>()
            .map(|c| c.0.addr.ip().to_canonical())
    }

    /// Send `request` to the node at `address` (host:port) with `extra`
    /// headers, and bring back its answer.
    pub async fn send(
        &self,
        address: &str,
        mut request: Request,
        extra: &[(HeaderName, HeaderValue)],
    ) -> Result<Response, Unreachable> {
        let client_ip = self.client_ip(&request);
        let client_upgrade = upgrade_protocol(request.headers())
            .map(|protocol| (protocol, hyper::upgrade::on(&mut request)));
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        parts.uri = format!("http://{address}{path}")
            .parse::<Uri>()
            .map_err(|e| Unreachable(format!("bad node address {address:?}: {e}")))?;
        let headers = &mut parts.headers;
        strip_hop_by_hop(headers);
        if let Some((protocol, _)) = &client_upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, protocol.clone());
        }
        // The node trusts this (with the secret) as the client's address.
        headers.remove(&X_FORWARDED_FOR);
        if let Some(value) = client_ip.and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok()) {
            headers.insert(X_FORWARDED_FOR, value);
        }
        headers.insert(SECRET_HEADER, self.secret.clone());
        // Only the gateway chooses a new session's ids, never the client.
        headers.remove(SESSION_ID_HEADER);
        headers.remove(VIEWER_ID_HEADER);
        for (name, value) in extra {
            headers.insert(name.clone(), value.clone());
        }
        parts.version = Version::HTTP_11;
        parts.extensions = Default::default();
        let mut response = self
            .http
            .request(Request::from_parts(parts, body))
            .await
            .map_err(|e| Unreachable(with_causes(&e)))?;

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some((_, client_upgrade)) = client_upgrade {
                let node_upgrade = hyper::upgrade::on(&mut response);
                tokio::spawn(async move {
                    match tokio::join!(client_upgrade, node_upgrade) {
                        (Ok(client), Ok(node)) => {
                            let mut client = TokioIo::new(client);
                            let mut node = TokioIo::new(node);
                            if let Err(e) =
                                tokio::io::copy_bidirectional(&mut client, &mut node).await
                            {
                                tracing::debug!("gateway: upgraded connection ended: {e}");
                            }
                        }
                        (Err(e), _) | (_, Err(e)) => {
                            tracing::debug!("gateway: upgrade failed: {e}")
                        }
                    }
                });
            }
            let (mut parts, _) = response.into_parts();
            switched_protocols_head(&mut parts);
            return Ok(Response::from_parts(parts, Body::empty()));
        }
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts.version = Version::HTTP_11;
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}
