//! TCP ports inside an instance: which ones something listens on (asked of
//! the kernel from the instance's network namespace, never of programs
//! inside), and connections to them from the server.
//!
//! Listeners are read with sock_diag (netlink) rather than /proc/net/tcp:
//! reading /proc walks every TCP socket of the host, milliseconds per read
//! on a busy host, while a sock_diag dump of LISTEN sockets only walks the
//! listening table.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr as NetlinkAddr};
use nix::sched::{setns, CloneFlags};

/// A TCP socket in the LISTEN state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    pub port: u16,
    pub addr: IpAddr,
}

/// Run `f` on a short-lived thread inside the network namespace of the
/// process behind `pidfd`: a socket belongs to the namespace it was made
/// in, and the server's own threads must never change namespace. The
/// thread ends right after, still inside.
fn in_netns<T: Send + 'static>(
    pidfd: &OwnedFd,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let pidfd = pidfd.try_clone()?;
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            setns(pidfd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            f()
        })?
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))?
}

/// A sock_diag socket inside an instance's network namespace.
pub struct PortWatcher {
    socket: Socket,
}

impl PortWatcher {
    pub fn open(pidfd: &OwnedFd) -> io::Result<PortWatcher> {
        let socket = in_netns(pidfd, || {
            let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
            socket.bind_auto()?;
            socket.connect(&NetlinkAddr::new(0, 0))?;
            Ok(socket)
        })?;
        Ok(PortWatcher { socket })
    }

    /// Listening TCP sockets, one entry per port (the most reachable
    /// address kept: a wildcard one wins).
    pub fn listening(&mut self) -> io::Result<Vec<Listener>> {
        let mut by_port: BTreeMap<u16, Listener> = BTreeMap::new();
        for family in [AF_INET, AF_INET6] {
            for l in self.dump(family)? {
                by_port
                    .entry(l.port)
                    .and_modify(|kept| {
                        if l.addr.is_unspecified() {
                            *kept = l;
                        }
                    })
                    .or_insert(l);
            }
        }
        Ok(by_port.into_values().collect())
    }

    fn dump(&mut self, family: u8) -> io::Result<Vec<Listener>> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let socket_id = if family == AF_INET {
            SocketId::new_v4()
        } else {
            SocketId::new_v6()
        };
        let mut request = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::LISTEN,
                socket_id,
            })
            .into(),
        );
        request.finalize();
        let mut buf = vec![0; request.buffer_len()];
        request.serialize(&mut buf);
        self.socket.send(&buf, 0)?;

        let mut found = Vec::new();
        let mut receive = vec![0u8; 64 * 1024];
        loop {
            let size = self.socket.recv(&mut &mut receive[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let message =
                    NetlinkMessage::<SockDiagMessage>::deserialize(&receive[offset..size])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let length = message.header.length as usize;
                match message.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                        found.push(Listener {
                            port: response.header.socket_id.source_port,
                            addr: response.header.socket_id.source_address,
                        });
                    }
                    NetlinkPayload::Done(_) => return Ok(found),
                    NetlinkPayload::Error(e) => {
                        return Err(io::Error::other(format!("sock_diag: {e:?}")))
                    }
                    _ => {}
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }
}

/// Where to connect to reach `listener` from inside its namespace.
fn target(listener: &Listener) -> SocketAddr {
    let ip = match listener.addr {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    SocketAddr::new(ip, listener.port)
}

/// IPv4 sockets a maker keeps made ahead: a new connection to a program
/// that closes after each answer then costs no round trip to the
/// namespace's thread (two context switches, while a runtime worker
/// waits), only when a burst empties the stock.
const STOCK: usize = 16;

enum SocketRequest {
    /// One socket, now.
    One(bool, std::sync::mpsc::SyncSender<io::Result<OwnedFd>>),
    /// Fill the stock up to `STOCK`.
    Refill,
}

/// Sockets made ahead, and whether a refill has been asked for.
#[derive(Default)]
struct Stock {
    ready: Vec<OwnedFd>,
    refilling: bool,
}

fn lock(stock: &std::sync::Mutex<Stock>) -> std::sync::MutexGuard<'_, Stock> {
    stock.lock().unwrap_or_else(|e| e.into_inner())
}

fn new_socket(v6: bool) -> io::Result<OwnedFd> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    socket(family, SockType::Stream, flags, None).map_err(io::Error::from)
}

/// Makes TCP sockets inside an instance's network namespace: one thread
/// that entered the namespace once and serves requests until dropped (the
/// proxy asks for a socket per request; a thread per socket costs more
/// than the request), with a few IPv4 sockets made ahead (see `STOCK`).
/// The stock goes with the maker, and so does the thread (it ends when the
/// maker's sender is dropped), so neither keeps the namespace alive after
/// the instance that owns the maker.
pub struct SocketMaker {
    requests: std::sync::mpsc::Sender<SocketRequest>,
    stock: std::sync::Arc<std::sync::Mutex<Stock>>,
}

impl SocketMaker {
    pub fn start(pidfd: &OwnedFd) -> io::Result<SocketMaker> {
        let (requests, incoming) = std::sync::mpsc::channel::<SocketRequest>();
        let pidfd = pidfd.try_clone()?;
        let stock = std::sync::Arc::new(std::sync::Mutex::new(Stock::default()));
        let filled = stock.clone();
        let (ready_tx, ready) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("netns-sockets".into())
            .spawn(move || {
                let entered = setns(pidfd.as_fd(), CloneFlags::CLONE_NEWNET);
                let _ = ready_tx.send(entered.map_err(io::Error::from));
                if entered.is_err() {
                    return;
                }
                // Ends when the maker is dropped.
                for request in incoming {
                    match request {
                        SocketRequest::One(v6, reply) => {
                            let _ = reply.send(new_socket(v6));
                        }
                        SocketRequest::Refill => {
                            let wanted = STOCK.saturating_sub(lock(&filled).ready.len());
                            // Made outside the lock; a failure (out of file
                            // descriptors) leaves the stock short, and
                            // `socket` then makes them one at a time.
                            let made: Vec<OwnedFd> =
                                (0..wanted).map_while(|_| new_socket(false).ok()).collect();
                            let mut stock = lock(&filled);
                            stock.ready.extend(made);
                            stock.refilling = false;
                        }
                    }
                }
            })?;
        ready
            .recv()
            .map_err(|_| io::Error::other("netns thread died"))??;
        Ok(SocketMaker { requests, stock })
    }

    /// A TCP socket of the instance's namespace, not yet connected.
    pub(crate) fn socket(&self, v6: bool) -> io::Result<tokio::net::TcpSocket> {
        let fd = match self.take_stocked(v6) {
            Some(fd) => fd,
            None => {
                let (reply, answer) = std::sync::mpsc::sync_channel(1);
                self.requests
                    .send(SocketRequest::One(v6, reply))
                    .map_err(|_| io::Error::other("netns thread ended"))?;
                answer
                    .recv()
                    .map_err(|_| io::Error::other("netns thread ended"))??
            }
        };
        Ok(tokio::net::TcpSocket::from_std_stream(
            std::net::TcpStream::from(fd),
        ))
    }

    /// An IPv4 socket made ahead, if one is left; a refill is asked for
    /// once the stock runs low.
    fn take_stocked(&self, v6: bool) -> Option<OwnedFd> {
        let mut stock = lock(&self.stock);
        if v6 {
            return None;
        }
        let fd = stock.ready.pop();
        if stock.ready.len() < STOCK / 2 && !stock.refilling {
            stock.refilling = self.requests.send(SocketRequest::Refill).is_ok();
        }
        fd
    }
}

/// Connect to `port` inside the network namespace of the process behind
/// `pidfd`. Most servers listen on every address or on loopback, so
/// loopback is tried first; only when that is refused is the listener's own
/// address looked up (a server bound to the instance's eth0 address only).
pub async fn connect(
    sockets: &SocketMaker,
    watcher: impl FnOnce() -> io::Result<Vec<Listener>>,
    port: u16,
    timeout: Duration,
) -> io::Result<tokio::net::TcpStream> {
    let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let first = sockets.socket(false)?;
    match tokio::time::timeout(timeout, first.connect(loopback)).await {
        Ok(Ok(stream)) => return Ok(stream),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
    let listeners = watcher()?;
    let Some(listener) = listeners.iter().find(|l| l.port == port) else {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("nothing listens on port {port}"),
        ));
    };
    let addr = target(listener);
    if addr == loopback {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("nothing accepts connections on port {port}"),
        ));
    }
    let socket = sockets.socket(addr.is_ipv6())?;
    tokio::time::timeout(timeout, socket.connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::fs::MetadataExt;
    use std::process::{Child, Command};

    /// `sleep` in a network namespace of its own, killed when dropped.
    struct Sleeper(Child);

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// The inode of the network namespace `socket` belongs to.
    fn netns_of(socket: &tokio::net::TcpSocket) -> u64 {
        // SIOCGSKNS (linux/sockios.h): an fd of the socket's namespace.
        const SIOCGSKNS: libc::c_ulong = 0x894C;
        // SAFETY: the ioctl takes no argument and returns a new fd (or -1),
        // which is owned here at once.
        let fd = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCGSKNS as _) };
        assert!(fd >= 0, "SIOCGSKNS: {}", io::Error::last_os_error());
        // SAFETY: `fd` was just returned to us and nothing else owns it.
        let ns = unsafe { OwnedFd::from_raw_fd(fd) };
        std::fs::File::from(ns).metadata().unwrap().ino()
    }

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[tokio::test]
    async fn made_sockets_and_the_stock_belong_to_the_namespace_and_go_with_the_maker() {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "60"])
            .spawn()
            .expect("unshare runs (as root)");
        let sleeper = Sleeper(child);
        let pid = sleeper.0.id() as i32;
        let theirs = format!("/proc/{pid}/ns/net");
        let ours = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        // Until unshare has made the namespace and become sleep.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&theirs).map(|m| m.ino()).unwrap_or(ours) == ours {
            assert!(std::time::Instant::now() < deadline, "no namespace made");
            std::thread::sleep(Duration::from_millis(10));
        }
        let theirs = std::fs::metadata(&theirs).unwrap().ino();

        let before = open_fds();
        let pidfd = crate::isolation::sys::pidfd_open(pid).unwrap();
        let maker = SocketMaker::start(&pidfd).unwrap();
        // More than the stock holds, so sockets come from the stock, from
        // refills and one at a time; v6 ones always one at a time.
        let mut made = Vec::new();
        for i in 0..3 * STOCK {
            let socket = maker.socket(i % 7 == 0).unwrap();
            assert_eq!(
                netns_of(&socket),
                theirs,
                "socket {i} is not in the namespace"
            );
            made.push(socket);
            if i % STOCK == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // The stock fills up again behind the requests: once a refill asked
        // for is done, at least half of it is there.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while lock(&maker.stock).refilling || lock(&maker.stock).ready.len() < STOCK / 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the stock was not refilled"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stocked: Vec<u64> = lock(&maker.stock)
            .ready
            .iter()
            .map(|fd| {
                let socket = tokio::net::TcpSocket::from_std_stream(std::net::TcpStream::from(
                    fd.try_clone().unwrap(),
                ));
                netns_of(&socket)
            })
            .collect();
        assert!(stocked.iter().all(|ns| *ns == theirs), "{stocked:?}");

        // Dropped, the maker takes its stock and its thread with it: no fd
        // of ours is left open, so nothing holds the namespace.
        drop(made);
        drop(maker);
        drop(pidfd);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while open_fds() > before {
            assert!(
                std::time::Instant::now() < deadline,
                "{} fds left open after the maker went",
                open_fds() - before
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(sleeper);
    }
}
