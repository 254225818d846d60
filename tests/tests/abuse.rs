//! The abuse suite: escape and damage attempts run as the instance's root
//! through the real API. Each attempt must fail inside the instance, and
//! the host and the other instances must not notice. Needs root.

use std::time::{Duration, Instant, SystemTime};

use playground_protocol::ExecResponse;
use playground_tests::{leftovers, wait_until_clean, TestServer};

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

/// An attempt and how to tell that it failed.
struct Attempt {
    what: &'static str,
    script: String,
    failed: fn(&ExecResponse) -> bool,
}

fn errno_is(out: &ExecResponse, names: &[&str]) -> bool {
    let text = out.stdout.trim();
    text.starts_with("-1 ") && names.iter().any(|n| text.ends_with(n))
}

fn nonzero(out: &ExecResponse) -> bool {
    out.exit_code != 0
}

fn attempts(host_pid: i32) -> Vec<Attempt> {
    let mut list = vec![
        Attempt {
            what: "mount the host's disk",
            script: "mount /dev/vda /mnt || mount /dev/sda1 /mnt".into(),
            failed: nonzero,
        },
        Attempt {
            what: "create a device node for the host's disk and read it",
            script: "mknod /tmp/disk b 254 0 && head -c 512 /tmp/disk | wc -c".into(),
            failed: nonzero,
        },
        Attempt {
            what: "create a device node for /dev/mem",
            script: "mknod /tmp/mem c 1 1 && head -c 16 /tmp/mem".into(),
            failed: nonzero,
        },
        Attempt {
            what: "read physical memory through /dev/mem",
            script: "head -c 16 /dev/mem".into(),
            failed: nonzero,
        },
        Attempt {
            what: "read /proc/kcore",
            script: "head -c 16 /proc/kcore | wc -c | grep -qv '^0$'".into(),
            failed: nonzero,
        },
        Attempt {
            what: "write /proc/sysrq-trigger",
            script: "echo h > /proc/sysrq-trigger".into(),
            failed: nonzero,
        },
        Attempt {
            what: "change a host sysctl",
            script: "echo 1 > /proc/sys/vm/drop_caches".into(),
            failed: nonzero,
        },
        Attempt {
            what: "change the kernel hostname sysctl",
            script: "echo evil > /proc/sys/kernel/hostname".into(),
            failed: nonzero,
        },
        Attempt {
            what: "write to /sys",
            script: "echo 1 > /sys/kernel/mm/ksm/run".into(),
            failed: nonzero,
        },
        Attempt {
            what: "load a kernel module (finit_module)",
            script: syscall(libc::SYS_finit_module, &[0, 0, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "load a kernel module (init_module)",
            script: syscall(libc::SYS_init_module, &[0, 0, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "reboot the host",
            script: syscall(libc::SYS_reboot, &[0xfee1dead, 672274793, 0x01234567, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "set the clock with date",
            script: "date -s '2000-01-01 00:00:00'".into(),
            failed: nonzero,
        },
        Attempt {
            what: "set the clock with clock_settime",
            script: syscall(libc::SYS_clock_settime, &[0, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "kexec a new kernel",
            script: syscall(libc::SYS_kexec_load, &[0, 0, 0, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "swapon",
            script: syscall(libc::SYS_swapon, &[0, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "keyctl (kernel keyrings are not namespaced)",
            script: syscall(libc::SYS_keyctl, &[0, 0, 0, 0, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "bpf",
            script: syscall(libc::SYS_bpf, &[0, 0, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "perf_event_open",
            script: syscall(libc::SYS_perf_event_open, &[0, 0, -1, -1, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "open_by_handle_at (the shocker escape)",
            script: syscall(libc::SYS_open_by_handle_at, &[3, 0, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "io_uring_setup",
            script: syscall(libc::SYS_io_uring_setup, &[8, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "iopl (raw port I/O)",
            script: syscall(libc::SYS_iopl, &[3]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "an x32-ABI system call",
            script: syscall(0x4000_0000 | libc::SYS_getpid, &[]),
            failed: |o| errno_is(o, &["ENOSYS"]),
        },
        Attempt {
            what: "escape through a nested user namespace (unshare -U)",
            script: "unshare -U -r id".into(),
            failed: nonzero,
        },
        Attempt {
            what: "nested user namespace with the raw system call",
            script: syscall(libc::SYS_unshare, &[libc::CLONE_NEWUSER as i64]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "clone3 (must fall back to clone, whose flags are checked)",
            script: syscall(libc::SYS_clone3, &[0, 0]),
            failed: |o| errno_is(o, &["ENOSYS"]),
        },
        Attempt {
            what: "a new network namespace",
            script: "unshare -n true".into(),
            failed: nonzero,
        },
        Attempt {
            what: "setns into another namespace",
            script: syscall(libc::SYS_setns, &[0, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "mount a tmpfs",
            script: "mount -t tmpfs none /mnt".into(),
            failed: nonzero,
        },
        Attempt {
            what: "pivot_root",
            script: syscall(libc::SYS_pivot_root, &[0, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "change the hostname of the namespace",
            script: "hostname evil".into(),
            failed: nonzero,
        },
        Attempt {
            what: "ptrace the instance's init",
            script: syscall(libc::SYS_ptrace, &[16 /* PTRACE_ATTACH */, 1, 0, 0]),
            failed: |o| errno_is(o, &["EPERM"]),
        },
        Attempt {
            what: "read init's memory through /proc/1/mem",
            script: "head -c 16 /proc/1/mem".into(),
            failed: nonzero,
        },
        Attempt {
            what: "look into init's root through /proc/1/root",
            script: "ls /proc/1/root/".into(),
            failed: nonzero,
        },
        Attempt {
            what: "break out of a chroot to the host's root",
            script: "mkdir -p /jail && python3 -c \"import os; os.chroot('/jail'); \
                     os.chdir('../../../../..'); os.chroot('.'); \
                     print('host' if os.path.exists('DATADIR') else 'inside')\" | grep -q host"
                .into(),
            failed: nonzero,
        },
        Attempt {
            what: "reach the playground's API on the host's loopback",
            script: "curl -s -m 3 http://127.0.0.1:PORT/healthz".into(),
            failed: nonzero,
        },
        Attempt {
            what: "see a network device of the host",
            script: "ls /sys/class/net | tr '\\n' ' '".into(),
            failed: |o| o.stdout.trim() == "eth0 lo",
        },
    ];
    list.push(Attempt {
        what: "kill the host's server process",
        script: format!("kill -9 {host_pid}"),
        failed: nonzero,
    });
    list
}

#[tokio::test(flavor = "multi_thread")]
async fn escape_and_damage_attempts_fail_and_leave_the_host_unharmed() {
    let server = TestServer::start(&LIMITS).await;
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let sid = server.create_session().await.id;
    let victim = server.add_instance(&sid).await;
    let bystander = server.add_instance(&sid).await;
    server
        .exec(&sid, &bystander, "echo safe > /root/keep")
        .await;
    let host_name = nix_hostname();
    let host_clock = SystemTime::now();

    let list = attempts(server.pid());
    assert!(list.len() >= 30, "only {} attempts", list.len());
    let mut failures = Vec::new();
    for attempt in &list {
        let script = attempt
            .script
            .replace("PORT", &port)
            .replace("DATADIR", &server.data_dir.path().to_string_lossy());
        let out = server.exec(&sid, &victim, &script).await;
        let said = format!("{} {}", out.stdout.trim(), out.stderr.trim());
        println!(
            "{:<55} exit {:>3}  {}",
            attempt.what,
            out.exit_code,
            said.trim()
        );
        if !(attempt.failed)(&out) {
            failures.push(format!("{}: succeeded: {out:?}", attempt.what));
        }
    }
    assert!(
        failures.is_empty(),
        "attempts that did not fail:\n{}",
        failures.join("\n")
    );

    // The host and the other instance did not notice.
    assert_eq!(nix_hostname(), host_name);
    let drift = SystemTime::now().duration_since(host_clock).unwrap();
    assert!(drift < Duration::from_secs(120));
    let resp = server.get("/healthz").await;
    assert_eq!(resp.status(), 200);
    let out = server
        .exec(&sid, &bystander, "cat /root/keep; hostname")
        .await;
    assert_eq!(out.stdout, format!("safe\n{bystander}\n"));
    // And the victim is still a working machine.
    let out = server.exec(&sid, &victim, "echo alive; id -un").await;
    assert_eq!(out.stdout, "alive\nroot\n");

    end_session(&server, &sid).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn normal_root_tools_still_work() {
    let (server, sid, name) = TestServer::with_instance(&LIMITS).await;
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
async fn resource_attacks_hit_their_limits_and_spare_everyone_else() {
    let server = TestServer::start(&LIMITS).await;
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
