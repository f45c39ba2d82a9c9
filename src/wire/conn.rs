//! A raw RESP connection: TCP with TCP_NODELAY (TLS over it for a
//! `rediss://` URL, see `link`), AUTH and SELECT from the URL, then a write half the owner writes encoded commands into, and a
//! stream of the replies read, in order, one at a time or a chunk of
//! complete replies at a time. Matching replies to requests is the owner's
//! business: Redis answers in order, so a FIFO of what was sent is all it
//! takes.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo};

use super::link::{self, ReadHalf, WriteHalf};
use super::resp::{self, Reply};
use crate::error::{Error, Result};
use crate::tls::{ClientTls, Negotiated};

/// Where to dial a cluster node instead of the address the cluster names
/// it by: under network faults each node is reached through a fault proxy
/// of its own, while CLUSTER SLOTS and `-MOVED` keep naming its own port
/// (docs/cluster.md, "Network faults on one shard").
pub type DialMap = HashMap<String, SocketAddr>;

/// Where to connect and how to log in, parsed once from the URL.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The node's own address, as a cluster names it.
    host: String,
    port: u16,
    /// Where to connect instead, when `dials` maps the node elsewhere.
    dial: Option<SocketAddr>,
    /// Kept by every endpoint `at` derives, so nodes first heard of in a
    /// redirection are dialled the same way.
    dials: Option<Arc<DialMap>>,
    /// Set for a `rediss://` URL.
    tls: Option<ClientTls>,
    /// AUTH and SELECT, encoded, with how many replies they produce.
    login: Vec<u8>,
    login_replies: usize,
}

impl Endpoint {
    /// `tls` is what a `rediss://` URL connects with (and must be given
    /// for one, and only for one).
    pub fn parse(url: &str, tls: Option<&ClientTls>) -> Result<Endpoint> {
        let refuse = |why: &'static str| {
            let e = redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, why));
            Error::redis(url, "parsing the URL", e)
        };
        let info = url
            .into_connection_info()
            .map_err(|e| Error::redis(url, "parsing the URL", e))?;
        let (host, port, tls) = match (info.addr().clone(), tls) {
            (ConnectionAddr::Tcp(host, port), None) => (host, port, None),
            (ConnectionAddr::TcpTls { host, port, .. }, Some(tls)) => {
                (host, port, Some(tls.clone()))
            }
            (ConnectionAddr::TcpTls { .. }, None) => {
                return Err(refuse(
                    "a rediss:// URL needs the TLS settings it connects with",
                ));
            }
            (ConnectionAddr::Tcp(..), Some(_)) => {
                return Err(refuse("TLS settings were given for a plain redis:// URL"));
            }
            _ => {
                return Err(refuse(
                    "producers and consumers connect over TCP: use a redis:// or rediss:// URL",
                ));
            }
        };
        let settings = info.redis_settings();
        let (mut login, mut login_replies) = (Vec::new(), 0);
        if let Some(password) = settings.password() {
            match settings.username() {
                Some(user) => {
                    resp::command(&mut login, &[b"AUTH", user.as_bytes(), password.as_bytes()])
                }
                None => resp::command(&mut login, &[b"AUTH", password.as_bytes()]),
            }
            login_replies += 1;
        }
        if settings.db() != 0 {
            resp::array(&mut login, 2);
            resp::bulk(&mut login, b"SELECT");
            resp::bulk(&mut login, settings.db().to_string().as_bytes());
            login_replies += 1;
        }
        Ok(Endpoint {
            host,
            port,
            dial: None,
            dials: None,
            tls,
            login,
            login_replies,
        })
    }

    /// The same endpoint, and every one `at` derives from it, dialling the
    /// nodes `dials` names at the address it gives.
    pub fn dialing(self, dials: Arc<DialMap>) -> Endpoint {
        Endpoint {
            dial: dials.get(&self.addr()).copied(),
            dials: Some(dials),
            ..self
        }
    }

    /// The same login and TLS at another node of a cluster, `host:port` as
    /// CLUSTER SLOTS and redirections name it; None if `addr` is not one.
    pub fn at(&self, addr: &str) -> Option<Endpoint> {
        let (host, port) = addr.rsplit_once(':')?;
        Some(Endpoint {
            host: host.to_string(),
            port: port.parse().ok()?,
            dial: (self.dials.as_ref()).and_then(|d| d.get(addr).copied()),
            ..self.clone()
        })
    }

    /// Where a connection goes: the node's own address, or the one its
    /// `dials` map gives (its fault proxy).
    pub fn dialled(&self) -> String {
        self.dial.map_or_else(|| self.addr(), |a| a.to_string())
    }

    /// `host:port`, as a cluster names its nodes.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A logged-in connection, within `timeout`.
    pub async fn open(&self, timeout: Duration) -> io::Result<(Replies, Writer)> {
        let (replies, writer, _) = self.open_negotiated(timeout).await?;
        Ok((replies, writer))
    }

    /// `open`, and what TLS settled on (None over plain TCP).
    pub async fn open_negotiated(
        &self,
        timeout: Duration,
    ) -> io::Result<(Replies, Writer, Option<Negotiated>)> {
        tokio::time::timeout(timeout, self.open_now())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"))?
    }

    async fn open_now(&self) -> io::Result<(Replies, Writer, Option<Negotiated>)> {
        let (read, write, negotiated) = match self.dial {
            Some(a) => link::connect(&a.ip().to_string(), a.port(), self.tls.as_ref()).await?,
            None => link::connect(&self.host, self.port, self.tls.as_ref()).await?,
        };
        let mut replies = Replies::new(read);
        let mut writer = Writer::new(write);
        if self.login_replies > 0 {
            if !writer.write(&self.login)? {
                while !writer.flush()? {
                    writer.writable().await?;
                }
            }
            let mut answered = 0;
            while answered < self.login_replies {
                let chunk = replies.next_chunk().await?;
                for reply in &chunk {
                    if let Reply::Error(e) = reply {
                        return Err(io::Error::new(io::ErrorKind::PermissionDenied, e.clone()));
                    }
                }
                answered += chunk.len();
            }
            // Offsets count the caller's commands, not the login.
            writer.total = 0;
        }
        Ok((replies, writer, negotiated))
    }
}

/// The write half. Commands go out with a non-blocking write straight from
/// the caller (no task hand-off); what the socket cannot take now waits in
/// `queued` until `writable` says it can.
pub struct Writer {
    half: Arc<WriteHalf>,
    queued: Vec<u8>,
    /// Bytes ever given to `write`: with `queued`, where the socket is.
    total: u64,
}

impl Writer {
    fn new(half: WriteHalf) -> Writer {
        Writer {
            half: Arc::new(half),
            queued: Vec::new(),
            total: 0,
        }
    }

    /// Sends `bytes` after anything queued. Ok(true): all written; Ok(false):
    /// some wait for the socket (call `flush` once `writable` completes).
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<bool> {
        self.total += bytes.len() as u64;
        if !self.queued.is_empty() || self.half.unsent() > 0 {
            self.queued.extend_from_slice(bytes);
            return self.flush();
        }
        let n = self.try_write(bytes)?;
        self.queued.extend_from_slice(&bytes[n..]);
        Ok(self.flushed())
    }

    /// Bytes given to `write` so far: where the next write starts.
    pub fn offset(&self) -> u64 {
        self.total
    }

    /// Bytes handed to the kernel so far; those past it never left (or,
    /// over TLS, left in a record Redis never got whole, see `link`).
    pub fn sent(&self) -> u64 {
        self.total - self.queued.len() as u64 - self.half.unsent() as u64
    }

    /// Writes what is queued; Ok(true) once nothing is left.
    pub fn flush(&mut self) -> io::Result<bool> {
        if !self.half.flush()? {
            return Ok(false);
        }
        let mut queued = std::mem::take(&mut self.queued);
        let n = self.try_write(&queued)?;
        queued.drain(..n);
        self.queued = queued;
        Ok(self.flushed())
    }

    fn flushed(&self) -> bool {
        self.queued.is_empty() && self.half.unsent() == 0
    }

    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        let mut written = 0;
        while written < bytes.len() {
            match self.half.try_write(&bytes[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// Completes when the socket can take more bytes.
    pub fn writable(&self) -> impl Future<Output = io::Result<()>> + 'static {
        let half = self.half.clone();
        async move { half.writable().await }
    }
}

/// The read half: replies as they arrive, every complete reply of one read
/// at a time. An error means the connection is over (closed, reset, or a
/// reply that cannot be parsed).
pub struct Replies {
    read: ReadHalf,
    buf: Vec<u8>,
    /// Bytes of `buf` already parsed.
    start: usize,
}

/// What a read adds to `buf` at most; a pipeline's replies usually fit.
const READ_SIZE: usize = 16 * 1024;

impl Replies {
    fn new(read: ReadHalf) -> Replies {
        Replies {
            read,
            buf: Vec::with_capacity(READ_SIZE),
            start: 0,
        }
    }

    /// The replies that the next read completes (at least one).
    pub async fn next_chunk(&mut self) -> io::Result<Vec<Reply>> {
        let mut chunk = Vec::new();
        loop {
            loop {
                match self.next_reply() {
                    Ok(Some(reply)) => chunk.push(reply),
                    Ok(None) => break,
                    // Replies parsed before the garbage are still answers;
                    // the error comes back on the next call.
                    Err(_) if !chunk.is_empty() => break,
                    Err(e) => return Err(e),
                }
            }
            if !chunk.is_empty() {
                return Ok(chunk);
            }
            self.read_more().await?;
        }
    }

    /// The next complete reply buffered, consumed; None until `read_more`
    /// brings the rest. An error is for good: the connection must go.
    pub fn next_reply(&mut self) -> io::Result<Option<Reply>> {
        match resp::parse(&self.buf[self.start..]) {
            Ok(Some((reply, used))) => {
                self.start += used;
                Ok(Some(reply))
            }
            Ok(None) => {
                self.compact();
                Ok(None)
            }
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    /// Waits for more bytes (call it once `next_reply` says None: replies
    /// already buffered do not end the wait). An error means the
    /// connection is over (closed or reset).
    pub async fn read_more(&mut self) -> io::Result<()> {
        let before = self.buf.len();
        self.buf.reserve(READ_SIZE);
        if self.read.read_buf(&mut self.buf).await? == 0 && self.buf.len() == before {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// The next `n` replies as they came over the wire (see `Raw`).
    pub async fn next_raw(&mut self, n: usize) -> io::Result<Raw> {
        let mut spans = Vec::with_capacity(n);
        let mut scanner = resp::Scanner::at(self.start);
        let mut begin = self.start;
        while spans.len() < n {
            match scanner.next_end(&self.buf) {
                Ok(Some(end)) => {
                    spans.push(begin - self.start..end - self.start);
                    begin = end;
                }
                Ok(None) => {
                    self.buf.reserve(READ_SIZE);
                    if self.read.read_buf(&mut self.buf).await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
        let bytes = self.buf[self.start..begin].to_vec();
        self.start = begin;
        self.compact();
        Ok(Raw { bytes, spans })
    }

    /// Drops the bytes already parsed, when that is cheap or worth it.
    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > READ_SIZE {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

/// Replies kept as the bytes Redis sent, for callers that read them in
/// their own way: the hot path scans them in place, the rare paths hand
/// them to redis-rs's parser.
#[derive(Debug)]
pub struct Raw {
    bytes: Vec<u8>,
    spans: Vec<std::ops::Range<usize>>,
}

impl Raw {
    /// Reply `i`, bytes and all.
    pub fn bytes(&self, i: usize) -> &[u8] {
        self.spans.get(i).map_or(&[], |s| &self.bytes[s.clone()])
    }

    /// Reply `i` as a redis-rs value (an error reply is an Err).
    pub fn value(&self, i: usize) -> redis::RedisResult<redis::Value> {
        redis::parse_redis_value(self.bytes(i))?.extract_error()
    }

    /// Reply `i`'s error message, if it is an error reply.
    pub fn error(&self, i: usize) -> Option<String> {
        let reply = self.bytes(i).strip_prefix(b"-")?;
        let end = reply.len().saturating_sub(2);
        Some(String::from_utf8_lossy(&reply[..end]).into_owned())
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dial_map_follows_every_node_derived_from_the_seed() {
        let proxy: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let dials = Arc::new(DialMap::from([("127.0.0.1:7001".to_string(), proxy)]));
        let seed = Endpoint::parse("redis://127.0.0.1:7000", None).unwrap();
        let seed = seed.dialing(dials);
        assert_eq!(seed.dialled(), "127.0.0.1:7000");
        let mapped = seed.at("127.0.0.1:7001").unwrap();
        // Named as the cluster names it, dialled at its proxy.
        assert_eq!(mapped.addr(), "127.0.0.1:7001");
        assert_eq!(mapped.dialled(), "127.0.0.1:9001");
        // A redirection from there keeps the map.
        let back = mapped.at("127.0.0.1:7002").unwrap();
        assert_eq!(back.dialled(), "127.0.0.1:7002");
        assert_eq!(
            back.at("127.0.0.1:7001").unwrap().dialled(),
            "127.0.0.1:9001"
        );
    }
}
