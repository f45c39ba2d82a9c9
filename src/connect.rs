//! redis-rs connections to the Redis under test, for everything off the
//! per-event path (setup, the sampler, the chaos actor, drain and verify;
//! producers and consumers speak RESP themselves, see `wire`). A
//! `ConnectionManager` reconnects by itself after Redis restarts (a plain
//! multiplexed connection stays broken), but does not retry the command
//! that failed, so every failure is seen. TCP_NODELAY is set, and the
//! response timeout is chosen per use. Also: the [`Target`] every
//! connection is made to, and where the fault proxy forwards.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use redis::IntoConnectionInfo;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;

use crate::error::{Error, Result, redact};
use crate::tls::ClientTls;

/// The Redis under test and how to reach it: its URL and, for a
/// `rediss://` one, the TLS client setup. Shown (`Display`) with the
/// password hidden, as errors and reports print it.
#[derive(Debug, Clone)]
pub struct Target {
    url: String,
    tls: Option<ClientTls>,
}

impl Target {
    /// `tls` must be given for a `rediss://` URL and only for one.
    pub fn new(url: impl Into<String>, tls: Option<ClientTls>) -> Result<Target> {
        let target = Target {
            url: url.into(),
            tls,
        };
        let problem = match (target.is_tls(), target.tls.is_some()) {
            (true, false) => "a rediss:// URL needs the TLS settings it connects with",
            (false, true) => "TLS settings were given for a URL that is not rediss://",
            _ => return Ok(target),
        };
        let e = redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, problem));
        Err(Error::redis(&target.to_string(), "parsing the URL", e))
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

    /// A new connection of its own, with the given response timeout.
    pub async fn connect(&self, response_timeout: Duration) -> Result<Conn> {
        connect(&self.client()?, &self.to_string(), response_timeout).await
    }

    /// The same target through the fault proxy at `addr`: user, password,
    /// database and TLS kept (the proxy forwards TLS bytes unchanged, and
    /// the certificate names the loopback address both share).
    pub fn redirect(&self, addr: SocketAddr) -> Result<Target> {
        Ok(Target {
            url: redirect(&self.url, addr)?,
            tls: self.tls.clone(),
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

/// A connection as actors hold it: cheap to clone, reconnects after failures.
pub type Conn = ConnectionManager;

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
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_min_delay(RECONNECT_MIN_DELAY)
        .set_max_delay(RECONNECT_MAX_DELAY);
    ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(|e| Error::redis(url, UNREACHABLE, e))
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
}
