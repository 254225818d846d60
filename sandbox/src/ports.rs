//! TCP ports inside an instance: which ones something listens on (read by
//! the host from the instance's network namespace, never by asking programs
//! inside), and connections to them from the server.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

/// A TCP socket in the LISTEN state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    pub port: u16,
    pub addr: IpAddr,
}

/// Parse `/proc/net/tcp` or `/proc/net/tcp6`: the LISTEN sockets.
fn parse_proc_net(text: &str, v6: bool) -> Vec<Listener> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let mut fields = line.split_whitespace();
        let (Some(local), Some(_remote), Some(state)) =
            (fields.nth(1), fields.next(), fields.next())
        else {
            continue;
        };
        if state != "0A" {
            continue;
        }
        let Some((addr_hex, port_hex)) = local.split_once(':') else {
            continue;
        };
        let Ok(port) = u16::from_str_radix(port_hex, 16) else {
            continue;
        };
        let addr = if v6 {
            // Four 32-bit words, each in host (little-endian) byte order.
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let Some(word) = addr_hex.get(i * 8..i * 8 + 8) else {
                    continue;
                };
                let Ok(w) = u32::from_str_radix(word, 16) else {
                    continue;
                };
                chunk.copy_from_slice(&w.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        } else {
            let Ok(w) = u32::from_str_radix(addr_hex, 16) else {
                continue;
            };
            IpAddr::V4(Ipv4Addr::from(w.to_le_bytes()))
        };
        out.push(Listener { port, addr });
    }
    out
}

/// Listening TCP ports of the network namespace that process `host_pid`
/// is in, one entry per port (the most reachable address kept).
pub fn listening(host_pid: i32) -> io::Result<Vec<Listener>> {
    let mut by_port: BTreeMap<u16, Listener> = BTreeMap::new();
    for (file, v6) in [("tcp", false), ("tcp6", true)] {
        let text = match fs::read_to_string(format!("/proc/{host_pid}/net/{file}")) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound && v6 => continue,
            Err(e) => return Err(e),
        };
        for l in parse_proc_net(&text, v6) {
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

/// Where to connect to reach `listener` from inside its namespace.
fn target(listener: &Listener) -> SocketAddr {
    let ip = match listener.addr {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    SocketAddr::new(ip, listener.port)
}

/// Connect to `port` inside the network namespace of the process behind
/// `pidfd`. The socket is made on a short-lived thread that enters the
/// namespace (a socket stays in the namespace it was made in), so the
/// server's own threads never change namespace. Works for programs bound to
/// the instance's loopback too.
pub async fn connect(
    pidfd: &OwnedFd,
    host_pid: i32,
    port: u16,
    timeout: Duration,
) -> io::Result<tokio::net::TcpStream> {
    let listeners = listening(host_pid)?;
    let Some(listener) = listeners.iter().find(|l| l.port == port) else {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("nothing listens on port {port}"),
        ));
    };
    let addr = target(listener);
    let pidfd = pidfd.try_clone()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns-connect".into())
        .spawn(move || {
            let result = setns(pidfd.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(io::Error::from)
                .and_then(|()| std::net::TcpStream::connect_timeout(&addr, timeout));
            // This thread ends here, still in the instance's namespace; it
            // never runs anything else.
            let _ = tx.send(result);
        })?;
    let stream = rx
        .await
        .map_err(|_| io::Error::other("connect thread died"))??;
    stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_parsed_from_proc_net() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
";
        let found = parse_proc_net(tcp, false);
        assert_eq!(
            found,
            vec![
                Listener {
                    port: 8080,
                    addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                },
                Listener {
                    port: 22,
                    addr: IpAddr::V4(Ipv4Addr::LOCALHOST)
                },
            ]
        );
        let tcp6 =
            "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A
";
        let found = parse_proc_net(tcp6, true);
        assert_eq!(
            found,
            vec![Listener {
                port: 80,
                addr: IpAddr::V6(Ipv6Addr::LOCALHOST)
            }]
        );
    }
}
