//! Built images have no name in the store, only in the views of instances:
//! once no view names one (after `docker rmi`, or with its instance) and no
//! container uses it, nothing else ever will, so it is removed from the
//! store with the layers only it had. Pulled images stay (a cache for every
//! instance). A server that stopped before doing so sweeps at start-up.

use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use crate::engine::Engine;

/// An image that may have lost its last name; `instance` names the
/// instance whose containers may still use it.
pub struct Check {
    pub id: String,
    pub instance: Option<String>,
}

/// Where checks are sent; `start` runs them.
pub fn channel() -> (mpsc::UnboundedSender<Check>, mpsc::UnboundedReceiver<Check>) {
    mpsc::unbounded_channel()
}

/// Run the checks sent on `rx` while the engine lives.
pub fn start(engine: &Arc<Engine>, mut rx: mpsc::UnboundedReceiver<Check>) {
    let engine: Weak<Engine> = Arc::downgrade(engine);
    tokio::spawn(async move {
        while let Some(check) = rx.recv().await {
            let Some(engine) = engine.upgrade() else {
                return;
            };
            let instances: Vec<String> = check.instance.into_iter().collect();
            drop_if_unused(&engine, &check.id, &instances).await;
        }
    });
}

/// Remove the built images no view names and no container of `instances`
/// uses.
pub async fn sweep(engine: &Engine, instances: &[String]) {
    for image in engine.store.list() {
        drop_if_unused(engine, &image.id.to_string(), instances).await;
    }
}

async fn drop_if_unused(engine: &Engine, id: &str, instances: &[String]) {
    let Ok(details) = engine.store.inspect(id) else {
        return;
    };
    let built = details.summary.repo_tags.is_empty() && details.summary.repo_digests.is_empty();
    if !built
        || engine.views.names_anywhere(id)
        || instances
            .iter()
            .any(|i| engine.containers.using_image(i, id).is_some())
    {
        return;
    }
    match engine.store.remove(id, true).await {
        Ok(removed) => tracing::debug!(image = id, "built image removed: {removed:?}"),
        Err(e) => tracing::warn!(image = id, "cannot remove a built image: {e}"),
    }
}
