//! The network fault proxy between real Redis clients and a real
//! redis-server: transparent forwarding and its overhead, added latency,
//! bandwidth, blackhole and connection resets, with sync clients (proxy on its
//! own thread) and async clients inside an actix System.

use std::net::SocketAddr;
use std::ops::Deref;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use redis::AsyncConnectionConfig;
use streamdrill::proxy::{FaultProxy, Toxics};
use streamdrill::server::RedisServer;
use tokio::sync::oneshot;

use crate::support::{server, wait_until};

const MS: Duration = Duration::from_millis(1);
/// Timeouts of the sync test clients: a command that gets no reply fails after this.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(500);

/// A proxy on its own thread's current-thread runtime, so the test thread can
/// block in sync Redis clients while the proxy keeps forwarding.
struct ProxyThread {
    proxy: Option<FaultProxy>,
    stop: Option<oneshot::Sender<FaultProxy>>,
    thread: Option<JoinHandle<()>>,
}

impl ProxyThread {
    fn start(redis: &RedisServer) -> ProxyThread {
        let upstream = SocketAddr::from(([127, 0, 0, 1], redis.port()));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = oneshot::channel::<FaultProxy>();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async move {
                let _ = started_tx.send(FaultProxy::start(upstream).await);
                if let Ok(proxy) = stop_rx.await {
                    proxy.stop().await;
                }
            });
        });
        let proxy = started_rx
            .recv()
            .expect("proxy thread")
            .expect("proxy start");
        ProxyThread {
            proxy: Some(proxy),
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Deref for ProxyThread {
    type Target = FaultProxy;
    fn deref(&self) -> &FaultProxy {
        self.proxy.as_ref().expect("proxy runs until drop")
    }
}

impl Drop for ProxyThread {
    fn drop(&mut self) {
        if let (Some(proxy), Some(stop)) = (self.proxy.take(), self.stop.take()) {
            let _ = stop.send(proxy);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn connect(url: &str) -> redis::Connection {
    let conn = redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(CLIENT_TIMEOUT))
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    conn.set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("read timeout");
    conn.set_write_timeout(Some(CLIENT_TIMEOUT))
        .expect("write timeout");
    conn
}

fn ping(conn: &mut redis::Connection) -> redis::RedisResult<String> {
    redis::cmd("PING").query(conn)
}

/// The median round trip of `count` sequential PINGs.
fn ping_p50(conn: &mut redis::Connection, count: usize) -> Duration {
    let mut rtts: Vec<Duration> = (0..count)
        .map(|_| {
            let start = Instant::now();
            assert_eq!(ping(conn).expect("PING"), "PONG");
            start.elapsed()
        })
        .collect();
    rtts.sort();
    rtts[count / 2]
}

#[test]
fn forwards_commands_transparently() {
    let redis = server();
    let proxy = ProxyThread::start(&redis);
    let mut conn = connect(&proxy.url());
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .expect("SET");
    let got: String = redis::cmd("GET").arg("k").query(&mut conn).expect("GET");
    assert_eq!(got, "v");
    let direct: String = redis::cmd("GET")
        .arg("k")
        .query(&mut connect(&redis.url()))
        .expect("GET");
    assert_eq!(direct, "v", "the write went to the real server");
    let stats = proxy.stats();
    assert_eq!(stats.connections_accepted, 1);
    assert!(
        stats.bytes_upstream > 0 && stats.bytes_downstream > 0,
        "{stats:?}"
    );
}

/// The proxy's own cost at zero toxics: the p50 of 2000 sequential PINGs,
/// direct and proxied. Run with `--nocapture` to see the figures.
#[test]
fn transparent_proxy_adds_little_latency() {
    let redis = server();
    let proxy = ProxyThread::start(&redis);
    let mut direct = connect(&redis.url());
    let mut proxied = connect(&proxy.url());
    ping_p50(&mut direct, 200); // warm both paths up
    ping_p50(&mut proxied, 200);
    let direct_p50 = ping_p50(&mut direct, 2000);
    let proxied_p50 = ping_p50(&mut proxied, 2000);
    eprintln!("PING p50 direct {direct_p50:?}, through the proxy {proxied_p50:?}");
    assert!(
        proxied_p50 < direct_p50 + 5 * MS,
        "direct {direct_p50:?}, proxied {proxied_p50:?}"
    );
}

#[test]
fn latency_raises_the_round_trip() {
    let redis = server();
    let proxy = ProxyThread::start(&redis);
    let mut conn = connect(&proxy.url());
    let before = ping_p50(&mut conn, 21);
    proxy.set(Toxics::latency(20 * MS, Duration::ZERO));
    let during = ping_p50(&mut conn, 21);
    let raised = during.saturating_sub(before);
    assert!(
        raised >= 20 * MS && raised < 60 * MS,
        "before {before:?}, during {during:?}"
    );
    proxy.clear();
    assert!(
        ping_p50(&mut conn, 21) < 10 * MS,
        "latency stays after clear"
    );
}

/// A 500 kB SET at 1 MB/s takes ~0.5 s (the request direction is the limited one).
#[test]
fn bandwidth_limit_paces_a_large_value() {
    let redis = server();
    let proxy = ProxyThread::start(&redis);
    let mut conn = connect(&proxy.url());
    conn.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    proxy.set(Toxics::bandwidth(1_000_000));
    let value = vec![b'x'; 500_000];
    let start = Instant::now();
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&value)
        .query(&mut conn)
        .expect("SET");
    let took_s = start.elapsed().as_secs_f64();
    eprintln!("500 kB SET at 1 MB/s took {took_s:.3} s");
    assert!(
        (0.4..0.6).contains(&took_s),
        "500 kB at 1 MB/s took {took_s} s"
    );
}

#[test]
fn blackhole_times_out_commands_until_cleared() {
    let redis = server();
    let proxy = ProxyThread::start(&redis);
    let mut conn = connect(&proxy.url());
    assert_eq!(ping(&mut conn).expect("PING"), "PONG");
    proxy.set(Toxics::blackhole());
    let err = ping(&mut conn).expect_err("no reply through a blackhole");
    assert!(err.is_timeout(), "{err}");
    proxy.clear();
    assert_eq!(
        ping(&mut connect(&proxy.url())).expect("PING after clear"),
        "PONG"
    );
}

#[test]
fn reset_all_breaks_open_connections() {
    let redis = server();
    let proxy = ProxyThread::start(&redis);
    let mut conn = connect(&proxy.url());
    assert_eq!(ping(&mut conn).expect("PING"), "PONG");
    proxy.reset_all();
    wait_until(
        Duration::from_secs(5),
        "the reset connection to close",
        || proxy.stats().connections_open == 0,
    );
    let err = ping(&mut conn).expect_err("PING on a reset connection");
    assert!(err.is_connection_dropped() || err.is_io_error(), "{err}");
    assert_eq!(
        ping(&mut connect(&proxy.url())).expect("PING on a new one"),
        "PONG"
    );
}

/// The harness's setting: the proxy and async clients on one actix System.
#[test]
fn async_clients_inside_actix_see_the_faults() {
    let redis = server();
    let upstream = SocketAddr::from(([127, 0, 0, 1], redis.port()));
    actix::System::new().block_on(async move {
        let proxy = FaultProxy::start(upstream).await.expect("proxy");
        let config = AsyncConnectionConfig::new().set_response_timeout(Some(CLIENT_TIMEOUT));
        let mut conn = redis::Client::open(proxy.url())
            .expect("url")
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("connect through the proxy");
        let ping = async |conn: &mut redis::aio::MultiplexedConnection| {
            let start = Instant::now();
            let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(conn).await;
            (pong, start.elapsed())
        };
        assert_eq!(ping(&mut conn).await.0.expect("PING"), "PONG");
        proxy.set(Toxics::latency(20 * MS, Duration::ZERO));
        let (pong, rtt) = ping(&mut conn).await;
        assert_eq!(pong.expect("PING with latency"), "PONG");
        assert!(rtt >= 20 * MS && rtt < 60 * MS, "{rtt:?}");
        proxy.set(Toxics::blackhole());
        let (pong, _) = ping(&mut conn).await;
        assert!(
            pong.is_err_and(|e| e.is_timeout()),
            "no reply through a blackhole"
        );
        proxy.stop().await;
    });
}
