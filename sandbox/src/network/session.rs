//! Networks that instances share: one Linux bridge per network (a session's
//! instances are on one network), one veth pair per instance, all made with
//! netlink (the `rtnetlink` crate), never by running `ip`.
//!
//! Isolation: with egress off (the default) a bridge carries no address on
//! the host, so instances of different networks cannot reach each other and
//! no instance can reach the host's own services; an instance's default
//! route is `unreachable`, so connections to the outside fail at once with a
//! clear error. With NAT (see `egress`) the bridge gets the gateway address
//! and the host's filter keeps the same promises.
//!
//! Ownership: every bridge is recorded in `<data-dir>/networks/` before it
//! is made and forgotten after it is deleted, so a restarted server deletes
//! what a crashed one left. A veth pair dies with its instance's network
//! namespace.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::Mutex;

use futures_util::TryStreamExt;
use nix::sched::{setns, CloneFlags};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::packet_route::route::RouteType;
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use super::egress::{self, Egress};
use crate::{Error, Result};

/// A network's addresses: a /24 from the pool.
const PREFIX: u8 = 24;

/// Name prefixes of our devices (at most 15 bytes in all).
const BRIDGE_PREFIX: &str = "pgb";
const VETH_PREFIX: &str = "pgv";
/// The instance's end of its veth pair.
const INSIDE: &str = "eth0";

fn err(what: &str) -> impl Fn(rtnetlink::Error) -> Error + '_ {
    move |e| Error::Setup(format!("{what}: {e}"))
}

/// Creates and removes networks. One per runtime.
pub struct Networks {
    handle: Handle,
    egress: Egress,
    /// The nftables table of this data directory (used with NAT only).
    table: String,
    registry: PathBuf,
    pool: Ipv4Addr,
    pool_prefix: u8,
    used: Mutex<HashSet<u32>>,
}

/// One network: a bridge and a /24.
#[derive(Clone, Debug)]
pub struct Network {
    pub bridge: String,
    bridge_index: u32,
    subnet: u32,
    base: Ipv4Addr,
}

impl Network {
    /// The address of host number `n` (1..=254) on this network.
    pub fn address(&self, n: u8) -> Ipv4Addr {
        let base = u32::from(self.base);
        Ipv4Addr::from(base + n as u32)
    }
}

pub(crate) fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    let _ =
        fs::File::open("/dev/urandom").and_then(|mut f| io::Read::read_exact(&mut f, &mut bytes));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Networks {
    /// Connect to the host's netlink and delete every bridge an earlier run
    /// of this data directory recorded, except those of networks tagged in
    /// `keep` (the caller will [`Networks::reattach`] them).
    pub async fn new(
        data_dir: &std::path::Path,
        pool: Ipv4Addr,
        pool_prefix: u8,
        egress: Egress,
        keep: &[String],
    ) -> Result<Networks> {
        if pool_prefix > PREFIX {
            return Err(Error::Setup(format!(
                "network pool /{pool_prefix} is smaller than one /{PREFIX}"
            )));
        }
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| Error::Setup(format!("netlink: {e}")))?;
        tokio::spawn(connection);
        let registry = data_dir.join("networks");
        fs::create_dir_all(&registry)
            .map_err(|e| Error::Setup(format!("{}: {e}", registry.display())))?;
        let table = egress::table_name(data_dir);
        egress::install(
            &table,
            pool,
            pool_prefix,
            matches!(egress, Egress::Nat { .. }),
        )?;
        let networks = Networks {
            handle,
            egress,
            table,
            registry,
            pool,
            pool_prefix,
            used: Mutex::new(HashSet::new()),
        };
        let keep: Vec<String> = keep.iter().map(|t| bridge_name(t)).collect();
        networks.reconcile(&keep).await?;
        Ok(networks)
    }

    async fn reconcile(&self, keep: &[String]) -> Result<()> {
        let entries = fs::read_dir(&self.registry).map_err(|e| Error::Setup(e.to_string()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if keep.contains(&name) {
                continue;
            }
            if let Some(index) = self.index_of(&name).await? {
                self.handle
                    .link()
                    .del(index)
                    .execute()
                    .await
                    .map_err(err("delete leftover bridge"))?;
                tracing::info!(bridge = %name, "removed a bridge an earlier run left");
            }
            let _ = fs::remove_file(entry.path());
        }
        Ok(())
    }

    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// Remove the egress rules (at shutdown; networks are removed one by one).
    pub fn shutdown(&self) {
        if let Err(e) = egress::remove(&self.table) {
            tracing::warn!("{e}");
        }
    }

    async fn index_of(&self, name: &str) -> Result<Option<u32>> {
        index_of(&self.handle, name).await
    }

    /// Take back the network tagged `tag` that an earlier run made.
    pub async fn reattach(&self, tag: &str) -> Result<Network> {
        let bridge = bridge_name(tag);
        let base: Ipv4Addr = fs::read_to_string(self.registry.join(&bridge))
            .ok()
            .and_then(|b| b.trim().parse().ok())
            .ok_or_else(|| Error::Setup(format!("no record of network {bridge}")))?;
        let bridge_index = self
            .index_of(&bridge)
            .await?
            .ok_or_else(|| Error::Setup(format!("bridge {bridge} is gone")))?;
        let subnet = (u32::from(base) - u32::from(self.pool)) >> (32 - PREFIX);
        if !self.used.lock().unwrap().insert(subnet) {
            return Err(Error::Setup(format!("subnet of {bridge} is in use twice")));
        }
        // The table was made anew at start-up.
        egress::add_bridge(&self.table, &bridge)?;
        Ok(Network {
            bridge,
            bridge_index,
            subnet,
            base,
        })
    }

    /// Make a new network with a free subnet of the pool. Its bridge is
    /// named after the first 12 letters and digits of `tag`, so an owner
    /// can find it; it must be unique on the host.
    pub async fn create(&self, tag: &str) -> Result<Network> {
        let bridge = bridge_name(tag);
        if bridge.len() == BRIDGE_PREFIX.len() {
            return Err(Error::Setup("a network needs a tag".into()));
        }
        let subnets = 1u32 << (PREFIX - self.pool_prefix);
        let subnet = {
            let mut used = self.used.lock().unwrap();
            let free = (0..subnets).find(|s| !used.contains(s)).ok_or_else(|| {
                Error::Capacity("every subnet of the network pool is in use".into())
            })?;
            used.insert(free);
            free
        };
        let base = Ipv4Addr::from(u32::from(self.pool) + (subnet << (32 - PREFIX)));
        let result = async {
            fs::write(self.registry.join(&bridge), base.to_string())
                .map_err(|e| Error::Setup(format!("record bridge: {e}")))?;
            self.handle
                .link()
                .add(LinkBridge::new(&bridge).up().build())
                .execute()
                .await
                .map_err(err("create bridge"))?;
            let index = self
                .index_of(&bridge)
                .await?
                .ok_or_else(|| Error::Setup("the new bridge vanished".into()))?;
            egress::add_bridge(&self.table, &bridge)?;
            no_ipv6(&bridge);
            if matches!(self.egress, Egress::Nat { .. }) {
                // The gateway: the only host address instances see, and
                // the host's filter drops whatever they send to it.
                let gateway = Ipv4Addr::from(u32::from(base) + 1);
                self.handle
                    .address()
                    .add(index, gateway.into(), PREFIX)
                    .execute()
                    .await
                    .map_err(err("address the gateway"))?;
            }
            Ok(index)
        }
        .await;
        match result {
            Ok(bridge_index) => Ok(Network {
                bridge,
                bridge_index,
                subnet,
                base,
            }),
            Err(e) => {
                if let Ok(Some(index)) = self.index_of(&bridge).await {
                    let _ = self.handle.link().del(index).execute().await;
                }
                if matches!(self.egress, Egress::Nat { .. }) {
                    let _ = egress::remove_bridge(&self.table, &bridge);
                }
                let _ = fs::remove_file(self.registry.join(&bridge));
                self.used.lock().unwrap().remove(&subnet);
                Err(e)
            }
        }
    }

    /// Delete a network's bridge (its instances should be gone first; their
    /// veth pairs went with them).
    pub async fn remove(&self, network: &Network) -> Result<()> {
        let result = match self.index_of(&network.bridge).await? {
            Some(index) => self
                .handle
                .link()
                .del(index)
                .execute()
                .await
                .map_err(err("delete bridge")),
            None => Ok(()),
        };
        if matches!(self.egress, Egress::Nat { .. }) {
            let _ = egress::remove_bridge(&self.table, &network.bridge);
        }
        let _ = fs::remove_file(self.registry.join(&network.bridge));
        self.used.lock().unwrap().remove(&network.subnet);
        result
    }

    /// Plug the instance whose init has host pid `host_pid` into `network`
    /// as `eth0` with `address`.
    pub async fn attach(&self, network: &Network, host_pid: i32, address: Ipv4Addr) -> Result<()> {
        let host_end = format!("{VETH_PREFIX}{}", random_suffix());
        let netns = fs::File::open(format!("/proc/{host_pid}/ns/net"))
            .map_err(|e| Error::Setup(format!("instance network namespace: {e}")))?;
        // The pair is made with its peer already in the instance's namespace
        // and named eth0 there, and its host end already on the bridge: moving
        // a device between namespaces afterwards costs the kernel an RCU
        // grace period (10-20 ms here).
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(INSIDE.to_string())
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let pair = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host_end.clone())
            .controller(network.bridge_index)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        let link = self.handle.link();
        link.add(pair)
            .execute()
            .await
            .map_err(err("create veth pair"))?;
        let gateway = matches!(self.egress, Egress::Nat { .. }).then(|| network.address(1));
        let result = configure_inside(netns, INSIDE, address, gateway).await;
        if result.is_err() {
            // Deleting one end deletes both (wherever the peer is).
            if let Ok(Some(index)) = self.index_of(&host_end).await {
                let _ = link.del(index).execute().await;
            }
        }
        result
    }
}

/// The bridge of the network tagged `tag`.
fn bridge_name(tag: &str) -> String {
    let tag: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    format!("{BRIDGE_PREFIX}{tag}")
}

pub(crate) async fn index_of(handle: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(Error::Setup(format!("look up {name}: {e}"))),
    }
}

/// Inside the instance's network namespace: give eth0
/// its address, bring it up, and set the default route.
async fn configure_inside(
    netns: fs::File,
    peer: &str,
    address: Ipv4Addr,
    gateway: Option<Ipv4Addr>,
) -> Result<()> {
    // A netlink socket belongs to the namespace it was made in: make it on a
    // short-lived thread that enters the instance's namespace.
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns-netlink".into())
        .spawn(move || {
            let result = setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(io::Error::from)
                .and_then(|()| {
                    let _guard = runtime.enter();
                    rtnetlink::new_connection()
                });
            let _ = tx.send(result);
        })
        .map_err(|e| Error::Setup(format!("thread: {e}")))?;
    let (connection, handle, _) = rx
        .await
        .map_err(|_| Error::Setup("netlink thread died".into()))?
        .map_err(|e| Error::Setup(format!("netlink in the instance: {e}")))?;
    let task = tokio::spawn(connection);
    let result = configure_link(&handle, peer, address, PREFIX, gateway).await;
    task.abort();
    result
}

/// Give link `name` of `handle`'s namespace its address, bring it up and
/// set the default route: through `gateway`, or unreachable without one (so
/// connections out fail at once, "Network is unreachable", rather than time
/// out).
pub(crate) async fn configure_link(
    handle: &Handle,
    name: &str,
    address: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
) -> Result<()> {
    let index = index_of(handle, name)
        .await?
        .ok_or_else(|| Error::Setup(format!("{name} did not arrive in the namespace")))?;
    handle
        .address()
        .add(index, address.into(), prefix)
        .execute()
        .await
        .map_err(err("address the link"))?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(err("bring the link up"))?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(Ipv4Addr::UNSPECIFIED, 0);
    let route = match gateway {
        Some(gateway) => route.gateway(gateway).build(),
        None => route.kind(RouteType::Unreachable).build(),
    };
    handle
        .route()
        .add(route)
        .execute()
        .await
        .map_err(err("default route"))
}

/// No IPv6 address (not even link-local) on a bridge: the host has nothing
/// to say to instances over it, and the filter drops what they send anyway.
fn no_ipv6(bridge: &str) {
    let knob = format!("/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6");
    // Absent when the host has no IPv6 at all: nothing to turn off then.
    let _ = fs::write(knob, "1");
}
