//! Containers as the server sees them: starting them in an instance and
//! reading their usage.

pub mod container;
pub mod stats;
