//! Networks: the host side of the networks instances share, their way
//! out, the ports their programs listen on, and the bridge for containers
//! inside an instance.

pub mod container_bridge;
pub mod egress;
pub mod ports;
pub mod session;
