//! The real OpenSSH client against the playground's SSH server: keys made
//! by `ssh-keygen` and their fingerprints, `ssh`/`scp`/`sftp` commands with
//! only the given key, and `ssh` on a terminal of its own (for window
//! sizes). Shared by `tests/tests/ssh.rs` and the page's `browser_ssh.rs`.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A new key pair made by `ssh-keygen` at `dir/name`; its public line.
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

/// Options every client here uses: no host key prompts (each test server
/// makes its own), only the key given, never a password prompt.
const OPTIONS: [&str; 10] = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
];

/// `ssh` with the key `key` (only it) to `user` on loopback's `port`.
pub fn ssh(port: u16, key: &Path, user: &str, args: &[&str]) -> Command {
    let mut command = Command::new("ssh");
    command
        .args(OPTIONS)
        .arg("-i")
        .arg(key)
        .args(["-p", &port.to_string()])
        .arg(format!("{user}@127.0.0.1"))
        .args(args);
    command
}

/// `scp` or `sftp` (`program`) with the key `key` on loopback's `port`;
/// remote paths are `{user}@127.0.0.1:...`.
pub fn file_client(program: &str, port: u16, key: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .args(OPTIONS)
        .arg("-i")
        .arg(key)
        .args(["-P", &port.to_string()]);
    command
}

/// `ssh` running on a terminal of its own, as in a person's terminal
/// window: it asks for a PTY of that window's size and follows resizes.
pub struct PtySsh {
    master: std::fs::File,
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
}

fn set_size(fd: i32, cols: u16, rows: u16) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a pointer to a live value.
    let ret = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) };
    assert_eq!(ret, 0, "TIOCSWINSZ");
}

impl PtySsh {
    /// Start `command` (an [`ssh`]) on a new terminal of `cols` x `rows`.
    pub fn spawn(mut command: Command, cols: u16, rows: u16) -> PtySsh {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two descriptors to the pointers given; the
        // name, termios and size pointers may be null.
        let ret = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(ret, 0, "openpty");
        // SAFETY: both descriptors were just opened and are owned only here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        set_size(slave.as_raw_fd(), cols, rows);
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        command
            .stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // SAFETY: between fork and exec only async-signal-safe calls:
        // setsid and ioctl, to make the terminal ssh's controlling one.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("ssh");
        drop(slave);
        let master = std::fs::File::from(master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let collected = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                collected.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        PtySsh {
            master,
            child,
            output,
        }
    }

    pub fn type_text(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
    }

    /// Resize the window, as a person dragging its corner would.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        set_size(self.master.as_raw_fd(), cols, rows);
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGWINCH) };
    }

    /// All output so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Wait (blocking, at most `timeout`) until the output contains
    /// `needle`; panics with the output otherwise.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                start.elapsed() < timeout,
                "{needle:?} not seen over ssh within {timeout:?}; output: {text:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for ssh to end; its exit code.
    pub fn wait(mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PtySsh {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
