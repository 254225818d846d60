//! The abuse suite: escape and damage attempts run as the instance's root
//! through the real API, against both instance profiles. Each attempt must
//! fail inside the instance, or (what the `nesting` profile allows inside
//! the instance's own namespaces: mounts, new namespaces but a user one,
//! its hostname) stay inside it; either way the host and the other instances
//! must not notice. Attempts aimed at what only `nesting` has (the real
//! dockerd, privileged containers, a delegated cgroup tree) are in
//! `abuse_nesting.rs`. Needs root.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use playground_protocol::ExecResponse;
use playground_tests::{bridge_link_local, leftovers, wait_until_clean, TestServer};

/// Small limits so resource attacks hit them quickly.
const LIMITS: [&str; 4] = [
    "--instance-memory-mib=256",
    "--instance-pids=200",
    "--instance-disk-mib=128",
    "--instance-cpus=0.5",
];

/// Run a raw system call inside the instance with Python's ctypes; prints
/// `<return value> <errno name>`.
fn syscall(nr: i64, args: &[i64]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    format!(
        "python3 -c 'import ctypes,errno,sys; l=ctypes.CDLL(None,use_errno=True); \
         r=l.syscall(*[ctypes.c_long(int(a)) for a in sys.argv[1:]]); \
         print(r, errno.errorcode.get(ctypes.get_errno(),0) if r<0 else \"OK\")' {nr} {}",
        args.join(" ")
    )
}

/// The instance profiles; every test here runs once per profile.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Profile {
    Strict,
    Nesting,
}

impl Profile {
    async fn start(self, args: &[&str]) -> TestServer {
        match self {
            Profile::Strict => TestServer::start(args).await,
            Profile::Nesting => TestServer::start_nesting(args).await,
        }
    }
}

/// What an attempt must come to in one profile.
#[derive(Clone, Copy)]
enum Expect {
    /// It fails inside; the function tells failure from success.
    Fails(fn(&ExecResponse) -> bool),
    /// The profile allows it in the instance's own namespaces: it may work,
    /// and the host checks after the list prove it stayed inside (no mount
    /// of [`MARK`] on the host, the host's and the neighbour's hostname).
    StaysInside,
}

/// An attempt and what it must come to in each profile.
struct Attempt {
    what: &'static str,
    script: String,
    strict: Expect,
    nesting: Expect,
}

impl Attempt {
    fn expect(&self, profile: Profile) -> Expect {
        match profile {
            Profile::Strict => self.strict,
            Profile::Nesting => self.nesting,
        }
    }
}

/// An attempt that must fail in both profiles.
fn fails(
    what: &'static str,
    script: impl Into<String>,
    failed: fn(&ExecResponse) -> bool,
) -> Attempt {
    Attempt {
        what,
        script: script.into(),
        strict: Expect::Fails(failed),
        nesting: Expect::Fails(failed),
    }
}

/// An attempt that must fail in `strict` and may work inside a `nesting`
/// instance, where it stays in the instance's own namespaces.
fn fails_unless_nesting(
    what: &'static str,
    script: impl Into<String>,
    failed: fn(&ExecResponse) -> bool,
) -> Attempt {
    Attempt {
        nesting: Expect::StaysInside,
        ..fails(what, script, failed)
    }
}

/// Names a mount source the attempts use, to look for on the host.
const MARK: &str = "abuse-mark";

/// A host listener's answer; an attempt that prints it reached the host.
const HOST_ANSWER: &str = "host-listener";

fn errno_is(out: &ExecResponse, names: &[&str]) -> bool {
    let text = out.stdout.trim();
    text.starts_with("-1 ") && names.iter().any(|n| text.ends_with(n))
}

fn nonzero(out: &ExecResponse) -> bool {
    out.exit_code != 0
}

fn attempts(host_pid: i32) -> Vec<Attempt> {
    vec![
        fails(
            "mount the host's disk",
            "mount /dev/vda /mnt || mount /dev/sda1 /mnt",
            nonzero,
        ),
        fails(
            "create a device node for the host's disk and read it",
            "mknod /tmp/disk b 254 0 && head -c 512 /tmp/disk | wc -c",
            nonzero,
        ),
        fails(
            "create a device node for /dev/mem",
            "mknod /tmp/mem c 1 1 && head -c 16 /tmp/mem",
            nonzero,
        ),
        fails(
            "read physical memory through /dev/mem",
            "head -c 16 /dev/mem",
            nonzero,
        ),
        fails(
            "read /proc/kcore",
            "head -c 16 /proc/kcore | wc -c | grep -qv '^0$'",
            nonzero,
        ),
        fails(
            "write /proc/sysrq-trigger",
            "echo h > /proc/sysrq-trigger",
            nonzero,
        ),
        fails(
            "change a host sysctl",
            "echo 1 > /proc/sys/vm/drop_caches",
            nonzero,
        ),
        fails(
            "change the kernel hostname sysctl",
            "echo evil > /proc/sys/kernel/hostname",
            nonzero,
        ),
        fails("write to /sys", "echo 1 > /sys/kernel/mm/ksm/run", nonzero),
        fails(
            "load a kernel module (finit_module)",
            syscall(libc::SYS_finit_module, &[0, 0, 0]),
            |o| errno_is(o, &["EPERM"]),
        ),
        fails(
            "load a kernel module (init_module)",
            syscall(libc::SYS_init_module, &[0, 0, 0]),
            |o| errno_is(o, &["EPERM"]),
        ),
        Attempt {
            // nesting: CAP_SYS_BOOT of its own pid namespace, where the
            // kernel knows only restart and power off (see the end of
            // `escape_and_damage_attempts`); any other command is EINVAL.
            nesting: Expect::Fails(|o| errno_is(o, &["EINVAL"])),
            ..fails(
                "turn on the host's Ctrl-Alt-Del reboot (reboot CAD_ON)",
                syscall(libc::SYS_reboot, &[0xfee1dead, 672274793, 0x89abcdef, 0]),
                |o| errno_is(o, &["EPERM"]),
            )
        },
        fails(
            "set the clock with date",
            "date -s '2000-01-01 00:00:00'",
            nonzero,
        ),
        fails(
            "set the clock with clock_settime",
            syscall(libc::SYS_clock_settime, &[0, 0]),
            |o| errno_is(o, &["EPERM"]),
        ),
        fails(
            "kexec a new kernel",
            syscall(libc::SYS_kexec_load, &[0, 0, 0, 0]),
            |o| errno_is(o, &["EPERM"]),
        ),
        fails("swapon", syscall(libc::SYS_swapon, &[0, 0]), |o| {
            errno_is(o, &["EPERM"])
        }),
        Attempt {
            // nesting: ENOSYS, the answer runc accepts as "no keyrings here".
            nesting: Expect::Fails(|o| errno_is(o, &["ENOSYS"])),
            ..fails(
                "keyctl (kernel keyrings are not namespaced)",
                syscall(libc::SYS_keyctl, &[0, 0, 0, 0, 0]),
                |o| errno_is(o, &["EPERM"]),
            )
        },
        fails("bpf", syscall(libc::SYS_bpf, &[0, 0, 0]), |o| {
            errno_is(o, &["EPERM"])
        }),
        fails(
            "perf_event_open",
            syscall(libc::SYS_perf_event_open, &[0, 0, -1, -1, 0]),
            |o| errno_is(o, &["EPERM"]),
        ),
        fails(
            "open_by_handle_at (the shocker escape)",
            syscall(libc::SYS_open_by_handle_at, &[3, 0, 0]),
            |o| errno_is(o, &["EPERM"]),
        ),
        fails(
            "io_uring_setup",
            syscall(libc::SYS_io_uring_setup, &[8, 0]),
            |o| errno_is(o, &["EPERM"]),
        ),
        fails("iopl (raw port I/O)", syscall(libc::SYS_iopl, &[3]), |o| {
            errno_is(o, &["EPERM"])
        }),
        fails(
            "an x32-ABI system call",
            syscall(0x4000_0000 | libc::SYS_getpid, &[]),
            |o| errno_is(o, &["ENOSYS"]),
        ),
        fails(
            "escape through a nested user namespace (unshare -U)",
            "unshare -U -r id",
            nonzero,
        ),
        fails(
            "nested user namespace with the raw system call",
            syscall(libc::SYS_unshare, &[libc::CLONE_NEWUSER as i64]),
            |o| errno_is(o, &["EPERM"]),
        ),
        fails(
            "clone3 (must fall back to clone, whose flags are checked)",
            syscall(libc::SYS_clone3, &[0, 0]),
            |o| errno_is(o, &["ENOSYS"]),
        ),
        fails_unless_nesting("a new network namespace", "unshare -n true", nonzero),
        Attempt {
            // nesting: allowed for nested containers; fd 0 is no namespace.
            nesting: Expect::Fails(|o| errno_is(o, &["EINVAL"])),
            ..fails(
                "setns into another namespace",
                syscall(libc::SYS_setns, &[0, 0]),
                |o| errno_is(o, &["EPERM"]),
            )
        },
        fails_unless_nesting(
            "mount a tmpfs",
            format!("mount -t tmpfs {MARK} /mnt"),
            nonzero,
        ),
        Attempt {
            // nesting: allowed for nested containers; no paths given.
            nesting: Expect::Fails(|o| errno_is(o, &["EFAULT"])),
            ..fails("pivot_root", syscall(libc::SYS_pivot_root, &[0, 0]), |o| {
                errno_is(o, &["EPERM"])
            })
        },
        fails_unless_nesting(
            "change the hostname of the namespace",
            "hostname evil",
            nonzero,
        ),
        fails(
            "ptrace the instance's init",
            syscall(libc::SYS_ptrace, &[16 /* PTRACE_ATTACH */, 1, 0, 0]),
            |o| errno_is(o, &["EPERM"]),
        ),
        fails(
            "read init's memory through /proc/1/mem",
            "head -c 16 /proc/1/mem",
            nonzero,
        ),
        fails(
            "look into init's root through /proc/1/root",
            "ls /proc/1/root/",
            nonzero,
        ),
        fails(
            "break out of a chroot to the host's root",
            "mkdir -p /jail && python3 -c \"import os; os.chroot('/jail'); \
             os.chdir('../../../../..'); os.chroot('.'); \
             print('host' if os.path.exists('DATADIR') else 'inside')\" | grep -q host",
            nonzero,
        ),
        fails(
            "reach the playground's API on the host's loopback",
            "curl -s -m 3 http://127.0.0.1:PORT/healthz",
            nonzero,
        ),
        fails(
            "reach a host service through the session bridge's IPv6 link-local address",
            // The bridge's address as the host has it, and any neighbour
            // that answers the all-nodes multicast: the bridge is one.
            format!(
                "ping -6 -c 2 -W 1 ff02::1%eth0 >/dev/null 2>&1; \
                 for a in BRIDGE_LL $(ip -6 neigh show dev eth0 | cut -d' ' -f1); do \
                 curl -s -m 3 -g \"http://[$a%eth0]:ANYPORT/\"; done | grep {HOST_ANSWER}"
            ),
            nonzero,
        ),
        fails(
            "see a network device of the host",
            "ls /sys/class/net | tr '\\n' ' '",
            // Its own: lo, eth0, and docker0 (made at start in nesting).
            |o| {
                let devices: Vec<&str> = o.stdout.split_whitespace().collect();
                devices.contains(&"eth0")
                    && devices
                        .iter()
                        .all(|d| ["lo", "eth0", "docker0"].contains(d))
            },
        ),
        fails(
            "kill the host's server process",
            format!("kill -9 {host_pid}"),
            nonzero,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn escape_and_damage_attempts_fail_and_leave_the_host_unharmed_strict() {
    escape_and_damage_attempts(Profile::Strict).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn escape_and_damage_attempts_fail_and_leave_the_host_unharmed_nesting() {
    escape_and_damage_attempts(Profile::Nesting).await;
}

async fn escape_and_damage_attempts(profile: Profile) {
    let server = profile.start(&LIMITS).await;
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let sid = server.create_session().await.id;
    let victim = server.add_instance(&sid).await;
    let bystander = server.add_instance(&sid).await;
    server
        .exec(&sid, &bystander, "echo safe > /root/keep")
        .await;
    let host_name = nix_hostname();
    let host_clock = SystemTime::now();
    let (any_port, reached) = host_listener().await;
    let bridge_ll = bridge_link_local(&sid);

    let list = attempts(server.pid());
    assert!(list.len() >= 30, "only {} attempts", list.len());
    let mut failures = Vec::new();
    for attempt in &list {
        let script = attempt
            .script
            .replace("ANYPORT", &any_port.to_string())
            .replace("PORT", &port)
            .replace("BRIDGE_LL", &bridge_ll)
            .replace("DATADIR", &server.data_dir.path().to_string_lossy());
        let out = server.exec(&sid, &victim, &script).await;
        let said = format!("{} {}", out.stdout.trim(), out.stderr.trim());
        let expect = attempt.expect(profile);
        println!(
            "[{profile:?}] {:<55} exit {:>3} {} {}",
            attempt.what,
            out.exit_code,
            if matches!(expect, Expect::StaysInside) {
                "(inside)"
            } else {
                ""
            },
            said.trim()
        );
        if let Expect::Fails(failed) = expect {
            if !failed(&out) {
                failures.push(format!("{}: succeeded: {out:?}", attempt.what));
            }
        }
    }
    let connections = reached.load(Ordering::SeqCst);
    if connections > 0 {
        failures.push(format!(
            "the host's listener on [::]:{any_port} accepted {connections} connection(s) from the instance"
        ));
    }

    // The host and the other instance did not notice.
    assert_eq!(nix_hostname(), host_name);
    let drift = SystemTime::now().duration_since(host_clock).unwrap();
    assert!(drift < Duration::from_secs(120));
    for table in ["/proc/1/mountinfo", "/proc/self/mountinfo"] {
        let mounts = std::fs::read_to_string(table).unwrap();
        assert!(
            !mounts.contains(MARK),
            "a mount made in the instance shows in the host's {table}"
        );
    }
    let resp = server.get("/healthz").await;
    assert_eq!(resp.status(), 200);
    let out = server
        .exec(
            &sid,
            &bystander,
            "cat /root/keep; hostname; grep -c abuse-mark /proc/self/mountinfo",
        )
        .await;
    assert_eq!(out.stdout, format!("safe\n{bystander}\n0\n"));
    // And the victim is still a working machine.
    let out = server.exec(&sid, &victim, "echo alive; id -un").await;
    assert_eq!(out.stdout, "alive\nroot\n");

    // Last, as it may end the victim: reboot. Strict denies it; in nesting
    // it ends the instance's own pid namespace, never the host.
    let reboot = syscall(libc::SYS_reboot, &[0xfee1dead, 672274793, 0x01234567, 0]);
    let resp = server
        .http
        .post(server.url(&format!("/api/sessions/{sid}/instances/{victim}/exec")))
        .json(&serde_json::json!({ "cmd": ["sh", "-c", reboot] }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    println!("[{profile:?}] reboot the host (RESTART): {status} {body}");
    if profile == Profile::Strict {
        assert!(body.contains("-1 EPERM"), "reboot: {status} {body}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(server.get("/healthz").await.status(), 200);
    assert_eq!(nix_hostname(), host_name);
    let out = server.exec(&sid, &bystander, "cat /root/keep").await;
    assert_eq!(out.stdout, "safe\n");

    assert!(
        failures.is_empty(),
        "[{profile:?}] attempts that did not fail:\n{}",
        failures.join("\n")
    );
    end_session(&server, &sid).await;
    server.stop().await;
}

/// A TCP listener on every address of the host (`[::]`, IPv4 too) that
/// answers [`HOST_ANSWER`]; its port and how many connections it accepted.
async fn host_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("[::]:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut stream, from)) = listener.accept().await {
            eprintln!("host listener: connection from {from}");
            counted.fetch_add(1, Ordering::SeqCst);
            let answer = format!("HTTP/1.0 200 OK\r\n\r\n{HOST_ANSWER}\n");
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (port, count)
}

#[tokio::test(flavor = "multi_thread")]
async fn normal_root_tools_still_work_strict() {
    normal_root_tools_still_work(Profile::Strict).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn normal_root_tools_still_work_nesting() {
    normal_root_tools_still_work(Profile::Nesting).await;
}

async fn normal_root_tools_still_work(profile: Profile) {
    let server = profile.start(&LIMITS).await;
    let sid = server.create_session().await.id;
    let name = server.add_instance(&sid).await;
    let script = "useradd -m learner && su learner -c 'id -un; touch ~/mine; stat -c %U ~/mine' \
                  && ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping-ok \
                  && chown learner /tmp && stat -c %U /tmp && chroot / true && echo chroot-ok";
    let out = server.exec(&sid, &name, script).await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert_eq!(
        out.stdout, "learner\nlearner\nping-ok\nlearner\nchroot-ok\n",
        "{out:?}"
    );
    end_session(&server, &sid).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_attacks_hit_their_limits_and_spare_everyone_else_strict() {
    resource_attacks(Profile::Strict).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_attacks_hit_their_limits_and_spare_everyone_else_nesting() {
    resource_attacks(Profile::Nesting).await;
}

/// Held by each profile's resource attacks: both measure the host's free
/// disk space around filling a disk, and must not see each other's fill.
static ONE_FILLER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn resource_attacks(profile: Profile) {
    let _alone = ONE_FILLER.lock().await;
    let server = profile.start(&LIMITS).await;
    let sid = server.create_session().await.id;
    let victim = server.add_instance(&sid).await;
    let bystander = server.add_instance(&sid).await;

    // Fork bomb: the pids limit holds, the other instance still answers.
    let bomb = server
        .exec(
            &sid,
            &victim,
            "bomb() { bomb | bomb & }; bomb; sleep 3; echo done",
        )
        .await;
    let started = Instant::now();
    let out = server.exec(&sid, &bystander, "echo still-here").await;
    assert_eq!(out.stdout, "still-here\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    let info: serde_json::Value = server
        .get(&format!("/api/sessions/{sid}"))
        .await
        .json()
        .await
        .unwrap();
    let pids = info["instances"][0]["stats"]["pids"].as_u64().unwrap();
    assert!(
        pids <= 200,
        "pids limit broken: {pids} processes ({bomb:?})"
    );
    // A further command cannot start while the bomb holds every pid: a
    // clear error, not a hang.
    let resp = server
        .http
        .post(server.url(&format!("/api/sessions/{sid}/instances/{victim}/exec")))
        .json(&serde_json::json!({"cmd": ["true"]}))
        .send()
        .await
        .unwrap();
    if resp.status() != 200 {
        assert_eq!(resp.status(), 503);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("process limit"),
            "{body}"
        );
    }
    // The way out is a fresh instance.
    server.delete_instance(&sid, &victim).await;
    let victim = server.add_instance(&sid).await;

    // Memory hog: only the hog is killed, the instance lives on.
    let out = server
        .exec(
            &sid,
            &victim,
            "python3 -c 'b = bytearray(1 << 30); print(len(b))'; echo rc=$?",
        )
        .await;
    assert!(
        out.stdout.contains("rc=137"),
        "the hog was not OOM-killed: {out:?}"
    );
    let out = server.exec(&sid, &victim, "echo alive").await;
    assert_eq!(out.stdout, "alive\n");

    // Filling the disk: ENOSPC inside, the host's free space barely moves.
    let data_dir = server.data_dir.path().to_path_buf();
    let free_before = free_bytes(&data_dir);
    let out = server
        .exec(
            &sid,
            &victim,
            "dd if=/dev/zero of=/fill bs=1M count=1024 2>&1; echo rc=$?",
        )
        .await;
    assert!(out.stdout.contains("No space left on device"), "{out:?}");
    let used = free_before.saturating_sub(free_bytes(&data_dir));
    assert!(
        used <= 160 << 20,
        "host lost {} MiB to a 128 MiB disk",
        used >> 20
    );
    let out = server
        .exec(&sid, &bystander, "echo written > /root/ok && cat /root/ok")
        .await;
    assert_eq!(
        out.stdout, "written\n",
        "the other instance cannot write: {out:?}"
    );
    server.exec(&sid, &victim, "rm -f /fill").await;

    // Thousands of open files: bounded per process, the host is fine.
    let out = server
        .exec(
            &sid,
            &victim,
            "python3 -c '\nimport resource\nfs=[]\ntry:\n  while len(fs) < 200000: fs.append(open(\"/dev/null\"))\nexcept OSError as e: print(\"stopped\", len(fs), e.strerror)\n'",
        )
        .await;
    assert!(out.stdout.starts_with("stopped"), "{out:?}");

    // A CPU spinner: the other instance's work still completes promptly.
    server
        .exec(
            &sid,
            &victim,
            "for i in 1 2 3 4; do (while :; do :; done) >/dev/null 2>&1 & done; echo spinning",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let out = server
        .exec(&sid, &bystander, "python3 -c 'print(sum(range(2000000)))'")
        .await;
    assert_eq!(out.exit_code, 0);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "bystander took {took:?} next to a spinner"
    );
    let usage = server.exec(&sid, &victim, "cat /proc/loadavg").await;
    assert_eq!(usage.exit_code, 0);

    end_session(&server, &sid).await;
    server.stop().await;
}

async fn end_session(server: &TestServer, sid: &str) {
    server.delete_session(sid).await;
    let left = wait_until_clean(sid, server.data_dir.path(), Duration::from_secs(20)).await;
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(leftovers(sid, server.data_dir.path()).is_empty());
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap()
}

fn free_bytes(path: &std::path::Path) -> u64 {
    let c = std::ffi::CString::new(path.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: statvfs fills the zeroed struct we own; the path is a valid C string.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(c.as_ptr(), &mut s), 0);
        s.f_bavail * s.f_frsize
    }
}
