//! The session model and its persistence: sessions and their instances,
//! what outlives a restart, and what each instance runs.

pub mod admission;
pub mod events;
pub mod help;
pub mod progress;
pub mod scenarios;
pub mod sessions;
pub mod ssh_keys;
pub mod store;
pub mod templates;
pub mod terminal;
pub mod tutorial;
