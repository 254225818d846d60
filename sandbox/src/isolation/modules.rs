//! The host's kernel modules that the nesting profile needs and that a user
//! namespace cannot load itself (the kernel loads modules only for its own
//! initial namespace): overlayfs for dockerd's storage, bridges, veth and
//! VXLAN for its networks (swarm's overlay networks), and the netfilter
//! parts iptables on nftables uses. Loaded once at start; a kernel built
//! without loadable modules (no /proc/modules) has them built in or not at
//! all, and what is missing shows as dockerd's own errors.

use std::path::Path;
use std::process::{Command, Stdio};

const NESTING_MODULES: &[&str] = &[
    "overlay",
    "bridge",
    "br_netfilter",
    "veth",
    "vxlan",
    "nf_tables",
    "nft_compat",
    "nft_chain_nat",
    "nft_ct",
    "nft_masq",
    "nf_nat",
    "nf_conntrack",
    "xt_conntrack",
    "xt_MASQUERADE",
    "xt_addrtype",
    "xt_nat",
    "xt_mark",
    "xt_comment",
    "ip_tables",
    "iptable_nat",
    "iptable_filter",
    "ip6_tables",
    "ip6table_nat",
    "ip6table_filter",
];

/// What loading the modules came to.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Modules this call loaded.
    pub loaded: Vec<&'static str>,
    /// Modules that could not be loaded, with modprobe's reason.
    pub failed: Vec<(&'static str, String)>,
    /// The kernel has no loadable modules at all.
    pub builtin_only: bool,
}

/// Load every module of [`NESTING_MODULES`] that is not loaded yet, with
/// the host's `modprobe` (which knows each module's dependencies).
pub fn load_for_nesting() -> Loaded {
    let mut result = Loaded::default();
    if !Path::new("/proc/modules").exists() {
        result.builtin_only = true;
        return result;
    }
    for &name in NESTING_MODULES {
        if Path::new("/sys/module").join(name).exists() {
            continue;
        }
        let out = Command::new("modprobe")
            .arg("-q")
            .arg(name)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => result.loaded.push(name),
            Ok(o) => result
                .failed
                .push((name, String::from_utf8_lossy(&o.stderr).trim().to_string())),
            Err(e) => result
                .failed
                .push((name, format!("cannot run modprobe: {e}"))),
        }
    }
    result
}
