//! The Docker Engine API each instance's `docker` talks to, over the
//! /var/run/docker.sock its init owns (see `sandbox::agent::DOCKER_SOCKET`).
//! One image store for the whole server (layers shared); each instance sees
//! only the images it pulled or tagged.
//!
//! Files: `views` (an instance's own image names), `ctx` (the request
//! context every handler takes, and image-name decoding), `routes` (paths
//! and API versions to handlers: it only composes), `system` (ping,
//! version, info), `images` (list, inspect, tag, remove), `pull` (pulls and
//! Docker's progress stream),
//! `containers` (create, start, attach, logs, stop, exec, ...: containers
//! are nested sandboxes of the instance), `build` (`docker build`),
//! `history` (`docker history`), `events` (what happened, kept and sent to
//! listeners) and `event_stream` (`docker events`), `reply` (Docker-shaped
//! answers and errors).

mod build;
mod containers;
mod ctx;
mod event_stream;
mod events;
mod history;
mod images;
mod pull;
mod reply;
mod routes;
mod system;
mod views;

use std::path::Path;
use std::sync::Arc;

use sandbox::oci::{ImageStore, RegistrySettings};
use sandbox::Instance;

pub use views::Views;

/// The API version we speak: Debian bookworm's client (20.10) uses it.
pub const API_VERSION: &str = "1.41";
pub const MIN_API_VERSION: &str = "1.12";

pub struct Engine {
    store: ImageStore,
    views: Views,
    containers: Arc<containers::Containers>,
    events: events::Events,
    builds: build::Pending,
    /// Images that may have lost their last name (see `build::unused`).
    unused: tokio::sync::mpsc::UnboundedSender<build::Check>,
}

impl Engine {
    /// Open the store under `<data-dir>/oci`, bring in the offline images of
    /// `offline_layout` (when it exists) and drop the image lists of
    /// instances that are gone (`keep` are the live ones).
    pub async fn open(
        data_dir: &Path,
        settings: RegistrySettings,
        offline_layout: &Path,
        keep: &[String],
    ) -> anyhow::Result<Arc<Engine>> {
        let store = ImageStore::open(&data_dir.join("oci"), settings)?;
        if offline_layout.join("index.json").exists() {
            match store.import_layout(offline_layout, &|_| {}).await {
                Ok(imported) => {
                    for image in imported {
                        tracing::info!(image = %image.reference, "offline image imported");
                    }
                }
                Err(e) => tracing::warn!(
                    "cannot import offline images from {}: {e}",
                    offline_layout.display()
                ),
            }
        }
        let (builds, orphan_layers) = build::Pending::open(&data_dir.join("engine/builds"), keep)?;
        let orphan_layers: Vec<_> = orphan_layers
            .iter()
            .filter_map(|l| l.parse().ok())
            .collect();
        if let Err(e) = store.discard_layers(&orphan_layers).await {
            tracing::warn!("cannot remove the layers of interrupted builds: {e}");
        }
        let views = Views::open(&data_dir.join("engine/views"), keep)?;
        let containers = Arc::new(containers::Containers::open(
            &data_dir.join("engine/containers"),
            keep,
        )?);
        let (unused, checks) = build::unused_channel();
        let engine = Arc::new(Engine {
            store,
            views,
            containers,
            events: events::Events::default(),
            builds,
            unused,
        });
        build::sweep_unused(&engine, keep).await;
        build::start_unused(&engine, checks);
        Ok(engine)
    }

    /// Serve the instance's Engine API socket until the instance ends. Its
    /// init owns the listener, so a restarted server calls this again.
    pub fn serve(self: &Arc<Engine>, instance: Instance) {
        let engine = self.clone();
        tokio::spawn(async move {
            let listener = match instance.docker_listener().await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(instance = %instance.id(), "no docker socket: {e}");
                    return;
                }
            };
            let listener = match listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixListener::from_std(listener))
            {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(instance = %instance.id(), "docker socket: {e}");
                    return;
                }
            };
            let ctx = ctx::Ctx {
                engine,
                instance: instance.id().to_string(),
                sandbox: instance.clone(),
            };
            containers::recover(&ctx).await;
            build::recover(&ctx).await;
            let containers = ctx.engine.containers.clone();
            let app = routes::router(ctx);
            let served = axum::serve(listener, app).with_graceful_shutdown({
                let instance = instance.clone();
                async move { instance.exited().await }
            });
            if let Err(e) = served.await {
                tracing::warn!(instance = %instance.id(), "docker socket: {e}");
            }
            // The instance died (or is being destroyed): its published ports
            // keep its network namespace alive.
            containers.close_ports(instance.id()).await;
        });
    }

    /// Close the published ports of the instance's containers: call before
    /// destroying it (they hold its network namespace).
    pub async fn close_ports(&self, instance_id: &str) {
        self.containers.close_ports(instance_id).await;
    }

    /// `id` may have lost its last name: a built image nobody names (and no
    /// container of `instance` uses) is removed.
    fn image_may_be_unused(&self, id: String, instance: Option<String>) {
        let _ = self.unused.send(build::Check { id, instance });
    }

    /// The instance is gone for good: forget its images.
    pub fn forget(&self, instance_id: &str) {
        let named: std::collections::BTreeSet<String> =
            self.views.get(instance_id).into_values().collect();
        self.views.forget(instance_id);
        self.containers.forget(instance_id);
        self.events.forget(instance_id);
        self.builds.forget(instance_id);
        for id in named {
            self.image_may_be_unused(id, None);
        }
    }
}
