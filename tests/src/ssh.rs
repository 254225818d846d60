//! The real OpenSSH tools against the server's `--ssh-listen`: key pairs
//! made by `ssh-keygen`, their fingerprints, and `ssh` with one key only.
//! Shared by `tests/tests/ssh.rs` and the page's `browser_ssh.rs`.

use std::path::Path;
use std::process::Command;

/// A new key pair `dir/name` made by `ssh-keygen` with `kind` (e.g.
/// `["-t", "ed25519"]`), commented `name@test`; its public line.
pub fn keygen(dir: &Path, name: &str, kind: &[&str]) -> String {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(kind)
        .args(["-N", "", "-q", "-C", &format!("{name}@test"), "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen (apt-get install openssh-client)");
    assert!(status.success());
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// `ssh-keygen -l`'s fingerprint of the public key `dir/name.pub`.
pub fn fingerprint(dir: &Path, name: &str) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(dir.join(format!("{name}.pub")))
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// `ssh` with the key `key` (only it, never an agent or a prompt) to
/// `user` on loopback's `port`, the host key taken on trust; `args` follow
/// (options, then the command).
pub fn ssh(port: u16, key: &Path, user: &str, args: &[&str]) -> Command {
    let mut command = Command::new("ssh");
    command
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "LogLevel=ERROR",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
        ])
        .arg("-i")
        .arg(key)
        .args(["-p", &port.to_string()])
        .arg(format!("{user}@127.0.0.1"))
        .args(args);
    command
}
