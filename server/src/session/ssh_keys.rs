//! The public keys a session's owner added for SSH (#16): checked when
//! added (a key of a kind and size OpenSSH still accepts), kept with the
//! session (stored, gone with it), looked up by the SSH server.

use std::sync::Mutex;

use axum::http::StatusCode;
use russh::keys::ssh_key::{Algorithm, HashAlg};
use russh::keys::PublicKey;

use crate::error::ApiError;

/// Keys one session may hold.
pub const MAX_KEYS: usize = 10;
/// Smallest RSA key taken, in bits (OpenSSH refuses smaller).
const MIN_RSA_BITS: u32 = 2048;

/// One key, as added.
#[derive(Clone, Debug, PartialEq)]
pub struct SshKey {
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The key's line without its comment (`ssh-ed25519 AAAA...`).
    pub openssh: String,
    pub comment: String,
}

/// Read an `authorized_keys`-style line: `type base64 [comment]`.
pub fn parse(line: &str) -> Result<(SshKey, PublicKey), ApiError> {
    let unprocessable = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m);
    let line = line.trim();
    if line.is_empty() {
        return Err(unprocessable(
            "paste a public key, e.g. the line in ~/.ssh/id_ed25519.pub".into(),
        ));
    }
    if line.contains("PRIVATE KEY") {
        return Err(unprocessable(
            "this is a private key: never paste it anywhere; paste the .pub file's line".into(),
        ));
    }
    let key = PublicKey::from_openssh(line).map_err(|e| {
        unprocessable(format!(
            "this is not an OpenSSH public key: paste the whole line of your .pub file, \
                 starting with ssh-ed25519 or ssh-rsa (reading it failed: {e})"
        ))
    })?;
    match key.algorithm() {
        Algorithm::Dsa => {
            return Err(unprocessable(
                "DSA keys are too weak and OpenSSH refuses them: use ssh-keygen -t ed25519".into(),
            ))
        }
        Algorithm::Rsa { .. } => {
            let bits = key.key_data().rsa().map(|k| k.key_size()).unwrap_or(0);
            if bits < MIN_RSA_BITS {
                return Err(unprocessable(format!(
                    "this RSA key has {bits} bits, fewer than {MIN_RSA_BITS}: use ssh-keygen -t ed25519"
                )));
            }
        }
        _ => {}
    }
    let comment = key.comment().as_str_lossy().to_string();
    let mut bare = key.clone();
    bare.set_comment("");
    let openssh = bare
        .to_openssh()
        .map_err(|e| unprocessable(format!("cannot write the key back ({e})")))?;
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    Ok((
        SshKey {
            fingerprint,
            openssh: openssh.trim().to_string(),
            comment,
        },
        key,
    ))
}

/// A session's keys.
#[derive(Default)]
pub struct SshKeys {
    keys: Mutex<Vec<SshKey>>,
}

impl SshKeys {
    pub fn new(keys: Vec<SshKey>) -> Self {
        SshKeys {
            keys: Mutex::new(keys),
        }
    }

    pub fn list(&self) -> Vec<SshKey> {
        self.keys.lock().unwrap().clone()
    }

    /// Add a key (the same key again changes nothing); refused past
    /// [`MAX_KEYS`].
    pub fn add(&self, key: SshKey) -> Result<bool, ApiError> {
        let mut keys = self.keys.lock().unwrap();
        if keys.iter().any(|k| k.fingerprint == key.fingerprint) {
            return Ok(false);
        }
        if keys.len() >= MAX_KEYS {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("this session already has {MAX_KEYS} keys; remove one first"),
            ));
        }
        keys.push(key);
        Ok(true)
    }

    /// Whether one was removed.
    pub fn remove(&self, fingerprint: &str) -> bool {
        let mut keys = self.keys.lock().unwrap();
        let before = keys.len();
        keys.retain(|k| k.fingerprint != fingerprint);
        keys.len() != before
    }

    /// Whether `key` is one of them (compared by the key, not the comment).
    pub fn admits(&self, key: &PublicKey) -> bool {
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        self.keys
            .lock()
            .unwrap()
            .iter()
            .any(|k| k.fingerprint == fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PrivateKey;

    fn ed25519() -> PrivateKey {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()
    }

    #[test]
    fn keys_are_checked_and_matched_by_the_key_alone() {
        let private = ed25519();
        let line = format!(
            "{} ada@laptop",
            private.public_key().to_openssh().unwrap().trim()
        );
        let (key, public) = parse(&line).unwrap();
        assert_eq!(key.comment, "ada@laptop");
        assert!(key.fingerprint.starts_with("SHA256:"));
        assert!(!key.openssh.contains("ada@laptop"));
        let keys = SshKeys::default();
        assert!(keys.add(key.clone()).unwrap());
        assert!(!keys.add(key.clone()).unwrap(), "the same key twice");
        assert!(keys.admits(&public));
        assert!(!keys.admits(ed25519().public_key()));
        assert!(keys.remove(&key.fingerprint));
        assert!(!keys.admits(&public));
    }

    #[test]
    fn what_is_not_a_usable_public_key_is_refused_with_the_reason() {
        let private = ed25519();
        let secret = private
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .unwrap()
            .to_string();
        for (line, reason) in [
            ("", "paste a public key"),
            (secret.as_str(), "private key"),
            ("ssh-ed25519 not-base64", "not an OpenSSH public key"),
            ("hello", "not an OpenSSH public key"),
        ] {
            let e = parse(line).unwrap_err();
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(e.message.contains(reason), "{line:?}: {}", e.message);
        }
    }

    #[test]
    fn a_session_holds_a_bounded_number_of_keys() {
        let keys = SshKeys::default();
        for _ in 0..MAX_KEYS {
            let line = ed25519().public_key().to_openssh().unwrap();
            keys.add(parse(&line).unwrap().0).unwrap();
        }
        let line = ed25519().public_key().to_openssh().unwrap();
        let e = keys.add(parse(&line).unwrap().0).unwrap_err();
        assert_eq!(e.status, StatusCode::CONFLICT);
    }
}
