//! The instance's side of published ports, like Docker's userland proxy:
//! a listener per port in the instance's network namespace, bound here
//! before a container starts (so a taken port stops its start), then held
//! by the server and served by `listeners`. Programs in the instance, the
//! port watcher and the playground's proxy see these listeners like any
//! other.

use std::io;
use std::net::SocketAddr;

use axum::http::StatusCode;
use tokio::net::TcpListener;

use super::bindings::PublishedPort;
use super::listeners::Bound;
use super::ports::Wanted;
use super::records::Record;
use crate::engine::ctx::Ctx;
use crate::engine::reply::DockerError;

/// Whether container `r` itself listens where `w` would: one sharing the
/// instance's network that publishes a port on the same number (Docker's
/// host networking ignores such a `-p`; a listener of ours would take its
/// port and forward to itself).
fn served_by_container(r: &Record, w: &Wanted) -> bool {
    let same = w.host_ports.as_ref().is_some_and(|ports| {
        *ports.start() == w.container_port && *ports.end() == w.container_port
    });
    r.ip.is_none() && same
}

/// Bind every port container `r` publishes, before it runs, so that a taken
/// port stops its start. Nothing stays bound when one fails.
pub fn bind(ctx: &Ctx, r: &Record, wanted: &[Wanted]) -> Result<Bound, DockerError> {
    let mut bound = Bound::default();
    for w in wanted {
        if served_by_container(r, w) {
            bound.published.push(PublishedPort {
                container_port: w.container_port,
                host_ip: w.host_ip,
                host_port: w.container_port,
            });
            continue;
        }
        let (host_port, listener) = bind_one(ctx, w).map_err(|e| {
            let ports = match &w.host_ports {
                None => "0".to_string(),
                Some(r) if r.start() == r.end() => r.start().to_string(),
                Some(r) => format!("{}-{}", r.start(), r.end()),
            };
            let why = match e.kind() {
                io::ErrorKind::AddrInUse => "port is already allocated".to_string(),
                _ => format!("Error starting userland proxy: {e}"),
            };
            DockerError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "driver failed programming external connectivity on endpoint {} ({}): Bind for {}:{ports} failed: {why}",
                    r.name, r.id, w.host_ip
                ),
            )
        })?;
        let port = PublishedPort {
            container_port: w.container_port,
            host_ip: w.host_ip,
            host_port,
        };
        bound.published.push(port);
        bound.listeners.push((port, listener));
    }
    Ok(bound)
}

/// A listener for `w`: on its port, the first free one of its range, or
/// one the kernel picks (from the namespace's ephemeral range, as Docker's
/// allocator does).
fn bind_one(ctx: &Ctx, w: &Wanted) -> io::Result<(u16, TcpListener)> {
    let listen = |port: u16| {
        let listener = ctx.sandbox.listen(SocketAddr::from((w.host_ip, port)))?;
        Ok((listener.local_addr()?.port(), listener))
    };
    let Some(range) = w.host_ports.clone() else {
        return listen(0);
    };
    let last = *range.end();
    for port in range {
        match listen(port) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && port < last => continue,
            result => return result,
        }
    }
    unreachable!("a range has a last port")
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn a_container_on_the_instances_network_serves_its_own_port() {
        let wanted = |host_ports| Wanted {
            container_port: 80,
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_ports,
        };
        let shared = Record::default();
        assert!(served_by_container(&shared, &wanted(Some(80..=80))));
        assert!(!served_by_container(&shared, &wanted(Some(8080..=8080))));
        assert!(!served_by_container(&shared, &wanted(Some(80..=81))));
        assert!(!served_by_container(&shared, &wanted(None)));
        let bridged = Record {
            ip: Some(Ipv4Addr::new(172, 17, 0, 2)),
            ..Record::default()
        };
        assert!(!served_by_container(&bridged, &wanted(Some(80..=80))));
    }
}
