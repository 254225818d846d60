//! Each instance's writable layer lives on a file system of its own, so a
//! full disk is an ENOSPC inside that instance and nothing else: a sparse
//! ext4 image file per instance on a loop device. A disk is made ready ahead
//! of time (see `disk_pool`): the file is copied, attached to a loop device
//! and mounted *detached* (see [`sys::mount_detached`]), so the mount belongs
//! to no mount namespace and is held only by a descriptor. The launcher moves
//! it into the instance's mount namespace (see `crate::launch::launcher`). Nothing is ever
//! mounted on the host: when the last holder goes (the descriptor is closed,
//! or the instance's mount namespace dies) the file system is unmounted and
//! the loop device detaches itself (autoclear), also after a crash. Only the
//! file stays, which goes with the directory it is in.
//!
//! The file lives in what becomes the instance's directory, made with it:
//! `disk.img` and the empty mount points `disk/`, `lower/` and `rootfs/`,
//! used only inside the instance's mount namespace.
//!
//! Formatting takes tens of milliseconds, so each size is formatted once
//! into a template and disks are sparse copies (only the ~1 MiB of
//! metadata is copied).

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::Mode;
use nix::unistd::{lseek, Whence};

use crate::isolation::sys;

/// The template for disks of `size_mib`, formatted on first use.
pub fn template(data_dir: &Path, size_mib: u64) -> io::Result<PathBuf> {
    let dir = data_dir.join("disk-templates");
    let path = dir.join(format!("ext4-{size_mib}m.img"));
    if path.exists() {
        return Ok(path);
    }
    fs::create_dir_all(&dir)?;
    let lock = fs::File::create(dir.join(".lock"))?;
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, e)| io::Error::other(format!("lock disk templates: {e}")))?;
    if path.exists() {
        return Ok(path);
    }
    let staging = dir.join(format!(".ext4-{size_mib}m.img.new"));
    fs::File::create(&staging)?.set_len(size_mib << 20)?;
    // No journal: a playground disk needs no crash recovery, and it saves
    // writes. Lazy init: inode tables and journal are not zeroed up front
    // (the mount option `noinit_itable` keeps the kernel from doing it later).
    let output = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-m", "0", "-O", "^has_journal"])
        .args(["-E", "lazy_itable_init=1,nodiscard"])
        .arg(&staging)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("run mkfs.ext4 (e2fsprogs): {e}")))?;
    if !output.status.success() {
        let _ = fs::remove_file(&staging);
        return Err(io::Error::other(format!(
            "mkfs.ext4 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    fs::rename(&staging, &path)?;
    Ok(path)
}

/// Copy `template` to `dest`, keeping holes: only the data extents are
/// read and written.
pub fn sparse_copy(template: &Path, dest: &Path) -> io::Result<()> {
    let src = fs::File::open(template)?;
    let len = src.metadata()?.len();
    let dst = fs::File::create(dest)?;
    dst.set_len(len)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos: i64 = 0;
    let end = len as i64;
    while pos < end {
        let data = match lseek(&src, pos, Whence::SeekData) {
            Ok(p) => p,
            Err(nix::errno::Errno::ENXIO) => break, // only a hole remains
            Err(e) => return Err(e.into()),
        };
        let hole = lseek(&src, data, Whence::SeekHole).map_err(io::Error::from)?;
        let mut at = data;
        while at < hole {
            let n = ((hole - at) as usize).min(buf.len());
            src.read_exact_at(&mut buf[..n], at as u64)?;
            dst.write_all_at(&buf[..n], at as u64)?;
            at += n as i64;
        }
        pos = hole;
    }
    Ok(())
}

/// A disk made ready for an instance, in the directory that becomes the
/// instance's: its file system mounted but attached nowhere, with the
/// overlay's `upper/` and `work/` directories made.
pub struct ReadyDisk {
    /// The detached mount; closing it unmounts the file system.
    mount: OwnedFd,
    dir: RemovedOnDrop,
}

/// A directory that is deleted when this goes, unless [`RemovedOnDrop::rename`]d.
struct RemovedOnDrop(Option<PathBuf>);

impl RemovedOnDrop {
    fn rename(mut self, dest: &Path) -> io::Result<()> {
        let path = self.0.as_deref().expect("only taken here");
        fs::rename(path, dest)?;
        self.0 = None;
        Ok(())
    }
}

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = fs::remove_dir_all(path);
        }
    }
}

impl ReadyDisk {
    /// Make `dir` with the mount points and a copy of the template for
    /// `size_mib` in it, attach the copy to a loop device and mount it,
    /// detached.
    pub fn prepare(data_dir: &Path, size_mib: u64, dir: PathBuf) -> io::Result<ReadyDisk> {
        let template = template(data_dir, size_mib)?;
        fs::create_dir(&dir)?;
        let dir = RemovedOnDrop(Some(dir));
        let path = dir.0.as_deref().expect("set above");
        for sub in ["disk", "lower", "rootfs"] {
            fs::create_dir(path.join(sub))?;
        }
        // Traversable (not listable) by the instance's root while it sets up its root.
        fs::set_permissions(path, fs::Permissions::from_mode(0o711))?;
        let file = path.join("disk.img");
        sparse_copy(&template, &file)?;
        let (device, device_path) = sys::attach_loop(&file)
            .map_err(|e| io::Error::new(e.kind(), format!("loop device: {e}")))?;
        // `noinit_itable`: the kernel never zeroes the (lazily made, never
        // used) inode tables; `discard`: freed blocks become holes again.
        let mount = sys::mount_detached(c"ext4", &device_path, &[c"noinit_itable", c"discard"])
            .map_err(|e| io::Error::new(e.kind(), format!("mount ext4: {e}")))?;
        drop(device); // The mount holds the device now.
        for dir in ["upper", "work"] {
            nix::sys::stat::mkdirat(mount.as_fd(), dir, Mode::from_bits_truncate(0o755))
                .map_err(|e| io::Error::other(format!("mkdir {dir} on the disk: {e}")))?;
        }
        Ok(ReadyDisk { mount, dir })
    }

    /// Make the disk an instance's: its directory becomes `dest`, the
    /// instance's directory. Returns the detached mount.
    pub fn place(self, dest: &Path) -> io::Result<OwnedFd> {
        self.dir.rename(dest)?;
        Ok(self.mount)
    }
}

/// Let go of an instance's disk once the instance is gone: `mount` is the
/// server's hold on its file system (the last one), `dir` what was the
/// instance's directory. The file system is shut down first, so unmounting
/// writes nothing back (its contents are thrown away); the loop device then
/// detaches itself and the directory is deleted.
pub fn discard(mount: Option<OwnedFd>, dir: &Path) {
    if let Some(mount) = mount {
        shut_down(mount);
    }
    let _ = fs::remove_dir_all(dir);
}

fn shut_down(mount: OwnedFd) {
    let root = nix::fcntl::openat(
        mount.as_fd(),
        ".",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    if let Ok(root) = root {
        let _ = sys::shut_down_ext4(root.as_fd());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_copy_keeps_data_and_holes() {
        let dir = std::env::temp_dir().join(format!("disk-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let src = dir.join("src");
        let f = fs::File::create(&src).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(b"head", 0).unwrap();
        f.write_all_at(b"middle", 32 << 20).unwrap();
        drop(f);
        let dst = dir.join("dst");
        sparse_copy(&src, &dst).unwrap();
        let copy = fs::read(&dst).unwrap();
        assert_eq!(copy.len(), 64 << 20);
        assert_eq!(&copy[..4], b"head");
        assert_eq!(&copy[32 << 20..(32 << 20) + 6], b"middle");
        // Far fewer blocks than the file's length: the holes stayed holes.
        assert!(fs::metadata(&dst).unwrap().blocks() * 512 < 4 << 20);
        fs::remove_dir_all(&dir).unwrap();
    }
}
