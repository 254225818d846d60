//! Instance disks are made ready and thrown away in the background, off the
//! path of creating and destroying instances (the copy, the loop device and
//! the mount were about half of an instance's start; unmounting and freeing
//! the file most of its removal). Each disk size an instance asked for is
//! kept stocked with [`STOCK`] disks; taking one wakes the thread that makes
//! the next. A destroyed instance's disk is handed back
//! ([`DiskPool::discard`]) and let go of by another thread (on a busy host
//! that can take tens of milliseconds, and must not hold up the stock);
//! dropping the pool waits until every handed-back disk is gone.
//!
//! A disk comes in the directory that becomes the instance's (see `disk`),
//! and a destroyed instance's directory comes back whole, so making and
//! removing directories is off those paths too.
//!
//! Nothing here needs clean-up after a crash but files: a mount is detached
//! (held by a descriptor only) and a loop device detaches itself when its
//! mount goes. The directories live in `<data>/disk-pool`, which
//! [`DiskPool::new`] empties.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::disk::{self, ReadyDisk};

/// Ready disks kept per size.
const STOCK: usize = 2;

pub struct DiskPool {
    shared: Arc<Shared>,
    /// The thread that keeps the stock, and the one that lets go of disks.
    workers: Vec<JoinHandle<()>>,
}

struct Shared {
    data_dir: PathBuf,
    dir: PathBuf,
    /// Names the pool's directories (unique within this run; the pool starts empty).
    next_name: AtomicU64,
    state: Mutex<State>,
    /// Wakes the stocking thread (a disk was taken, or stop).
    taken: Condvar,
    /// Wakes the discarding thread (a disk came back, or stop).
    returned: Condvar,
}

#[derive(Default)]
struct State {
    /// Ready disks by size in MiB; every size asked for has an entry.
    ready: HashMap<u64, Vec<ReadyDisk>>,
    /// Disks (and directories) of destroyed instances, to let go of.
    discarded: Vec<(Option<OwnedFd>, PathBuf)>,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn prepare(&self, size_mib: u64) -> io::Result<ReadyDisk> {
        let n = self.next_name.fetch_add(1, Ordering::Relaxed);
        ReadyDisk::prepare(&self.data_dir, size_mib, self.dir.join(n.to_string()))
    }

    /// The stocking thread: keep every size stocked until told to stop.
    fn restock(&self) {
        let mut state = self.lock();
        while !state.stop {
            let short = state
                .ready
                .iter()
                .find(|(_, disks)| disks.len() < STOCK)
                .map(|(&size, _)| size);
            let Some(size) = short else {
                state = self.taken.wait(state).unwrap();
                continue;
            };
            drop(state);
            let made = self.prepare(size);
            state = self.lock();
            match made {
                Ok(disk) => state.ready.entry(size).or_default().push(disk),
                Err(e) => {
                    // Stop stocking this size; the next instance that needs
                    // it makes its own disk (and reports the error).
                    tracing::warn!(size_mib = size, "cannot make a disk ahead of time: {e}");
                    state.ready.remove(&size);
                }
            }
        }
    }

    /// The discarding thread: let go of every disk handed back, until told
    /// to stop and none is left.
    fn discard_returned(&self) {
        let mut state = self.lock();
        loop {
            if let Some((mount, dir)) = state.discarded.pop() {
                drop(state);
                disk::discard(mount, &dir);
                state = self.lock();
            } else if state.stop {
                return;
            } else {
                state = self.returned.wait(state).unwrap();
            }
        }
    }
}

impl DiskPool {
    /// Empty `<data_dir>/disk-pool` (what an earlier run left) and start the
    /// threads.
    pub fn new(data_dir: &Path) -> io::Result<DiskPool> {
        let dir = data_dir.join("disk-pool");
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        fs::create_dir_all(&dir)?;
        let shared = Arc::new(Shared {
            data_dir: data_dir.to_path_buf(),
            dir,
            next_name: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            taken: Condvar::new(),
            returned: Condvar::new(),
        });
        let mut pool = DiskPool {
            shared,
            workers: Vec::new(),
        };
        for (name, work) in [
            ("disk-stock", Shared::restock as fn(&Shared)),
            ("disk-discard", Shared::discard_returned),
        ] {
            let shared = pool.shared.clone();
            let thread = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || work(&shared))?;
            pool.workers.push(thread);
        }
        Ok(pool)
    }

    /// A ready disk of `size_mib`: one from the stock, or made now if there
    /// is none. Either way the stock of that size is replenished afterwards.
    pub fn take(&self, size_mib: u64) -> io::Result<ReadyDisk> {
        let taken = self.shared.lock().ready.entry(size_mib).or_default().pop();
        self.shared.taken.notify_one();
        match taken {
            Some(disk) => Ok(disk),
            None => self.shared.prepare(size_mib),
        }
    }

    /// Where a destroyed instance's directory goes (out of the instances'
    /// directory at once) before [`DiskPool::discard`].
    pub fn discard_path(&self) -> PathBuf {
        let n = self.shared.next_name.fetch_add(1, Ordering::Relaxed);
        self.shared.dir.join(format!("{n}.discarded"))
    }

    /// Let go of a destroyed instance's disk in the background: `mount` is
    /// the server's hold on its file system (if it has one), `dir` what was
    /// the instance's directory, already moved to a [`DiskPool::discard_path`].
    pub fn discard(&self, mount: Option<OwnedFd>, dir: PathBuf) {
        self.shared.lock().discarded.push((mount, dir));
        self.shared.returned.notify_one();
    }
}

impl Drop for DiskPool {
    /// Stop the threads (the discarding one once it has let go of every
    /// disk handed back), then let go of the stock (unmounting the disks and
    /// removing their directories).
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.taken.notify_one();
        self.shared.returned.notify_one();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        self.shared.lock().ready.clear();
        let _ = fs::remove_dir(&self.shared.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    /// Loop devices whose backing file is under `dir`.
    fn loop_devices_under(dir: &Path) -> Vec<String> {
        let dir = dir.to_string_lossy().into_owned();
        let mut found = Vec::new();
        for block in fs::read_dir("/sys/block").unwrap().flatten() {
            let backing = block.path().join("loop/backing_file");
            if let Ok(file) = fs::read_to_string(backing) {
                if file.starts_with(&dir) {
                    found.push(file.trim().to_string());
                }
            }
        }
        found
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn disks_are_stocked_handed_out_and_let_go_of_without_leftovers() {
        let data = std::env::temp_dir().join(format!("disk-pool-test-{}", std::process::id()));
        fs::create_dir_all(&data).unwrap();
        let pool = DiskPool::new(&data).unwrap();
        let pool_dir = data.join("disk-pool");

        // The first disk of a size is made on the spot; then the stock fills.
        let disk = pool.take(16).unwrap();
        // Every stocked disk is on a loop device, with nothing mounted anywhere.
        wait_until("the stock is full", || {
            loop_devices_under(&data).len() == STOCK + 1
        });
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(fs::read_dir(&pool_dir).unwrap().count(), STOCK + 1);
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mountinfo.contains(data.to_string_lossy().as_ref()));

        // Placed: the directory moves, the mount holds the overlay's directories.
        let placed = data.join("instance");
        let mount = disk.place(&placed).unwrap();
        for sub in ["disk", "lower", "rootfs"] {
            assert!(placed.join(sub).is_dir());
        }
        for dir in ["upper", "work"] {
            let stat =
                nix::sys::stat::fstatat(mount.as_fd(), dir, nix::fcntl::AtFlags::empty()).unwrap();
            assert_eq!(stat.st_mode & libc::S_IFMT, libc::S_IFDIR);
        }
        let file = placed.join("disk.img").to_string_lossy().into_owned();
        assert!(loop_devices_under(&data).contains(&file));

        // Handed back and the pool dropped: no file, loop device or directory left.
        let discarded = pool.discard_path();
        fs::rename(&placed, &discarded).unwrap();
        pool.discard(Some(mount), discarded);
        drop(pool);
        assert!(!pool_dir.exists());
        wait_until("the loop devices detach", || {
            loop_devices_under(&data).is_empty()
        });
        fs::remove_dir_all(&data).unwrap();
    }
}
