//! Command-line flags, each with an environment variable of the same meaning
//! and a key of the configuration file (see `config_file.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// A self-hostable browser playground for Linux: sessions of sandboxed
/// instances with terminals in the browser. Runs as root.
#[derive(Clone, Debug, Parser)]
#[command(name = "playground", version, about)]
pub struct Config {
    /// TOML file of settings: each key is a flag's long name (e.g.
    /// `instance-memory-mib = 512`); see playground.example.toml. The command
    /// line overrides the environment, which overrides the file.
    #[arg(long, global = true, env = "PLAYGROUND_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address and port to serve the web page and the API on.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// Directory for the playground's state: images and instance layers.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_DATA_DIR",
        default_value = "/var/lib/playground"
    )]
    pub data_dir: PathBuf,

    /// Where instance images are built and cached [default: <data-dir>/images].
    #[arg(long, global = true, env = "PLAYGROUND_IMAGES_DIR")]
    pub images_dir: Option<PathBuf>,

    /// How long a session lives before it and its instances are removed
    /// (e.g. 4h, 30m, 90s).
    #[arg(long, global = true, env = "PLAYGROUND_SESSION_TTL", default_value = "4h", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,

    /// The longest a session may live in total, extensions included (e.g. 8h).
    #[arg(long, global = true, env = "PLAYGROUND_SESSION_MAX", default_value = "8h", value_parser = humantime::parse_duration)]
    pub session_max: Duration,

    /// TOML file of extra session templates (see templates.example.toml).
    #[arg(long, global = true, env = "PLAYGROUND_TEMPLATES")]
    pub templates: Option<PathBuf>,

    /// Folder of scenarios in Killercoda's format (see docs/scenarios.md),
    /// checked at start.
    #[arg(long, global = true, env = "PLAYGROUND_SCENARIOS")]
    pub scenarios: Option<PathBuf>,

    /// How many instances one session may have at once.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_MAX_INSTANCES",
        default_value_t = 5
    )]
    pub max_instances: u32,

    /// How many instances may run on this host at once, over all sessions;
    /// beyond it new sessions and instances are refused with the reason and
    /// a Retry-After [default: host memory / --instance-memory-mib].
    #[arg(long, global = true, env = "PLAYGROUND_CAPACITY_INSTANCES")]
    pub capacity_instances: Option<u32>,

    /// Live sessions one client address may hold (0: no limit). Raise it for
    /// a classroom whose students share one address behind NAT.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_MAX_SESSIONS_PER_CLIENT",
        default_value_t = 10
    )]
    pub max_sessions_per_client: u32,

    /// API requests per second one client address may make, sustained (0:
    /// no limit); bursts of five times as many pass.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_REQUESTS_PER_SECOND",
        default_value_t = 20
    )]
    pub requests_per_second: u32,

    /// Take the client address from the last X-Forwarded-For entry (only
    /// when a reverse proxy that sets it is the sole way in).
    #[arg(long, global = true, env = "PLAYGROUND_TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,

    /// Open WebSockets (terminals and event streams) one session may have.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_MAX_CONNECTIONS_PER_SESSION",
        default_value_t = 32
    )]
    pub max_connections_per_session: u32,

    /// Memory limit of each instance, in MiB (no swap beyond it).
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_INSTANCE_MEMORY_MIB",
        default_value_t = 1024
    )]
    pub instance_memory_mib: u64,

    /// Maximum number of processes and threads in each instance.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_INSTANCE_PIDS",
        default_value_t = 1000
    )]
    pub instance_pids: u64,

    /// Disk space of each instance (its writable layer), in MiB. Sparse: the
    /// host only spends what instances write.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_INSTANCE_DISK_MIB",
        default_value_t = 4096
    )]
    pub instance_disk_mib: u64,

    /// Largest file upload through the files API, in MiB.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_MAX_UPLOAD_MIB",
        default_value_t = 100
    )]
    pub max_upload_mib: u64,

    /// Hard CPU cap of each instance, in CPUs (e.g. 0.5, 1, 2; 0 for none).
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_INSTANCE_CPUS",
        default_value_t = 1.0
    )]
    pub instance_cpus: f64,

    /// What instance root may do: `nesting` (the default: the real dockerd,
    /// containerd and runc inside, nested namespaces, a delegated cgroup
    /// subtree, all within the instance's user namespace) or `strict`
    /// (Docker's default container profile; `docker` is the built-in engine).
    /// Templates may choose their own.
    #[arg(long, global = true, env = "PLAYGROUND_INSTANCE_PROFILE", default_value = "nesting", value_parser = ["nesting", "strict"])]
    pub instance_profile: String,

    /// Relative CPU weight of each instance when CPUs are contended (1024 is normal).
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_INSTANCE_CPU_SHARES",
        default_value_t = 1024
    )]
    pub instance_cpu_shares: u64,

    /// Address pool for session networks; each session gets a /24 of it.
    /// Instances reach each other inside a session and nothing else. Must
    /// not overlap 172.17.0.0/16, the containers' bridge in every instance.
    #[arg(long, global = true, env = "PLAYGROUND_NETWORK_POOL", default_value = "10.100.0.0/16", value_parser = parse_pool)]
    pub network_pool: (std::net::Ipv4Addr, u8),

    /// What instances may reach outside their session: `off` (nothing; the
    /// default) or `nat` (public addresses through the host, never the host
    /// itself, private or link-local ranges; needs nftables).
    #[arg(long, global = true, env = "PLAYGROUND_EGRESS", default_value = "off", value_parser = ["off", "nat"])]
    pub egress: String,

    /// DNS servers instances use when egress is `nat` (comma-separated).
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_DNS",
        default_value = "1.1.1.1,9.9.9.9",
        value_delimiter = ','
    )]
    pub dns: Vec<std::net::Ipv4Addr>,

    /// Folder with the built web app (Trunk's output).
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_WEB_DIR",
        default_value = "dist"
    )]
    pub web_dir: PathBuf,

    /// Debian mirror used once to build the default instance image.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_DEBIAN_MIRROR",
        default_value = "http://deb.debian.org/debian"
    )]
    pub debian_mirror: String,

    /// OCI image layout imported into the engine's image store at start-up
    /// (the offline images made by scripts/build-offline-images), skipping
    /// what the store has [default: <images-dir>/oci-layout].
    #[arg(long, global = true, env = "PLAYGROUND_OFFLINE_IMAGES")]
    pub offline_images: Option<PathBuf>,

    /// Registry mirrors the instances' `docker pull` tries first, like
    /// dockerd's registry-mirrors: `http://10.0.0.2:5000` mirrors Docker Hub,
    /// `REGISTRY=URL` another registry (comma-separated). When no mirror nor
    /// the registry answers, a pull is served from images the store
    /// already has (the offline images), so offline hosts still pull them.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_REGISTRY_MIRRORS",
        value_delimiter = ','
    )]
    pub registry_mirrors: Vec<String>,

    /// Registries (`host` or `host:port`) pulled from over plain HTTP
    /// (comma-separated); loopback addresses always are.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,

    /// Domain under which ports of instances are served: port 8000 of node1
    /// is at http://<session id without dashes>-8000-node1.<domain>/. Every
    /// host name under it belongs to the port proxy, so serve the page on
    /// another name (e.g. the bare domain). Browsers resolve *.localhost to
    /// loopback with no DNS set-up; elsewhere point a wildcard DNS record
    /// (and certificate) at the playground. Ports are also reachable at
    /// /proxy/<session id>/<instance>/<port>/ on the page's own host.
    #[arg(long, global = true, env = "PLAYGROUND_PROXY_DOMAIN", default_value = "localhost", value_parser = parse_domain)]
    pub proxy_domain: String,

    /// Scheme browsers use to reach the playground: https behind a TLS
    /// terminator. Used in port links and X-Forwarded-Proto.
    #[arg(long, global = true, env = "PLAYGROUND_PUBLIC_SCHEME", default_value = "http", value_parser = ["http", "https"])]
    pub public_scheme: String,

    /// Port browsers use to reach the playground, e.g. 443 behind a TLS
    /// terminator; left out of links when it is the scheme's default
    /// [default: the port of --listen].
    #[arg(long, global = true, env = "PLAYGROUND_PUBLIC_PORT")]
    pub public_port: Option<u16>,

    /// Secret that opens `/metrics` (Prometheus) and the admin API
    /// (`/api/admin/...`) on the main address: send it as
    /// `Authorization: Bearer <token>`. Without it (and without
    /// --admin-listen) both are off.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// A second address that serves only `/metrics` and the admin API, with
    /// no token (e.g. 127.0.0.1:9090; keep it off public networks).
    #[arg(long, global = true, env = "PLAYGROUND_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// Where the SSH server listens (e.g. 0.0.0.0:2222); off when absent.
    /// Users log in as `<instance>.<session id>` with a key they added to
    /// their session.
    #[arg(long, global = true, env = "PLAYGROUND_SSH_LISTEN")]
    pub ssh_listen: Option<SocketAddr>,

    /// The host name the page shows in its `ssh` commands (e.g.
    /// play.example.org); by default the host the page was loaded from.
    #[arg(long, global = true, env = "PLAYGROUND_SSH_HOST")]
    pub ssh_host: Option<String>,

    /// Sites whose pages may embed the playground (comma-separated origins
    /// like `https://tutorial.example`): they may call the API from the
    /// browser (CORS) and show `/embed/...` pages in frames. None by default:
    /// no other site may call the API or frame any page.
    #[arg(long, global = true, env = "PLAYGROUND_EMBED_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub embed_origins: Vec<String>,

    /// Log lines as readable `text` or as one JSON object per line (`json`),
    /// for log collectors. Levels are set with RUST_LOG (default info).
    #[arg(long, global = true, env = "PLAYGROUND_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// PostgreSQL database of a cluster (`postgres://user:pass@host/db`, or
    /// `host=/run/postgresql dbname=playground`): this process becomes a
    /// node that registers there (address, capacity, a lease it renews),
    /// reached only through `playground gateway`. Required by `gateway`.
    /// Absent: a single host, state in SQLite, no PostgreSQL at all.
    #[arg(
        long,
        global = true,
        env = "PLAYGROUND_CLUSTER",
        hide_env_values = true
    )]
    pub cluster: Option<String>,

    /// File holding the secret gateways and nodes show each other (one
    /// line, at least 32 characters). Required with --cluster.
    #[arg(long, global = true, env = "PLAYGROUND_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,

    /// Where gateways reach this node's HTTP listener, as host:port
    /// [default: the address --listen bound].
    #[arg(long, global = true, env = "PLAYGROUND_ADVERTISE")]
    pub advertise: Option<String>,

    /// This node's name in the cluster [default: the host name].
    #[arg(long, global = true, env = "PLAYGROUND_NODE_NAME")]
    pub node_name: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum Command {
    /// Remove every session, instance, network and egress rule of the data
    /// directory, then exit. (Stopping the server leaves instances running,
    /// to be taken back at the next start.)
    Teardown,
    /// Serve as a cluster's stateless front door: the page, the API,
    /// terminals and port links of every session, each request forwarded
    /// to the node that holds its session (needs --cluster and
    /// --cluster-secret-file; no root, no images, no state of its own).
    Gateway,
}

impl Config {
    pub fn egress(&self) -> sandbox::Egress {
        match self.egress.as_str() {
            "nat" => sandbox::Egress::Nat {
                dns: self.dns.clone(),
            },
            _ => sandbox::Egress::Off,
        }
    }

    /// The instance capacity: the configured one, or as many instances as
    /// fit the host's memory at their limit.
    pub fn capacity_instances(&self) -> u32 {
        self.capacity_instances.unwrap_or_else(|| {
            let total = host_memory_bytes().unwrap_or(4 << 30);
            let each = (self.instance_memory_mib << 20).max(1);
            (total / each).clamp(1, u32::MAX as u64) as u32
        })
    }

    pub fn offline_images(&self) -> PathBuf {
        self.offline_images
            .clone()
            .unwrap_or_else(|| self.images_dir().join("oci-layout"))
    }

    /// How the engine's image store reaches registries.
    pub fn registry_settings(&self) -> sandbox::oci::RegistrySettings {
        let mirrors = self
            .registry_mirrors
            .iter()
            .filter(|m| !m.is_empty())
            .map(|m| match m.split_once('=') {
                Some((registry, url)) => sandbox::oci::Mirror {
                    registry: registry.to_string(),
                    url: url.to_string(),
                },
                None => sandbox::oci::Mirror {
                    registry: "docker.io".to_string(),
                    url: m.clone(),
                },
            })
            .collect();
        sandbox::oci::RegistrySettings {
            mirrors,
            insecure: self.insecure_registries.clone(),
            ..Default::default()
        }
    }

    pub fn images_dir(&self) -> PathBuf {
        self.images_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("images"))
    }
}

/// MemTotal of /proc/meminfo, in bytes.
fn host_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn parse_pool(text: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let (addr, prefix) = text
        .split_once('/')
        .ok_or("expected an IPv4 network like 10.100.0.0/16")?;
    let addr: std::net::Ipv4Addr = addr.parse().map_err(|e| format!("{e}"))?;
    let prefix: u8 = prefix.parse().map_err(|e| format!("{e}"))?;
    if !(8..=24).contains(&prefix) {
        return Err("the prefix must be between /8 and /24".into());
    }
    let mask = u32::MAX << (32 - prefix);
    if u32::from(addr) & !mask != 0 {
        return Err(format!("{text} has host bits set"));
    }
    // Containers inside every instance use Docker's default bridge subnet.
    let bridge = sandbox::container_network::GATEWAY;
    let bridge_prefix = sandbox::container_network::PREFIX;
    let common = u32::MAX << (32 - prefix.min(bridge_prefix));
    if u32::from(addr) & common == u32::from(bridge) & common {
        return Err(format!(
            "{text} overlaps {bridge}/{bridge_prefix}, the containers' bridge inside every instance"
        ));
    }
    Ok((addr, prefix))
}

fn parse_domain(text: &str) -> Result<String, String> {
    let domain = text.trim_matches('.').to_ascii_lowercase();
    let valid = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(domain)
    } else {
        Err(format!(
            "{text} is not a domain name like localhost or play.example.com"
        ))
    }
}

/// A web origin as browsers send it in `Origin`: `scheme://host[:port]`,
/// lower-case, without the scheme's default port, a path or a trailing
/// slash, so it compares equal to what browsers send.
fn parse_origin(text: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!("{text:?} is not an origin like https://tutorial.example or http://127.0.0.1:8000: {why}")
    };
    let lower = text.trim().to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return Err(bad("the scheme must be http or https")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(bad("only scheme, host and port: no path, query or user"));
    }
    // The port follows the last ':' unless that is inside an IPv6 address.
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        parse_domain(host).is_ok_and(|d| d == host)
    };
    if !host_ok {
        return Err(bad("the host must be a domain name or an IP address"));
    }
    match port {
        None => Ok(format!("{scheme}://{host}")),
        Some(port) if port.parse::<u16>().is_ok_and(|p| p > 0) => {
            if port == default_port {
                Ok(format!("{scheme}://{host}"))
            } else {
                Ok(format!("{scheme}://{host}:{port}"))
            }
        }
        Some(_) => Err(bad("the port must be a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod origin_tests {
    use super::parse_origin;

    #[test]
    fn origins_are_normalised_like_browsers_send_them() {
        for (given, origin) in [
            ("https://Tutorial.Example", "https://tutorial.example"),
            ("https://tutorial.example/", "https://tutorial.example"),
            ("https://tutorial.example:443", "https://tutorial.example"),
            ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
            ("http://localhost:80", "http://localhost"),
            ("http://[::1]:3000", "http://[::1]:3000"),
        ] {
            assert_eq!(parse_origin(given).as_deref(), Ok(origin), "{given}");
        }
    }

    #[test]
    fn anything_but_an_origin_is_refused_with_the_reason() {
        for (given, why) in [
            ("tutorial.example", "no scheme"),
            ("ftp://tutorial.example", "http or https"),
            ("https://tutorial.example/docs", "no path"),
            ("https://user@tutorial.example", "no path"),
            ("https://", "host"),
            ("https://tutorial.example:0", "port"),
            ("https://tutorial.example:99999", "port"),
            ("https://*.example", "host"),
            ("*", "no scheme"),
        ] {
            let error = parse_origin(given).unwrap_err();
            assert!(error.contains(why), "{given}: {error}");
        }
    }
}

#[cfg(test)]
mod pool_tests {
    use super::parse_pool;

    #[test]
    fn a_pool_may_not_overlap_the_containers_bridge() {
        assert!(parse_pool("10.100.0.0/16").is_ok());
        assert!(parse_pool("172.16.0.0/16").is_ok());
        for overlapping in ["172.17.5.0/24", "172.16.0.0/12", "172.17.0.0/16"] {
            let error = parse_pool(overlapping).unwrap_err();
            assert!(
                error.contains("containers' bridge"),
                "{overlapping}: {error}"
            );
        }
        assert!(parse_pool("10.100.0.1/16")
            .unwrap_err()
            .contains("host bits"));
    }
}
