//! The `playground` binary: sessions, instances and terminals over HTTP and
//! WebSocket, and the web page, on top of the `sandbox` runtime.

// The HTTP surface: routes, one file per feature (sessions, terminals,
// files, events, admin), client limits, the routers' shared state.
mod api;
// Classes: labs for a group of students, run by an instructor.
mod classes;
// Many hosts: a node's registration and guard, the gateway (--cluster).
mod cluster;
// The built-in Docker Engine API that instances' `docker` talks to.
mod engine;
// ApiError, the error answer that both the session model and the API give.
mod error;
mod mirror;
// Operations: configuration (flags and file), logging, metrics, the web app's files.
mod ops;
// The reverse proxy to ports inside instances, in front of the app.
mod proxy;
// The HTTP/1.1 listener (timeouts, connection bound, graceful stop).
mod serve;
// SSH into instances (being built, see ssh.rs).
mod ssh;
// The session model: sessions and instances, their store, templates,
// terminals, admission and the events watcher.
mod session;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sandbox::{Limits, Networks, Runtime, RuntimeConfig};

use crate::api::{admin, clients};
use crate::ops::config::{self, Config};
use crate::ops::{config_file, logging, metrics};
use crate::session::sessions::{Images, Policy, PortUrl, Sessions};
use crate::session::store::{Store, StoredSession};
use crate::session::{events, scenarios, templates};

fn main() -> anyhow::Result<()> {
    // The runtime runs this binary as its launch server (which forks the
    // processes that create instances); that must be handled before anything
    // else (no threads may exist yet).
    sandbox::run_launcher_if_requested();

    // The file's settings become environment defaults; no thread exists yet.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(path) = config_file::path_from(&args) {
        config_file::apply(config_file::read(&path)?);
    }
    let config = Config::parse_from(args);
    // A gateway runs no instances: no root, no images, no state of its own.
    if matches!(config.command, Some(config::Command::Gateway)) {
        logging::init(&config.log_format);
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return tokio.block_on(cluster::gateway::run(&config, shutdown_signal()));
    }
    // Checked before anything else, so a bad file stops the start at once.
    let templates = if matches!(config.command, Some(config::Command::Teardown)) {
        Vec::new()
    } else {
        templates::load(config.templates.as_deref(), config.max_instances)?
    };
    // Scenarios too (their backend may name a template).
    let scenarios = match (&config.command, &config.scenarios) {
        (None, Some(dir)) => {
            let catalog = scenarios::load_dir(dir, &templates)?;
            scenarios::check_limits(dir, &catalog, config.max_instances)?;
            catalog
        }
        _ => scenarios::Catalog::default(),
    };
    logging::init(&config.log_format);
    if let Some(dir) = &config.scenarios {
        tracing::info!(
            dir = %dir.display(),
            scenarios = scenarios.scenarios.len(),
            courses = scenarios.courses.len(),
            "scenarios loaded"
        );
    }
    if !nix_is_root() {
        anyhow::bail!("the playground creates namespaces and cgroups and must run as root");
    }
    sandbox::become_subreaper().context("become subreaper")?;

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("create {}", config.data_dir.display()))?;
    check_traversable(&config.data_dir)?;
    let store = Store::open(&config.data_dir.join("state.db")).context("state database")?;
    let teardown = matches!(config.command, Some(config::Command::Teardown));
    // Sessions to take back: every stored one still within its time (none
    // for a teardown). Everything else an earlier run left is removed.
    let now = std::time::SystemTime::now();
    let stored = if teardown {
        Vec::new()
    } else {
        store.sessions()?
    };
    let live: Vec<&StoredSession> = stored.iter().filter(|s| s.expires_at > now).collect();
    let keep_instances = live
        .iter()
        .flat_map(|s| s.instances.iter().map(|i| i.runtime_id.clone()))
        .collect();
    let keep_networks: Vec<String> = live.iter().map(|s| s.id.clone()).collect();

    // Both profiles' images: templates may choose either.
    let mut images = Vec::new();
    for spec in [&sandbox::image::NESTING, &sandbox::image::STRICT] {
        images.push(if teardown {
            sandbox::image::image_root(&config.images_dir(), spec)
        } else {
            sandbox::image::prepare(&config.images_dir(), spec, &config.debian_mirror, |line| {
                tracing::info!("image: {line}")
            })
            .with_context(|| format!("prepare the {} image", spec.name))?
        });
    }
    let images = Images {
        nesting: images[0].clone(),
        strict: images[1].clone(),
    };
    let runtime = Runtime::new(RuntimeConfig {
        data_dir: config.data_dir.clone(),
        launcher: std::env::current_exe().context("find own executable")?,
        keep: keep_instances,
    })?;
    tracing::info!(cgroup = runtime.cgroup_version(), "runtime ready");

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if teardown {
        return tokio.block_on(tear_down(config, store));
    }
    tokio.block_on(serve(
        config,
        runtime,
        store,
        stored,
        keep_networks,
        Offer {
            templates,
            scenarios: Arc::new(scenarios),
        },
        images,
    ))
}

/// `playground teardown`: the runtime has already removed every instance;
/// remove the networks and egress rules, and forget every session.
async fn tear_down(config: Config, store: Store) -> anyhow::Result<()> {
    let (pool, prefix) = config.network_pool;
    let networks = Networks::new(&config.data_dir, pool, prefix, config.egress(), &[])
        .await
        .context("session networks")?;
    networks.shutdown();
    for session in store.sessions()? {
        store.remove_session(&session.id)?;
    }
    println!(
        "removed every session, instance and network of {}",
        config.data_dir.display()
    );
    Ok(())
}

/// Instances run as unprivileged host users and reach their files through
/// the data directory: every folder above it must let others through (`x`),
/// or each new instance would fail with "permission denied".
fn check_traversable(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolve {}", dir.display()))?;
    // The data directory itself is ours: let others through (not read it),
    // as a private one made with `mktemp -d` would otherwise fail later.
    let mode = std::fs::metadata(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o001 == 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode | 0o001))
            .with_context(|| format!("chmod o+x {}", dir.display()))?;
        tracing::info!(dir = %dir.display(), "let instances through the data directory (o+x)");
    }
    for ancestor in dir.ancestors().skip(1) {
        let mode = std::fs::metadata(ancestor)
            .with_context(|| format!("read {}", ancestor.display()))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            anyhow::bail!(
                "{} (mode {:o}) does not let other users through, and instances run as \
                 unprivileged users under the data directory {}: chmod o+x it, or choose \
                 another --data-dir",
                ancestor.display(),
                mode & 0o7777,
                dir.display()
            );
        }
    }
    Ok(())
}

fn nix_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// What a session may start from: the templates and the scenarios.
struct Offer {
    templates: Vec<playground_protocol::TemplateInfo>,
    scenarios: Arc<scenarios::Catalog>,
}

async fn serve(
    config: Config,
    runtime: Runtime,
    store: Store,
    stored: Vec<StoredSession>,
    keep_networks: Vec<String>,
    offer: Offer,
    images: Images,
) -> anyhow::Result<()> {
    let Offer {
        templates,
        scenarios,
    } = offer;
    let (pool, prefix) = config.network_pool;
    let networks = Networks::new(
        &config.data_dir,
        pool,
        prefix,
        config.egress(),
        &keep_networks,
    )
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
    let live_instances: Vec<String> = stored
        .iter()
        .flat_map(|s| s.instances.iter().map(|i| i.runtime_id.clone()))
        .collect();
    let engine = engine::Engine::open(
        &config.data_dir,
        config.registry_settings(),
        &config.offline_images(),
        &live_instances,
    )
    .await
    .context("the image store of the instances' docker")?;
    let sessions = Arc::new(Sessions::new(
        runtime,
        networks,
        store,
        Policy {
            session_ttl: config.session_ttl,
            session_max: config.session_max,
            templates,
            scenarios,
            max_instances: config.max_instances,
            limits: Limits {
                memory_bytes: config.instance_memory_mib << 20,
                pids: config.instance_pids,
                cpu_shares: config.instance_cpu_shares,
                cpu_millis: (config.instance_cpus.max(0.0) * 1000.0) as u64,
                disk_bytes: config.instance_disk_mib << 20,
            },
            port_url,
            max_upload_bytes: config.max_upload_mib << 20,
            max_sessions_per_client: config.max_sessions_per_client,
            max_connections_per_session: config.max_connections_per_session,
            profile: config
                .instance_profile
                .parse()
                .map_err(anyhow::Error::msg)?,
            images,
            ssh: Default::default(),
        },
        config.capacity_instances(),
        engine,
        mirror::router(config.offline_images()),
    ));
    tracing::info!(
        capacity = sessions.capacity().limit(),
        "instances this host may run at once"
    );
    // A cluster node serves only its gateways, which say who the client is.
    let clients = clients::ClientPolicy::new(
        config.requests_per_second,
        config.trust_forwarded_for || config.cluster.is_some(),
    );
    sessions.restore(stored).await;
    session::tutorial::watch_all(&sessions);
    let class_store = classes::store::ClassStore::open(&config.data_dir.join("state.db"))
        .context("state database (classes)")?;
    let classes = classes::Classes::open(sessions.clone(), class_store).context("classes")?;

    let sweeper = {
        let sessions = sessions.clone();
        let clients = clients.clone();
        let classes = classes.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for n in 0u64.. {
                tick.tick().await;
                classes.end_due().await;
                sessions.end_expired().await;
                if n % 60 == 0 {
                    clients.forget_quiet();
                }
            }
        })
    };

    let watcher = tokio::spawn(events::watch(sessions.clone()));

    metrics::get()
        .capacity_instances
        .set(sessions.capacity().limit() as i64);
    let ssh = match config.ssh_listen {
        Some(address) => Some(
            ssh::serve(
                address,
                config.ssh_host.clone(),
                &config.data_dir,
                sessions.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let admin = match config.admin_listen {
        Some(address) => Some(serve_admin(address, sessions.clone(), classes.clone()).await?),
        None => None,
    };

    let app = api::app(
        sessions.clone(),
        clients.clone(),
        config.admin_token.clone(),
        classes,
        &config.web_dir,
        api::embed::Embedding::new(&config.embed_origins),
    );

    // Requests for ports of instances go to the proxy, the rest to `app`.
    let app = proxy::front(app, proxy::Proxy::new(proxy_settings, sessions.clone()));
    // With --cluster: registered (and its lease kept) before it serves.
    let node = match &config.cluster {
        Some(url) => Some(
            cluster::node::Node::start(
                cluster::node::NodeSettings {
                    url,
                    secret_file: config.cluster_secret_file.as_deref(),
                    advertise: config.advertise.as_deref(),
                    name: config.node_name.as_deref(),
                    data_dir: &config.data_dir,
                    capacity: config.capacity_instances(),
                },
                address,
                sessions.clone(),
            )
            .await?,
        ),
        None => None,
    };
    // Tests and scripts wait for this exact line.
    println!("playground listening on http://{address}/");
    match &node {
        Some(node) => serve::serve(listener, node.guard(app), shutdown_signal()).await,
        None => serve::serve(listener, app, shutdown_signal()).await,
    }
    if let Some(node) = node {
        node.stop();
    }

    sweeper.abort();
    watcher.abort();
    if let Some(admin) = admin {
        admin.abort();
    }
    if let Some(ssh) = ssh {
        ssh.abort();
    }
    // Instances keep running; the next start takes them back.
    // `playground teardown` removes everything instead.
    tracing::info!("stopped; instances keep running until the next start or a teardown");
    Ok(())
}

/// Serve metrics and the admin API without a token on `address` (--admin-listen).
async fn serve_admin(
    address: std::net::SocketAddr,
    sessions: Arc<Sessions>,
    classes: Arc<classes::Classes>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listen on {address} (--admin-listen)"))?;
    let address = listener.local_addr()?;
    let access = api::classes::ClassAccess {
        classes,
        admin_token: None,
    };
    let app = admin::open()
        .with_state(sessions)
        .layer(axum::Extension(access))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(logging::request_span));
    // Tests and scripts may wait for this line too.
    println!("playground admin listening on http://{address}/");
    Ok(tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("admin address: {e}");
        }
    }))
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
