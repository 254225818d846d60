//! Looking at the image built so far without mounting it: a path in the
//! stack of unpacked layers (top layer first; overlayfs whiteouts, 0/0
//! character devices, hide what is below). Opaque directories are not taken
//! into account.

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

/// Most symlinks followed in one path (as Linux's limit).
const MAX_LINKS: usize = 40;

/// `path` (relative, clean) with the image's symlinks on the way followed,
/// within the image: where a COPY to `/bin/x` lands when `/bin` links to
/// `usr/bin`. A loop stops following.
pub fn resolve(roots: &[PathBuf], path: &str) -> String {
    let mut done: Vec<String> = Vec::new();
    let mut todo: std::collections::VecDeque<String> = path.split('/').map(String::from).collect();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let candidate = if done.is_empty() {
            part.clone()
        } else {
            format!("{}/{part}", done.join("/"))
        };
        let target = (links < MAX_LINKS && kind(roots, &candidate) == Some(Kind::Symlink))
            .then(|| {
                roots
                    .iter()
                    .rev()
                    .find_map(|root| fs::read_link(root.join(&candidate)).ok())
            })
            .flatten();
        match target {
            Some(target) => {
                links += 1;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    done.clear();
                }
                for (i, p) in target.split('/').enumerate() {
                    todo.insert(i, p.to_string());
                }
            }
            None => done.push(part),
        }
    }
    done.join("/")
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
        fs::create_dir_all(lower.path().join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", lower.path().join("bin")).unwrap();
        std::os::unix::fs::symlink("/bin/../etc", upper.path().join("conf")).unwrap();
        std::os::unix::fs::symlink("loop", upper.path().join("loop")).unwrap();
        assert_eq!(resolve(&roots, "bin/x.sh"), "usr/bin/x.sh");
        // `..` after a link is taken from where the link led.
        assert_eq!(resolve(&roots, "conf/motd"), "usr/etc/motd");
        assert_eq!(resolve(&roots, "loop/a"), "loop/a");
        assert_eq!(resolve(&roots, "srv/new"), "srv/new");
    }
}
