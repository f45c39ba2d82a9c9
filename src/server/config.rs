//! What a managed server runs with: its binary, persistence, memory and
//! data directory settings, and the `redis.conf` they render to.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{DEFAULT_BINARY, DEFAULT_READY_TIMEOUT};
use crate::tls::TlsFiles;

/// When Redis fsyncs its AOF: redis.conf's `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    Always,
    #[default]
    Everysec,
    No,
}

impl Fsync {
    /// As redis.conf writes it.
    pub fn conf(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Everysec => "everysec",
            Fsync::No => "no",
        }
    }
}

/// Persistence and memory settings of a managed server, built by whoever
/// starts it (the runner from a scenario's `[redis]`, tests by hand). The
/// default has no persistence at all (no AOF, no RDB).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The server binary: a bare name (no `/`) is looked up on PATH (the
    /// default, `redis-server`, is `$STREAMDRILL_REDIS_SERVER` when that is
    /// set); a path is used as it is, a relative one from the current directory.
    pub binary: PathBuf,
    pub appendonly: bool,
    pub appendfsync: Fsync,
    /// RDB snapshot schedule in redis.conf syntax ("900 1 300 10"); "" disables RDB.
    pub save: String,
    /// e.g. "256mb"; `None` means unlimited.
    pub maxmemory: Option<String>,
    /// Raw redis.conf lines, written last so they override the rest.
    pub extra: Vec<String>,
    /// Where the AOF and RDB files go (redis.conf's `dir`); `None`: the
    /// server's own temporary directory. A power-loss drill points it at a
    /// [`crate::powerfs`] mount; redis.conf and the log stay in the temp dir.
    pub data_dir: Option<PathBuf>,
    /// Keep the AOF and RDB on a power-loss file system of the server's own,
    /// mounted in its temporary directory (overrides `data_dir`), so that
    /// [`RedisServer::power_cut`] can drop what was never fsynced
    /// (docs/faults.md, "Power loss").
    pub power_fs: bool,
    /// How long `start` and `restart` wait for PING to answer (loading a
    /// large AOF on restart may need more than the default).
    pub ready_timeout: Duration,
    /// TLS only: no plain port, TLS on the server's port, replication over
    /// TLS too (docs/tls.md, "Managed servers").
    pub tls: Option<ServerTls>,
    /// A Redis Cluster node with this `cluster-node-timeout`: how long a
    /// primary may be unreachable before its replica takes over
    /// (docs/cluster.md, "Managed clusters").
    pub cluster_node_timeout: Option<Duration>,
}

/// The TLS of a TLS-only managed server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerTls {
    /// The CA and certificates; none: a throwaway CA made in the server's
    /// temporary directory when it starts. A replica is given its primary's.
    pub files: Option<TlsFiles>,
    /// `tls-auth-clients yes`: clients must show a certificate the CA signed.
    pub auth_clients: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            binary: PathBuf::from(DEFAULT_BINARY),
            appendonly: false,
            appendfsync: Fsync::Everysec,
            save: String::new(),
            maxmemory: None,
            extra: Vec::new(),
            data_dir: None,
            power_fs: false,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            tls: None,
            cluster_node_timeout: None,
        }
    }
}

impl ServerConfig {
    /// Run this binary (see [`ServerConfig::binary`]).
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = binary.into();
        self
    }

    /// Turn on the AOF with the given fsync policy.
    pub fn aof(mut self, appendfsync: Fsync) -> Self {
        self.appendonly = true;
        self.appendfsync = appendfsync;
        self
    }

    /// RDB snapshot schedule ("900 1"); "" disables RDB.
    pub fn save(mut self, schedule: impl Into<String>) -> Self {
        self.save = schedule.into();
        self
    }

    pub fn maxmemory(mut self, limit: impl Into<String>) -> Self {
        self.maxmemory = Some(limit.into());
        self
    }

    /// Append one raw redis.conf line.
    pub fn line(mut self, line: impl Into<String>) -> Self {
        self.extra.push(line.into());
        self
    }

    /// Keep the AOF and RDB files in `dir` (see [`ServerConfig::data_dir`]).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// TLS only, with a throwaway CA (see [`ServerConfig::tls`]).
    pub fn tls(mut self, auth_clients: bool) -> Self {
        self.tls = Some(ServerTls {
            files: None,
            auth_clients,
        });
        self
    }

    /// The redis.conf text for a server on `port` keeping its files in `dir`.
    /// redis.conf for a server on `port`; `bus_port` is a cluster node's
    /// cluster bus port (Redis's default, port + 10000, may not exist or be free).
    pub(super) fn render(&self, port: u16, bus_port: Option<u16>, dir: &Path) -> String {
        let fsync = self.appendfsync.conf();
        let save = if self.save.trim().is_empty() {
            "\"\""
        } else {
            self.save.trim()
        };
        // The log goes to stdout, which `spawn` points at the log file together
        // with stderr: config errors are printed to stderr before redis opens
        // any `logfile`, and they are exactly what a failed start must show.
        let listen = match &self.tls {
            Some(tls) => tls.render(port),
            None => format!("port {port}\n"),
        };
        let mut conf = format!(
            "{listen}bind 127.0.0.1\nprotected-mode no\ndaemonize no\n\
             dir {}\nlogfile \"\"\nsave {save}\nappendonly {}\nappendfsync {fsync}\n",
            quote(&self.data_dir.as_deref().unwrap_or(dir).to_string_lossy()),
            if self.appendonly { "yes" } else { "no" },
        );
        if let Some(limit) = &self.maxmemory {
            conf.push_str(&format!("maxmemory {limit}\n"));
        }
        if let (Some(timeout), Some(bus)) = (self.cluster_node_timeout, bus_port) {
            conf.push_str(&format!(
                "cluster-enabled yes\ncluster-config-file nodes.conf\n\
                 cluster-node-timeout {}\ncluster-port {bus}\n",
                timeout.as_millis()
            ));
        }
        for line in &self.extra {
            conf.push_str(line);
            conf.push('\n');
        }
        conf
    }
}

impl ServerTls {
    /// The listening lines: TLS on `port` and no plain port at all.
    fn render(&self, port: u16) -> String {
        let mut conf = format!("port 0\ntls-port {port}\ntls-replication yes\n");
        if let Some(files) = &self.files {
            for (option, path) in [
                ("tls-cert-file", &files.server_cert),
                ("tls-key-file", &files.server_key),
                ("tls-ca-cert-file", &files.ca),
            ] {
                conf.push_str(&format!("{option} {}\n", quote(&path.to_string_lossy())));
            }
        }
        let auth = if self.auth_clients { "yes" } else { "no" };
        conf.push_str(&format!("tls-auth-clients {auth}\n"));
        conf
    }
}

/// redis.conf string quoting, so a data dir with spaces or quotes survives.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_renders_no_persistence() {
        let conf = ServerConfig::default().render(6390, None, Path::new("/tmp/x y"));
        for line in [
            "port 6390",
            "bind 127.0.0.1",
            "dir \"/tmp/x y\"",
            "save \"\"",
            "appendonly no",
            "protected-mode no",
            "daemonize no",
        ] {
            assert!(
                conf.lines().any(|l| l == line),
                "missing {line:?} in\n{conf}"
            );
        }
        assert!(!conf.contains("maxmemory"));
    }

    #[test]
    fn settings_render_and_extra_lines_come_last() {
        let config = ServerConfig::default()
            .aof(Fsync::Always)
            .save("900 1")
            .maxmemory("64mb")
            .line("maxmemory-policy allkeys-lru")
            .line("hz 50");
        let conf = config.render(1, None, Path::new("/d"));
        let lines: Vec<&str> = conf.lines().collect();
        for line in [
            "appendonly yes",
            "appendfsync always",
            "save 900 1",
            "maxmemory 64mb",
        ] {
            assert!(lines.contains(&line), "missing {line:?} in\n{conf}");
        }
        assert_eq!(
            &lines[lines.len() - 2..],
            ["maxmemory-policy allkeys-lru", "hz 50"]
        );
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
