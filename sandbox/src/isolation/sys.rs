//! The raw system calls that `nix` does not wrap (the new mount API and
//! pidfds). Every `unsafe` block of the runtime that is not a `fork`/`clone`
//! lives here, each with its SAFETY argument.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` from `<linux/mount.h>` (version 0, 32 bytes).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cstring(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn fd_result(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

fn unit_result(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A detached, read-only copy of the mount tree at `source` whose file owners
/// are shifted through the id mapping of the user namespace `userns`: a file
/// owned by uid 0 on disk appears owned by the namespace's root. This is what
/// lets every instance share one image while each has its own uid range.
pub fn idmapped_tree(source: &Path, userns: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let path = cstring(source)?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call;
    // the flags ask for a detached clone, which returns a new descriptor.
    let tree = fd_result(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE,
        )
    })?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: `tree` is a valid mount descriptor, `empty` a valid C string,
    // and `attr` a properly sized and initialised `struct mount_attr` that
    // lives across the call; the kernel only reads it.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(tree)
}

/// Attach a detached mount tree (from [`idmapped_tree`] or [`mount_detached`]) at `target` in the
/// caller's mount namespace.
pub fn attach_tree(tree: BorrowedFd<'_>, target: &Path) -> io::Result<()> {
    let target = cstring(target)?;
    let empty = c"";
    // SAFETY: both strings are valid and NUL-terminated for the whole call;
    // `tree` is a live mount descriptor.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;

/// Mount the `fstype` file system on block device `source` without attaching
/// it anywhere: a nosuid, nodev mount held only by the returned descriptor
/// (closing it unmounts), to be placed later with [`attach_tree`], in any
/// mount namespace. `flags` are the file system's boolean options.
pub fn mount_detached(fstype: &CStr, source: &Path, flags: &[&CStr]) -> io::Result<OwnedFd> {
    let source = cstring(source)?;
    mount_detached_with(fstype, &[(c"source", source.as_c_str())], flags)
}

/// Like [`mount_detached`], with string options (`key`, `value`) set in
/// order: e.g. an overlay's `lowerdir`, `upperdir` and `workdir`, which the
/// kernel resolves when each is set (so `/proc/self/fd/N` paths work).
pub fn mount_detached_with(
    fstype: &CStr,
    strings: &[(&CStr, &CStr)],
    flags: &[&CStr],
) -> io::Result<OwnedFd> {
    // SAFETY: `fstype` is a valid C string for the call; returns a new descriptor.
    let context =
        fd_result(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    let config = |cmd: libc::c_uint, key: *const libc::c_char, value: *const libc::c_char| {
        // SAFETY: `context` is a live file system context; `key` and `value`
        // are null or valid C strings that outlive the call.
        unit_result(unsafe {
            libc::syscall(libc::SYS_fsconfig, context.as_raw_fd(), cmd, key, value, 0)
        })
    };
    for (key, value) in strings {
        config(FSCONFIG_SET_STRING, key.as_ptr(), value.as_ptr())?;
    }
    for flag in flags {
        config(FSCONFIG_SET_FLAG, flag.as_ptr(), std::ptr::null())?;
    }
    config(FSCONFIG_CMD_CREATE, std::ptr::null(), std::ptr::null())?;
    // SAFETY: `context` holds a created superblock; plain integer flags.
    fd_result(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            context.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        )
    })
}

/// `EXT4_IOC_SHUTDOWN`, `_IOR('X', 125, __u32)`.
const EXT4_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587D;
/// Stop at once, writing nothing more.
const EXT4_GOING_FLAGS_NOLOGFLUSH: u32 = 0x2;

/// Shut down the ext4 file system that `file` (any open file on it) is on:
/// every later operation fails and nothing more is written, so unmounting
/// a file system whose contents are thrown away costs no writes.
pub fn shut_down_ext4(file: BorrowedFd<'_>) -> io::Result<()> {
    let flags: u32 = EXT4_GOING_FLAGS_NOLOGFLUSH;
    // SAFETY: the ioctl reads one u32 from the pointer, which points to a
    // live local value.
    unit_result(unsafe { libc::ioctl(file.as_raw_fd(), EXT4_IOC_SHUTDOWN, &flags) }.into())
}

/// A descriptor that refers to process `pid` itself, immune to pid reuse.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments; returns a new descriptor or -1.
    fd_result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })
}

/// Send `signal` to the process behind `pidfd`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: a live pidfd, a signal number and a NULL siginfo (allowed: the
    // kernel then fills in a default one).
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
}

/// Reap the process behind `pidfd` if it is our (exited) child. Returns
/// `Ok(false)` when it has not exited yet or is not our child.
pub fn pidfd_reap(pidfd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: `siginfo_t` is plain data for which all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable siginfo_t for the duration of the call.
    let ret = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ECHILD) {
            return Ok(false);
        }
        return Err(err);
    }
    // SAFETY: waitid filled `info`; si_pid is valid to read for SIGCHLD infos
    // and stays zero when nothing was reaped under WNOHANG.
    Ok(unsafe { info.si_pid() } != 0)
}

/// Set the window size of a terminal.
pub fn set_winsize(tty: BorrowedFd<'_>, cols: u16, rows: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer, which
    // points to a live, initialised value.
    let ret = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    unit_result(ret as libc::c_long)
}

/// Make `tty` the controlling terminal of the calling session leader.
pub fn set_controlling_tty(tty: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
    let ret = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0) };
    unit_result(ret as libc::c_long)
}

/// Close every descriptor numbered `first` or higher.
pub fn close_from(first: RawFd) {
    // SAFETY: close_range only closes descriptors; the caller guarantees none
    // at or above `first` is owned by live Rust objects it still uses.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    };
}

/// Make every mount of the caller's (new) mount namespace private, so
/// nothing mounted or unmounted here propagates back to where it was copied
/// from.
pub fn make_mounts_private() -> io::Result<()> {
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// Bring the loopback interface of the caller's network namespace up, so
/// that `localhost` works inside an instance.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: socket() takes plain integers and returns a new descriptor or -1.
    let sock =
        fd_result(
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }
                as libc::c_long,
        )?;
    // SAFETY: `ifreq` is plain data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the `ifreq` we own,
    // which stays alive across both calls; the flags union member is the one
    // these requests use.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Register an owned descriptor with tokio's reactor.
pub fn async_fd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is open for its whole lifetime and always returns
    // the same descriptor from `as_raw_fd`, which is what registration needs.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| e.into())
}

/// Make `to` a copy of `from` (used on the standard descriptors 0, 1, 2,
/// which no Rust object owns in init and its children).
pub fn dup2(from: BorrowedFd<'_>, to: RawFd) -> io::Result<()> {
    // SAFETY: dup2 only manipulates the descriptor table; `to` is a standard
    // descriptor number that no live Rust object owns.
    unit_result(unsafe { libc::dup2(from.as_raw_fd(), to) } as libc::c_long)
}

/// Install a seccomp BPF filter on the calling thread (and so on every
/// process it forks). Needs CAP_SYS_ADMIN in the caller's user namespace:
/// deliberately not "no new privileges", so set-uid programs keep working.
pub fn install_seccomp(program: &[seccompiler::sock_filter]) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "filter too long"))?;
    let prog = libc::sock_fprog {
        len,
        // seccompiler's `sock_filter` has the kernel's layout: {u16, u8, u8, u32}.
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points to `len` valid filter instructions that stay
    // alive for the call; the kernel copies them.
    let ret = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    unit_result(ret as libc::c_long)
}

/// A second, four-instruction filter: every x32-ABI system call (number with
/// bit 30 set) fails with ENOSYS, so none can slip past the main filter's
/// x86-64 numbers.
pub fn deny_x32_syscalls() -> io::Result<()> {
    const LD_W_ABS: u16 = 0x20;
    const JGE_K: u16 = 0x05 | 0x30;
    const RET_K: u16 = 0x06;
    let ins = |code, jt, jf, k| seccompiler::sock_filter { code, jt, jf, k };
    let program = [
        ins(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        ins(JGE_K, 0, 1, 0x4000_0000),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    install_seccomp(&program)
}

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_FLAGS_DIRECT_IO: u32 = 16;

/// `struct loop_info64` from `<linux/loop.h>`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config` from `<linux/loop.h>`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// Attach `file` to a free loop device that detaches itself once nothing
/// uses it any more (autoclear). Returns the open device and its path.
pub fn attach_loop(file: &Path) -> io::Result<(std::fs::File, std::path::PathBuf)> {
    let backing = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)?;
    let control = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    // Another launcher may take the device we were offered: try again.
    for _ in 0..32 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a number.
        let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let path = std::path::PathBuf::from(format!("/dev/loop{n}"));
        let device = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)?;
        for flags in [LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO, LO_FLAGS_AUTOCLEAR] {
            // SAFETY: all-zero is a valid `loop_config` (plain integers and arrays).
            let mut config: LoopConfig = unsafe { std::mem::zeroed() };
            config.fd = backing.as_raw_fd() as u32;
            config.info.lo_flags = flags;
            // SAFETY: LOOP_CONFIGURE reads one `struct loop_config` from the
            // pointer, which points to a live, initialised value.
            let ret = unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CONFIGURE, &config) };
            if ret == 0 {
                return Ok((device, path));
            }
            match io::Error::last_os_error().raw_os_error() {
                // Direct I/O is refused by some backing file systems.
                Some(libc::EINVAL) if flags & LO_FLAGS_DIRECT_IO != 0 => continue,
                Some(libc::EBUSY) => break,
                _ => return Err(io::Error::last_os_error()),
            }
        }
    }
    Err(io::Error::other("no free loop device"))
}
