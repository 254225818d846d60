//! Operations: what the operator configures and observes.

pub mod config;
pub mod config_file;
pub mod logging;
pub mod metrics;
pub mod web;
