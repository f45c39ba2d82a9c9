//! Replication between managed servers, for failover drills: a replica
//! follows a primary (directly, or through the fault proxy that carries the
//! replication link), the run starts once it is in sync, and a failover
//! promotes it. Synchronous like the rest of `server`: raw RESP on a short
//! connection of its own.

use std::io::{BufRead, BufReader, Write};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{POLL_INTERVAL, RedisServer, ServerConfig};
use crate::error::{Error, Result};

/// A key the replication check writes and deletes again on the primary.
const CHECK_KEY: &str = "streamdrill:replication-check";
/// How long one replication check's WAIT waits (below the probe's read timeout).
const CHECK_WAIT_MS: u64 = 100;

impl ServerConfig {
    /// Make the server a replica of whatever listens on loopback `port`: the
    /// managed primary, or the proxy in front of it when the replication link
    /// is a drill's fault target.
    pub fn replica_of(self, port: u16) -> Self {
        self.line(format!("replicaof 127.0.0.1 {port}"))
    }
}

impl RedisServer {
    /// `REPLICAOF NO ONE`: a replica stops following its primary and accepts
    /// writes, keeping what it had replicated so far. Then `CONFIG REWRITE`,
    /// as Sentinel does, so the `replicaof` line leaves its redis.conf and a
    /// later restart (a kill_redis after the failover) brings back a primary,
    /// not a replica of the dead server.
    pub fn promote(&mut self) -> Result<()> {
        self.expect_ok(
            "REPLICAOF NO ONE",
            b"*3\r\n$9\r\nREPLICAOF\r\n$2\r\nNO\r\n$3\r\nONE\r\n",
        )?;
        self.expect_ok("CONFIG REWRITE", b"*2\r\n$6\r\nCONFIG\r\n$7\r\nREWRITE\r\n")
    }

    fn expect_ok(&self, what: &str, resp: &[u8]) -> Result<()> {
        let reply = self
            .request(resp)
            .map_err(|e| self.replication_error(format!("{what} failed: {e}")))?;
        match reply.starts_with("+OK") {
            true => Ok(()),
            false => Err(self.replication_error(format!("{what} answered {:?}", reply.trim()))),
        }
    }

    /// Waits until this replica's link to its primary is up and the initial
    /// sync is over (`master_link_status:up` in INFO replication), so a run
    /// measures replication rather than the first full sync.
    pub fn wait_in_sync(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.request(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n") {
                Ok(info) if in_sync(&info) => return Ok(()),
                Ok(info) => last = info,
                Err(e) => last = e.to_string(),
            }
            sleep(POLL_INTERVAL);
        }
        let status = last
            .lines()
            .filter(|l| l.starts_with("master_"))
            .collect::<Vec<_>>()
            .join(", ");
        Err(self.replication_error(format!(
            "the replica was not in sync with its primary within {timeout:?} ({status})"
        )))
    }

    /// On a primary: waits until one of its writes reaches a replica (WAIT 1
    /// answers 1). A replica reports its link up once it has loaded the full
    /// sync, but after a diskless sync the primary streams nothing to it until
    /// the replica's first REPLCONF ACK, which came up to a second later here:
    /// a run started at "link up" saw its first writes unreplicated (WAIT
    /// timing out) or, with a failover soon after, lost. The check writes one
    /// key and deletes it, so the keyspace is as it was.
    pub fn wait_replicating(&self, timeout: Duration) -> Result<()> {
        let key = format!("${}\r\n{CHECK_KEY}\r\n", CHECK_KEY.len());
        let wait_ms = CHECK_WAIT_MS.to_string();
        let resp = format!(
            "*3\r\n$3\r\nSET\r\n{key}$1\r\n1\r\n*2\r\n$3\r\nDEL\r\n{key}\
             *3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n${}\r\n{wait_ms}\r\n",
            wait_ms.len()
        );
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.reply_lines(resp.as_bytes(), 3) {
                Ok(lines) if lines.last().is_some_and(|l| l == ":1") => return Ok(()),
                Ok(lines) => last = lines.join(" "),
                Err(e) => last = e.to_string(),
            }
            sleep(POLL_INTERVAL);
        }
        Err(self.replication_error(format!(
            "no write on the primary reached the replica within {timeout:?} (last: {last})"
        )))
    }

    /// Sends raw RESP and reads `n` one-line replies (`+OK`, `:1`, `-ERR ...`).
    fn reply_lines(&self, resp: &[u8], n: usize) -> std::io::Result<Vec<String>> {
        let mut stream = self.probe_connection()?;
        stream.write_all(resp)?;
        let mut reader = BufReader::new(stream);
        let mut lines = Vec::with_capacity(n);
        for _ in 0..n {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            lines.push(line.trim_end().to_string());
        }
        Ok(lines)
    }

    fn replication_error(&self, problem: String) -> Error {
        self.start_error(problem)
    }
}

/// INFO replication of a replica whose link is up and not loading a full sync.
fn in_sync(info: &str) -> bool {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    field("master_link_status:") == Some("up") && field("master_sync_in_progress:") != Some("1")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_replica_follows_its_primary_once_the_link_is_up() {
        let conf = ServerConfig::default()
            .replica_of(7001)
            .render(7002, None, Path::new("/d"));
        assert!(
            conf.lines().any(|l| l == "replicaof 127.0.0.1 7001"),
            "{conf}"
        );
        assert!(in_sync(
            "role:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\n"
        ));
        assert!(!in_sync("role:slave\r\nmaster_link_status:down\r\n"));
        assert!(!in_sync(
            "master_link_status:up\r\nmaster_sync_in_progress:1\r\n"
        ));
        assert!(!in_sync("role:master\r\n"));
    }
}
