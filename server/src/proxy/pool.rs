//! Idle HTTP/1.1 connections to instances' ports, kept for the next request
//! to the same port, as nginx's upstream `keepalive` keeps them: a request
//! on a kept connection skips the socket made in the instance's network
//! namespace, the TCP handshake and the program's accept.
//!
//! Which connection may carry a request: one that was made to the same
//! port of the same *incarnation* of the same instance. The key is the
//! address of the session's `InstanceEntry` (an entry belongs to one
//! session under one name, and a deleted and re-created instance gets a new
//! entry) plus the port; every idle connection holds a `Weak` of its entry,
//! so that address cannot be reused by another entry while a connection
//! keyed by it is kept. The entry also stands for the network namespace and
//! address the connection was made in: an instance has one of each for life.
//!
//! A connection comes back only when its response was read to the end, the
//! request was sent in full, neither side asked to close, and hyper is idle
//! on it (so nothing of the last exchange is left on the wire). Upgraded and
//! spliced connections never come back (see `forward`).
//!
//! hyper's side of a connection (the future that writes requests and reads
//! answers) has no task of its own while the connection is kept or carries
//! a kept-alive exchange: the request's task drives it (see [`Conn`]), so a
//! request and its answer cost no hop between tasks, and often no hop
//! between threads. A kept connection is therefore not watched while idle:
//! one the program has closed is found out when it is next checked out, or
//! at the next sweep of the pool (every `IDLE_TIMEOUT / 4`).
//!
//! Our sockets in an instance's network namespace keep the namespace (and
//! its veth pair) alive. One task per instance waits for its init to exit
//! (deletion kills it) and then drops every idle connection of that
//! instance at once; only connections of instances so watched are kept, so
//! an answer that ends after the exit does not bring one back, and nothing
//! here outlives the instance.

use std::any::Any;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;

use super::body::TrackedBody;
use super::handover::{UpstreamIo, UpstreamSocket};

/// How long an idle connection is kept (nginx's default is 60 s; programs
/// often close sooner, which the pool notices, see `checkout`).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per port (nginx's `keepalive` as usually set).
pub const MAX_IDLE_PER_TARGET: usize = 32;
/// Idle connections kept in all (each is a file descriptor here and a
/// connection, perhaps a thread, in a program).
pub const MAX_IDLE: usize = 256;
/// Longest wait for hyper to finish with a connection whose response has
/// been read, before it may be kept.
const READY_WAIT: Duration = Duration::from_secs(1);

/// hyper's side of a connection: the future that does its reading and
/// writing, done when the connection is.
pub type Driver = Box<Connection<TokioIo<UpstreamIo>, TrackedBody>>;

/// A connection to a port in an instance: hyper's side and the splice's.
pub struct Conn {
    pub sender: SendRequest<TrackedBody>,
    /// `None` once it has ended (the program or hyper closed the
    /// connection) or has been handed to a task of its own.
    pub driver: Option<Driver>,
    pub upstream: UpstreamSocket,
}

/// How a connection stands after a poll of its driver.
#[derive(Debug, PartialEq, Eq)]
pub enum Standing {
    /// Idle: it may carry a request.
    Ready,
    /// Still finishing the last exchange.
    Busy,
    /// Closed, or failed.
    Closed,
}

impl Conn {
    pub fn new(
        sender: SendRequest<TrackedBody>,
        connection: Connection<TokioIo<UpstreamIo>, TrackedBody>,
        upstream: UpstreamSocket,
    ) -> Conn {
        Conn {
            sender,
            driver: Some(Box::new(connection)),
            upstream,
        }
    }

    /// Let hyper do what it can on the connection (write a request, read an
    /// answer, notice the program's close); `Ready` once the connection has
    /// ended, and then the driver is dropped, so a request still waiting
    /// for it fails at once rather than never.
    pub fn poll_driver(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(driver) = self.driver.as_mut() else {
            return Poll::Ready(());
        };
        match Pin::new(&mut **driver).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                if let Err(e) = result {
                    tracing::debug!("proxy: connection to an instance: {e}");
                }
                self.driver = None;
                Poll::Ready(())
            }
        }
    }

    /// Where the connection stands, after hyper has done what it could
    /// without waiting.
    pub fn standing(&mut self) -> Standing {
        let mut cx = Context::from_waker(Waker::noop());
        if self.poll_driver(&mut cx).is_ready() || self.sender.is_closed() {
            return Standing::Closed;
        }
        if self.sender.is_ready() {
            Standing::Ready
        } else {
            Standing::Busy
        }
    }

    /// Until the connection is idle (`true`) or has ended (`false`).
    pub async fn settled(&mut self) -> bool {
        std::future::poll_fn(|cx| {
            if self.poll_driver(cx).is_ready() {
                return Poll::Ready(false);
            }
            self.sender.poll_ready(cx).map(|ready| ready.is_ok())
        })
        .await
    }
}

/// Which connections may serve a request (see the module's comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    entry: usize,
    port: u16,
}

/// What keeps a key's address from being reused: a `Weak` of the entry.
pub type Anchor = Weak<dyn Any + Send + Sync>;

impl Key {
    /// The key of `port` in the instance `entry`, and its anchor.
    pub fn new<T: Any + Send + Sync>(entry: &Arc<T>, port: u16) -> (Key, Anchor) {
        let key = Key {
            entry: Arc::as_ptr(entry) as *const u8 as usize,
            port,
        };
        let weak: Weak<T> = Arc::downgrade(entry);
        (key, weak)
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
    _anchor: Anchor,
}

#[derive(Default)]
struct State {
    /// Per key, oldest first.
    targets: HashMap<Key, VecDeque<Idle>>,
    idle: usize,
    /// Whether the task that drops expired connections runs.
    reaping: bool,
    /// Instances (their keys' `entry`) whose exit a task waits for.
    watched: HashSet<usize>,
}

/// The idle connections (see the module's comment).
#[derive(Default)]
pub struct Pool {
    state: Mutex<State>,
}

impl Pool {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A kept connection for `key` that hyper says is ready, the most
    /// recently used first (the least likely to have been closed by the
    /// program's own idle timeout). One idle a little longer than
    /// `IDLE_TIMEOUT` and not yet reaped is as good as any.
    pub fn checkout(&self, key: Key) -> Option<Conn> {
        loop {
            let mut conn = {
                let mut state = self.state();
                let State { targets, idle, .. } = &mut *state;
                let queue = targets.get_mut(&key)?;
                let entry = queue.pop_back();
                if queue.is_empty() {
                    targets.remove(&key);
                }
                *idle -= usize::from(entry.is_some());
                entry?.conn
            };
            // Outside the lock: this may read the program's close.
            if conn.standing() == Standing::Ready {
                return Some(conn);
            }
        }
    }

    /// Keep `conn` for the next request to `key`, once hyper is done with it.
    pub fn put(self: &Arc<Self>, key: Key, anchor: Anchor, mut conn: Conn) {
        match conn.standing() {
            Standing::Ready => return self.insert(key, anchor, conn),
            Standing::Closed => return,
            Standing::Busy => {}
        }
        // hyper has not yet taken in the end of the exchange (the last
        // bytes of a body still on their way): wait for it, briefly.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = Arc::downgrade(self);
        runtime.spawn(async move {
            let settled = tokio::time::timeout(READY_WAIT, conn.settled()).await;
            if let (Ok(true), Some(pool)) = (settled, pool.upgrade()) {
                pool.insert(key, anchor, conn);
            }
        });
    }

    fn insert(self: &Arc<Self>, key: Key, anchor: Anchor, conn: Conn) {
        let mut evicted = Vec::new();
        let start_reaper = {
            let mut state = self.state();
            // Checked under the lock: a connection whose answer ended after
            // its instance exited is not kept (no watcher is left to drop
            // it, and it would hold the instance's network namespace until
            // the idle timeout).
            if !state.watched.contains(&key.entry) {
                evicted.push(conn);
                false
            } else {
                let State {
                    targets,
                    idle,
                    reaping,
                    ..
                } = &mut *state;
                let queue = targets.entry(key).or_default();
                if queue.len() >= MAX_IDLE_PER_TARGET {
                    evicted.extend(queue.pop_front().map(|i| i.conn));
                    *idle -= 1;
                }
                queue.push_back(Idle {
                    conn,
                    since: Instant::now(),
                    _anchor: anchor,
                });
                *idle += 1;
                if *idle > MAX_IDLE {
                    evicted.extend(evict_oldest(targets).map(|i| i.conn));
                    *idle -= 1;
                }
                !std::mem::replace(reaping, true)
            }
        };
        drop(evicted);
        if start_reaper {
            self.start_reaper();
        }
    }

    /// Once per instance: when `exited` resolves (its init has exited),
    /// drop every kept connection of the instance of `key`. The task holds
    /// `anchor`, so the instance's address stays its own while watched.
    pub fn watch(
        self: &Arc<Self>,
        key: Key,
        anchor: Anchor,
        exited: impl Future<Output = ()> + Send + 'static,
    ) {
        if !self.state().watched.insert(key.entry) {
            return;
        }
        let pool = Arc::downgrade(self);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.state().watched.remove(&key.entry);
            return;
        };
        runtime.spawn(async move {
            exited.await;
            if let Some(pool) = pool.upgrade() {
                pool.forget_instance(key.entry);
            }
            drop(anchor);
        });
    }

    /// Drop every kept connection of the instance `entry` (it is gone):
    /// their sockets close, and hyper's side of each ends.
    fn forget_instance(&self, entry: usize) {
        let mut gone = Vec::new();
        {
            let mut state = self.state();
            let State {
                targets,
                idle,
                watched,
                ..
            } = &mut *state;
            targets.retain(|key, queue| {
                if key.entry != entry {
                    return true;
                }
                *idle -= queue.len();
                gone.extend(queue.drain(..));
                false
            });
            watched.remove(&entry);
        }
        drop(gone);
    }

    /// Drop connections idle for longer than `IDLE_TIMEOUT`, and those the
    /// program has closed; whether any are left.
    fn reap(&self, now: Instant) -> bool {
        let mut gone = Vec::new();
        let mut state = self.state();
        let State {
            targets,
            idle,
            reaping,
            ..
        } = &mut *state;
        targets.retain(|_, queue| {
            let before = gone.len();
            gone.extend(extract(queue, |i| {
                now - i.since >= IDLE_TIMEOUT || i.conn.standing() == Standing::Closed
            }));
            *idle -= gone.len() - before;
            !queue.is_empty()
        });
        *reaping = *idle > 0;
        let left = *reaping;
        drop(state);
        drop(gone);
        left
    }

    /// A task that drops expired connections while there are any.
    fn start_reaper(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.state().reaping = false;
            return;
        };
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(IDLE_TIMEOUT / 4);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(pool) = pool.upgrade() else { return };
                if !pool.reap(Instant::now()) {
                    return;
                }
            }
        });
    }

    /// How many connections are kept (for tests).
    #[cfg(test)]
    fn idle(&self) -> usize {
        let state = self.state();
        debug_assert_eq!(
            state.idle,
            state.targets.values().map(VecDeque::len).sum::<usize>()
        );
        state.idle
    }
}

/// Take the entries of `queue` that `gone` picks, keeping the others' order.
fn extract(queue: &mut VecDeque<Idle>, mut gone: impl FnMut(&mut Idle) -> bool) -> Vec<Idle> {
    let mut taken = Vec::new();
    let mut kept = VecDeque::with_capacity(queue.len());
    for mut entry in queue.drain(..) {
        if gone(&mut entry) {
            taken.push(entry);
        } else {
            kept.push_back(entry);
        }
    }
    *queue = kept;
    taken
}

/// Remove the connection idle the longest of all.
fn evict_oldest(targets: &mut HashMap<Key, VecDeque<Idle>>) -> Option<Idle> {
    let key = *targets
        .iter()
        .filter_map(|(key, queue)| queue.front().map(|i| (key, i.since)))
        .min_by_key(|(_, since)| *since)?
        .0;
    let queue = targets.get_mut(&key)?;
    let oldest = queue.pop_front();
    if queue.is_empty() {
        targets.remove(&key);
    }
    oldest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::handover::UpstreamIo;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// A listener whose connections are held open (read until closed) and
    /// counted as they close.
    async fn listener() -> (TcpListener, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    /// A ready connection to `addr` and its far end.
    async fn conn(listener: &TcpListener, addr: std::net::SocketAddr) -> (Conn, TcpStream) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (far, _) = listener.accept().await.unwrap();
        let (io, upstream) = UpstreamIo::new(stream);
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake::<_, TrackedBody>(TokioIo::new(io))
            .await
            .unwrap();
        let mut conn = Conn::new(sender, connection, upstream);
        assert!(conn.settled().await, "a new connection is not ready");
        (conn, far)
    }

    /// Whether `far` sees its connection closed within a second.
    async fn closed(far: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        matches!(
            tokio::time::timeout(Duration::from_secs(1), far.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    /// The pool keeps connections only of instances it watches: this one
    /// never exits.
    fn live(pool: &Arc<Pool>, key: Key, pin: &Anchor) {
        pool.watch(key, pin.clone(), std::future::pending());
    }

    /// A pool watching one instance that never exits, and the key of its
    /// port 80.
    fn watched_pool() -> (Arc<Pool>, Arc<()>, Key, Anchor) {
        let pool = Arc::new(Pool::default());
        let entry = Arc::new(());
        let (key, pin) = Key::new(&entry, 80);
        live(&pool, key, &pin);
        (pool, entry, key, pin)
    }

    /// The program's side closes `far`; then the runtime has time to take
    /// the close in.
    async fn close(mut far: TcpStream) {
        far.shutdown().await.unwrap();
        drop(far);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn connections_come_back_only_to_their_own_key() {
        let (listener, addr) = listener().await;
        let pool = Arc::new(Pool::default());
        let one = Arc::new(());
        let two = Arc::new(());
        let (key_one, pin_one) = Key::new(&one, 8000);
        let (key_two, _) = Key::new(&two, 8000);
        assert_ne!(key_one, key_two);
        let other_port = Key::new(&one, 8001).0;
        assert_ne!(key_one, other_port);

        live(&pool, key_one, &pin_one);
        let (c, _far) = conn(&listener, addr).await;
        pool.put(key_one, pin_one.clone(), c);
        assert_eq!(pool.idle(), 1);
        assert!(pool.checkout(key_two).is_none());
        assert!(pool.checkout(other_port).is_none());
        assert!(pool.checkout(key_one).is_some());
        assert!(pool.checkout(key_one).is_none());
        assert_eq!(pool.idle(), 0);
    }

    #[tokio::test]
    async fn the_most_recent_comes_out_first_and_caps_drop_the_oldest() {
        let (listener, addr) = listener().await;
        let (pool, _entry, key, pin) = watched_pool();
        let mut fars = Vec::new();
        for _ in 0..MAX_IDLE_PER_TARGET + 1 {
            let (c, far) = conn(&listener, addr).await;
            pool.put(key, pin.clone(), c);
            fars.push(far);
        }
        assert_eq!(pool.idle(), MAX_IDLE_PER_TARGET);
        // The first one went: its far end sees the close.
        assert!(closed(&mut fars[0]).await, "the oldest was not closed");
        // The last one put is the first out: its local port is the far
        // end's peer port.
        let out = pool.checkout(key).unwrap();
        let local = out.upstream.stream().local_addr().unwrap();
        let last = fars.last().unwrap().peer_addr().unwrap();
        assert_eq!(local, last);
    }

    #[tokio::test]
    async fn the_overall_cap_drops_the_longest_idle() {
        let (listener, addr) = listener().await;
        let pool = Arc::new(Pool::default());
        let entries: Vec<Arc<()>> = (0..MAX_IDLE / 4 + 1).map(|_| Arc::new(())).collect();
        // The far ends stay open: a connection the far end closes is not kept.
        let mut fars = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let (key, pin) = Key::new(entry, 1);
            live(&pool, key, &pin);
            for j in 0..4 {
                if i * 4 + j > MAX_IDLE {
                    break;
                }
                let (c, far) = conn(&listener, addr).await;
                pool.put(key, pin.clone(), c);
                fars.push(far);
            }
        }
        assert_eq!(pool.idle(), MAX_IDLE);
        assert!(
            closed(&mut fars[0]).await,
            "the longest idle was not closed"
        );
        assert!(
            !closed(&mut fars[1]).await,
            "the second longest idle was closed"
        );
    }

    #[tokio::test]
    async fn closed_connections_are_not_handed_out_and_an_exit_closes_all() {
        let (listener, addr) = listener().await;
        let pool = Arc::new(Pool::default());
        let entry = Arc::new(());
        let (key, pin) = Key::new(&entry, 80);
        let (exit, exited) = tokio::sync::oneshot::channel::<()>();
        pool.watch(key, pin.clone(), async move {
            let _ = exited.await;
        });
        let (c, _open) = conn(&listener, addr).await;
        pool.put(key, pin.clone(), c);
        let (c, far) = conn(&listener, addr).await;
        pool.put(key, pin.clone(), c);
        assert_eq!(pool.idle(), 2);
        // The program closes its end of the one put last: the checkout
        // finds it closed (hyper reads the end) and hands out the other.
        let closed_port = far.peer_addr().unwrap();
        close(far).await;
        let out = pool.checkout(key).expect("the open connection");
        assert_ne!(out.upstream.stream().local_addr().unwrap(), closed_port);
        assert_eq!(pool.idle(), 0);
        assert!(pool.checkout(key).is_none());

        // The instance exits: every kept connection of it goes, on every
        // port, and the others stay.
        let other = Arc::new(());
        let (other_key, other_pin) = Key::new(&other, 80);
        live(&pool, other_key, &other_pin);
        let mut fars = Vec::new();
        for (key, pin) in [
            (key, pin.clone()),
            (Key::new(&entry, 81).0, pin.clone()),
            (other_key, other_pin),
        ] {
            let (c, far) = conn(&listener, addr).await;
            pool.put(key, pin, c);
            fars.push(far);
        }
        assert_eq!(pool.idle(), 3);
        exit.send(()).unwrap();
        assert!(closed(&mut fars[0]).await, "an exit left a socket open");
        assert!(closed(&mut fars[1]).await, "an exit left a socket open");
        assert_eq!(pool.idle(), 1);
        assert!(pool.checkout(other_key).is_some());

        // An answer that ends after the exit: its connection is not kept.
        let (c, mut far) = conn(&listener, addr).await;
        pool.put(key, pin, c);
        assert_eq!(pool.idle(), 0);
        assert!(closed(&mut far).await, "kept after its instance exited");
    }

    #[tokio::test]
    async fn idle_connections_expire() {
        let (listener, addr) = listener().await;
        let (pool, _entry, key, pin) = watched_pool();
        let (c, mut far) = conn(&listener, addr).await;
        pool.put(key, pin, c);
        assert!(pool.reap(Instant::now()));
        assert_eq!(pool.idle(), 1);
        assert!(!pool.reap(Instant::now() + IDLE_TIMEOUT));
        assert_eq!(pool.idle(), 0);
        assert!(closed(&mut far).await);
    }

    #[tokio::test]
    async fn a_sweep_drops_the_connections_the_program_closed() {
        let (listener, addr) = listener().await;
        let (pool, _entry, key, pin) = watched_pool();
        let (c, _open) = conn(&listener, addr).await;
        pool.put(key, pin.clone(), c);
        let (c, far) = conn(&listener, addr).await;
        pool.put(key, pin, c);
        close(far).await;
        assert!(pool.reap(Instant::now()), "the open one went too");
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn an_anchored_key_is_not_reused() {
        // While an anchor lives, no other allocation gets the entry's address.
        let first = Arc::new(7u64);
        let (key, anchor) = Key::new(&first, 80);
        drop(first);
        let later: Vec<Arc<u64>> = (0..64).map(Arc::new).collect();
        assert!(later.iter().all(|a| Key::new(a, 80).0 != key));
        drop(anchor);
    }
}
