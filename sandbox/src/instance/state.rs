//! What the runtime and its instances share, so that neither has to import
//! the other: the runtime's configuration, what one instance is asked to be
//! ([`InstanceSpec`]), the runtime's state every [`super::handle::Instance`]
//! holds a share of ([`RuntimeInner`]: the cgroup layout, the uid-range
//! slots, the disk pool and the launch server), and the pidfd of an
//! instance's init. `runtime` makes instances; the instance handle gives
//! its slot and disk back here when it is destroyed.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::isolation::cgroup::{Layout, Limits};
use crate::isolation::security::Profile;
use crate::isolation::sys;
use crate::launch::server::LaunchServer;
use crate::storage::disk_pool::DiskPool;
use crate::{Error, Result};

/// First host uid/gid handed to instances. Far above any real user's id.
pub(super) const ID_BASE: u32 = 1 << 28;
/// Ids per instance: a full 16-bit range, so every ordinary id works inside.
pub(super) const ID_COUNT: u32 = 1 << 16;
/// How many instances may exist at once before the id space runs out.
const MAX_SLOTS: usize = ((u32::MAX - ID_BASE) / ID_COUNT) as usize;

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Per-instance directories live in `<data_dir>/instances`.
    pub data_dir: PathBuf,
    /// An executable that calls [`crate::run_launcher_if_requested`] first
    /// thing; normally the server binary itself.
    pub launcher: PathBuf,
    /// Ids of instances an earlier run left that the caller will
    /// [`crate::Runtime::reattach`] (or [`crate::Runtime::remove`]); every other leftover
    /// is removed at start-up.
    pub keep: Vec<String>,
}

/// What one instance should look like.
#[derive(Clone, Debug)]
pub struct InstanceSpec {
    /// Unique among live instances; names the instance's directory and cgroup.
    pub id: String,
    pub hostname: String,
    pub limits: Limits,
    /// The read-only root file system the instance starts from.
    pub image: PathBuf,
    pub profile: Profile,
}

pub(crate) struct RuntimeInner {
    pub(crate) config: RuntimeConfig,
    pub(crate) layout: Layout,
    slots: Mutex<Vec<bool>>,
    /// Instance disks made ready ahead of time and let go of afterwards.
    pub(crate) disks: DiskPool,
    /// Forks the launchers that create instances.
    pub(crate) launch_server: LaunchServer,
    /// Held for the runtime's life: one server per data directory.
    _lock: nix::fcntl::Flock<fs::File>,
}

impl RuntimeInner {
    pub(crate) fn new(
        config: RuntimeConfig,
        layout: Layout,
        disks: DiskPool,
        launch_server: LaunchServer,
        lock: nix::fcntl::Flock<fs::File>,
    ) -> RuntimeInner {
        RuntimeInner {
            config,
            layout,
            slots: Mutex::new(Vec::new()),
            disks,
            launch_server,
            _lock: lock,
        }
    }

    pub(crate) fn take_slot(&self) -> Result<usize> {
        let mut slots = self.slots.lock().unwrap();
        if let Some(i) = slots.iter().position(|used| !used) {
            slots[i] = true;
            return Ok(i);
        }
        if slots.len() >= MAX_SLOTS {
            return Err(Error::Capacity(
                "no free uid range for a new instance".into(),
            ));
        }
        slots.push(true);
        Ok(slots.len() - 1)
    }

    pub(crate) fn claim_slot(&self, slot: usize) -> Result<()> {
        let mut slots = self.slots.lock().unwrap();
        if slots.len() <= slot {
            slots.resize(slot + 1, false);
        }
        if slots[slot] {
            return Err(Error::Setup(format!("uid range {slot} is claimed twice")));
        }
        slots[slot] = true;
        Ok(())
    }

    pub(crate) fn free_slot(&self, slot: usize) {
        self.slots.lock().unwrap()[slot] = false;
    }
}

pub(crate) fn pidfd(pid: i32) -> Result<OwnedFd> {
    sys::pidfd_open(pid).map_err(|e| Error::Setup(format!("pidfd of init: {e}")))
}
