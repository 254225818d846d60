//! Containers' networks inside an instance, like Docker's default bridge:
//! a `docker0` bridge in the instance's network namespace with the gateway
//! address, one veth pair per container (its `eth0` in the container's own
//! network namespace, the other end on the bridge), and a masquerade rule
//! so containers reach whatever the instance reaches under its address.
//!
//! Everything lives in namespaces that belong to the instance: the bridge
//! and the rule go with the instance's network namespace, a veth pair with
//! its container's. Nothing is made on the host, so nothing can leak there.
//!
//! Made by the container's launcher (see `crate::launch::nested`), which is single-threaded
//! and forked: netlink through `rtnetlink` on a current-thread runtime that
//! starts no threads.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use nix::sched::CloneFlags;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};
use serde::{Deserialize, Serialize};

use crate::isolation::sys;

/// The bridge's name, as Docker calls its own.
pub const BRIDGE: &str = "docker0";
/// The bridge's address: containers' gateway (Docker's default).
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);
/// The containers' subnet is `GATEWAY/PREFIX`.
pub const PREFIX: u8 = 16;

/// The network a container gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ContainerNetwork {
    /// The instance's own network namespace (`--network host`).
    #[default]
    Instance,
    /// A network namespace with loopback only (`--network none`).
    Loopback,
    /// Its own namespace on the instance's bridge with `address`.
    Bridge { address: Ipv4Addr },
}

impl ContainerNetwork {
    /// Whether the container gets a network namespace of its own.
    pub fn own_namespace(&self) -> bool {
        !matches!(self, ContainerNetwork::Instance)
    }
}

/// Docker's MAC address for a container address: 02:42 and the address.
pub fn mac_address(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0x42, a, b, c, d]
}

/// The `n`th container address of the subnet (n = 1 is the first after the
/// gateway), or `None` past its end.
pub fn nth_address(n: u32) -> Option<Ipv4Addr> {
    let size = 1u32 << (32 - PREFIX);
    // Skip the gateway and keep the broadcast address free.
    (n >= 1 && n + 2 < size).then(|| Ipv4Addr::from(u32::from(GATEWAY) + n))
}

type Result<T> = std::result::Result<T, String>;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}

/// A netlink connection of the current network namespace, driven on `rt`.
fn netlink(rt: &tokio::runtime::Runtime) -> Result<Handle> {
    let _guard = rt.enter();
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| format!("netlink: {e}"))?;
    rt.spawn(connection);
    Ok(handle)
}

async fn index_of(handle: &Handle, name: &str) -> Result<Option<u32>> {
    super::session::index_of(handle, name)
        .await
        .map_err(|e| e.to_string())
}

/// In the instance's network namespace (entered already, with host
/// privileges): make the bridge, its address, forwarding and the NAT rule,
/// unless an earlier container did. The masquerade needs `nft`; without it
/// containers still reach the instance and each other.
pub fn ensure_bridge() -> Result<()> {
    let rt = runtime()?;
    let handle = netlink(&rt)?;
    rt.block_on(async {
        if index_of(&handle, BRIDGE).await?.is_some() {
            return Ok(());
        }
        // Made down and addressed before it goes up, so a bridge that is up
        // is a finished one (two first containers may race to make it: the
        // loser's "exists" is fine).
        match handle
            .link()
            .add(LinkBridge::new(BRIDGE).build())
            .execute()
            .await
        {
            Ok(()) => {}
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {
                return Ok(())
            }
            Err(e) => return Err(format!("create {BRIDGE}: {e}")),
        }
        let index = index_of(&handle, BRIDGE)
            .await?
            .ok_or("the new bridge vanished")?;
        // /proc/sys/net shows the namespace of whoever opens it: ours now.
        fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            .map_err(|e| format!("enable forwarding: {e}"))?;
        masquerade()?;
        handle
            .address()
            .add(index, GATEWAY.into(), PREFIX)
            .execute()
            .await
            .map_err(|e| format!("address {BRIDGE}: {e}"))?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| format!("bring {BRIDGE} up: {e}"))
    })
}

/// Containers' traffic leaves with the instance's address. A host without
/// nftables still gets the bridge (containers reach the instance and each
/// other).
fn masquerade() -> Result<()> {
    let rules = format!(
        "table ip playground_containers {{\n\
           chain postrouting {{\n\
             type nat hook postrouting priority srcnat; policy accept;\n\
             ip saddr {GATEWAY}/{PREFIX} oifname != \"{BRIDGE}\" masquerade\n\
           }}\n\
         }}\n"
    );
    // The launcher runs with an empty environment: no PATH to search.
    let Some(nft) = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        return Ok(());
    };
    let mut child = Command::new(nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        io::Write::write_all(&mut stdin, rules.as_bytes()).map_err(|e| format!("nft: {e}"))?;
    }
    let output = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "nft refused the containers' NAT rule: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// Give the calling process (a launcher's helper about to clone the
/// container) the container's network: a new network namespace, with the
/// veth pair's end from the instance's namespace when on the bridge. The
/// caller is in the instance's network namespace with the right to change
/// it, and leaves in the new one, which its clone inherits. (Entering the
/// container's namespace afterwards would take ptrace rights over it.)
pub fn unshare_own(network: ContainerNetwork) -> Result<()> {
    if !network.own_namespace() {
        return Ok(());
    }
    let rt = runtime()?;
    // Made while still in the instance's namespace: it stays there.
    let instance = match network {
        ContainerNetwork::Bridge { .. } => Some(netlink(&rt)?),
        _ => None,
    };
    nix::sched::unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("new network namespace: {e}"))?;
    sys::loopback_up().map_err(|e| format!("loopback: {e}"))?;
    if let (Some(instance), ContainerNetwork::Bridge { address }) = (instance, network) {
        let pid = nix::unistd::getpid().as_raw();
        rt.block_on(plug(&instance, pid, address))?;
        let own = netlink(&rt)?;
        rt.block_on(configure(&own, address))?;
    }
    Ok(())
}

/// Make the veth pair: the container's end named eth0 already in its
/// namespace (moving a device later costs an RCU grace period), the other
/// end on the bridge.
async fn plug(handle: &Handle, pid: i32, address: Ipv4Addr) -> Result<()> {
    let bridge = index_of(handle, BRIDGE)
        .await?
        .ok_or("the instance has no container bridge")?;
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name("eth0".to_string())
        .address(mac_address(address).to_vec())
        .setns_by_pid(pid as u32)
        .build();
    // Random, as Docker's: an exited container's pair may linger a moment
    // while the kernel tears its namespace down.
    let suffix = super::session::random_suffix();
    let pair = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(format!("veth{}", &suffix[..7]))
        .controller(bridge)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    handle
        .link()
        .add(pair)
        .execute()
        .await
        .map_err(|e| format!("create veth pair: {e}"))
}

/// In the container's namespace: address eth0, bring it up, route through
/// the bridge.
async fn configure(handle: &Handle, address: Ipv4Addr) -> Result<()> {
    super::session::configure_link(handle, "eth0", address, PREFIX, Some(GATEWAY))
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_skip_the_gateway_and_the_broadcast() {
        assert_eq!(nth_address(0), None);
        assert_eq!(nth_address(1), Some(Ipv4Addr::new(172, 17, 0, 2)));
        assert_eq!(nth_address(65533), Some(Ipv4Addr::new(172, 17, 255, 254)));
        assert_eq!(nth_address(65534), None);
        assert_eq!(
            mac_address(Ipv4Addr::new(172, 17, 0, 2)),
            [0x02, 0x42, 172, 17, 0, 2]
        );
    }
}
