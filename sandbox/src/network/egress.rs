//! The host's filter for session networks, one nftables table of ours,
//! always installed: nothing an instance sends is delivered to the host
//! itself (IPv4 or IPv6, whatever address or route it tries: root in a
//! nesting instance owns its routes and can put the host's own addresses
//! on-link) and nothing is routed off the session's bridge. When the
//! operator turns egress on, the host also masquerades instance traffic
//! (NAT) to public addresses only: never private or link-local ranges (the
//! operator's network, cloud metadata services), nor another session's
//! network.
//!
//! nftables has no stable netlink library under a licence we can use, so the
//! ruleset is handed to `nft` (Debian package `nftables`) in one atomic
//! transaction. The table is named after the data directory, replaced at
//! start-up (so a crash leaves nothing that accumulates) and deleted at
//! shutdown.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{Error, Result};

/// What instances may reach beyond their session's network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Egress {
    /// Nothing: the default route is unreachable.
    Off,
    /// Public addresses through NAT, with these DNS servers.
    Nat { dns: Vec<Ipv4Addr> },
}

/// Destinations instances never reach, even with NAT.
const BLOCKED: &str = "0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, \
                       172.16.0.0/12, 192.0.0.0/24, 192.168.0.0/16, 224.0.0.0/4, 240.0.0.0/4";

/// The nftables table owned by the runtime of `data_dir`.
pub fn table_name(data_dir: &Path) -> String {
    // FNV-1a: a stable, short tag for the path.
    let mut hash: u32 = 0x811c_9dc5;
    for b in data_dir.as_os_str().as_encoded_bytes() {
        hash ^= *b as u32;
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("playground_{hash:08x}")
}

/// The table: its filters apply only to the bridges in its `bridges` set
/// (this runtime's networks), so other playgrounds on the host are not
/// affected. `intra` lets traffic between instances of one network pass:
/// with br_netfilter on, bridged packets cross the IP forward hook with the
/// bridge as both input and output interface.
fn ruleset(table: &str, pool: Ipv4Addr, prefix: u8, nat: bool) -> String {
    // Without egress nothing leaves the bridge and nothing is translated.
    let (outbound, postrouting) = if nat {
        (
            format!(
                "iifname @bridges ip daddr {{ {BLOCKED} }} drop\n\
                 iifname @bridges meta nfproto ipv4 accept\n"
            ),
            format!(
                "chain postrouting {{\n\
                   type nat hook postrouting priority srcnat; policy accept;\n\
                   ip saddr {pool}/{prefix} oifname != @bridges masquerade\n\
                 }}\n"
            ),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        "table inet {table}\n\
         delete table inet {table}\n\
         table inet {table} {{\n\
           set bridges {{ type ifname; }}\n\
           set intra {{ type ifname . ifname; }}\n\
           chain forward {{\n\
             type filter hook forward priority filter - 1; policy accept;\n\
             iifname . oifname @intra accept\n\
             oifname @bridges ct state established,related accept\n\
             oifname @bridges drop\n\
             {outbound}\
             iifname @bridges drop\n\
           }}\n\
           chain input {{\n\
             type filter hook input priority filter - 1; policy accept;\n\
             iifname @bridges ct state established,related accept\n\
             iifname @bridges drop\n\
           }}\n\
           {postrouting}\
         }}\n"
    )
}

/// Put `bridge` under the table's filters (a new or taken-back network).
pub fn add_bridge(table: &str, bridge: &str) -> Result<()> {
    nft(&format!(
        "add element inet {table} bridges {{ \"{bridge}\" }}\n\
         add element inet {table} intra {{ \"{bridge}\" . \"{bridge}\" }}\n"
    ))
}

/// Take `bridge` out of the table's sets (its network is gone).
pub fn remove_bridge(table: &str, bridge: &str) -> Result<()> {
    nft(&format!(
        "delete element inet {table} bridges {{ \"{bridge}\" }}\n\
         delete element inet {table} intra {{ \"{bridge}\" . \"{bridge}\" }}\n"
    ))
}

fn nft(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Setup(format!(
                "the session networks' filter needs nftables (apt-get install nftables): {e}"
            ))
        })?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .map_err(|e| Error::Setup(format!("nft: {e}")))?;
    let output = child
        .wait_with_output()
        .map_err(|e| Error::Setup(format!("nft: {e}")))?;
    if !output.status.success() {
        return Err(Error::Setup(format!(
            "nft refused the session networks' rules: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// Install (or replace) the filter and, with `nat`, the NAT rules for the
/// address pool and IPv4 forwarding. Bridges are added with [`add_bridge`].
pub fn install(table: &str, pool: Ipv4Addr, prefix: u8, nat: bool) -> Result<()> {
    nft(&ruleset(table, pool, prefix, nat))?;
    if !nat {
        return Ok(());
    }
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(|e| Error::Setup(format!("enable IPv4 forwarding: {e}")))
}

/// Delete the table if it exists.
pub fn remove(table: &str) -> Result<()> {
    nft(&format!("table inet {table}\ndelete table inet {table}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_name_is_stable_and_per_data_dir() {
        let a = table_name(Path::new("/var/lib/playground"));
        assert_eq!(a, table_name(Path::new("/var/lib/playground")));
        assert_ne!(a, table_name(Path::new("/tmp/other")));
        assert!(a.starts_with("playground_") && a.len() == 19);
    }

    #[test]
    fn the_ruleset_replaces_the_table_atomically() {
        let rules = ruleset("playground_1", Ipv4Addr::new(10, 100, 0, 0), 16, true);
        assert!(rules.starts_with("table inet playground_1\ndelete table inet playground_1\n"));
        assert!(rules.contains("ip saddr 10.100.0.0/16 oifname != @bridges masquerade"));
        assert!(rules.contains("169.254.0.0/16"));
        // Without egress: the same input and forward filters, no way out.
        let rules = ruleset("playground_1", Ipv4Addr::new(10, 100, 0, 0), 16, false);
        assert!(rules.contains("iifname @bridges drop"));
        assert!(!rules.contains("masquerade"));
        assert!(!rules.contains("meta nfproto ipv4 accept"));
    }
}
