//! Unpacking one layer (a tar, plain or compressed) into its own directory,
//! so that layer directories stacked as overlayfs lower dirs give the image's
//! tree. Docker's whiteouts become overlayfs ones: `.wh.<name>` a 0/0
//! character device, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr.
//! Ownership (numeric, as in the tar), modes, links and xattrs are kept;
//! paths that are absolute, contain `..` or lead through a symbolic link out
//! of the directory are refused.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use tar::EntryType;

use super::digest::{Digest, HashingReader};
use super::Error;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What unpacking learnt about the layer.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// Digest of the uncompressed tar: the image config's diff_id.
    pub diff_id: Digest,
    /// Length of the uncompressed tar, in bytes.
    pub size: u64,
}

/// How a layer blob is compressed, told by its first bytes (media types lie
/// often enough that Docker sniffs too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// Unpack the layer blob at `blob` into `dest` (an existing, empty
/// directory). Blocking: run it off the async runtime.
pub fn unpack(blob: &Path, dest: &Path) -> Result<Unpacked, Error> {
    let mut file = BufReader::with_capacity(256 * 1024, File::open(blob)?);
    let mut head = [0u8; 4];
    let n = read_up_to(&mut file, &mut head)?;
    let start = io::Cursor::new(head[..n].to_vec()).chain(file);
    let decompressed: Box<dyn Read> = match Compression::detect(&head[..n]) {
        Compression::None => Box::new(start),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(start)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(start)
                .map_err(|e| Error::Invalid(format!("bad zstd layer: {e}")))?,
        ),
    };
    let mut hashing = HashingReader::new(decompressed);
    unpack_tar(&mut hashing, dest)?;
    let (diff_id, size) = hashing.finish()?;
    Ok(Unpacked { diff_id, size })
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn unpack_tar(reader: impl Read, dest: &Path) -> Result<(), Error> {
    let dest = dest.canonicalize()?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    // Applied below, filtered: a layer must not set overlayfs's own xattrs.
    archive.set_unpack_xattrs(false);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let relative = checked_path(&entry.path_bytes())?;
        let Some(name) = relative.file_name().and_then(|n| n.to_str()) else {
            continue; // the layer's root directory itself
        };
        if name == OPAQUE_MARKER {
            let dir = inside(&dest, relative.parent().unwrap_or(Path::new("")))?;
            fs::create_dir_all(&dir)?;
            xattr::set(&dir, OPAQUE_XATTR, b"y")?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if !hidden.starts_with(WHITEOUT_PREFIX) {
                let target = inside(&dest, &relative.with_file_name(hidden))?;
                make_whiteout(&target)?;
            } // other `.wh..wh.` names are aufs bookkeeping: nothing to do
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_hard_link() {
            let link = entry
                .link_name_bytes()
                .ok_or_else(|| Error::Invalid(format!("hard link {relative:?} has no target")))?;
            checked_path(&link)?;
        }
        let xattrs = wanted_xattrs(&mut entry)?;
        let target = dest.join(&relative);
        if matches!(kind, EntryType::Char | EntryType::Block | EntryType::Fifo) {
            make_node(&entry, kind, &inside(&dest, &relative)?)?;
        } else if !entry.unpack_in(&dest)? {
            return Err(Error::Invalid(format!("layer entry {relative:?} refused")));
        }
        for (name, value) in xattrs {
            xattr::set(&target, &name, &value)?;
        }
    }
    Ok(())
}

/// The entry's path as a relative path without `..`; `./` prefixes are fine.
fn checked_path(bytes: &[u8]) -> Result<PathBuf, Error> {
    use std::os::unix::ffi::OsStrExt;
    let path = Path::new(std::ffi::OsStr::from_bytes(bytes));
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => clean.push(part),
            _ => {
                return Err(Error::Invalid(format!(
                    "layer path {path:?} leaves the layer (absolute or with `..`)"
                )))
            }
        }
    }
    Ok(clean)
}

/// `dest/relative`, after making sure its parent directory, with symbolic
/// links resolved, is still inside `dest` (tar's own `unpack_in` does the
/// same check for the entries it writes).
fn inside(dest: &Path, relative: &Path) -> Result<PathBuf, Error> {
    let target = dest.join(relative);
    let parent = target.parent().unwrap_or(dest);
    fs::create_dir_all(parent)?;
    if !parent.canonicalize()?.starts_with(dest) {
        return Err(Error::Invalid(format!(
            "layer path {relative:?} leads out of the layer through a symbolic link"
        )));
    }
    Ok(target)
}

fn make_whiteout(target: &Path) -> Result<(), Error> {
    remove_any(target)?;
    mknod(target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(io::Error::from)?;
    Ok(())
}

fn make_node<R: Read>(entry: &tar::Entry<R>, kind: EntryType, target: &Path) -> Result<(), Error> {
    let header = entry.header();
    let (flag, dev) = match kind {
        EntryType::Char => (SFlag::S_IFCHR, true),
        EntryType::Block => (SFlag::S_IFBLK, true),
        _ => (SFlag::S_IFIFO, false),
    };
    let device = if dev {
        makedev(
            u64::from(header.device_major()?.unwrap_or(0)),
            u64::from(header.device_minor()?.unwrap_or(0)),
        )
    } else {
        0
    };
    remove_any(target)?;
    let mode = header.mode()? & 0o7777;
    mknod(target, flag, Mode::from_bits_truncate(mode), device).map_err(io::Error::from)?;
    lchown(
        target,
        Some(header.uid()? as u32),
        Some(header.gid()? as u32),
    )?;
    fs::set_permissions(target, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The entry's PAX xattrs that a layer may set: not `trusted.*` (overlayfs
/// keeps its own state there) nor `security.selinux` (the host's policy).
fn wanted_xattrs<R: Read>(entry: &mut tar::Entry<R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut wanted = Vec::new();
    if let Some(extensions) = entry.pax_extensions()? {
        for extension in extensions {
            let extension = extension?;
            let Ok(key) = extension.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                if !name.starts_with("trusted.") && name != "security.selinux" {
                    wanted.push((name.to_owned(), extension.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], uid: u64) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o640);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(0);
        h.set_entry_type(EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, kind: EntryType, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_link(&mut h, path, target).unwrap();
    }

    fn unpack_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<Unpacked, Error>) {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blob");
        fs::write(&blob, bytes).unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let result = unpack(&blob, &root);
        (dir, result)
    }

    #[test]
    fn whiteouts_become_overlay_ones_and_owners_stay() {
        let tar = tar_of(|b| {
            file(b, "etc/hosts", b"x", 0);
            file(b, "home/user/a", b"y", 1000);
            file(b, "etc/.wh.gone", b"", 0);
            file(b, "var/.wh..wh..opq", b"", 0);
            link(b, EntryType::Link, "etc/hosts2", "etc/hosts");
            link(b, EntryType::Symlink, "bin", "/usr/bin");
        });
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        let (dir, result) = unpack_bytes(&gz.finish().unwrap());
        let unpacked = result.unwrap();
        assert_eq!(unpacked.diff_id, Digest::of(&tar));
        let root = dir.path().join("root");
        let gone = fs::symlink_metadata(root.join("etc/gone")).unwrap();
        assert!(gone.file_type().is_char_device());
        assert_eq!(gone.rdev(), 0);
        assert_eq!(
            xattr::get(root.join("var"), OPAQUE_XATTR).unwrap(),
            Some(b"y".to_vec())
        );
        let user_file = fs::metadata(root.join("home/user/a")).unwrap();
        assert_eq!(
            (user_file.uid(), user_file.gid(), user_file.mode() & 0o777),
            (1000, 1000, 0o640)
        );
        assert_eq!(
            fs::metadata(root.join("etc/hosts2")).unwrap().ino(),
            fs::metadata(root.join("etc/hosts")).unwrap().ino()
        );
        assert_eq!(
            fs::read_link(root.join("bin")).unwrap(),
            Path::new("/usr/bin")
        );
    }

    #[test]
    fn refuses_paths_that_leave_the_layer() {
        // tar's Builder refuses `..` itself, so the names are written raw.
        let raw = |name: &str| {
            tar_of(|b| {
                let mut h = tar::Header::new_gnu();
                h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_size(1);
                h.set_mode(0o644);
                h.set_entry_type(EntryType::Regular);
                h.set_cksum();
                b.append(&h, &b"x"[..]).unwrap();
            })
        };
        for name in ["../escape", "a/../../escape", "/etc/escape"] {
            let (_dir, result) = unpack_bytes(&raw(name));
            assert!(
                matches!(result, Err(Error::Invalid(_))),
                "{name}: {result:?}"
            );
        }
        // A file written through a symbolic link that points outside.
        let outside = tempfile::tempdir().unwrap();
        let tar = tar_of(|b| {
            link(
                b,
                EntryType::Symlink,
                "out",
                outside.path().to_str().unwrap(),
            );
            file(b, "out/planted", b"x", 0);
        });
        let (_dir, result) = unpack_bytes(&tar);
        assert!(result.is_err());
        assert!(!outside.path().join("planted").exists());
        // A whiteout through the same link.
        let tar = tar_of(|b| {
            link(
                b,
                EntryType::Symlink,
                "out",
                outside.path().to_str().unwrap(),
            );
            file(b, "out/.wh.victim", b"", 0);
        });
        fs::write(outside.path().join("victim"), b"keep").unwrap();
        let (_dir, result) = unpack_bytes(&tar);
        assert!(result.is_err());
        assert!(outside.path().join("victim").is_file());
        // A hard link to a file outside.
        let tar = tar_of(|b| link(b, EntryType::Link, "passwd", "../../etc/passwd"));
        let (_dir, result) = unpack_bytes(&tar);
        assert!(result.is_err());
    }
}
