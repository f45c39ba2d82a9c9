//! The library's one error type. Each variant carries the context a user
//! needs to fix the problem: which file and field, which server, which path.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario file (or a `--set` override) is malformed or asks for the impossible.
    #[error("{file}{}: `{field}`: {problem}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Scenario {
        file: String,
        line: Option<usize>,
        field: String,
        problem: String,
    },

    /// The command line itself is wrong (e.g. a `--set` without `=`).
    #[error("{0}")]
    Usage(String),

    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The managed server's binary (`redis.server`) is not there or cannot be run.
    #[error(
        "the managed server's binary {}: {problem}; set `redis.server` (`[redis] server = \"PATH\"` \
         or `--server PATH`) to a redis-server-compatible binary (`scripts/fetch-servers` fetches \
         Redis 8.2.3 and Valkey 9.1.2 into .servers/), install redis-server (Debian/Ubuntu: \
         `apt-get install -y redis-server`), or run against an existing server with \
         `--redis redis://host:port`",
        binary.display()
    )]
    ServerBinary { binary: PathBuf, problem: String },

    /// A managed server did not come up; the log tail says why.
    #[error("managed server {} on 127.0.0.1:{port} {problem}\n--- last lines of {} ---\n{log_tail}", binary.display(), log.display())]
    ServerStart {
        binary: PathBuf,
        port: u16,
        problem: String,
        log: PathBuf,
        log_tail: String,
    },

    /// A Redis command failed; `doing` says what streamdrill was trying to do.
    #[error("redis at {url}: {doing}: {source}")]
    Redis {
        url: String,
        doing: String,
        source: redis::RedisError,
    },

    /// The server lacks a stream feature the scenario needs (found by trying
    /// it, not from its version: docs/reports.md, "`summary.json`").
    #[error("redis at {url} ({server}): {problem}")]
    ServerLacks {
        url: String,
        server: String,
        problem: String,
    },

    /// The server refused commands the run would send, found before its
    /// clock started and before anything was written (docs/acl.md, "The preflight").
    #[error(
        "redis at {server} refuses {} this run needs from user {user:?}, so it did not start \
         (nothing was written):\n{}\n{fix}",
        match refusals.len() { 1 => "a command".to_string(), n => format!("{n} commands") },
        refusals.iter().map(|r| format!("  {r}")).collect::<Vec<_>>().join("\n")
    )]
    Refused {
        /// host:port, without credentials.
        server: String,
        user: String,
        refusals: Vec<Refusal>,
        /// What to change: the ACL rules to add, a setting, another server.
        fix: String,
    },

    /// TLS could not be set up: a certificate or key file, or a handshake.
    #[error("TLS: {0}")]
    Tls(String),

    /// A segment could not meet the others (docs/segments.md, "A common start").
    #[error("{0}")]
    Segment(String),

    /// The network fault proxy could not start; `doing` says what failed.
    #[error("fault proxy: cannot {doing}: {source}")]
    Proxy {
        doing: String,
        source: std::io::Error,
    },

    /// The power-loss file system could not mount, cut or unmount.
    #[error("power-loss file system at {}: cannot {doing}: {source}", mountpoint.display())]
    PowerFs {
        mountpoint: PathBuf,
        doing: String,
        source: std::io::Error,
    },

    /// Something inside the harness broke (an actor died); a bug, reported instead of a panic.
    #[error("internal error: {0}")]
    Internal(String),
}

/// One command the server refused when the preflight queued it.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The command as the run sends it, shortened: "CLIENT KILL TYPE normal SKIPME yes".
    pub command: String,
    /// What the run needs it for: "fault client_kill at 10s".
    pub needed_for: String,
    /// The server's words: "NOPERM this user has no permissions to run the 'client|kill' command".
    pub reply: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.command, self.needed_for, self.reply)
    }
}

impl Error {
    pub fn proxy(doing: impl Into<String>, source: std::io::Error) -> Self {
        Error::Proxy {
            doing: doing.into(),
            source,
        }
    }

    /// `url` is shown with its password hidden.
    pub fn redis(url: &str, doing: impl Into<String>, source: redis::RedisError) -> Self {
        Error::Redis {
            url: redact(url),
            doing: doing.into(),
            source,
        }
    }
}

/// `url` with its user and password hidden, as errors and reports show it.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(redact("redis://:secret@host:6379"), "redis://***@host:6379");
        assert_eq!(redact("rediss://u:pw@host"), "rediss://***@host");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
