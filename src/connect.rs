//! redis-rs connections to the Redis under test, for everything off the
//! per-event path (setup, the sampler, the chaos actor, drain and verify;
//! producers and consumers speak RESP themselves, see `wire`). A
//! `ConnectionManager` reconnects by itself after Redis restarts (a plain
//! multiplexed connection stays broken), but does not retry the command
//! that failed, so every failure is seen. TCP_NODELAY is set, and the
//! response timeout is chosen per use. Also: the [`Target`] every
//! connection is made to, and where the fault proxy forwards.
//!
//! A target in a Redis Cluster gives a [`Conn::Cluster`], which sends each
//! command to the primary of its key's slot (`cluster`; where the keys are:
//! `keys`; how a call is split over nodes: `route`). Callers send commands
//! and pipelines through either kind alike
//! (docs/cluster.md, "The admin connection").

mod cluster;
pub mod keys;
mod route;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, Value};

use crate::error::{Error, Result, redact};
use crate::tls::ClientTls;

pub use cluster::{ClusterConn, NOT_A_CLUSTER, not_a_cluster, read_slot_map};

/// The Redis under test and how to reach it: its URL and, for a
/// `rediss://` one, the TLS client setup. Shown (`Display`) with the
/// password hidden, as errors and reports print it.
#[derive(Debug, Clone)]
pub struct Target {
    url: String,
    tls: Option<ClientTls>,
    /// The URL names one node (a seed) of a Redis Cluster.
    cluster: bool,
}

impl Target {
    /// `tls` must be given for a `rediss://` URL and only for one.
    pub fn new(url: impl Into<String>, tls: Option<ClientTls>) -> Result<Target> {
        let target = Target {
            url: url.into(),
            tls,
            cluster: false,
        };
        let problem = match (target.is_tls(), target.tls.is_some()) {
            (true, false) => "a rediss:// URL needs the TLS settings it connects with",
            (false, true) => "TLS settings were given for a URL that is not rediss://",
            _ => return Ok(target),
        };
        let e = redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, problem));
        Err(Error::redis(&target.to_string(), "parsing the URL", e))
    }

    /// The same target as a seed node of a Redis Cluster: [`Target::connect`]
    /// reads the cluster's slot map from it and connects to every primary,
    /// with the seed's user, password and TLS.
    pub fn in_cluster(self) -> Target {
        Target {
            cluster: true,
            ..self
        }
    }

    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The URL, password and all.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref()
    }

    fn is_tls(&self) -> bool {
        self.url.starts_with("rediss://")
    }

    /// A redis-rs client for this target (see [`client`]).
    pub fn client(&self) -> Result<redis::Client> {
        let shown = self.to_string();
        let fail = |e| Error::redis(&shown, "parsing the URL", e);
        let Some(tls) = &self.tls else {
            return client(&self.url);
        };
        // redis-rs reads "insecure" off the URL's fragment.
        let url = match tls.insecure() {
            true => format!(
                "{}#insecure",
                self.url.split('#').next().unwrap_or_default()
            ),
            false => self.url.clone(),
        };
        let info = url
            .as_str()
            .into_connection_info()
            .map_err(fail)?
            .set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let certificates = redis::TlsCertificates {
            client_tls: tls
                .identity_pem()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.to_vec(),
                    client_key: key.to_vec(),
                }),
            root_cert: tls.ca_pem().map(<[u8]>::to_vec),
        };
        redis::Client::build_with_tls(info, certificates).map_err(fail)
    }

    /// A new connection of its own, with the given response timeout: to
    /// the server, or to every primary of the cluster this target is in.
    pub async fn connect(&self, response_timeout: Duration) -> Result<Conn> {
        match self.cluster {
            true => Ok(Conn::Cluster(
                ClusterConn::connect(self, response_timeout).await?,
            )),
            false => connect(&self.client()?, &self.to_string(), response_timeout).await,
        }
    }

    /// The host the URL names, as a cluster node announced without one is.
    fn host(&self) -> Option<String> {
        Some(redis::parse_redis_url(&self.url)?.host_str()?.to_string())
    }

    /// The same user, password and TLS at the cluster node `addr`
    /// (`host:port`, as CLUSTER SLOTS and MOVED name it): one server.
    pub fn at_node(&self, addr: &str) -> Result<Target> {
        Ok(Target {
            url: at_node(&self.url, addr)?,
            tls: self.tls.clone(),
            cluster: false,
        })
    }

    /// The same target through the fault proxy at `addr`: user, password,
    /// database and TLS kept (the proxy forwards TLS bytes unchanged, and
    /// the certificate names the loopback address both share).
    pub fn redirect(&self, addr: SocketAddr) -> Result<Target> {
        Ok(Target {
            url: redirect(&self.url, addr)?,
            tls: self.tls.clone(),
            cluster: self.cluster,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.url))
    }
}

/// What a failed connection says; a TLS-only server resets a plain client
/// and does not answer a TLS one on its plain port, so both are suspects.
pub const UNREACHABLE: &str = "connecting (is the server running and reachable? \
     does its port speak what the URL says: redis:// plain TCP, rediss:// TLS?)";

/// A connection as actors hold it: cheap to clone, reconnects after
/// failures; to one server, or routed over a cluster's primaries. Commands
/// and pipelines go through `query_async(&mut conn)` alike.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConn),
}

impl Conn {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// Every primary and a connection to it alone, for what must be read
    /// on each node (INFO): a cluster's by `host:port` in slot order; a
    /// single server is itself, once, named "" (its caller knows its URL).
    pub fn primaries(&self) -> Vec<(String, Conn)> {
        match self {
            Conn::Single(_) => vec![(String::new(), self.clone())],
            Conn::Cluster(c) => (c.primaries().into_iter())
                .map(|(addr, conn)| (addr, Conn::Single(conn)))
                .collect(),
        }
    }

    /// MOVED and ASK replies a cluster connection followed (and its clones):
    /// (moved, ask); none for a single server.
    pub fn redirects(&self) -> (u64, u64) {
        match self {
            Conn::Single(_) => (0, 0),
            Conn::Cluster(c) => c.redirects(),
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// How long to wait for a connection to Redis before calling it unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection backoff after Redis went away: quick first, capped, so a
/// restarted server is found within ~0.5 s of coming back.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
const RECONNECT_RETRIES: usize = 3;
/// Redis's port when a URL names none.
const DEFAULT_PORT: u16 = 6379;

/// A client with TCP_NODELAY: redis-rs leaves Nagle's algorithm on by default,
/// which holds small pipelines back until the peer's delayed ACK (~40 ms) and
/// turned a 2000/s quickstart's produce p90 from sub-millisecond into 39 ms.
pub fn client(url: &str) -> Result<redis::Client> {
    let info = url
        .into_connection_info()
        .map_err(|e| Error::redis(url, "parsing the URL", e))?
        .set_tcp_settings(TcpSettings::default().set_nodelay(true));
    redis::Client::open(info).map_err(|e| Error::redis(url, "parsing the URL", e))
}

/// A new connection of its own, with the given response timeout.
pub async fn connect(
    client: &redis::Client,
    url: &str,
    response_timeout: Duration,
) -> Result<Conn> {
    (manager(client, response_timeout).await)
        .map(Conn::Single)
        .map_err(|e| Error::redis(url, UNREACHABLE, e))
}

/// A `ConnectionManager` with streamdrill's timeouts and reconnection.
async fn manager(
    client: &redis::Client,
    response_timeout: Duration,
) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_min_delay(RECONNECT_MIN_DELAY)
        .set_max_delay(RECONNECT_MAX_DELAY);
    ConnectionManager::new_with_config(client.clone(), config).await
}

/// The TCP address a `redis://host[:port]` (or `rediss://`) URL points at:
/// where the fault proxy of a network drill forwards to. Unix sockets
/// cannot be proxied.
pub async fn proxy_upstream(url: &str) -> Result<SocketAddr> {
    let shown = redact(url);
    let refuse =
        |why: &str| Error::proxy(format!("proxy {shown}"), io::Error::other(why.to_string()));
    let parsed = redis::parse_redis_url(url).ok_or_else(|| refuse("not a redis:// URL"))?;
    let host = parsed
        .host_str()
        .filter(|_| matches!(parsed.scheme(), "redis" | "rediss"))
        .ok_or_else(|| refuse("network faults need a TCP Redis URL (redis://host:port)"))?;
    let target = format!("{host}:{}", parsed.port().unwrap_or(DEFAULT_PORT));
    let mut addrs = tokio::net::lookup_host(&target)
        .await
        .map_err(|source| Error::proxy(format!("resolve {target}"), source))?;
    addrs
        .next()
        .ok_or_else(|| refuse("the host name resolves to no address"))
}

/// `url` pointing at `addr` instead: user, password and database kept.
pub fn redirect(url: &str, addr: SocketAddr) -> Result<String> {
    let refuse = || {
        Error::proxy(
            format!("redirect {url}"),
            io::ErrorKind::InvalidInput.into(),
        )
    };
    let mut parsed = redis::parse_redis_url(url).ok_or_else(refuse)?;
    parsed.set_ip_host(addr.ip()).map_err(|_| refuse())?;
    parsed.set_port(Some(addr.port())).map_err(|_| refuse())?;
    Ok(parsed.to_string())
}

/// `url` pointing at the cluster node `addr` (`host:port`): user, password
/// and database kept.
fn at_node(url: &str, addr: &str) -> Result<String> {
    let refuse = || {
        let e = redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "a cluster node's address is not host:port",
            addr.to_string(),
        ));
        Error::redis(url, "connecting to a cluster node", e)
    };
    let mut parsed = redis::parse_redis_url(url).ok_or_else(refuse)?;
    let (host, port) = addr.rsplit_once(':').ok_or_else(refuse)?;
    let port: u16 = port.parse().map_err(|_| refuse())?;
    let host = match host.contains(':') {
        true => format!("[{host}]"),
        false => host.to_string(),
    };
    parsed.set_host(Some(&host)).map_err(|_| refuse())?;
    parsed.set_port(Some(port)).map_err(|_| refuse())?;
    Ok(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn proxy_upstream_takes_tcp_urls_only() {
        async fn addr(url: &str) -> Result<String> {
            proxy_upstream(url).await.map(|a| a.to_string())
        }
        assert_eq!(
            addr("redis://127.0.0.1:7000/2").await.unwrap(),
            "127.0.0.1:7000"
        );
        assert_eq!(
            addr("redis://:pw@127.0.0.1").await.unwrap(),
            "127.0.0.1:6379"
        );
        assert_eq!(
            addr("rediss://127.0.0.1:7001").await.unwrap(),
            "127.0.0.1:7001"
        );
        for url in ["unix:///tmp/redis.sock", "http://x"] {
            let e = addr(url).await.unwrap_err().to_string();
            assert!(e.contains(url), "{e}");
        }
    }

    #[test]
    fn redirect_keeps_credentials_and_database() {
        let to = SocketAddr::from(([127, 0, 0, 1], 4242));
        assert_eq!(
            redirect("redis://user:pw@db.example:6379/3", to).unwrap(),
            "redis://user:pw@127.0.0.1:4242/3"
        );
        assert_eq!(redirect("redis://h", to).unwrap(), "redis://127.0.0.1:4242");
    }

    #[test]
    fn a_cluster_node_keeps_the_seeds_credentials() {
        assert_eq!(
            at_node("rediss://u:pw@seed:7000", "10.0.0.2:7001").unwrap(),
            "rediss://u:pw@10.0.0.2:7001"
        );
        assert_eq!(
            at_node("redis://seed", "::1:7002").unwrap(),
            "redis://[::1]:7002"
        );
        assert!(at_node("redis://seed", "nohost").is_err());
        let seed = Target::new("redis://127.0.0.1:7000", None).unwrap();
        assert!(!seed.is_cluster() && seed.clone().in_cluster().is_cluster());
        assert!(!seed.in_cluster().at_node("h:1").unwrap().is_cluster());
    }
}
