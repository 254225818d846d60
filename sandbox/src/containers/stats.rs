//! What a container uses, read from /proc (for `docker stats`).
//!
//! Containers have no cgroup of their own (they share the instance's), so
//! their usage is summed over their processes: every process of the
//! instance's cgroup that lives in the same pid namespace as the
//! container's first process. CPU is user + system time, with the time of
//! children they reaped (so short-lived commands count); memory is the
//! proportional set size (shared pages split between their users, so the
//! sum is not inflated by shared libraries); network counters come from the
//! first process's network namespace.

use std::fs;
use std::io;

use crate::instance::handle::Instance;

/// Usage summed over a container's processes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerUsage {
    /// User + system CPU time, reaped children's included, in nanoseconds.
    pub cpu_ns: u64,
    /// Proportional set size, in bytes.
    pub memory_bytes: u64,
    /// Resident set size, in bytes (shared pages counted once per process).
    pub rss_bytes: u64,
    /// Processes.
    pub processes: u64,
    /// Threads of all its processes (what a pids cgroup counts).
    pub tasks: u64,
    /// Bytes its processes had read from or sent to the storage layer.
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// The interfaces of its network namespace, loopback included.
    pub interfaces: Vec<InterfaceCounters>,
}

/// One line of /proc/net/dev.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The host's CPU time, what Docker compares a container's with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemCpu {
    /// Time of all CPUs together (idle included) since boot, in nanoseconds.
    pub total_ns: u64,
    /// CPUs online.
    pub online_cpus: u32,
}

impl Instance {
    /// Usage of the container whose first process is `pid` (in the
    /// instance's pid namespace); `None` when that process is gone.
    pub fn container_usage(&self, pid: i32) -> Option<ContainerUsage> {
        let candidates = self.cgroup().pids();
        let first = candidates
            .iter()
            .copied()
            .find(|&host| status(host).is_some_and(|s| s.instance_pid == Some(pid)))?;
        namespace_usage(first, &candidates)
    }

    /// What bounds the memory of the instance's containers together: its
    /// cgroup's limit, or the host's memory when that is less (or there is
    /// no limit).
    pub fn memory_limit(&self) -> u64 {
        let host = host_memory_bytes().unwrap_or(u64::MAX);
        match self.stats().memory_limit_bytes {
            0 => host,
            limit => limit.min(host),
        }
    }
}

/// The host's memory (MemTotal), in bytes.
fn host_memory_bytes() -> Option<u64> {
    kib_field(&fs::read_to_string("/proc/meminfo").ok()?, "MemTotal")
}

/// The value of a `Name:   123 kB` line, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Usage of the processes among `candidates` (host pids) in the pid
/// namespace of host process `first`, which gives the network namespace.
pub(crate) fn namespace_usage(first: i32, candidates: &[i32]) -> Option<ContainerUsage> {
    let namespace = fs::read_link(format!("/proc/{first}/ns/pid")).ok()?;
    let mut usage = ContainerUsage {
        interfaces: interfaces(first).ok()?,
        ..ContainerUsage::default()
    };
    let tick_ns = tick_ns();
    for &pid in candidates {
        // A process may exit while it is read: it then counts for nothing.
        if fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_ref() != Some(&namespace) {
            continue;
        }
        let (Some(ticks), Some(status)) = (cpu_ticks(pid), status(pid)) else {
            continue;
        };
        usage.processes += 1;
        usage.cpu_ns += ticks * tick_ns;
        usage.tasks += status.threads;
        usage.rss_bytes += status.rss_bytes;
        usage.memory_bytes += pss_bytes(pid).unwrap_or(status.rss_bytes);
        if let Some((read, write)) = io_bytes(pid) {
            usage.read_bytes += read;
            usage.write_bytes += write;
        }
    }
    Some(usage)
}

/// Nanoseconds per clock tick (the unit of /proc's CPU times).
fn tick_ns() -> u64 {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&hz| hz > 0)
        .unwrap_or(100) as u64;
    1_000_000_000 / hz
}

/// utime + stime + cutime + cstime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields 14 to 17 of proc(5); `fields[0]` is field 3.
    fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum()
}

struct Status {
    threads: u64,
    rss_bytes: u64,
    /// The pid in the instance's pid namespace (the second NSpid level).
    instance_pid: Option<i32>,
}

fn status(pid: i32) -> Option<Status> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
    };
    Some(Status {
        threads: field("Threads")?.trim().parse().ok()?,
        // Kernel threads have no VmRSS line.
        rss_bytes: kib_field(&text, "VmRSS").unwrap_or(0),
        instance_pid: field("NSpid")
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok()),
    })
}

/// The proportional set size of `pid` (one walk of its mappings).
fn pss_bytes(pid: i32) -> Option<u64> {
    kib_field(
        &fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?,
        "Pss",
    )
}

/// Bytes `pid` made the storage layer read and write.
fn io_bytes(pid: i32) -> Option<(u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let value = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .parse()
            .ok()
    };
    Some((value("read_bytes:")?, value("write_bytes:")?))
}

/// The interfaces of `pid`'s network namespace.
fn interfaces(pid: i32) -> io::Result<Vec<InterfaceCounters>> {
    Ok(parse_net_dev(&fs::read_to_string(format!(
        "/proc/{pid}/net/dev"
    ))?))
}

fn parse_net_dev(text: &str) -> Vec<InterfaceCounters> {
    // Two header lines, then `name: rx (8 columns) tx (8 columns)`.
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let n: Vec<u64> = counters
                .split_whitespace()
                .map(|v| v.parse().ok())
                .collect::<Option<_>>()?;
            if n.len() < 16 {
                return None;
            }
            Some(InterfaceCounters {
                name: name.trim().to_string(),
                rx_bytes: n[0],
                rx_packets: n[1],
                rx_errors: n[2],
                rx_dropped: n[3],
                tx_bytes: n[8],
                tx_packets: n[9],
                tx_errors: n[10],
                tx_dropped: n[11],
            })
        })
        .collect()
}

/// The host's CPU time and online CPUs, from /proc/stat.
pub fn system_cpu() -> io::Result<SystemCpu> {
    parse_proc_stat(&fs::read_to_string("/proc/stat")?, tick_ns())
        .ok_or_else(|| io::Error::other("/proc/stat has no cpu line"))
}

fn parse_proc_stat(text: &str, tick_ns: u64) -> Option<SystemCpu> {
    let total = text.lines().find_map(|l| l.strip_prefix("cpu "))?;
    // user nice system idle iowait irq softirq steal (guest time is
    // already in user and nice).
    let ticks: u64 = total
        .split_whitespace()
        .take(8)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    let online_cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count() as u32;
    Some(SystemCpu {
        total_ns: ticks * tick_ns,
        online_cpus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    /// `unshare` and the namespace it made. Dropping it kills `unshare`,
    /// whose death kills the namespace's init (`--kill-child`), whose death
    /// ends every process of the namespace.
    struct Namespace {
        unshare: Child,
        init: i32,
    }

    impl Namespace {
        /// `script` as pid 1 of new pid and network namespaces.
        fn start(script: &str) -> Namespace {
            let unshare = Command::new("unshare")
                .args([
                    "--pid",
                    "--net",
                    "--fork",
                    "--kill-child",
                    "sh",
                    "-c",
                    script,
                ])
                .spawn()
                .expect("unshare runs");
            let children = format!("/proc/{0}/task/{0}/children", unshare.id());
            let deadline = Instant::now() + Duration::from_secs(10);
            let init = loop {
                let text = fs::read_to_string(&children).unwrap_or_default();
                if let Some(pid) = text.split_whitespace().next() {
                    break pid.parse().unwrap();
                }
                assert!(Instant::now() < deadline, "unshare forked no child");
                std::thread::sleep(Duration::from_millis(10));
            };
            Namespace { unshare, init }
        }

        fn usage(&self) -> ContainerUsage {
            let all: Vec<i32> = fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            namespace_usage(self.init, &all).expect("its init lives")
        }
    }

    impl Drop for Namespace {
        fn drop(&mut self) {
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
    }

    /// Wait until `check` holds for the namespace's usage; return it.
    fn usage_when(ns: &Namespace, check: impl Fn(&ContainerUsage) -> bool) -> ContainerUsage {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let usage = ns.usage();
            if check(&usage) || Instant::now() > deadline {
                return usage;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn processes_of_a_pid_namespace_are_summed() {
        // A shell holding 20 MB in a variable, and a child of its own.
        let ns =
            Namespace::start("x=$(head -c 20000000 /dev/zero | tr '\\0' a); sleep 1000 & wait");
        let usage = usage_when(&ns, |u| u.processes == 2 && u.memory_bytes > 20_000_000);
        assert_eq!(usage.processes, 2, "{usage:?}");
        assert_eq!(usage.tasks, 2, "{usage:?}");
        assert!(usage.memory_bytes > 20_000_000, "{usage:?}");
        assert!(usage.rss_bytes >= usage.memory_bytes, "{usage:?}");
        // Its own network namespace: loopback alone, nothing sent yet.
        let names: Vec<&str> = usage.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["lo"], "{usage:?}");
        assert_eq!(usage.interfaces[0].tx_bytes, 0, "{usage:?}");
        // The test's own processes are not counted.
        assert!(usage.memory_bytes < 200_000_000, "{usage:?}");
    }

    #[test]
    fn a_busy_process_uses_cpu_time_as_fast_as_the_clock() {
        let ns = Namespace::start("while :; do :; done");
        let before = usage_when(&ns, |u| u.cpu_ns > 0);
        let system_before = system_cpu().unwrap();
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(1000));
        let after = ns.usage();
        let system_after = system_cpu().unwrap();
        let used = after.cpu_ns - before.cpu_ns;
        let wall = started.elapsed().as_nanos() as u64;
        // One CPU-bound process: close to the wall time (the machine may be
        // shared, so a generous lower bound), never more than it.
        assert!(used > wall / 4, "used {used} ns of CPU in {wall} ns");
        assert!(
            used <= wall + 20_000_000,
            "used {used} ns of CPU in {wall} ns"
        );
        // All CPUs' time grows by about wall time per CPU.
        let system = system_after.total_ns - system_before.total_ns;
        let cpus = system_after.online_cpus as u64;
        assert!(cpus >= 1);
        assert!(
            system > wall * cpus / 2,
            "{system} ns for {cpus} CPUs in {wall} ns"
        );
        assert!(
            system < wall * cpus * 2,
            "{system} ns for {cpus} CPUs in {wall} ns"
        );
    }

    #[test]
    fn the_host_memory_is_read() {
        let bytes = host_memory_bytes().unwrap();
        assert!(bytes > 64 << 20 && bytes.is_multiple_of(1024), "{bytes}");
    }

    #[test]
    fn a_gone_process_has_no_usage() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert_eq!(namespace_usage(pid, &[pid]), None);
    }

    #[test]
    fn net_dev_columns_are_read_by_position() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n  eth0:10 20 0 0 0 0 0 0 30 40 0 1 0 0 0 0\n";
        let parsed = parse_net_dev(text);
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parsed[1],
            InterfaceCounters {
                name: "eth0".into(),
                rx_bytes: 10,
                rx_packets: 20,
                rx_errors: 0,
                rx_dropped: 0,
                tx_bytes: 30,
                tx_packets: 40,
                tx_errors: 0,
                tx_dropped: 1,
            }
        );
        assert_eq!(parsed[0].tx_dropped, 8);
    }
}
