//! What keeps instance root from being more than a learner needs, applied by
//! init to itself before it serves (so every process in the instance
//! inherits it). Two profiles (see [`Profile`]):
//!
//! - `strict`: Docker's masked and read-only paths, a seccomp filter that
//!   denies what Docker's default profile denies, and a capability set no
//!   wider than Docker's 14;
//! - `nesting`: what runc, containerd and dockerd need inside, as LXD's
//!   `security.nesting` and Sysbox give it: every capability, but only in the
//!   instance's user namespace (the kernel checks host-wide operations against
//!   the host's namespace, where instance root is an unprivileged user);
//!   mount, pivot_root and setns allowed, so nested mount, pid, net, ipc, uts
//!   and cgroup namespaces can be made; never a nested user namespace.
//!
//! In both, the masks are made by init inside the instance's own mount
//! namespace, so they are not *locked* (the kernel locks mounts copied into
//! a namespace of a less privileged user namespace). That is what lets a
//! nested container mount a fresh procfs and sysfs: the kernel refuses that
//! when the instance's /proc or /sys has locked mounts over it. Root in a
//! nesting instance may therefore unmount a mask; what is behind it is still
//! guarded by the kernel (files owned by the host's root are not writable
//! from a user namespace that does not map it, /proc/kcore needs
//! CAP_SYS_RAWIO on the host), which the abuse tests check.
//!
//! Differences from Docker's default profile, and why:
//! - the seccomp filter allows everything it does not name (Docker allows only
//!   what it names); the named set is Docker's list of denied calls, plus the
//!   new mount API, io_uring, and any x32-ABI call;
//! - `ptrace` is allowed (as Docker does on kernels >= 4.8) so strace and gdb work;
//! - no new privileges is *not* set, so `su`, `sudo` and set-uid `ping` work
//!   as on a normal machine; capabilities bound what they can reach.

use std::collections::BTreeMap;
use std::path::Path;

use caps::{CapSet, Capability, CapsHashSet};
use nix::mount::{mount, MsFlags};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use serde::{Deserialize, Serialize};

use super::sys;

/// How much an instance's root may do inside it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Docker's default container profile; `docker` is the built-in engine.
    Strict,
    /// Full capabilities in the instance's user namespace and nested
    /// namespaces, for the real dockerd inside.
    #[default]
    Nesting,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Strict => "strict",
            Profile::Nesting => "nesting",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Profile, String> {
        match s {
            "strict" => Ok(Profile::Strict),
            "nesting" => Ok(Profile::Nesting),
            other => Err(format!(
                "unknown instance profile {other:?} (known: strict, nesting)"
            )),
        }
    }
}

/// Docker's default capability set.
pub const CAPABILITIES: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// Hidden behind /dev/null (files) or an empty read-only tmpfs (directories).
const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Visible but read-only.
const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// System calls that fail with EPERM whatever their arguments (Docker also
/// names create_module, get_kernel_syms and query_module: gone from the
/// kernel, they fail with ENOSYS anyway).
const DENIED: &[libc::c_long] = &[
    libc::SYS_acct,
    libc::SYS_add_key,
    libc::SYS_bpf,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_settime,
    libc::SYS_delete_module,
    libc::SYS_finit_module,
    libc::SYS_init_module,
    libc::SYS_ioperm,
    libc::SYS_iopl,
    libc::SYS_kcmp,
    libc::SYS_kexec_file_load,
    libc::SYS_kexec_load,
    libc::SYS_keyctl,
    libc::SYS_lookup_dcookie,
    libc::SYS_mount,
    libc::SYS_move_pages,
    libc::SYS_name_to_handle_at,
    libc::SYS_nfsservctl,
    libc::SYS_open_by_handle_at,
    libc::SYS_perf_event_open,
    libc::SYS_pivot_root,
    libc::SYS_quotactl,
    libc::SYS_reboot,
    libc::SYS_request_key,
    libc::SYS_setns,
    libc::SYS_settimeofday,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS__sysctl,
    libc::SYS_sysfs,
    libc::SYS_syslog,
    libc::SYS_umount2,
    libc::SYS_uselib,
    libc::SYS_userfaultfd,
    libc::SYS_ustat,
    libc::SYS_vhangup,
    // The new mount API, which Docker's profile predates.
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_mount_setattr,
    // io_uring bypasses seccomp for the operations it performs.
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

/// What the nesting profile takes out of [`DENIED`]: what runc, containerd
/// and dockerd need to build containers inside the instance (mounts, the
/// new mount API, pivot_root, setns, reboot of a nested pid namespace), and
/// harmless queries. The keyring calls answer ENOSYS instead (see
/// [`NESTING_NOT_IMPLEMENTED`]). Everything else stays denied: what reaches
/// past the instance (modules, kexec, clocks, swap, the kernel log), what
/// exposes the host's kernel (BPF, perf) and io_uring, which bypasses
/// seccomp; most of it the kernel refuses anyway in a user namespace.
const NESTING_ALLOWED: &[libc::c_long] = &[
    libc::SYS_add_key,
    libc::SYS_keyctl,
    libc::SYS_request_key,
    libc::SYS_kcmp,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_name_to_handle_at,
    libc::SYS_pivot_root,
    libc::SYS_reboot,
    libc::SYS_setns,
    libc::SYS_sysfs,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_mount_setattr,
];

/// Answered with ENOSYS in the nesting profile: runc creates a session
/// keyring per container and accepts only "not implemented" as a reason
/// not to; the kernel's keyrings are shared with the host's other users.
const NESTING_NOT_IMPLEMENTED: &[libc::c_long] =
    &[libc::SYS_keyctl, libc::SYS_add_key, libc::SYS_request_key];

/// Hide and freeze the paths Docker hides and freezes. Runs after
/// `pivot_root`, while init still holds CAP_SYS_ADMIN in its namespace.
/// In the nesting profile /proc/sys/net stays writable: dockerd sets the
/// instance's own network sysctls (forwarding, bridge settings), which the
/// kernel keeps per network namespace.
pub fn mask_paths(profile: Profile) -> Result<(), String> {
    let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for path in MASKED {
        let p = Path::new(path);
        let result = if p.is_dir() {
            mount(
                Some("tmpfs"),
                p,
                Some("tmpfs"),
                proc_flags | MsFlags::MS_RDONLY,
                Some("size=0,mode=0555"),
            )
        } else if p.exists() {
            mount(
                Some("/dev/null"),
                p,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        } else {
            continue;
        };
        result.map_err(|e| format!("mask {path}: {e}"))?;
    }
    for path in READ_ONLY {
        let p = Path::new(path);
        if p.exists() {
            rebind(p, MsFlags::MS_RDONLY | proc_flags)
                .map_err(|e| format!("make {path} read-only: {e}"))?;
        }
    }
    if profile == Profile::Nesting {
        rebind(Path::new("/proc/sys/net"), proc_flags)
            .map_err(|e| format!("make /proc/sys/net writable: {e}"))?;
    }
    Ok(())
}

/// Bind `path` over itself, then give that mount `flags`.
fn rebind(path: &Path, flags: MsFlags) -> nix::Result<()> {
    let none = None::<&str>;
    mount(
        Some(path),
        path,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )?;
    mount(
        none,
        path,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
        none,
    )
}

/// The seccomp filter as BPF: the denied calls, and namespace creation
/// (`unshare`, `clone` with CLONE_NEWUSER; `clone3` reports ENOSYS so the C
/// library falls back to `clone`, whose flags can be inspected).
pub fn seccomp_programs(profile: Profile) -> Result<Vec<BpfProgram>, String> {
    let arch = seccompiler::TargetArch::x86_64;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .filter(|nr| profile == Profile::Strict || !NESTING_ALLOWED.contains(nr))
        .map(|&nr| (nr, vec![]))
        .collect();
    let new_user = libc::CLONE_NEWUSER as u64;
    let flag_rule = |arg| {
        SeccompCondition::new(
            arg,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(new_user),
            new_user,
        )
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(|e| e.to_string())
    };
    rules.insert(libc::SYS_unshare, vec![flag_rule(0)?]);
    rules.insert(libc::SYS_clone, vec![flag_rule(0)?]);
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, vec![])].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let mut filters = vec![deny, clone3];
    if profile == Profile::Nesting {
        let keys = SeccompFilter::new(
            NESTING_NOT_IMPLEMENTED
                .iter()
                .map(|&nr| (nr, vec![]))
                .collect(),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )
        .map_err(|e| e.to_string())?;
        filters.push(keys);
    }
    let mut programs = Vec::new();
    for filter in filters {
        programs.push(BpfProgram::try_from(filter).map_err(|e| e.to_string())?);
    }
    Ok(programs)
}

/// Install the seccomp filters, then (strict) shrink every capability set to
/// [`CAPABILITIES`]. Init keeps them for itself and every child inherits them.
/// The nesting profile keeps the full set, which means something only inside
/// the instance's user namespace.
pub fn lock_down(profile: Profile) -> Result<(), String> {
    for program in seccomp_programs(profile)? {
        sys::install_seccomp(&program).map_err(|e| format!("seccomp: {e}"))?;
    }
    sys::deny_x32_syscalls().map_err(|e| format!("seccomp x32 guard: {e}"))?;
    if profile == Profile::Nesting {
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| format!("clear ambient capabilities: {e}"))?;
        return Ok(());
    }
    let keep: CapsHashSet = CAPABILITIES.into_iter().collect();
    for cap in caps::all() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| format!("drop {cap}: {e}"))?;
        }
    }
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        caps::set(None, set, &keep).map_err(|e| format!("set capabilities: {e}"))?;
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("clear ambient capabilities: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_for_this_architecture() {
        let programs = seccomp_programs(Profile::Strict).unwrap();
        assert_eq!(programs.len(), 2);
        let programs = seccomp_programs(Profile::Nesting).unwrap();
        assert_eq!(programs.len(), 3);
        assert!(programs.iter().all(|p| !p.is_empty() && p.len() < 4096));
    }
}
