//! The `playground` binary: sessions, instances and terminals over HTTP and
//! WebSocket, and the web page, on top of the `sandbox` runtime.

mod api;
mod config;
mod error;
mod events;
mod proxy;
mod sessions;
mod terminal;
mod web;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use sandbox::{Limits, Networks, Runtime, RuntimeConfig};
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::sessions::{Policy, PortUrl, Sessions};

fn main() -> anyhow::Result<()> {
    // The runtime re-executes this binary to create instances; that must be
    // handled before anything else (no threads may exist yet).
    sandbox::run_launcher_if_requested();

    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    if !nix_is_root() {
        anyhow::bail!("the playground creates namespaces and cgroups and must run as root");
    }
    sandbox::become_subreaper().context("become subreaper")?;

    let image_root =
        sandbox::image::prepare_default(&config.images_dir(), &config.debian_mirror, |line| {
            tracing::info!("image: {line}")
        })
        .context("prepare the default image")?;
    let runtime = Runtime::new(RuntimeConfig {
        data_dir: config.data_dir.clone(),
        image_root,
        launcher: std::env::current_exe().context("find own executable")?,
    })?;
    tracing::info!(cgroup = runtime.cgroup_version(), "runtime ready");

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(config, runtime))
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

async fn serve(config: Config, runtime: Runtime) -> anyhow::Result<()> {
    let (pool, prefix) = config.network_pool;
    let networks = Networks::new(&config.data_dir, pool, prefix, config.egress())
        .await
        .context("session networks")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let proxy_settings = proxy::ProxySettings::new(
        &config.proxy_domain,
        &config.public_scheme,
        config.public_port.unwrap_or(address.port()),
    );
    let port_url: PortUrl = {
        let settings = proxy_settings.clone();
        Arc::new(move |sid: &str, name: &str, port: u16| {
            proxy::port_url(&settings, sid, name, port)
        })
    };
    let sessions = Arc::new(Sessions::new(
        runtime,
        networks,
        Policy {
            session_ttl: config.session_ttl,
            max_instances: config.max_instances,
            limits: Limits {
                memory_bytes: config.instance_memory_mib << 20,
                pids: config.instance_pids,
                cpu_shares: config.instance_cpu_shares,
                cpu_millis: (config.instance_cpus.max(0.0) * 1000.0) as u64,
                disk_bytes: config.instance_disk_mib << 20,
            },
            port_url,
        },
    ));

    let sweeper = {
        let sessions = sessions.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                sessions.end_expired().await;
            }
        })
    };

    let watcher = tokio::spawn(events::watch(sessions.clone()));

    let app = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .nest("/api", api::router())
        .with_state(sessions.clone())
        .merge(web::router(&config.web_dir))
        .layer(tower_http::trace::TraceLayer::new_for_http());

    // Requests for ports of instances go to the proxy, the rest to `app`.
    let app = proxy::front(app, proxy::Proxy::new(proxy_settings, sessions.clone()));
    // Tests and scripts wait for this exact line.
    println!("playground listening on http://{address}/");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;

    sweeper.abort();
    watcher.abort();
    tracing::info!("shutting down: ending every session");
    sessions.end_all().await;
    sessions.shutdown();
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
