//! Command-line flags, each with an environment variable of the same meaning.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// A self-hostable browser playground for Linux: sessions of sandboxed
/// instances with terminals in the browser. Runs as root.
#[derive(Clone, Debug, Parser)]
#[command(name = "playground", version, about)]
pub struct Config {
    /// Address and port to serve the web page and the API on.
    #[arg(long, env = "PLAYGROUND_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the playground's state: images and instance layers.
    #[arg(
        long,
        env = "PLAYGROUND_DATA_DIR",
        default_value = "/var/lib/playground"
    )]
    pub data_dir: PathBuf,

    /// Where instance images are built and cached [default: <data-dir>/images].
    #[arg(long, env = "PLAYGROUND_IMAGES_DIR")]
    pub images_dir: Option<PathBuf>,

    /// How long a session lives before it and its instances are removed
    /// (e.g. 4h, 30m, 90s).
    #[arg(long, env = "PLAYGROUND_SESSION_TTL", default_value = "4h", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,

    /// How many instances one session may have at once.
    #[arg(long, env = "PLAYGROUND_MAX_INSTANCES", default_value_t = 5)]
    pub max_instances: u32,

    /// Memory limit of each instance, in MiB (no swap beyond it).
    #[arg(long, env = "PLAYGROUND_INSTANCE_MEMORY_MIB", default_value_t = 1024)]
    pub instance_memory_mib: u64,

    /// Maximum number of processes and threads in each instance.
    #[arg(long, env = "PLAYGROUND_INSTANCE_PIDS", default_value_t = 1000)]
    pub instance_pids: u64,

    /// Disk space of each instance (its writable layer), in MiB. Sparse: the
    /// host only spends what instances write.
    #[arg(long, env = "PLAYGROUND_INSTANCE_DISK_MIB", default_value_t = 4096)]
    pub instance_disk_mib: u64,

    /// Hard CPU cap of each instance, in CPUs (e.g. 0.5, 1, 2; 0 for none).
    #[arg(long, env = "PLAYGROUND_INSTANCE_CPUS", default_value_t = 1.0)]
    pub instance_cpus: f64,

    /// Relative CPU weight of each instance when CPUs are contended (1024 is normal).
    #[arg(long, env = "PLAYGROUND_INSTANCE_CPU_SHARES", default_value_t = 1024)]
    pub instance_cpu_shares: u64,

    /// Folder with the built web app (Trunk's output).
    #[arg(long, env = "PLAYGROUND_WEB_DIR", default_value = "dist")]
    pub web_dir: PathBuf,

    /// Debian mirror used once to build the default instance image.
    #[arg(
        long,
        env = "PLAYGROUND_DEBIAN_MIRROR",
        default_value = "http://deb.debian.org/debian"
    )]
    pub debian_mirror: String,
}

impl Config {
    pub fn images_dir(&self) -> PathBuf {
        self.images_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("images"))
    }
}
