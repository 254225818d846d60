//! Prometheus metrics, served at `/metrics` (see `api/admin.rs` for who may
//! read them). One set per process, reached through [`get`], so each place
//! that counts something needs one line and no plumbing.
//!
//! Counts of sessions and instances are read when scraped, by whoever
//! serves `/metrics` (this module knows nothing of sessions); everything
//! else is counted as it happens.

use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Bytes, Frame, SizeHint};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The media type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum InstanceState {
    running,
    exited,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    pub status: InstanceState,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Direction {
    /// From browsers to programs in instances.
    to_instance,
    /// From programs in instances to browsers.
    from_instance,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    pub direction: Direction,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusClassLabels {
    /// `2xx`, `4xx`, ...
    pub status_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum SshLogin {
    accepted,
    /// A key, user name or session that does not go together.
    refused,
    /// A connection turned away: its address failed too often or holds too
    /// many connections.
    turned_away,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SshLoginLabels {
    pub result: SshLogin,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    /// The route template (`/api/sessions/{sid}`), never the raw path, so
    /// the number of series stays fixed.
    pub route: String,
    pub status_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `api` (the playground's own answers) or `proxy` (ports of instances).
    pub source: &'static str,
    /// The status code answered, e.g. `404`, `503`.
    pub status: u16,
}

/// Counts read from the sessions when scraped (this module does not know
/// sessions; whoever serves `/metrics` reads them).
pub struct Live {
    pub sessions: i64,
    pub running_instances: i64,
    pub exited_instances: i64,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    sessions: Gauge,
    instances: Family<InstanceLabels, Gauge>,
    pub capacity_instances: Gauge,
    pub terminals: Gauge,
    pub event_streams: Gauge,
    pub proxy_requests: Family<StatusClassLabels, Counter>,
    pub proxy_bytes: Family<DirectionLabels, Counter>,
    pub instance_start_seconds: Histogram,
    pub api_seconds: HistogramFamily<RouteLabels>,
    pub errors: Family<ErrorLabels, Counter>,
    pub ssh_logins: Family<SshLoginLabels, Counter>,
    pub ssh_connections: Gauge,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("playground"),
            sessions: Gauge::default(),
            instances: Family::default(),
            capacity_instances: Gauge::default(),
            terminals: Gauge::default(),
            event_streams: Gauge::default(),
            proxy_requests: Family::default(),
            proxy_bytes: Family::default(),
            // 50 ms to about 100 s.
            instance_start_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            api_seconds: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
            ssh_logins: Family::default(),
            ssh_connections: Gauge::default(),
        };
        let registry = &mut m.registry;
        registry.register("sessions", "Live sessions", m.sessions.clone());
        registry.register("instances", "Instances by status", m.instances.clone());
        registry.register(
            "capacity_instances",
            "How many instances this host is sized for",
            m.capacity_instances.clone(),
        );
        registry.register("terminals", "Open terminal WebSockets", m.terminals.clone());
        registry.register(
            "event_streams",
            "Open session event WebSockets",
            m.event_streams.clone(),
        );
        registry.register(
            "proxy_requests",
            "Requests to ports of instances, by the status answered",
            m.proxy_requests.clone(),
        );
        registry.register(
            "proxy_bytes",
            "Body bytes through the port proxy (upgraded connections counted when they close)",
            m.proxy_bytes.clone(),
        );
        registry.register(
            "instance_start_seconds",
            "Time to create and start an instance, network included",
            m.instance_start_seconds.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer requests to the playground (not the proxy), by route template",
            m.api_seconds.clone(),
        );
        registry.register(
            "errors",
            "Error answers (4xx and 5xx), by source and status code",
            m.errors.clone(),
        );
        registry.register(
            "ssh_logins",
            "SSH logins accepted and refused, and connections turned away by the per-address limits",
            m.ssh_logins.clone(),
        );
        registry.register(
            "ssh_connections",
            "Open SSH connections",
            m.ssh_connections.clone(),
        );
        m
    }

    pub fn ssh_login(&self, result: SshLogin) {
        self.ssh_logins
            .get_or_create(&SshLoginLabels { result })
            .inc();
    }

    pub fn proxy_bytes(&self, direction: Direction, bytes: u64) {
        self.proxy_bytes
            .get_or_create(&DirectionLabels { direction })
            .inc_by(bytes);
    }

    /// Count an answer of the proxy.
    pub fn proxy_answered(&self, status: StatusCode) {
        self.proxy_requests
            .get_or_create(&StatusClassLabels {
                status_class: status_class(status),
            })
            .inc();
        self.count_error("proxy", status);
    }

    fn count_error(&self, source: &'static str, status: StatusCode) {
        if status.is_client_error() || status.is_server_error() {
            self.errors
                .get_or_create(&ErrorLabels {
                    source,
                    status: status.as_u16(),
                })
                .inc();
        }
    }

    /// The exposition text, with the live counts the caller read just now.
    pub fn render(&self, live: Live) -> String {
        self.sessions.set(live.sessions);
        for (status, n) in [
            (InstanceState::running, live.running_instances),
            (InstanceState::exited, live.exited_instances),
        ] {
            self.instances
                .get_or_create(&InstanceLabels { status })
                .set(n);
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

fn status_class(status: StatusCode) -> String {
    format!("{}xx", status.as_u16() / 100)
}

/// Middleware: time each request the router answers, by route template.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        // Static files and unknown API paths: one series for all.
        .unwrap_or_else(|| "other".to_string());
    // Clients may send any token as a method: only the standard ones get
    // series of their own, so no client can make the set grow.
    let method = match *request.method() {
        Method::GET
        | Method::HEAD
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::PATCH
        | Method::OPTIONS => request.method().as_str(),
        _ => "other",
    }
    .to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    let metrics = get();
    metrics
        .api_seconds
        .get_or_create(&RouteLabels {
            method,
            route,
            status_class: status_class(status),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics.count_error("api", status);
    response
}

/// Held while a WebSocket is open; moves a gauge up, and down again when dropped.
pub struct OpenGauge(&'static Gauge);

impl OpenGauge {
    pub fn new(gauge: &'static Gauge) -> OpenGauge {
        gauge.inc();
        OpenGauge(gauge)
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A body that counts its data bytes into `proxy_bytes` as they pass.
pub struct CountedBody<B> {
    body: B,
    direction: Direction,
}

impl<B> CountedBody<B> {
    pub fn new(body: B, direction: Direction) -> CountedBody<B> {
        CountedBody { body, direction }
    }
}

impl<B> hyper::body::Body for CountedBody<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                get().proxy_bytes(self.direction.clone(), data.len() as u64);
            }
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
