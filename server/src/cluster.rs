//! Many hosts behind one address (#17): the same binary as a cluster
//! *node* (`--cluster <postgres url>`: it registers in PostgreSQL with a
//! lease it renews, and serves only requests its gateways forward) or as a
//! *gateway* (`playground gateway`: a stateless front door that places new
//! sessions on nodes and forwards every request of a session to the node
//! that holds it). Without `--cluster` none of this runs: a single host
//! keeps its state in SQLite alone.
//!
//! The shared contract (flags, tables, headers, error texts) is
//! /work/shared/contracts/cluster.md; in short:
//! - `db`: the two tables (`nodes`, `placements`) and their queries;
//! - `lease`: a node's registration and its renewal every 2 s;
//! - `node`: a node's guard in front of its router (the secret, the ids a
//!   gateway chose, `/healthz`);
//! - `placement`: choosing a node for a new session in one transaction;
//! - `gateway`: the front door.

pub mod db;
pub mod gateway;
pub mod lease;
pub mod node;
pub mod placement;

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use axum::http::{HeaderName, HeaderValue};

/// The secret every request between gateway and node carries.
pub const SECRET_HEADER: HeaderName = HeaderName::from_static("x-playground-cluster");
/// The id a gateway chose for a session it places (`POST /api/sessions`).
pub const SESSION_ID_HEADER: HeaderName = HeaderName::from_static("x-playground-session-id");
/// The viewer id (read-only link) a gateway chose with it.
pub const VIEWER_ID_HEADER: HeaderName = HeaderName::from_static("x-playground-viewer-id");

/// How long a node's lease lasts from its last renewal.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often a node renews it.
pub const RENEW_EVERY: Duration = Duration::from_secs(2);

/// Fewest characters a secret may have.
const SECRET_MIN_LEN: usize = 32;

/// The shared secret of a cluster's nodes and gateways.
#[derive(Clone)]
pub struct Secret {
    value: HeaderValue,
}

impl Secret {
    /// Read the secret from `--cluster-secret-file` (first line, trimmed).
    pub fn read(path: Option<&Path>) -> anyhow::Result<Secret> {
        let path = path.context(
            "--cluster needs --cluster-secret-file: a file with one line of at least 32 \
             characters, the same on every node and gateway",
        )?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read the cluster secret from {}", path.display()))?;
        let line = text.lines().next().unwrap_or("").trim();
        if line.len() < SECRET_MIN_LEN {
            anyhow::bail!(
                "the cluster secret in {} has {} characters; it needs at least {SECRET_MIN_LEN} \
                 (e.g. `head -c 32 /dev/urandom | base64 > {}`)",
                path.display(),
                line.len(),
                path.display()
            );
        }
        let value = HeaderValue::from_str(line).with_context(|| {
            format!(
                "the cluster secret in {} must be printable ASCII",
                path.display()
            )
        })?;
        Ok(Secret { value })
    }

    pub fn header(&self) -> HeaderValue {
        self.value.clone()
    }

    /// Whether `given` is the secret, in time that does not depend on
    /// where they differ.
    pub fn matches(&self, given: &[u8]) -> bool {
        same_secret(self.value.as_bytes(), given)
    }
}

/// Whether `a` and `b` are equal, in time that does not depend on where
/// they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_long_enough_and_compared_whole() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").unwrap();
        let e = Secret::read(Some(&short)).err().unwrap().to_string();
        assert!(e.contains("at least 32"), "{e}");
        assert!(Secret::read(None)
            .err()
            .unwrap()
            .to_string()
            .contains("--cluster-secret-file"));
        let good = dir.path().join("good");
        std::fs::write(&good, format!("{}\nignored", "s".repeat(40))).unwrap();
        let secret = Secret::read(Some(&good)).unwrap();
        assert!(secret.matches("s".repeat(40).as_bytes()));
        assert!(!secret.matches("s".repeat(39).as_bytes()));
        assert!(!secret.matches(format!("{}t", "s".repeat(39)).as_bytes()));
    }
}
