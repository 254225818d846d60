//! Instances as the server sees them: the runtime that makes them, the
//! handle of one, its control channel and its terminals.

pub mod control;
pub mod handle;
pub mod pty;
pub mod runtime;
pub mod state;
