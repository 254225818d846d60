//! What keeps instance root from being more than a learner needs, applied by
//! init to itself before it serves (so every process in the instance
//! inherits it): Docker's masked and read-only paths, a seccomp filter that
//! denies what Docker's default profile denies, and a capability set no wider
//! than Docker's 14.
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

use super::sys;

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

/// Hide and freeze the paths Docker hides and freezes. Runs after
/// `pivot_root`, while init still holds CAP_SYS_ADMIN in its namespace.
pub fn mask_paths() -> Result<(), String> {
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
        if !p.exists() {
            continue;
        }
        mount(
            Some(p),
            p,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .and_then(|()| {
            mount(
                None::<&str>,
                p,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | proc_flags,
                None::<&str>,
            )
        })
        .map_err(|e| format!("make {path} read-only: {e}"))?;
    }
    Ok(())
}

/// The seccomp filter as BPF: the denied calls, and namespace creation
/// (`unshare`, `clone` with CLONE_NEWUSER; `clone3` reports ENOSYS so the C
/// library falls back to `clone`, whose flags can be inspected).
pub fn seccomp_programs() -> Result<Vec<BpfProgram>, String> {
    let arch = seccompiler::TargetArch::x86_64;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&nr| (nr, vec![])).collect();
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
    let mut programs = Vec::new();
    for filter in [deny, clone3] {
        programs.push(BpfProgram::try_from(filter).map_err(|e| e.to_string())?);
    }
    Ok(programs)
}

/// Install the seccomp filters, then shrink every capability set to
/// [`CAPABILITIES`]. Init keeps them for itself and every child inherits them.
pub fn lock_down() -> Result<(), String> {
    for program in seccomp_programs()? {
        sys::install_seccomp(&program).map_err(|e| format!("seccomp: {e}"))?;
    }
    sys::deny_x32_syscalls().map_err(|e| format!("seccomp x32 guard: {e}"))?;
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
        let programs = seccomp_programs().unwrap();
        assert_eq!(programs.len(), 2);
        assert!(programs.iter().all(|p| !p.is_empty() && p.len() < 4096));
    }
}
