//! The playground's runtime: isolated Linux instances made of namespaces,
//! cgroups and an overlay root file system, with an init of our own as PID 1.
//!
//! It knows nothing of HTTP or sessions. The server:
//! 1. calls [`run_launcher_if_requested`] first thing in `main` (the runtime
//!    runs the server binary once more, as the launch server that forks the
//!    processes creating instances; see `launch::server` and
//!    `launch::launcher`);
//! 2. prepares the image once with [`image::prepare_default`];
//! 3. makes a [`Runtime`], which cleans up after any earlier crashed run, and
//!    creates [`Instance`]s with it.
//!
//! Module map, bottom to top (a folder imports only folders above it in
//! this list, never one below):
//! - `isolation`: raw system calls (`sys`), cgroups, seccomp, capabilities
//!   and masked paths; knows nothing of instances, images or networks.
//! - `oci`: the image store and registry client; knows nothing of
//!   instances.
//! - `storage`: instance disks and their pool, the instance image, a
//!   container's writable layer as an OCI layer; stands on `isolation` only.
//! - `network`: the session networks, egress NAT, listening ports, and the
//!   docker0 bridge inside an instance; stands on `isolation` only.
//! - `launch`: the processes that make instances and containers (launch
//!   server, launcher, `rootfs`, `init` as PID 1, `nested` for containers),
//!   the jobs and fd numbers they share (`jobs`) and the control channel's
//!   messages (`agent`); must not know the server's side (`instance`,
//!   `containers`).
//! - `instance`: the server's API of instances: [`Runtime`], [`Instance`],
//!   the server's end of the control channel, terminals; what runtime and
//!   instance share is in `instance::state`. Must not know `containers`.
//! - `containers`: the server's side of containers (running them in an
//!   instance through a launcher job) and their usage.

mod containers;
mod instance;
mod isolation;
mod launch;
mod network;
pub mod oci;
mod storage;

pub use containers::container::{Bind, ContainerProcess, ProcessIo, ProcessSpec, RunSpec};
pub use containers::stats::{system_cpu, ContainerUsage, InterfaceCounters, SystemCpu};
pub use instance::handle::{ExecOutput, Instance, InstanceFile, PipedProcess, PtyProcess};
pub use instance::pty::Pty;
pub use instance::runtime::Runtime;
pub use instance::state::{InstanceSpec, RuntimeConfig};
pub use isolation::cgroup::{self, Limits, Stats};
pub use isolation::security::Profile;
pub use launch::agent::{FileErrorKind, ListedEntry, ListedKind, WindowSize};
pub use launch::launcher::run_if_requested as run_launcher_if_requested;
pub use network::container_bridge::{self as container_network, ContainerNetwork};
pub use network::egress::Egress;
pub use network::session::{Network, Networks};
pub use storage::image;

/// Make the calling process the reaper of its orphaned descendants. An
/// instance's init is orphaned when its launcher exits; the server must
/// collect it when it dies, whatever the host's PID 1 does.
pub fn become_subreaper() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating the instance (or the runtime) failed.
    #[error("{0}")]
    Setup(String),
    /// The host cannot take another instance.
    #[error("{0}")]
    Capacity(String),
    /// The instance's init is gone.
    #[error("the instance is not running")]
    NotRunning,
    /// A process could not be started in the instance.
    #[error("{0}")]
    Spawn(String),
    /// A file of the instance could not be opened.
    #[error("{message}")]
    File {
        kind: FileErrorKind,
        message: String,
    },
    /// Removing an instance's resources failed.
    #[error("{0}")]
    Cleanup(String),
}

pub type Result<T> = std::result::Result<T, Error>;
