//! The gateway's metrics at `/metrics` (with `Authorization: Bearer
//! <--admin-token>`, or without a token on `--admin-listen`): requests by
//! what they were routed to and the status answered, placements by outcome,
//! "host is gone" answers, how long a placement transaction takes, and, read
//! from the database when scraped, the cluster's nodes, capacity and
//! sessions. A gateway's own set: it runs no sessions, so it shares nothing
//! with a node's (`ops/metrics.rs`).

use std::sync::LazyLock;
use std::time::Duration;

use axum::http::StatusCode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::cluster::db::ClusterCounts;

/// What a request was routed to.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Kind {
    create,
    session,
    view,
    port,
    any_node,
    not_in_cluster,
    page,
    health,
    metrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    kind: Kind,
    status_class: String,
}

/// How a placement ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    placed,
    /// Every live node full.
    full,
    /// No node with a current lease.
    no_node,
    /// The chosen node refused (its own admission); the next was tried.
    node_refused,
    /// The chosen node did not answer; the next was tried.
    node_silent,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum NodeState {
    live,
    down,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    state: NodeState,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    placements: Family<OutcomeLabels, Counter>,
    host_gone: Counter,
    placement_seconds: Histogram,
    nodes: Family<NodeLabels, Gauge>,
    capacity: Gauge,
    used: Gauge,
    sessions: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("playground_gateway"),
            requests: Family::default(),
            placements: Family::default(),
            host_gone: Counter::default(),
            // 0.5 ms to about 4 s.
            placement_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            nodes: Family::default(),
            capacity: Gauge::default(),
            used: Gauge::default(),
            sessions: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "requests",
            "Requests, by what they were routed to and the status class answered",
            m.requests.clone(),
        );
        r.register(
            "placements",
            "Attempts to place a new session, by outcome",
            m.placements.clone(),
        );
        r.register(
            "host_gone",
            "Answers that a session's host is gone (its node's lease lapsed)",
            m.host_gone.clone(),
        );
        r.register(
            "placement_seconds",
            "Time of a placement transaction in PostgreSQL",
            m.placement_seconds.clone(),
        );
        r.register(
            "cluster_nodes",
            "Nodes registered, by whether their lease is current",
            m.nodes.clone(),
        );
        r.register(
            "cluster_capacity_instances",
            "Instances the live nodes are sized for, together",
            m.capacity.clone(),
        );
        r.register(
            "cluster_used_instances",
            "Instances the live nodes last reported running",
            m.used.clone(),
        );
        r.register(
            "cluster_sessions",
            "Sessions placed on nodes (live or down)",
            m.sessions.clone(),
        );
        m
    }

    pub fn request(&self, kind: Kind, status: StatusCode) {
        self.requests
            .get_or_create(&RequestLabels {
                kind,
                status_class: format!("{}xx", status.as_u16() / 100),
            })
            .inc();
    }

    pub fn placement(&self, outcome: Outcome) {
        self.placements
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn placement_took(&self, took: Duration) {
        self.placement_seconds.observe(took.as_secs_f64());
    }

    pub fn host_gone(&self) {
        self.host_gone.inc();
    }

    /// The text for a scrape, with the cluster's counts (if the database
    /// answered).
    pub fn render(&self, counts: Option<ClusterCounts>) -> String {
        if let Some(c) = counts {
            for (state, n) in [
                (NodeState::live, c.live_nodes),
                (NodeState::down, c.down_nodes),
            ] {
                self.nodes.get_or_create(&NodeLabels { state }).set(n);
            }
            self.capacity.set(c.capacity);
            self.used.set(c.used);
            self.sessions.set(c.sessions);
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!("encoding metrics: {e}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_names_every_figure() {
        let m = Metrics::new();
        m.request(Kind::session, StatusCode::SERVICE_UNAVAILABLE);
        m.placement(Outcome::placed);
        m.host_gone();
        let text = m.render(Some(ClusterCounts {
            live_nodes: 2,
            down_nodes: 1,
            capacity: 4,
            used: 3,
            sessions: 5,
        }));
        for line in [
            "playground_gateway_requests_total{kind=\"session\",status_class=\"5xx\"} 1",
            "playground_gateway_placements_total{outcome=\"placed\"} 1",
            "playground_gateway_host_gone_total 1",
            "playground_gateway_cluster_nodes{state=\"down\"} 1",
            "playground_gateway_cluster_capacity_instances 4",
            "playground_gateway_cluster_sessions 5",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
