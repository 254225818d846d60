//! The runtime as the server sees it: creates instances, and at start-up
//! removes whatever an earlier (crashed) run left behind.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use super::control::Control;
use super::handle::{Instance, PtyProcess};
use super::state::{InstanceSpec, RuntimeConfig, RuntimeInner, ID_BASE, ID_COUNT};
use crate::isolation::cgroup::Layout;
use crate::isolation::security::Profile;
use crate::launch::agent::{self, Event};
use crate::launch::jobs::LaunchConfig;
use crate::launch::server::LaunchServer;
use crate::storage::disk_pool::DiskPool;
use crate::{Error, Result};

/// How long instance creation may take before it is abandoned.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates and owns instances. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl Runtime {
    /// Detect the cgroup layout, and remove every instance, cgroup and
    /// directory an earlier run left behind.
    pub fn new(config: RuntimeConfig) -> Result<Runtime> {
        let layout = Layout::detect().map_err(|e| Error::Setup(format!("cgroups: {e}")))?;
        let modules = crate::isolation::modules::load_for_nesting();
        if modules.builtin_only {
            tracing::debug!("no loadable kernel modules: the kernel has what it was built with");
        }
        if !modules.loaded.is_empty() {
            tracing::info!(modules = ?modules.loaded, "loaded kernel modules for nesting instances");
        }
        for (name, reason) in &modules.failed {
            tracing::warn!(
                module = name,
                "cannot load a kernel module nesting instances use: {reason}"
            );
        }
        layout
            .prepare()
            .map_err(|e| Error::Setup(format!("cgroups: {e}")))?;
        fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::Setup(format!("{}: {e}", config.data_dir.display())))?;
        let lock = fs::File::create(config.data_dir.join(".lock"))
            .map_err(|e| Error::Setup(format!("lock data directory: {e}")))?;
        let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|_| {
                Error::Setup(format!(
                    "another playground is using {}",
                    config.data_dir.display()
                ))
            })?;
        let disks =
            DiskPool::new(&config.data_dir).map_err(|e| Error::Setup(format!("disk pool: {e}")))?;
        let launch_server = LaunchServer::start(&config.launcher)
            .map_err(|e| Error::Setup(format!("launch server: {e}")))?;
        let runtime = Runtime {
            inner: Arc::new(RuntimeInner::new(
                config,
                layout,
                disks,
                launch_server,
                lock,
            )),
        };
        runtime.reconcile()?;
        Ok(runtime)
    }

    pub fn cgroup_version(&self) -> u8 {
        if self.inner.layout.is_v2() {
            2
        } else {
            1
        }
    }

    fn instances_dir(&self) -> PathBuf {
        self.inner.config.data_dir.join("instances")
    }

    /// Remove leftovers of an earlier run of this data directory. An
    /// instance's directory is created before its cgroup and removed after
    /// it, so the directories name every cgroup that may be left: kill the
    /// processes in it (init takes its pid and mount namespaces with it),
    /// then delete the cgroup and the directory. Cgroups of other data
    /// directories (other servers on the host) are left alone.
    fn reconcile(&self) -> Result<()> {
        let dir = self.instances_dir();
        fs::create_dir_all(&dir).map_err(|e| Error::Setup(format!("{}: {e}", dir.display())))?;
        let mut removed = 0;
        for entry in fs::read_dir(&dir)
            .map_err(|e| Error::Setup(e.to_string()))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if self.inner.config.keep.contains(&name) {
                continue;
            }
            self.remove(&name)?;
            removed += 1;
        }
        if removed > 0 {
            tracing::info!(removed, "removed leftovers of an earlier run");
        }
        Ok(())
    }

    /// Remove whatever is left of instance `id`: kill the processes in its
    /// cgroup (init takes its pid and mount namespaces with it), then delete
    /// the cgroup and the directory.
    pub fn remove(&self, id: &str) -> Result<()> {
        self.inner
            .layout
            .open(id)
            .remove(Duration::from_secs(10))
            .map_err(|e| Error::Cleanup(format!("remove cgroup of {id}: {e}")))?;
        let dir = self.instances_dir().join(id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(Error::Cleanup(format!("remove {}: {e}", dir.display())))
            }
            _ => Ok(()),
        }
    }

    /// Take back an instance that kept running while no server was attached
    /// (after a restart or a crash): find its init, connect to its listening
    /// socket, and collect the processes running on its terminals.
    pub async fn reattach(&self, spec: InstanceSpec) -> Result<(Instance, Vec<PtyProcess>)> {
        let dir = self.instances_dir().join(&spec.id);
        let cgroup = self.inner.layout.open(&spec.id);
        let host_pid = cgroup
            .pids()
            .into_iter()
            .find(|&pid| is_namespace_init(pid))
            .ok_or(Error::NotRunning)?;
        // The instance's uid range tells its slot.
        let map = fs::read_to_string(format!("/proc/{host_pid}/uid_map"))
            .map_err(|_| Error::NotRunning)?;
        let base: u32 = map
            .split_whitespace()
            .nth(1)
            .and_then(|b| b.parse().ok())
            .ok_or_else(|| Error::Setup(format!("unreadable uid map of {}", spec.id)))?;
        let slot = ((base - ID_BASE) / ID_COUNT) as usize;
        self.inner.claim_slot(slot)?;
        let attached = async {
            let socket = connect_control(&dir.join(crate::launch::jobs::CONTROL_SOCKET))?;
            let control = Control::new(socket).map_err(|e| Error::Setup(e.to_string()))?;
            let instance = Instance::new(
                spec,
                host_pid,
                control.clone(),
                cgroup,
                dir,
                slot,
                self.inner.clone(),
            )?;
            let adopted = control
                .adopt()
                .await
                .map_err(|e| Error::Setup(format!("adopt processes: {e}")))?;
            let mut terminals = Vec::new();
            for found in adopted {
                if found.tracked {
                    instance.keep_adopted(found.process);
                    continue;
                }
                if !found.tty {
                    continue;
                }
                let Some(master) = found.process.fds.into_iter().next() else {
                    continue;
                };
                terminals.push(PtyProcess {
                    pid: found.process.pid,
                    pty: crate::Pty::new(master).map_err(|e| Error::Setup(e.to_string()))?,
                    exit: found.process.exit,
                });
            }
            Ok((instance, terminals))
        }
        .await;
        if attached.is_err() {
            self.inner.free_slot(slot);
        }
        attached
    }

    /// Create and start an instance; returns once its init serves requests.
    pub async fn create(&self, spec: InstanceSpec) -> Result<Instance> {
        let slot = self.inner.take_slot()?;
        let dir = self.instances_dir().join(&spec.id);
        let id_base = ID_BASE + slot as u32 * ID_COUNT;
        let prepared = {
            let inner = self.inner.clone();
            let (dir, id, limits) = (dir.clone(), spec.id.clone(), spec.limits.clone());
            // A nesting instance runs its own container engine, which makes
            // cgroups below the instance's.
            let delegate_to = (spec.profile == Profile::Nesting).then_some(id_base);
            tokio::task::spawn_blocking(move || -> io::Result<_> {
                let disk = inner.disks.take(limits.disk_bytes.div_ceil(1 << 20))?;
                remove_stale_dir(&dir)?;
                let disk = disk.place(&dir)?;
                Ok((disk, inner.layout.create(&id, &limits, delegate_to)?))
            })
            .await
            .expect("blocking task panicked")
        };
        let (disk, cgroup) = match prepared {
            Ok(c) => c,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                self.inner.free_slot(slot);
                return Err(Error::Setup(format!(
                    "instance disk, directory or cgroup: {e}"
                )));
            }
        };
        let config = LaunchConfig {
            hostname: spec.hostname.clone(),
            id_base,
            id_count: ID_COUNT,
            image: spec.image.clone(),
            instance_dir: dir.clone(),
            cgroup_join: cgroup.join_files(),
            profile: spec.profile,
            cgroup_mounts: match spec.profile {
                Profile::Nesting => self.inner.layout.instance_mounts(),
                Profile::Strict => Vec::new(),
            },
        };
        let started = tokio::time::timeout(START_TIMEOUT, self.launch(&config, &disk)).await;
        let started = match started {
            Ok(result) => result,
            Err(_) => Err(Error::Setup("the instance did not start in time".into())),
        };
        match started {
            Ok((pid, control)) => {
                let instance =
                    Instance::new(spec, pid, control, cgroup, dir, slot, self.inner.clone())?;
                instance.hold_disk(disk);
                Ok(instance)
            }
            Err(e) => {
                let cleanup = tokio::task::spawn_blocking(move || {
                    let _ = cgroup.remove(Duration::from_secs(5));
                    let _ = fs::remove_dir_all(&dir);
                });
                let _ = cleanup.await;
                self.inner.free_slot(slot);
                Err(e)
            }
        }
    }

    /// Have a launcher forked (see `crate::launch::server`), hand it the instance's
    /// disk (a detached mount) and wait for init to report ready.
    async fn launch(&self, config: &LaunchConfig, disk: &OwnedFd) -> Result<(i32, Arc<Control>)> {
        // Blocking for the launcher and init; ours is made non-blocking.
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::Setup(format!("socketpair: {e}")))?;
        nix::fcntl::fcntl(
            &ours,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(|e| Error::Setup(format!("fcntl: {e}")))?;
        let job = crate::launch::jobs::Job::Instance(config.clone());
        agent::send(ours.as_fd(), &job, &[disk.as_raw_fd()])
            .map_err(|e| Error::Setup(format!("send launch configuration: {e}")))?;
        self.inner
            .launch_server
            .launch(&theirs)
            .map_err(|e| Error::Setup(format!("start launcher: {e}")))?;
        drop(theirs);
        let control = Control::new(ours).map_err(|e| Error::Setup(e.to_string()))?;

        let mut pid = None;
        loop {
            match control.recv_event().await {
                Ok(Some((Event::Launched { pid: p }, _))) => pid = Some(p),
                Ok(Some((Event::Ready, _))) if pid.is_some() => break,
                Ok(Some((Event::Failed { error }, _))) => return Err(Error::Setup(error)),
                Ok(Some(_)) => {
                    return Err(Error::Setup("unexpected message while starting".into()))
                }
                Ok(None) => {
                    return Err(Error::Setup(
                        "the launcher or the instance's init exited while starting".into(),
                    ))
                }
                Err(e) => return Err(Error::Setup(format!("control channel: {e}"))),
            }
        }
        Ok((pid.expect("checked above"), control))
    }
}

/// Make room for an instance's directory (it comes with its disk, see
/// `crate::storage::disk`): an earlier one of the same name is removed.
fn remove_stale_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether host process `pid` is PID 1 of its own pid namespace.
fn is_namespace_init(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .map(|ids| ids.split_whitespace().last() == Some("1"))
        })
        .unwrap_or(false)
}

/// Connect to an instance's listening socket (non-blocking, for tokio).
fn connect_control(path: &Path) -> Result<OwnedFd> {
    use nix::sys::socket::{connect, socket, UnixAddr};
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::Setup(format!("socket: {e}")))?;
    let addr = UnixAddr::new(path).map_err(|e| Error::Setup(format!("{}: {e}", path.display())))?;
    connect(sock.as_raw_fd(), &addr).map_err(|_| Error::NotRunning)?;
    nix::fcntl::fcntl(
        &sock,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(|e| Error::Setup(format!("fcntl: {e}")))?;
    Ok(sock)
}
