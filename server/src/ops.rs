//! Operations: what the operator configures and observes.

pub mod config;
