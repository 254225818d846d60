//! A cluster node's side: registration at start (see [`super::lease`]) and
//! the guard in front of its router and port proxy. The guard answers a
//! probe's `/healthz` (200 `ok` while the lease is current), refuses with
//! 403 any other request without the cluster's secret, and turns the ids a gateway chose
//! for a new session into the session model's [`SessionIds`]. It takes its
//! headers off before the request goes on, so no program inside an
//! instance ever sees the secret.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower_service::Service;

use super::db::Db;
use super::lease::{self, LeaseState, Registration};
use super::{Secret, SECRET_HEADER, SESSION_ID_HEADER, VIEWER_ID_HEADER};
use crate::error::ApiError;
use crate::session::sessions::{SessionIds, Sessions};

/// The refusal of a request that did not come through a gateway.
pub const NOT_THROUGH_GATEWAY: &str = "this node serves only through a playground gateway";

/// What a node needs of its configuration.
pub struct NodeSettings<'a> {
    pub url: &'a str,
    pub secret_file: Option<&'a Path>,
    pub advertise: Option<&'a str>,
    pub name: Option<&'a str>,
    pub data_dir: &'a Path,
    pub capacity: u32,
}

/// A running node: its lease's renewals and what its guard checks.
pub struct Node {
    secret: Secret,
    lease: Arc<LeaseState>,
    renewals: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Register in the cluster's database (the listener is bound at
    /// `bound`, not yet serving) and keep the lease.
    pub async fn start(
        settings: NodeSettings<'_>,
        bound: SocketAddr,
        sessions: Arc<Sessions>,
    ) -> anyhow::Result<Node> {
        let secret = Secret::read(settings.secret_file)?;
        let name = match settings.name {
            Some(name) => name.to_string(),
            None => host_name()?,
        };
        let address = match settings.advertise {
            Some(address) => address.to_string(),
            None if bound.ip().is_unspecified() => anyhow::bail!(
                "--listen {bound} is every address: give --advertise with the host:port \
                 gateways reach this node at"
            ),
            None => bound.to_string(),
        };
        let db = Db::open(settings.url).await?;
        let me = Registration {
            name,
            address,
            capacity: settings.capacity.min(i32::MAX as u32) as i32,
            data_dir: settings.data_dir.to_path_buf(),
        };
        let lease = lease::register(&db, &me, &sessions).await?;
        let renewals = lease::keep(db, me, sessions, lease.clone());
        Ok(Node {
            secret,
            lease,
            renewals,
        })
    }

    /// `inner` behind the node's guard.
    pub fn guard<S>(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            secret: self.secret.clone(),
            lease: self.lease.clone(),
        }
    }

    pub fn stop(self) {
        self.renewals.abort();
    }
}

fn host_name() -> anyhow::Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("read the host name for the node's name (or give --node-name)")?;
    Ok(name.trim().to_string())
}

/// The node's guard around its router and proxy (see the module's doc).
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    secret: Secret,
    lease: Arc<LeaseState>,
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let allowed = request
            .headers()
            .get(SECRET_HEADER)
            .is_some_and(|v| self.secret.matches(v.as_bytes()));
        // A probe's health check. (With the secret, `/healthz` is a port's
        // own page that a gateway forwards: it goes on.)
        if !allowed && request.uri().path() == "/healthz" {
            let answer = match self.lease.current() {
                Ok(_) => (StatusCode::OK, "ok".to_string()).into_response(),
                Err(ago) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "the cluster lease was last renewed {} s ago: PostgreSQL does not answer",
                        ago.as_secs()
                    ),
                )
                    .into_response(),
            };
            return Box::pin(async move { Ok(answer) });
        }
        if !allowed {
            let answer = ApiError::new(StatusCode::FORBIDDEN, NOT_THROUGH_GATEWAY).into_response();
            return Box::pin(async move { Ok(answer) });
        }
        let headers = request.headers_mut();
        headers.remove(SECRET_HEADER);
        let id = headers.remove(SESSION_ID_HEADER);
        let viewer_id = headers.remove(VIEWER_ID_HEADER);
        if let (Some(id), Some(viewer_id)) = (id, viewer_id) {
            match (uuid_text(id.as_bytes()), uuid_text(viewer_id.as_bytes())) {
                (Some(id), Some(viewer_id)) => {
                    request
                        .extensions_mut()
                        .insert(SessionIds { id, viewer_id });
                }
                _ => {
                    let answer = ApiError::bad_request(format!(
                        "{SESSION_ID_HEADER} and {VIEWER_ID_HEADER} must be UUIDs"
                    ))
                    .into_response();
                    return Box::pin(async move { Ok(answer) });
                }
            }
        }
        let future = self.inner.call(request);
        Box::pin(future)
    }
}

/// A UUID in its usual hyphenated lower-case form.
fn uuid_text(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let uuid = uuid::Uuid::parse_str(text).ok()?;
    Some(uuid.hyphenated().to_string())
}
