//! Per-instance control groups on either cgroup v1 (one hierarchy per
//! controller, as on this project's development host) or cgroup v2 (one
//! unified tree, as on most production hosts). The layout is detected once.
//!
//! Every cgroup we create lives below a directory named [`PARENT`] in each
//! hierarchy, so leftovers of a crashed run can be found and removed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// The directory below which every instance cgroup lives.
pub const PARENT: &str = "playground";

/// The v1 controllers an instance is placed in: limits (memory, pids, cpu)
/// and accounting (cpuacct).
const V1_CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "cpuacct"];

/// The v1 controllers an instance that runs its own container engine (the
/// nesting profile) is placed in too, so that runc finds a subtree of its
/// own in every hierarchy it uses (`docker pause` needs the freezer).
const V1_DELEGATED: [&str; 4] = ["cpuset", "devices", "freezer", "blkio"];

/// A cgroup file system as mounted inside an instance at
/// `/sys/fs/cgroup/<target>`; the instance's cgroup namespace makes its
/// own cgroup the root of what it sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupMount {
    /// Below /sys/fs/cgroup; empty for the v2 hierarchy, which is mounted
    /// at /sys/fs/cgroup itself.
    pub target: String,
    pub fstype: String,
    /// The controllers of a v1 hierarchy (`cpu,cpuacct`), as mount options.
    pub options: String,
}

/// Resource limits of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Memory limit in bytes; swap is not allowed beyond it.
    pub memory_bytes: u64,
    /// Maximum number of processes and threads.
    pub pids: u64,
    /// Relative CPU weight when CPUs are contended (cgroup v1 shares:
    /// 1024 is the default; converted to a v2 weight).
    pub cpu_shares: u64,
    /// Hard CPU cap in thousandths of a CPU (1000 = one full CPU); 0 = none.
    pub cpu_millis: u64,
    /// Size of the instance's writable layer (its disk), in bytes.
    pub disk_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 1 << 30,
            pids: 1000,
            cpu_shares: 1024,
            cpu_millis: 1000,
            disk_bytes: 4 << 30,
        }
    }
}

/// An instance's resource use, read from its cgroup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    /// CPU time used since the instance started, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Processes and threads now.
    pub pids: u64,
}

/// Which cgroup layout this host has.
#[derive(Clone, Debug)]
pub enum Layout {
    /// One mount per v1 controller (controller name -> mount point).
    V1(Vec<(&'static str, PathBuf)>),
    /// The unified hierarchy mounted at this path.
    V2(PathBuf),
}

impl Layout {
    /// Detect the layout from the mount table: a cgroup2 file system at
    /// `/sys/fs/cgroup` means v2; otherwise the v1 controller mounts are used
    /// (a hybrid host's empty cgroup2 at `/sys/fs/cgroup/unified` is ignored).
    pub fn detect() -> io::Result<Layout> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
        Self::from_mountinfo(&mountinfo)
    }

    fn from_mountinfo(mountinfo: &str) -> io::Result<Layout> {
        let mut v1 = Vec::new();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = left.split(' ').nth(4).unwrap_or_default();
            let mut right = right.split(' ');
            let fstype = right.next().unwrap_or_default();
            let options = right.nth(1).unwrap_or_default();
            if fstype == "cgroup2" && mount_point == "/sys/fs/cgroup" {
                return Ok(Layout::V2(PathBuf::from(mount_point)));
            }
            if fstype == "cgroup" {
                for ctrl in V1_CONTROLLERS.into_iter().chain(V1_DELEGATED) {
                    if options.split(',').any(|o| o == ctrl) && !v1.iter().any(|(c, _)| *c == ctrl)
                    {
                        v1.push((ctrl, PathBuf::from(mount_point)));
                    }
                }
            }
        }
        for ctrl in ["memory", "pids"] {
            if !v1.iter().any(|(c, _)| *c == ctrl) {
                return Err(io::Error::other(format!(
                    "no cgroup v2 at /sys/fs/cgroup and no v1 '{ctrl}' controller mounted"
                )));
            }
        }
        Ok(Layout::V1(v1))
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Layout::V2(_))
    }

    /// The parent directories (one per hierarchy) that hold instance
    /// cgroups; with `delegated`, also those of the hierarchies only
    /// nesting instances are placed in.
    fn parents(&self, delegated: bool) -> Vec<PathBuf> {
        match self {
            Layout::V1(mounts) => {
                let mut dirs: Vec<PathBuf> = Vec::new();
                for (ctrl, mount) in mounts {
                    if !delegated && !V1_CONTROLLERS.contains(ctrl) {
                        continue;
                    }
                    let dir = mount.join(PARENT);
                    if !dirs.contains(&dir) {
                        dirs.push(dir);
                    }
                }
                dirs
            }
            Layout::V2(root) => vec![root.join(PARENT)],
        }
    }

    /// Create the parent directories and, on v2, delegate the controllers we
    /// need to them.
    pub fn prepare(&self) -> io::Result<()> {
        for dir in self.parents(true) {
            fs::create_dir_all(&dir)?;
            inherit_cpuset(&dir)?;
        }
        if let Layout::V2(root) = self {
            for dir in [root.clone(), root.join(PARENT)] {
                for ctrl in ["+memory", "+pids", "+cpu"] {
                    // A controller the kernel lacks is skipped, not fatal:
                    // limits that need it are then reported by `create`.
                    let _ = fs::write(dir.join("cgroup.subtree_control"), ctrl);
                }
            }
        }
        Ok(())
    }

    /// Create the cgroup `name` with `limits` in every hierarchy. With
    /// `delegate_to` (a host uid: the instance's root), the instance may
    /// create cgroups below its own and move its processes among them (the
    /// nesting profile); its own limits stay out of its reach, and bound
    /// everything below.
    pub fn create(
        &self,
        name: &str,
        limits: &Limits,
        delegate_to: Option<u32>,
    ) -> io::Result<Cgroup> {
        let cgroup = Cgroup {
            dirs: self
                .parents(delegate_to.is_some())
                .iter()
                .map(|p| p.join(name))
                .collect(),
            v2: self.is_v2(),
        };
        let made = (|| {
            for dir in &cgroup.dirs {
                fs::create_dir_all(dir)?;
                inherit_cpuset(dir)?;
            }
            cgroup.apply(limits)?;
            if let Some(uid) = delegate_to {
                cgroup.delegate(uid)?;
            }
            Ok(())
        })();
        if let Err(e) = made {
            let _ = cgroup.remove(Duration::from_secs(1));
            return Err(e);
        }
        Ok(cgroup)
    }

    /// A handle on an existing instance cgroup (taken back after a restart,
    /// or a leftover to clean up): in the hierarchies every instance is in,
    /// and in those only nesting instances are in where it exists there.
    pub fn open(&self, name: &str) -> Cgroup {
        let always = self.parents(false);
        let dirs = self
            .parents(true)
            .into_iter()
            .filter(|p| always.contains(p) || p.join(name).exists())
            .map(|p| p.join(name))
            .collect();
        Cgroup {
            dirs,
            v2: self.is_v2(),
        }
    }

    /// What a nesting instance mounts at /sys/fs/cgroup: each v1 hierarchy
    /// it is placed in (comounted controllers once), or the v2 hierarchy.
    pub fn instance_mounts(&self) -> Vec<CgroupMount> {
        match self {
            Layout::V2(_) => vec![CgroupMount {
                target: String::new(),
                fstype: "cgroup2".into(),
                options: String::new(),
            }],
            Layout::V1(mounts) => {
                let mut out: Vec<(PathBuf, Vec<&str>)> = Vec::new();
                for (ctrl, path) in mounts {
                    match out.iter_mut().find(|(p, _)| p == path) {
                        Some((_, ctrls)) => ctrls.push(ctrl),
                        None => out.push((path.clone(), vec![ctrl])),
                    }
                }
                out.into_iter()
                    .filter_map(|(path, ctrls)| {
                        let target = path.file_name()?.to_string_lossy().into_owned();
                        Some(CgroupMount {
                            target,
                            fstype: "cgroup".into(),
                            options: ctrls.join(","),
                        })
                    })
                    .collect()
            }
        }
    }
}

/// A new v1 cpuset cgroup has no CPUs and no memory nodes, and no process
/// can join it until it has: give it its parent's.
fn inherit_cpuset(dir: &Path) -> io::Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        let Ok(current) = fs::read_to_string(&own) else {
            return Ok(()); // not a v1 cpuset hierarchy
        };
        if !current.trim().is_empty() {
            continue;
        }
        if let Some(parent) = dir.parent() {
            let value = fs::read_to_string(parent.join(file))?;
            write(dir, file, value.trim())?;
        }
    }
    Ok(())
}

/// One instance's cgroup, present in one (v2) or several (v1) hierarchies.
#[derive(Clone, Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    v2: bool,
}

impl Cgroup {
    fn apply(&self, limits: &Limits) -> io::Result<()> {
        let mem = limits.memory_bytes.to_string();
        let pids = limits.pids.to_string();
        let shares = limits.cpu_shares.clamp(2, 262_144);
        // CFS bandwidth: `quota` microseconds of CPU time per 100 ms period.
        const PERIOD_US: u64 = 100_000;
        let quota = limits.cpu_millis * PERIOD_US / 1000;
        if self.v2 {
            let dir = &self.dirs[0];
            write(dir, "memory.max", &mem)?;
            // Absent when the kernel has no swap accounting: then there is no swap to bound.
            let _ = fs::write(dir.join("memory.swap.max"), "0");
            write(dir, "pids.max", &pids)?;
            // The kernel's own mapping of v1 shares [2, 262144] to v2 weights [1, 10000].
            let weight = 1 + (shares - 2) * 9999 / 262_142;
            write(dir, "cpu.weight", &weight.to_string())?;
            let max = if quota == 0 {
                "max".to_string()
            } else {
                quota.to_string()
            };
            write(dir, "cpu.max", &format!("{max} {PERIOD_US}"))?;
        } else {
            for dir in &self.dirs {
                if dir.join("memory.limit_in_bytes").exists() {
                    write(dir, "memory.limit_in_bytes", &mem)?;
                    // memory+swap equal to memory: no swap. Absent without swap accounting.
                    let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), &mem);
                }
                if dir.join("pids.max").exists() {
                    write(dir, "pids.max", &pids)?;
                }
                if dir.join("cpu.shares").exists() {
                    write(dir, "cpu.shares", &shares.to_string())?;
                    write(dir, "cpu.cfs_period_us", &PERIOD_US.to_string())?;
                    let quota = if quota == 0 {
                        "-1".to_string()
                    } else {
                        quota.to_string()
                    };
                    write(dir, "cpu.cfs_quota_us", &quota)?;
                }
            }
        }
        Ok(())
    }

    /// Hand the cgroup's directories, and the files that move processes and
    /// (v2) enable controllers below it, to host uid `uid`. The limit files
    /// stay the host's.
    fn delegate(&self, uid: u32) -> io::Result<()> {
        let owner = Some(nix::unistd::Uid::from_raw(uid));
        let group = Some(nix::unistd::Gid::from_raw(uid));
        let files: &[&str] = if self.v2 {
            &["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"]
        } else {
            &["cgroup.procs", "tasks", "cgroup.clone_children"]
        };
        for dir in &self.dirs {
            nix::unistd::chown(dir, owner, group).map_err(io::Error::from)?;
            for file in files {
                let path = dir.join(file);
                if path.exists() {
                    nix::unistd::chown(&path, owner, group).map_err(io::Error::from)?;
                }
            }
        }
        Ok(())
    }

    /// The files a single-threaded process writes `0` to, to move itself
    /// into the cgroup. On v1 that is `tasks`: moving only the calling
    /// thread lets the kernel skip the global threadgroup lock, whose write
    /// side waits for an RCU grace period (6-15 ms per instance measured
    /// here with `cgroup.procs`).
    pub fn join_files(&self) -> Vec<PathBuf> {
        let file = if self.v2 { "cgroup.procs" } else { "tasks" };
        self.dirs.iter().map(|d| d.join(file)).collect()
    }

    /// The `cgroup.procs` files a process writes its pid to, to join.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Host pids of every process in the cgroup and in the cgroups a
    /// nesting instance made below it (its init among them: on cgroup v2
    /// init moves to a leaf below when dockerd starts).
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for dir in &self.dirs {
            for sub in subtree(dir) {
                read_pids(&sub.join("cgroup.procs"), &mut pids);
            }
        }
        pids
    }

    /// Memory in use, in bytes (page cache included).
    pub fn memory_usage(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        self.read_number(file)
    }

    /// Current usage and limits.
    pub fn stats(&self) -> Stats {
        let (limit, cpu_ns) = if self.v2 {
            let cpu_us = self.read_file("cpu.stat").and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            });
            (self.read_number("memory.max"), cpu_us.map(|us| us * 1000))
        } else {
            (
                self.read_number("memory.limit_in_bytes"),
                self.read_number("cpuacct.usage"),
            )
        };
        Stats {
            memory_bytes: self.memory_usage().unwrap_or(0),
            memory_limit_bytes: limit.unwrap_or(0),
            cpu_usage_ns: cpu_ns.unwrap_or(0),
            pids: self.read_number("pids.current").unwrap_or(0),
        }
    }

    /// Processes the kernel's OOM killer ended in the cgroup so far.
    pub fn oom_kills(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        self.read_file(file)?
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
    }

    fn read_file(&self, file: &str) -> Option<String> {
        self.dirs
            .iter()
            .find_map(|d| fs::read_to_string(d.join(file)).ok())
    }

    fn read_number(&self, file: &str) -> Option<u64> {
        self.read_file(file).and_then(|s| s.trim().parse().ok())
    }

    /// Kill every process in the cgroup, wait until it is empty (at most
    /// `patience`), then remove its directories.
    pub fn remove(&self, patience: Duration) -> io::Result<()> {
        let deadline = Instant::now() + patience;
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            if self.v2 {
                let _ = fs::write(self.dirs[0].join("cgroup.kill"), "1");
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "processes in {} did not exit",
                    self.dirs[0].display()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Deepest first: what a nesting instance made below its cgroup, then it.
        let mut dirs: Vec<PathBuf> = self.dirs.iter().flat_map(|d| subtree(d)).collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in &dirs {
            // The kernel may still be tearing down the last task: retry EBUSY briefly.
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

fn read_pids(file: &Path, pids: &mut Vec<i32>) {
    if let Ok(text) = fs::read_to_string(file) {
        for pid in text.lines().filter_map(|l| l.trim().parse().ok()) {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
    }
}

/// `dir` and every directory below it (cgroup file systems hold no
/// symbolic links); empty when `dir` does not exist.
fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(entry.path());
            }
        }
        out.push(d);
    }
    out
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    fs::write(dir.join(file), value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write {value} to {}: {e}", dir.join(file).display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_host_uses_v1_controllers() {
        let Layout::V1(mounts) = Layout::from_mountinfo(HYBRID).unwrap() else {
            panic!("expected v1");
        };
        assert!(mounts.contains(&("memory", PathBuf::from("/sys/fs/cgroup/memory"))));
        assert!(mounts.contains(&("pids", PathBuf::from("/sys/fs/cgroup/pids"))));
    }

    #[test]
    fn unified_host_uses_v2() {
        let info = "25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert!(Layout::from_mountinfo(info).unwrap().is_v2());
    }

    #[test]
    fn comounted_v1_controllers_share_one_directory() {
        let info = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        let layout = Layout::from_mountinfo(info).unwrap();
        assert_eq!(layout.parents(false).len(), 3);
        let mounts = layout.instance_mounts();
        assert_eq!(mounts[0].target, "cpu,cpuacct");
        assert_eq!(mounts[0].options, "cpu,cpuacct");
    }

    #[test]
    fn missing_controllers_are_an_error() {
        assert!(Layout::from_mountinfo("").is_err());
    }
}
