//! `sandbox::cgroup` on the real kernel: whichever layout this host has
//! (cgroup v1 hybrid on the development host, cgroup v2 in the VM that
//! `scripts/vm-cgroup-v2` boots). They need root.
//!
//! Every test makes its own cgroup, named `test-<pid>-<n>`, through a guard
//! that removes it, kills and reaps its processes even when the test fails.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use sandbox::cgroup::{Cgroup, Layout, Limits, PARENT};

const MEMORY: u64 = 64 << 20;
const PIDS: u64 = 20;
const PATIENCE: Duration = Duration::from_secs(5);

fn limits() -> Limits {
    Limits {
        memory_bytes: MEMORY,
        pids: PIDS,
        cpu_millis: 500,
        ..Limits::default()
    }
}

/// Pids of the children that tests started with `Command` and wait for
/// themselves; any other child of ours is an orphan adopted from a test
/// cgroup (we are a subreaper), which [`sweep_orphans`] reaps.
static DIRECT: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// A cgroup made for one test, removed on drop with all its processes.
struct TestCgroup {
    name: String,
    layout: Layout,
    cgroup: Cgroup,
    children: Vec<Child>,
    /// Every pid seen in the cgroup.
    seen: Vec<i32>,
}

impl TestCgroup {
    fn new() -> TestCgroup {
        Self::made(None)
    }

    /// A cgroup whose subtree is host uid `uid`'s to divide (the nesting profile).
    fn delegated(uid: u32) -> TestCgroup {
        Self::made(Some(uid))
    }

    fn made(delegate_to: Option<u32>) -> TestCgroup {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        static SUBREAPER: Once = Once::new();
        assert!(
            nix::unistd::geteuid().is_root(),
            "the cgroup tests need root"
        );
        // Processes orphaned inside a test cgroup come back to us to be reaped.
        SUBREAPER.call_once(|| sandbox::become_subreaper().expect("PR_SET_CHILD_SUBREAPER"));
        let name = format!(
            "test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let layout = Layout::detect().expect("detect the cgroup layout");
        layout.prepare().expect("prepare the parent cgroups");
        let cgroup = layout
            .create(&name, &limits(), delegate_to)
            .expect("create the cgroup");
        eprintln!("cgroup {name} in {:?}", dirs(&cgroup));
        TestCgroup {
            name,
            layout,
            cgroup,
            children: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// `Cgroup::pids`, remembered for the final check that none is left.
    fn members(&mut self) -> Vec<i32> {
        let pids = self.cgroup.pids();
        for &pid in &pids {
            if !self.seen.contains(&pid) {
                self.seen.push(pid);
            }
        }
        pids
    }

    /// The directory, among the cgroup's, that holds `file`.
    fn dir_with(&self, file: &str) -> PathBuf {
        dirs(&self.cgroup)
            .into_iter()
            .find(|d| d.join(file).exists())
            .unwrap_or_else(|| panic!("no {file} in {:?}", dirs(&self.cgroup)))
    }

    fn read(&self, file: &str) -> String {
        let path = self.dir_with(file).join(file);
        fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// Start `args` held on a pipe, move it into the cgroup (its pid into every
    /// `procs_files()`), then let it exec: what it runs and allocates from
    /// then on is charged to the cgroup. Returns its pid.
    fn spawn(&mut self, args: &[&str]) -> i32 {
        self.spawn_as(None, args)
    }

    /// [`Self::spawn`] as host user `uid` (with the same gid), if given.
    fn spawn_as(&mut self, uid: Option<u32>, args: &[&str]) -> i32 {
        let mut command = Command::new("sh");
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(uid);
        }
        let mut child = command
            .arg("-c")
            .arg("read go && exec \"$@\"")
            .arg("sh")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        DIRECT.lock().unwrap().push(pid);
        self.seen.push(pid);
        let mut stdin = child.stdin.take().unwrap();
        self.children.push(child);
        for file in self.cgroup.procs_files() {
            fs::write(&file, pid.to_string())
                .unwrap_or_else(|e| panic!("write {pid} to {}: {e}", file.display()));
        }
        stdin.write_all(b"go\n").expect("release the child");
        pid
    }

    /// Kill and wait for our direct children, then reap the orphans, until
    /// no process seen in the cgroup is left or time is up. Returns the pids
    /// still there.
    fn reap(&mut self) -> Vec<i32> {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
            DIRECT.lock().unwrap().retain(|&p| p != child.id() as i32);
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            sweep_orphans();
            let left: Vec<i32> = self
                .seen
                .iter()
                .copied()
                .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
                .collect();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            for &pid in &left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        self.members();
        if let Err(e) = self.cgroup.remove(PATIENCE) {
            eprintln!("cleanup: remove {}: {e}", self.name);
        }
        let left = self.reap();
        if !left.is_empty() {
            eprintln!("cleanup: processes left from {}: {left:?}", self.name);
        }
    }
}

/// The cgroup's directories (one per v1 hierarchy, or the one v2 directory).
fn dirs(cgroup: &Cgroup) -> Vec<PathBuf> {
    cgroup
        .procs_files()
        .iter()
        .map(|f| f.parent().unwrap().to_path_buf())
        .collect()
}

/// Whether `/proc/<pid>/cgroup` places the (live) process in cgroup `name`.
fn in_cgroup(pid: i32, name: &str) -> bool {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    let path = format!("/{PARENT}/{name}");
    text.lines()
        .any(|line| line.splitn(3, ':').nth(2) == Some(path.as_str()))
}

/// Reap every zombie child of ours that no test waits for itself: orphans
/// of a test cgroup that we adopted as subreaper.
fn sweep_orphans() {
    let me = std::process::id().to_string();
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for pid in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        if field("PPid:") == me
            && field("State:").starts_with('Z')
            && !DIRECT.lock().unwrap().contains(&pid)
        {
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn is_cgroup2(path: &Path) -> bool {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo.lines().any(|line| {
        let Some((left, right)) = line.split_once(" - ") else {
            return false;
        };
        left.split(' ').nth(4) == path.to_str() && right.starts_with("cgroup2 ")
    })
}

#[test]
fn detects_the_hosts_layout_and_prepares_the_parents() {
    let t = TestCgroup::new();
    let v2 = is_cgroup2(Path::new("/sys/fs/cgroup"));
    assert_eq!(t.layout.is_v2(), v2, "layout {:?}", t.layout);
    match &t.layout {
        Layout::V2(root) => {
            assert_eq!(root, Path::new("/sys/fs/cgroup"));
            assert_eq!(dirs(&t.cgroup), [root.join(PARENT).join(&t.name)]);
            for dir in [root.clone(), root.join(PARENT)] {
                let control = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap();
                for ctrl in ["memory", "pids", "cpu"] {
                    assert!(
                        control.split_whitespace().any(|c| c == ctrl),
                        "{ctrl} not delegated in {}: {control:?}",
                        dir.display()
                    );
                }
            }
            let controllers = t.read("cgroup.controllers");
            for ctrl in ["memory", "pids", "cpu"] {
                assert!(
                    controllers.split_whitespace().any(|c| c == ctrl),
                    "{ctrl} missing from {controllers:?}"
                );
            }
        }
        Layout::V1(mounts) => {
            for ctrl in ["memory", "pids"] {
                let (_, mount) = mounts
                    .iter()
                    .find(|(c, _)| *c == ctrl)
                    .unwrap_or_else(|| panic!("no v1 {ctrl} in {mounts:?}"));
                let dir = mount.join(PARENT).join(&t.name);
                assert!(dirs(&t.cgroup).contains(&dir), "{} missing", dir.display());
            }
            for dir in dirs(&t.cgroup) {
                assert!(dir.is_dir(), "{} missing", dir.display());
                assert!(!is_cgroup2(dir.parent().unwrap().parent().unwrap()));
            }
        }
    }
}

#[test]
fn limits_are_written() {
    let t = TestCgroup::new();
    if t.layout.is_v2() {
        assert_eq!(t.read("memory.max"), MEMORY.to_string());
    } else {
        assert_eq!(t.read("memory.limit_in_bytes"), MEMORY.to_string());
    }
    assert_eq!(t.read("pids.max"), PIDS.to_string());
    // Half a CPU: 50 ms per 100 ms period.
    if t.layout.is_v2() {
        assert_eq!(t.read("cpu.max"), "50000 100000");
    } else {
        assert_eq!(t.read("cpu.cfs_quota_us"), "50000");
        assert_eq!(t.read("cpu.cfs_period_us"), "100000");
    }
    assert_eq!(t.cgroup.stats().memory_limit_bytes, MEMORY);
}

#[test]
fn a_process_joins_and_is_accounted() {
    let mut t = TestCgroup::new();
    let pid = t.spawn(&["sleep", "30"]);
    assert_eq!(t.members(), [pid]);
    assert!(
        in_cgroup(pid, &t.name),
        "/proc/{pid}/cgroup does not name it"
    );
    // The exec after the move is charged to the cgroup.
    wait_until("memory usage shows", Duration::from_secs(5), || {
        t.cgroup.memory_usage().is_some_and(|bytes| bytes > 0)
    });
    let usage = t.cgroup.memory_usage().unwrap();
    assert!(usage < MEMORY, "usage {usage} above the limit");
    wait_until("the child runs sleep", Duration::from_secs(5), || {
        fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
}

#[test]
fn the_pids_limit_stops_a_fork_bomb() {
    let mut t = TestCgroup::new();
    let shell = t.spawn(&[
        "sh",
        "-c",
        "for i in $(seq 40); do sleep 3 2>/dev/null & done; wait",
    ]);
    // Watch the cgroup until the shell is gone (it may stop at the first
    // failed fork) and the cgroup holds no more than its sleeps.
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        most = most.max(t.members().len());
        if let Some(status) = t.children[0].try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the fork bomb did not finish");
        std::thread::sleep(Duration::from_millis(5));
    };
    most = most.max(t.members().len());
    let mut stderr = String::new();
    let _ = t.children[0]
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr);
    eprintln!("shell {shell}: {status}, at most {most} processes, stderr: {stderr}");
    assert!(
        most as u64 <= PIDS,
        "{most} processes in a cgroup limited to {PIDS}"
    );
    // The kernel counted the forks it refused.
    let events = t.read("pids.events");
    let refused: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no 'max' in pids.events: {events:?}"));
    assert!(refused > 0, "no fork was refused: {events:?}");
    assert!(
        !status.success() || !stderr.is_empty(),
        "the shell reported no failure: {status}"
    );
}

#[test]
fn remove_kills_everything_and_deletes_the_directories() {
    let mut t = TestCgroup::new();
    let sleeper = t.spawn(&["sleep", "30"]);
    // A process tree: the shell's children start in the cgroup on their own.
    let shell = t.spawn(&["sh", "-c", "sleep 30 & sleep 30 & sleep 30 & wait"]);
    wait_until("the shell's children start", Duration::from_secs(5), || {
        t.members().len() == 5
    });
    let members = t.members();
    assert!(members.contains(&sleeper) && members.contains(&shell));

    let started = Instant::now();
    t.cgroup.remove(PATIENCE).expect("remove");
    eprintln!("remove took {:?}", started.elapsed());
    for dir in dirs(&t.cgroup) {
        assert!(!dir.exists(), "{} is still there", dir.display());
    }
    assert!(t.cgroup.pids().is_empty());
    assert_eq!(t.cgroup.memory_usage(), None);
    let left = t.reap();
    assert!(left.is_empty(), "processes left: {left:?}");
    for pid in members {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} is still there: {:?} {:?}",
            fs::read_to_string(format!("/proc/{pid}/status")),
            fs::read_to_string(format!("/proc/{pid}/cgroup")),
        );
    }
    // Removing again (as the guard does) is harmless.
    t.cgroup.remove(PATIENCE).expect("remove again");
}

/// The nesting profile's cgroup: the instance's root may make cgroups below
/// its own and move its processes there (as dockerd and runc do), but not
/// raise its own limits; removing it takes everything below with it.
#[test]
fn a_delegated_cgroup_is_divided_by_its_owner_and_removed_with_all_below() {
    use std::os::unix::fs::MetadataExt;
    // An unprivileged host uid, like an instance root's.
    let uid = (1 << 28) + 4242;
    let mut t = TestCgroup::delegated(uid);
    let owned = dirs(&t.cgroup);
    for dir in &owned {
        assert_eq!(fs::metadata(dir).unwrap().uid(), uid, "{}", dir.display());
    }
    let limit = if t.layout.is_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(
        fs::metadata(t.dir_with(limit).join(limit)).unwrap().uid(),
        0
    );

    // As the owner: a cgroup below in every hierarchy (a v1 cpuset one gets
    // its parent's CPUs and memory nodes first), then move itself into it.
    let mut script = String::new();
    for dir in &owned {
        let d = dir.display();
        script.push_str(&format!(
            "mkdir {d}/inner && \
             if [ -f {d}/inner/cpuset.cpus ]; then cat {d}/cpuset.cpus > {d}/inner/cpuset.cpus && cat {d}/cpuset.mems > {d}/inner/cpuset.mems; fi && \
             echo $$ > {d}/inner/cgroup.procs && "
        ));
    }
    script.push_str(&format!(
        "if echo 1000000000 > {}/{limit}; then echo RAISED >&2; exit 3; fi; exec sleep 30",
        t.dir_with(limit).display()
    ));
    let pid = t.spawn_as(Some(uid), &["sh", "-c", &script]);
    wait_until(
        "the owner's process is in its own cgroups",
        Duration::from_secs(5),
        || {
            owned.iter().all(|d| {
                fs::read_to_string(d.join("inner/cgroup.procs"))
                    .is_ok_and(|p| p.lines().any(|l| l.trim() == pid.to_string()))
            })
        },
    );
    for dir in &owned {
        assert_eq!(fs::metadata(dir.join("inner")).unwrap().uid(), uid);
    }

    t.cgroup.remove(PATIENCE).expect("remove");
    for dir in &owned {
        assert!(!dir.exists(), "{} is still there", dir.display());
    }
    assert!(
        t.reap().is_empty(),
        "the process below the cgroup was not killed"
    );
}
