//! What the processes of `launch` share: the jobs the server hands a
//! forked launcher (an instance to create, or something to do with a
//! container), what those report back, and the descriptor numbers the
//! launch server, the launcher and init agree on. The launcher, the launch
//! server, rootfs, init and nested all stand on this file, and the
//! server's side (`crate::instance`, `crate::containers`) writes the jobs
//! from here without importing the launcher that does them.

use std::os::fd::RawFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::agent::WindowSize;
use crate::isolation::cgroup::CgroupMount;
use crate::isolation::security::Profile;
use crate::network::container_bridge::ContainerNetwork;

/// The descriptor number of the control socket in the launcher and in init.
pub const CONTROL_FD: RawFd = 3;
/// The descriptor number of init's listening socket, where a restarted
/// server attaches (bound at `<instance dir>/control.sock` on the host, a
/// path no process inside the instance can see).
pub const LISTEN_FD: RawFd = 4;

/// Name of the listening socket in the instance's directory.
pub const CONTROL_SOCKET: &str = "control.sock";

/// What a forked launcher is to do; the first message on its socket.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    Instance(LaunchConfig),
    Container(ContainerJob),
}

/// Everything the launcher needs to create an instance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LaunchConfig {
    pub hostname: String,
    /// First host uid/gid of the instance's range; instance uid 0 maps to it.
    pub id_base: u32,
    pub id_count: u32,
    /// The read-only image root file system.
    pub image: PathBuf,
    /// Holds `disk.img` (the backing file of the writable layer's file
    /// system) and the mount points `disk/`, `lower/` and `rootfs/`.
    pub instance_dir: PathBuf,
    /// Files to write `0` to, to join the instance's cgroups before cloning.
    pub cgroup_join: Vec<PathBuf>,
    #[serde(default)]
    pub profile: Profile,
    /// The cgroup file systems mounted at /sys/fs/cgroup inside (nesting
    /// profile only; each shows the instance's own subtree).
    #[serde(default)]
    pub cgroup_mounts: Vec<CgroupMount>,
}

impl LaunchConfig {
    pub fn rootfs(&self) -> PathBuf {
        self.instance_dir.join("rootfs")
    }
}

/// A container's first process, or one more process in a running container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerJob {
    /// Files to write `0` to, to join the instance's cgroups.
    pub cgroup_join: Vec<PathBuf>,
    /// Init's pid on the host (its pidfd comes along and proves it).
    pub init_pid: i32,
    pub kind: JobKind,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    Run(RunSpec),
    /// Start `process` in the container whose first process is `target`
    /// (a pid in the instance's pid namespace).
    Exec {
        target: i32,
        process: ProcessSpec,
    },
    /// Remove the container's writable layer from the instance's disk.
    RemoveLayer {
        id: String,
        disk_image: PathBuf,
    },
    /// Write the (stopped) container's writable layer as a layer tar to
    /// `dest`, a new file on the host (see `crate::storage::layer_export`).
    ExportLayer {
        id: String,
        disk_image: PathBuf,
        dest: PathBuf,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSpec {
    /// Names the writable layer's directory on the instance's disk.
    pub id: String,
    pub hostname: String,
    /// The image's unpacked layers on the host, bottom to top.
    pub layers: Vec<PathBuf>,
    /// The instance's disk image file (its loop device carries the disk).
    pub disk_image: PathBuf,
    pub binds: Vec<Bind>,
    #[serde(default)]
    pub network: ContainerNetwork,
    pub process: ProcessSpec,
}

/// A directory or file of the instance bound into the container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bind {
    /// Absolute path inside the instance.
    pub source: String,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// `user`, `uid`, `user:group` or `uid:gid`, resolved in the container.
    pub user: String,
    pub tty: Option<WindowSize>,
}

/// What the job's processes tell the server on the job's socket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    /// The process runs as `pid` in the instance's pid namespace.
    Started {
        pid: i32,
    },
    /// Ready to run the command; the PTY master (with a terminal) or the
    /// stdin, stdout and stderr pipe ends are attached.
    Ready,
    /// Done (for `RemoveLayer` and `ExportLayer`).
    Done,
    Failed {
        error: String,
    },
}

/// The server's word to run the command (init tracks the process now).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Go;
