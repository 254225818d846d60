//! A container's writable layer as an image layer: the overlayfs upper
//! directory written as a tar in the OCI layer format. Owners go back from
//! the instance's host uid range to the container's ids, whiteouts (0/0
//! character devices) become `.wh.<name>` entries and opaque directories
//! (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry.
//!
//! Runs in a launcher (host root) on a stopped container's layer; files are
//! opened without following symlinks, so the tree cannot point it elsewhere.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Size of the uid and gid ranges an instance maps (see `crate::isolation::security`).
const ID_RANGE: u32 = 65536;
/// Where ids outside the instance's range end up (Docker's `nobody`).
const OVERFLOW_ID: u32 = 65534;

/// Write the tree `upper` as a layer tar to `out`; `id_base` is the first
/// host uid (and gid) of the instance.
pub fn write_layer<W: Write>(upper: &Path, id_base: u32, out: W) -> io::Result<W> {
    let mut exporter = Exporter {
        builder: tar::Builder::new(out),
        id_base,
        links: HashMap::new(),
    };
    exporter.builder.mode(tar::HeaderMode::Complete);
    exporter.directory(upper, Path::new(""))?;
    exporter.builder.into_inner()
}

/// [`write_layer`] into a new file at `dest` (removed again on failure).
pub fn export_to_file(upper: &Path, id_base: u32, dest: &Path) -> io::Result<()> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)?;
    let written = write_layer(upper, id_base, io::BufWriter::new(file))
        .and_then(|out| out.into_inner().map_err(|e| e.into_error()))
        .and_then(|file| file.sync_all());
    if written.is_err() {
        let _ = fs::remove_file(dest);
    }
    written
}

struct Exporter<W: Write> {
    builder: tar::Builder<W>,
    id_base: u32,
    /// (device, inode) of files with several links to the first path seen.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Exporter<W> {
    fn container_id(&self, host: u32) -> u64 {
        match host.checked_sub(self.id_base) {
            Some(id) if id < ID_RANGE => id.into(),
            _ => OVERFLOW_ID.into(),
        }
    }

    fn header(&self, meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(self.container_id(meta.uid()));
        header.set_gid(self.container_id(meta.gid()));
        header.set_mtime(meta.mtime().max(0) as u64);
        header.set_size(0);
        header
    }

    /// Write the entries below directory `dir` (`rel` in the layer).
    fn directory(&mut self, dir: &Path, rel: &Path) -> io::Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = rel.join(&name);
            let meta = fs::symlink_metadata(&path)?;
            let kind = meta.file_type();
            if kind.is_char_device() && meta.rdev() == 0 {
                let name = format!(".wh.{}", name.to_string_lossy());
                let whiteout = rel.with_file_name(name);
                let mut header = self.header(&meta, tar::EntryType::Regular);
                header.set_mode(0o600);
                self.builder
                    .append_data(&mut header, whiteout, io::empty())?;
            } else if kind.is_dir() {
                let mut header = self.header(&meta, tar::EntryType::Directory);
                self.builder.append_data(&mut header, &rel, io::empty())?;
                let opaque = xattr::get(&path, "trusted.overlay.opaque")?;
                if opaque.as_deref() == Some(b"y") {
                    let mut header = self.header(&meta, tar::EntryType::Regular);
                    header.set_mode(0o600);
                    self.builder
                        .append_data(&mut header, rel.join(".wh..wh..opq"), io::empty())?;
                }
                self.directory(&path, &rel)?;
            } else if kind.is_symlink() {
                let target = fs::read_link(&path)?;
                let mut header = self.header(&meta, tar::EntryType::Symlink);
                self.builder.append_link(&mut header, &rel, target)?;
            } else if kind.is_file() {
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = self.links.get(&key) {
                        let mut header = self.header(&meta, tar::EntryType::Link);
                        let first = first.clone();
                        self.builder.append_link(&mut header, &rel, first)?;
                        continue;
                    }
                    self.links.insert(key, rel.clone());
                }
                let file = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)?;
                let mut header = self.header(&meta, tar::EntryType::Regular);
                header.set_size(meta.len());
                // A file that changes size meanwhile would corrupt the tar.
                self.builder
                    .append_data(&mut header, &rel, io::Read::take(file, meta.len()))?;
            } else {
                let (kind, device) = if kind.is_char_device() {
                    (tar::EntryType::Char, true)
                } else if kind.is_block_device() {
                    (tar::EntryType::Block, true)
                } else if kind.is_fifo() {
                    (tar::EntryType::Fifo, false)
                } else {
                    continue; // sockets are not kept in layers
                };
                let mut header = self.header(&meta, kind);
                if device {
                    let rdev = meta.rdev();
                    header.set_device_major(libc::major(rdev))?;
                    header.set_device_minor(libc::minor(rdev))?;
                }
                self.builder.append_data(&mut header, &rel, io::empty())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn owners_whiteouts_and_opaque_directories() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path();
        let base = 200_000u32;
        fs::create_dir(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/new"), b"hello").unwrap();
        fs::set_permissions(upper.join("etc/new"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::lchown(upper.join("etc/new"), Some(base + 1000), Some(base + 5))
            .unwrap();
        nix::sys::stat::mknod(
            &upper.join("etc/motd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        fs::create_dir(upper.join("opaque")).unwrap();
        xattr::set(upper.join("opaque"), "trusted.overlay.opaque", b"y").unwrap();
        std::os::unix::fs::symlink("new", upper.join("etc/link")).unwrap();

        let tar = write_layer(upper, base, Vec::new()).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let header = entry.header();
            let line = format!(
                "{path} {:?} {:o} {}:{}",
                header.entry_type(),
                header.mode().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap()
            );
            if path == "etc/new" {
                let mut text = String::new();
                io::Read::read_to_string(&mut entry, &mut text).unwrap();
                assert_eq!(text, "hello");
            }
            seen.push(line);
        }
        // The test's own files are owned by uid 0, outside the range.
        assert_eq!(
            seen,
            [
                "etc Directory 755 65534:65534",
                "etc/link Symlink 777 65534:65534",
                "etc/.wh.motd Regular 600 65534:65534",
                "etc/new Regular 640 1000:5",
                "opaque Directory 755 65534:65534",
                "opaque/.wh..wh..opq Regular 600 65534:65534",
            ]
        );
    }
}
