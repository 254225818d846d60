//! A real PostgreSQL for tests: Debian's `postgresql` package, run as the
//! `postgres` user on a temporary directory, listening only on a Unix
//! socket in that directory (no TCP port, so tests never collide). Stopped
//! (fast shutdown) and its directory removed on drop, also when a test
//! fails.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The socket's port number (its file name: `.s.PGSQL.5432`).
const PORT: u16 = 5432;

pub struct Postgres {
    child: Option<Child>,
    /// Holds the data and the socket; removed on drop.
    dir: tempfile::TempDir,
    bin: PathBuf,
    uid: u32,
    gid: u32,
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).expect(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
         apt-get install postgresql, or run scripts/setup",
    )
}

/// The `postgres` user's uid and gid, from /etc/passwd.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("no postgres user: apt-get install postgresql makes it");
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

impl Postgres {
    /// initdb and start a server; returns once it accepts connections.
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let (uid, gid) = postgres_user();
        let dir = tempfile::Builder::new()
            .prefix("playground-pg-")
            .tempdir()
            .unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut pg = Postgres {
            child: None,
            dir,
            bin,
            uid,
            gid,
        };
        let data = pg.dir.path().join("data");
        let out = pg
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let child = pg
            .command("postgres")
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(pg.dir.path())
            .args(["-p", &PORT.to_string()])
            .args(["-c", "listen_addresses=", "-c", "fsync=off"])
            .args(["-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        pg.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = pg
                .command("pg_isready")
                .arg("-h")
                .arg(pg.dir.path())
                .args(["-p", &PORT.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pg
    }

    /// A program of the package, run as the `postgres` user.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command
            .uid(self.uid)
            .gid(self.gid)
            .current_dir(self.dir.path())
            .env_remove("PGHOST");
        command
    }

    /// The connection string for `--cluster`.
    pub fn url(&self) -> String {
        format!(
            "host={} port={PORT} user=postgres dbname=postgres",
            self.dir.path().display()
        )
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run `sql` with psql; its rows, one a line, fields split by `|`.
    pub fn query(&self, sql: &str) -> String {
        let out = self
            .command("psql")
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &PORT.to_string(), "-U", "postgres", "-At", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: PostgreSQL's fast shutdown.
            // SAFETY: a signal to our own child process.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
