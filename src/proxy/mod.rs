//! The TCP fault proxy streamdrill puts between the harness and Redis to
//! inject network faults: added latency with jitter, a bandwidth limit, a
//! blackhole, and connection resets (Toxiproxy's toxics are the reference).
//! The chaos timeline drives it through [`FaultProxy::set`],
//! [`FaultProxy::clear`] and [`FaultProxy::reset_all`]; producers and
//! consumers simply connect to [`FaultProxy::url`] instead of Redis.
//!
//! The proxy runs as tasks on the current tokio runtime (`tokio::spawn`), so
//! it works inside the harness's actix System as well as in a plain runtime.
//! One accept task owns every connection task: [`FaultProxy::stop`], or
//! dropping the [`FaultProxy`], ends them all.
//!
//! - [`toxic`]: what the faults are, and their timing arithmetic.
//! - `pipe`: one proxied connection and the pumps that apply the faults.
//! - `threaded`: [`ThreadedProxy`], a proxy on a thread of its own (the replication link's).
//! - `nodes`: [`NodeProxies`], one proxy per node of a cluster, by shard.

mod nodes;
mod pipe;
mod threaded;
pub mod toxic;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{Error, Result};
pub use nodes::NodeProxies;
use pipe::{Control, Counters};
pub use threaded::ThreadedProxy;
pub use toxic::{Delay, Toxics};

/// Seed of the jitter draws when none is given.
pub const DEFAULT_SEED: u64 = 0x5eed_fa17;
/// Pause after a failed accept (e.g. out of file descriptors) before retrying,
/// so the accept loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// What went through a proxy since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub connections_accepted: u64,
    /// Connections whose tasks still run (accepted and not yet closed).
    pub connections_open: u64,
    /// Bytes forwarded from clients to Redis.
    pub bytes_upstream: u64,
    /// Bytes forwarded from Redis to clients.
    pub bytes_downstream: u64,
}

/// A TCP proxy on `127.0.0.1:<free port>` forwarding to one upstream, with
/// faults switched on and off while it runs. Dropping it closes the listener
/// and every connection, like [`FaultProxy::stop`] without waiting.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    /// Shared with the accept loop: `set_upstream` moves new connections.
    upstream: Arc<Mutex<SocketAddr>>,
    control: watch::Sender<Control>,
    counters: Arc<Counters>,
    accept_task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a transparent proxy to `upstream` on the current tokio runtime.
    pub async fn start(upstream: SocketAddr) -> Result<FaultProxy> {
        FaultProxy::start_seeded(upstream, DEFAULT_SEED).await
    }

    /// Like [`FaultProxy::start`], with the seed of the jitter draws: the n-th
    /// accepted connection draws from a generator seeded by `seed` and n.
    pub async fn start_seeded(upstream: SocketAddr, seed: u64) -> Result<FaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|source| Error::proxy("bind 127.0.0.1:0", source))?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::proxy("read the bound address", source))?;
        let (control, ctl) = watch::channel(Control::default());
        let counters = Arc::new(Counters::default());
        let upstream = Arc::new(Mutex::new(upstream));
        let accept_task = tokio::spawn(accept_loop(
            listener,
            upstream.clone(),
            ctl,
            counters.clone(),
            seed,
        ));
        Ok(FaultProxy {
            addr,
            upstream,
            control,
            counters,
            accept_task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        *self.upstream.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forwards connections accepted from now on to `upstream` (a failover's
    /// promoted replica: the proxy acts as a virtual IP). Open connections
    /// keep their old upstream until they close or [`FaultProxy::reset_all`].
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap_or_else(|e| e.into_inner()) = upstream;
    }

    /// `redis://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Replaces the faults; open and new connections see them at once.
    pub fn set(&self, toxics: Toxics) {
        self.control.send_modify(|c| c.toxics = toxics);
    }

    /// The faults in force.
    pub fn toxics(&self) -> Toxics {
        self.control.borrow().toxics.clone()
    }

    /// Back to a transparent proxy. Bytes held by a blackhole are delivered.
    pub fn clear(&self) {
        self.set(Toxics::default());
    }

    /// Resets every open connection: both the client and the Redis side get a
    /// TCP RST ("connection reset by peer"). New connections are unaffected.
    pub fn reset_all(&self) {
        self.control.send_modify(|c| c.resets += 1);
    }

    pub fn stats(&self) -> ProxyStats {
        let c = &self.counters;
        ProxyStats {
            connections_accepted: c.accepted.load(Ordering::Relaxed),
            connections_open: c.open.load(Ordering::Relaxed),
            bytes_upstream: c.bytes_upstream.load(Ordering::Relaxed),
            bytes_downstream: c.bytes_downstream.load(Ordering::Relaxed),
        }
    }

    /// Closes the listener and every connection, and waits until they are closed.
    pub async fn stop(self) {
        let FaultProxy {
            control,
            accept_task,
            ..
        } = self;
        drop(control); // the accept loop and every connection watch for this
        let _ = accept_task.await;
    }
}

/// Accepts clients and owns their tasks until the proxy's control sender is
/// dropped; then aborts whatever connections are left.
async fn accept_loop(
    listener: TcpListener,
    upstream: Arc<Mutex<SocketAddr>>,
    mut ctl: watch::Receiver<Control>,
    counters: Arc<Counters>,
    seed: u64,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    let n = counters.accepted.fetch_add(1, Ordering::Relaxed);
                    let rng = SmallRng::seed_from_u64(seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                    let upstream = *upstream.lock().unwrap_or_else(|e| e.into_inner());
                    connections.spawn(pipe::serve(client, upstream, ctl.clone(), counters.clone(), rng));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            // Reap finished connections so the set does not grow for ever.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            closed = ctl.changed() => if closed.is_err() { break },
        }
    }
    drop(listener);
    // Aborting a connection's task drops its sockets, which closes them.
    connections.shutdown().await;
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// An upstream that echoes every byte back, on the current runtime.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = conn.set_nodelay(true);
                    let (mut from, mut to) = conn.split();
                    let _ = tokio::io::copy(&mut from, &mut to).await;
                });
            }
        });
        addr
    }

    async fn round_trip(conn: &mut TcpStream, msg: &[u8]) -> Duration {
        let start = Instant::now();
        conn.write_all(msg).await.unwrap();
        let mut back = vec![0; msg.len()];
        conn.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg);
        start.elapsed()
    }

    async fn proxied_echo() -> (FaultProxy, TcpStream) {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let conn = TcpStream::connect(proxy.addr()).await.unwrap();
        // Nagle would hold a transfer's last small segment back for a delayed ACK.
        conn.set_nodelay(true).unwrap();
        (proxy, conn)
    }

    #[tokio::test]
    async fn forwards_transparently_and_counts() {
        let (proxy, mut conn) = proxied_echo().await;
        round_trip(&mut conn, b"hello").await;
        let stats = proxy.stats();
        assert_eq!(stats.connections_accepted, 1);
        assert_eq!(stats.connections_open, 1);
        assert_eq!((stats.bytes_upstream, stats.bytes_downstream), (5, 5));
        assert_eq!(
            proxy.url(),
            format!("redis://127.0.0.1:{}", proxy.addr().port())
        );
        drop(conn);
        // Both directions reach end of stream, so the connection task ends.
        let until = Instant::now() + Duration::from_secs(5);
        while proxy.stats().connections_open > 0 {
            assert!(Instant::now() < until, "connection never closed");
            tokio::time::sleep(MS).await;
        }
    }

    /// Three messages sent 20 ms apart under 60 ms latency each come back
    /// ~60 ms after being sent (all three by ~100 ms), not one after another
    /// (180 ms): the delay is per chunk, not cumulative.
    #[tokio::test]
    async fn latency_delays_each_chunk_without_serialising() {
        let (proxy, mut conn) = proxied_echo().await;
        proxy.set(Toxics::latency(60 * MS, Duration::ZERO));
        let start = Instant::now();
        for msg in [b"a", b"b", b"c"] {
            conn.write_all(msg).await.unwrap();
            tokio::time::sleep(20 * MS).await;
        }
        let mut back = [0u8; 3];
        conn.read_exact(&mut back).await.unwrap();
        let took = start.elapsed();
        assert_eq!(&back, b"abc");
        assert!(
            took >= 100 * MS && took < 160 * MS,
            "took {took:?}, want ~40 + 60 ms"
        );
        proxy.clear();
        assert!(round_trip(&mut conn, b"x").await < 10 * MS);
    }

    #[tokio::test]
    async fn jitter_never_reorders_bytes() {
        let (proxy, mut conn) = proxied_echo().await;
        proxy.set(Toxics::latency(3 * MS, 3 * MS));
        let sent: Vec<u8> = (0..200u8).collect();
        for byte in &sent {
            conn.write_all(&[*byte]).await.unwrap();
            tokio::task::yield_now().await;
        }
        let mut back = vec![0; sent.len()];
        conn.read_exact(&mut back).await.unwrap();
        assert_eq!(back, sent);
    }

    /// 1 MB at 4 MB/s: 250 ms, within ±20 %.
    #[tokio::test]
    #[allow(clippy::print_stderr)] // says what it measured
    async fn bandwidth_limits_throughput() {
        let (proxy, conn) = proxied_echo().await;
        let rate = 4_000_000u64;
        proxy.set(Toxics::bandwidth(rate));
        let payload = vec![7u8; 1_000_000];
        let start = Instant::now();
        let (mut from, mut to) = conn.into_split();
        let writer = tokio::spawn(async move { to.write_all(&payload).await.map(|_| to) });
        let mut back = vec![0; 1_000_000];
        from.read_exact(&mut back).await.unwrap();
        let took_s = start.elapsed().as_secs_f64();
        eprintln!("1 MB at {rate} B/s took {took_s:.3} s");
        writer.await.unwrap().unwrap();
        // Each direction is limited separately; they overlap, so one limit counts.
        let want_s = 1_000_000.0 / rate as f64;
        assert!(
            (took_s / want_s - 1.0).abs() < 0.2,
            "took {took_s} s, want {want_s} s"
        );
    }

    #[tokio::test]
    async fn blackhole_holds_bytes_until_cleared() {
        let (proxy, mut conn) = proxied_echo().await;
        proxy.set(Toxics::blackhole());
        conn.write_all(b"held").await.unwrap();
        let mut back = [0u8; 4];
        let early = tokio::time::timeout(100 * MS, conn.read_exact(&mut back)).await;
        assert!(early.is_err(), "nothing may pass a blackhole");
        proxy.clear();
        conn.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"held");
    }

    #[tokio::test]
    async fn reset_all_resets_open_connections_only() {
        let (proxy, mut conn) = proxied_echo().await;
        round_trip(&mut conn, b"up").await;
        proxy.reset_all();
        let mut buf = [0u8; 1];
        let err = conn.read(&mut buf).await.expect_err("a reset connection");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut fresh, b"new").await;
    }

    #[tokio::test]
    async fn unreachable_upstream_resets_the_client() {
        let dead = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let upstream = dead.local_addr().unwrap();
        drop(dead);
        let proxy = FaultProxy::start(upstream).await.unwrap();
        let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut buf = [0u8; 1];
        let err = conn.read(&mut buf).await.expect_err("a reset connection");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    }

    #[tokio::test]
    async fn stop_and_drop_close_everything() {
        for stop in [true, false] {
            let (proxy, mut conn) = proxied_echo().await;
            round_trip(&mut conn, b"up").await;
            let addr = proxy.addr();
            if stop {
                proxy.stop().await;
            } else {
                drop(proxy);
            }
            let mut buf = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
            assert!(
                matches!(read, Ok(Ok(0)) | Ok(Err(_))),
                "open after stop: {read:?}"
            );
            // Dropping returns before the accept task has run: give it a moment.
            let until = Instant::now() + Duration::from_secs(5);
            while TcpStream::connect(addr).await.is_ok() {
                assert!(Instant::now() < until, "listener still open");
                tokio::time::sleep(MS).await;
            }
        }
    }

    #[test]
    fn runs_inside_an_actix_system() {
        actix::System::new().block_on(async {
            let (proxy, mut conn) = proxied_echo().await;
            proxy.set(Toxics::latency(20 * MS, Duration::ZERO));
            assert!(round_trip(&mut conn, b"actix").await >= 20 * MS);
            proxy.stop().await;
        });
    }
}
