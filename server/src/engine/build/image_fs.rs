//! Looking at the image built so far without mounting it: a path in the
//! stack of unpacked layers (top layer first; overlayfs whiteouts, 0/0
//! character devices, hide what is below). Symlinks on the way are not
//! followed; opaque directories are not taken into account.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

/// What `path` (relative, clean) is in the image whose layers are `roots`
/// (bottom to top).
pub fn kind(roots: &[PathBuf], path: &str) -> Option<Kind> {
    for root in roots.iter().rev() {
        let Ok(meta) = fs::symlink_metadata(root.join(path)) else {
            continue;
        };
        let kind = meta.file_type();
        return if kind.is_char_device() && meta.rdev() == 0 {
            None
        } else if kind.is_dir() {
            Some(Kind::Dir)
        } else if kind.is_symlink() {
            Some(Kind::Symlink)
        } else {
            Some(Kind::File)
        };
    }
    None
}

/// The text of the regular file `path` in the image.
pub fn read(roots: &[PathBuf], path: &str) -> Option<String> {
    if kind(roots, path)? != Kind::File {
        return None;
    }
    roots
        .iter()
        .rev()
        .find_map(|root| fs::read_to_string(root.join(path)).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_layers_and_whiteouts_win() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir(lower.path().join("etc")).unwrap();
        fs::write(lower.path().join("etc/motd"), "hi").unwrap();
        fs::write(lower.path().join("etc/passwd"), "root:x:0:0").unwrap();
        fs::create_dir(upper.path().join("etc")).unwrap();
        nix::sys::stat::mknod(
            &upper.path().join("etc/motd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let roots = vec![lower.path().to_owned(), upper.path().to_owned()];
        assert_eq!(kind(&roots, "etc"), Some(Kind::Dir));
        assert_eq!(kind(&roots, "etc/motd"), None);
        assert_eq!(kind(&roots, "nope"), None);
        assert_eq!(read(&roots, "etc/passwd").unwrap(), "root:x:0:0");
    }
}
