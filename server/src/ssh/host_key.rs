//! The server's SSH host key: made once (Ed25519) and kept in the data
//! directory, so clients' `known_hosts` stay right across restarts.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use russh::keys::ssh_key::{Algorithm, LineEnding};
use russh::keys::PrivateKey;

const FILE: &str = "ssh_host_ed25519_key";

/// The host key of `data_dir`, made now if there is none.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<PrivateKey> {
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => PrivateKey::from_openssh(&text)
            .with_context(|| format!("SSH host key {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
                .context("making the SSH host key")?;
            let text = key.to_openssh(LineEnding::LF)?;
            // Written whole under another name, then renamed: a crash never
            // leaves half a key to fail the next start.
            let partial = data_dir.join(format!("{FILE}.partial"));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial)
                .with_context(|| format!("writing {}", partial.display()))?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&partial, &path)?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(dir.path()).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        std::fs::write(dir.path().join(FILE), "not a key").unwrap();
        let e = load_or_create(dir.path()).unwrap_err();
        assert!(format!("{e:#}").contains(FILE), "{e:#}");
    }
}
