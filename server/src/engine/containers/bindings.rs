//! The port data a container's record keeps: `-p` as asked
//! ([`PortBinding`]) and the instance's ports forwarded to it
//! ([`PublishedPort`]). Plain data, below `records`, `ports` (their API
//! views) and `listeners`/`publish` (serving them).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// One `-p` as asked (kept as the client's text, for inspect).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PortBinding {
    /// The container's tcp port.
    pub container_port: u16,
    /// "" (every address) or an IPv4 address of the instance.
    pub host_ip: String,
    /// "" (a free port), a port, or a range (`8000-8010`: the first free).
    pub host_port: String,
}

/// A port of the instance forwarded to the container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub container_port: u16,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}
