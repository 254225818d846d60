//! Each instance's writable layer lives on a file system of its own, so a
//! full disk is an ENOSPC inside that instance and nothing else: a sparse
//! ext4 image file per instance, attached to a loop device and mounted only
//! inside the instance's mount namespace (see `launch`). When the namespace
//! dies the file system is unmounted and the loop device detaches itself
//! (autoclear), so nothing is left on the host but the file, which the
//! instance's directory removal deletes.
//!
//! Formatting takes tens of milliseconds, so each size is formatted once
//! into a template and instances get a sparse copy (only the ~1 MiB of
//! metadata is copied).

use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{lseek, Whence};

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
