//! `playground gateway`: a cluster's stateless front door. It serves the
//! page itself (`--web-dir`) and forwards everything else to a node:
//! - `POST /api/sessions` to the node placement chooses (see
//!   [`super::placement`]), with the session's ids chosen here;
//! - a session's API calls, terminals and event streams (by session id or
//!   viewer id) and its port links (by host name or `/proxy/` path) to the
//!   node that holds it, or, when that node's lease has lapsed, the answer
//!   that its host is gone (503, `Retry-After`), never a hang;
//! - what belongs to no session (templates, scenarios) to any live node.
//!
//! Classes (`/api/classes`, `/api/join`, help keys) and the admin API live
//! on single nodes and are not routed yet: 501 with the reason.
//! State: none of its own; everything is in PostgreSQL, so gateways can be
//! restarted, added or removed at any time.

mod forward;
mod metrics;
mod owners;
mod route;
mod sweep;

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_service::Service;

use super::db::{Db, Owner};
use super::placement::{self, Placed};
use super::{Secret, LEASE, SESSION_ID_HEADER, VIEWER_ID_HEADER};
use crate::api::embed::{self, Embedding};
use crate::error::ApiError;
use crate::ops::config::Config;
use crate::ops::{logging, web};
use crate::proxy::Client;
use crate::session::sessions::SessionIds;
use forward::{Forwarder, Unreachable};
use metrics::{Kind, Outcome};
use route::Route;

/// Largest body of `POST /api/sessions` (kept to send again to another node).
const CREATE_BODY_LIMIT: usize = 64 * 1024;

struct Gateway {
    db: Arc<Db>,
    /// Owners of sessions recently read from `db`.
    owners: owners::Owners,
    forwarder: Forwarder,
    /// `--proxy-domain`: host names under it are port links.
    domain: String,
    /// The page's files.
    web: Router,
    /// `--admin-token`: opens `/metrics`.
    admin_token: Option<String>,
}

/// Run the gateway until `shutdown`.
pub async fn run(config: &Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let url = config.cluster.as_deref().context(
        "playground gateway needs --cluster <postgres url>: the database where the nodes register",
    )?;
    let secret = Secret::read(config.cluster_secret_file.as_deref())?;
    let db = Db::open(url).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let web = web::router(&config.web_dir).merge(embed::router()).layer(
        axum::middleware::from_fn_with_state(
            Arc::new(Embedding::new(&config.embed_origins)),
            embed::frame_policy,
        ),
    );
    let gateway = Arc::new(Gateway {
        db: db.clone(),
        owners: Default::default(),
        forwarder: Forwarder::new(&secret, config.trust_forwarded_for),
        domain: config.proxy_domain.clone(),
        web,
        admin_token: config.admin_token.clone(),
    });
    let admin = match config.admin_listen {
        Some(address) => Some(serve_metrics(address, gateway.clone()).await?),
        None => None,
    };
    let app = Router::new()
        .fallback(dispatch)
        .with_state(gateway)
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(logging::request_span));
    let sweeper = sweep::start(db);
    // Tests and scripts wait for this exact line, as for a node.
    println!("playground listening on http://{address}/");
    crate::serve::serve(listener, app, shutdown).await;
    sweeper.abort();
    if let Some(admin) = admin {
        admin.abort();
    }
    Ok(())
}

/// `/metrics` without a token on `address` (--admin-listen).
async fn serve_metrics(
    address: std::net::SocketAddr,
    gateway: Arc<Gateway>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listen on {address} (--admin-listen)"))?;
    let address = listener.local_addr()?;
    let app = Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(gateway): State<Arc<Gateway>>| async move {
                gateway.metrics().await
            }),
        )
        .with_state(gateway);
    // Tests and scripts may wait for this line, as for a node.
    println!("playground admin listening on http://{address}/");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("admin address: {e}");
        }
    }))
}

async fn dispatch(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (kind, response) = route_request(&gateway, request).await;
    metrics::get().request(kind, response.status());
    response
}

async fn route_request(gateway: &Gateway, request: Request) -> (Kind, Response) {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let path = request.uri().path();
    if let Some(sid) = crate::proxy::port_session(host, path, &gateway.domain) {
        let response = match sid {
            Some(sid) => gateway.to_owner(&sid, false, request).await,
            // A malformed port address: any node answers with its page.
            None => gateway.to_any(request).await,
        };
        return (Kind::port, response);
    }
    if path == "/healthz" {
        return (Kind::health, gateway.health().await);
    }
    if path == "/metrics" {
        let response = match gateway.admitted(&request) {
            Ok(()) => gateway.metrics().await,
            Err(refusal) => refusal.into_response(),
        };
        return (Kind::metrics, response);
    }
    if let Some(rest) = path.strip_prefix("/api/") {
        return match route::route(request.method(), rest) {
            Route::Create => (Kind::create, gateway.create(request).await),
            Route::Session(sid) => (Kind::session, gateway.to_owner(&sid, false, request).await),
            Route::View(vid) => (Kind::view, gateway.to_owner(&vid, true, request).await),
            Route::NotInCluster => (
                Kind::not_in_cluster,
                ApiError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    "classes, help keys and the admin API are not served through a cluster's \
                     gateway yet: run classes on a single-host playground",
                )
                .into_response(),
            ),
            Route::AnyNode => (Kind::any_node, gateway.to_any(request).await),
        };
    }
    let response = match gateway.web.clone().call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    (Kind::page, response)
}

impl Gateway {
    /// Whether a request may read `/metrics` (the admin token), as on a node.
    fn admitted(&self, request: &Request) -> Result<(), ApiError> {
        let Some(token) = &self.admin_token else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "metrics are off on this address: start the gateway with --admin-token (then \
                 send Authorization: Bearer <token>) or --admin-listen",
            ));
        };
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(given) if super::same_secret(given.trim().as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::new(StatusCode::FORBIDDEN, "wrong admin token")),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "send the admin token as Authorization: Bearer <token>",
            )),
        }
    }

    async fn metrics(&self) -> Response {
        let counts = match self.db.counts().await {
            Ok(counts) => Some(counts),
            Err(e) => {
                tracing::warn!("metrics: the cluster's counts: {e:#}");
                None
            }
        };
        (
            [(header::CONTENT_TYPE, crate::ops::metrics::CONTENT_TYPE)],
            metrics::get().render(counts),
        )
            .into_response()
    }

    async fn health(&self) -> Response {
        match self.db.ping().await {
            Ok(()) => (StatusCode::OK, "ok").into_response(),
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("PostgreSQL does not answer: {e:#}"),
            )
                .into_response(),
        }
    }

    /// Forward to the node holding session (or view) `id`.
    async fn to_owner(&self, id: &str, by_viewer: bool, request: Request) -> Response {
        // Kept ones are not put back: an owner is trusted for a second from
        // when it was read, not from when it was last used.
        let read = match self.owners.get(id, by_viewer) {
            Some(owner) => Ok(Some(owner)),
            None => self.db.owner(id, by_viewer).await.inspect(|read| {
                if let Some(owner) = read {
                    self.owners.put(id, by_viewer, owner);
                }
            }),
        };
        let owner = match read {
            Ok(Some(owner)) => owner,
            Ok(None) if by_viewer => {
                return ApiError::new(
                    StatusCode::NOT_FOUND,
                    "this view does not exist or its session has ended",
                )
                .into_response()
            }
            Ok(None) => return ApiError::session_not_found(id).into_response(),
            Err(e) => return database_error(e),
        };
        if !owner.live {
            metrics::get().host_gone();
            return host_gone(&owner);
        }
        // What to remember of the answer.
        let method = request.method().clone();
        let ends = method == Method::DELETE && is_session_path(request.uri().path(), id);
        let extends =
            method == Method::POST && request.uri().path().ends_with(&format!("{id}/extend"));
        match self.forwarder.send(&owner.address, request, &[]).await {
            Ok(response) => {
                let status = response.status();
                if ends && (status == StatusCode::NO_CONTENT || status == StatusCode::NOT_FOUND) {
                    self.owners.forget(id, false);
                    if let Err(e) = self.db.remove_placement(id).await {
                        tracing::warn!(session = id, "forget an ended session: {e:#}");
                    }
                }
                if extends && status == StatusCode::OK {
                    return self.remember_expiry(id, response).await;
                }
                response
            }
            Err(Unreachable(why)) => {
                // Read the owner again next time: the node may be back
                // elsewhere, or gone.
                self.owners.forget(id, by_viewer);
                node_silent(&owner.node, &why)
            }
        }
    }

    /// Forward to any live node (what belongs to no session).
    async fn to_any(&self, request: Request) -> Response {
        match self.db.any_live_node().await {
            Ok(Some((node, address))) => match self.forwarder.send(&address, request, &[]).await {
                Ok(response) => response,
                Err(Unreachable(why)) => node_silent(&node, &why),
            },
            Ok(None) => no_node(),
            Err(e) => database_error(e),
        }
    }

    /// `POST /api/sessions`: place the session, ask its node to make it;
    /// when that node refuses (full) or does not answer, the next one.
    async fn create(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = match axum::body::to_bytes(body, CREATE_BODY_LIMIT).await {
            Ok(body) => body,
            Err(e) => {
                return ApiError::bad_request(format!("could not read the request: {e}"))
                    .into_response()
            }
        };
        let ids = SessionIds {
            id: uuid::Uuid::new_v4().to_string(),
            viewer_id: uuid::Uuid::new_v4().to_string(),
        };
        let headers = [
            (SESSION_ID_HEADER, header_value(&ids.id)),
            (VIEWER_ID_HEADER, header_value(&ids.viewer_id)),
        ];
        let mut exclude: Vec<String> = Vec::new();
        let mut refusal: Option<Response> = None;
        loop {
            let started = std::time::Instant::now();
            let placed = placement::place(&self.db, &ids, &exclude).await;
            metrics::get().placement_took(started.elapsed());
            let (node, address) = match placed {
                Ok(Placed::On(node, address)) => (node, address),
                Ok(Placed::Full {
                    sessions,
                    used,
                    capacity,
                    wait_secs,
                }) => {
                    metrics::get().placement(Outcome::full);
                    return refusal.unwrap_or_else(|| {
                        ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            placement::full_message(sessions, used, capacity, wait_secs),
                        )
                        .retry_after(wait_secs)
                        .into_response()
                    });
                }
                Ok(Placed::NoNode) => {
                    metrics::get().placement(Outcome::no_node);
                    return refusal.unwrap_or_else(no_node);
                }
                Err(e) => return database_error(e),
            };
            let mut again = Request::new(Body::from(body.clone()));
            *again.method_mut() = parts.method.clone();
            *again.uri_mut() = parts.uri.clone();
            *again.headers_mut() = parts.headers.clone();
            if let Some(client) = parts.extensions.get::<ConnectInfo<Client>>() {
                again.extensions_mut().insert(client.clone());
            }
            let answer = self.forwarder.send(&address, again, &headers).await;
            match answer {
                Ok(response) if response.status() == StatusCode::CREATED => {
                    metrics::get().placement(Outcome::placed);
                    tracing::info!(session = %ids.id, node = %node, "session placed");
                    return self.remember_expiry(&ids.id, response).await;
                }
                Ok(response) => {
                    self.forget(&ids.id).await;
                    if response.status() != StatusCode::SERVICE_UNAVAILABLE {
                        return response;
                    }
                    // Full by its own count (instances the gateway did not
                    // know of yet): the next node may have room.
                    metrics::get().placement(Outcome::node_refused);
                    exclude.push(node);
                    refusal = Some(response);
                }
                Err(Unreachable(why)) => {
                    self.forget(&ids.id).await;
                    metrics::get().placement(Outcome::node_silent);
                    tracing::warn!(node = %node, "placing a session: the node does not answer: {why}");
                    refusal = Some(node_silent(&node, &why));
                    exclude.push(node);
                }
            }
        }
    }

    async fn forget(&self, sid: &str) {
        self.owners.forget(sid, false);
        if let Err(e) = self.db.remove_placement(sid).await {
            tracing::warn!(session = sid, "remove a placement: {e:#}");
        }
    }

    /// Note the session's end from the node's answer (a session), so the
    /// sweep knows when it is over, and pass the answer on.
    async fn remember_expiry(&self, sid: &str, response: Response) -> Response {
        let (parts, body) = response.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
            return ApiError::new(
                StatusCode::BAD_GATEWAY,
                "the node's answer broke off before its end",
            )
            .into_response();
        };
        let expires_at = serde_json::from_slice::<playground_protocol::SessionInfo>(&bytes)
            .ok()
            .and_then(|info| humantime::parse_rfc3339_weak(&info.expires_at).ok());
        if let Some(expires_at) = expires_at {
            if let Err(e) = self.db.set_expiry(sid, expires_at).await {
                tracing::warn!(session = sid, "note a session's end: {e:#}");
            }
        }
        Response::from_parts(parts, Body::from(bytes))
    }
}

/// Whether `path` is `/api/sessions/{id}` itself.
fn is_session_path(path: &str, id: &str) -> bool {
    path.trim_end_matches('/') == format!("/api/sessions/{id}")
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("a UUID is a valid header value")
}

/// The answer for a session whose node's lease has lapsed.
fn host_gone(owner: &Owner) -> Response {
    let last = owner
        .lease_until
        .checked_sub(LEASE)
        .unwrap_or(owner.lease_until);
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "this session's host is gone: node {} stopped answering at {}; its sessions come \
             back if it returns",
            owner.node,
            humantime::format_rfc3339_seconds(last.min(SystemTime::now()))
        ),
    )
    .retry_after(10)
    .into_response()
}

/// A node with a current lease that gave no answer (stopping, or just gone
/// and its lease not yet lapsed).
fn node_silent(node: &str, why: &str) -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "node {node} does not answer ({why}); if it stays away, its sessions show as gone \
             within {} s",
            LEASE.as_secs()
        ),
    )
    .retry_after(10)
    .into_response()
}

fn no_node() -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no playground node is up: none has a current lease in the cluster's database; try \
         again in a moment",
    )
    .retry_after(10)
    .into_response()
}

fn database_error(e: anyhow::Error) -> Response {
    tracing::warn!("cluster database: {e:#}");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the cluster's database does not answer: {e:#}"),
    )
    .retry_after(5)
    .into_response()
}
