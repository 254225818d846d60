//! What every handler of the HTTP surface is given: the sessions.

use std::sync::Arc;

use crate::session::sessions::Sessions;

/// The state of the API's routers (axum's `State`).
pub type AppState = Arc<Sessions>;
