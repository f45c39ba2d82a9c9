//! Managed `redis-server` processes: the runner starts one in managed mode,
//! the integration tests and benches start one each, and failure drills kill
//! and restart them. The binary is any redis-server-compatible one
//! ([`ServerConfig::binary`]: Redis, Valkey).
//!
//! A [`RedisServer`] owns a child process listening on a free loopback port
//! and a temporary data directory holding its `redis.conf`, its log and its
//! AOF/RDB files. [`RedisServer::restart`] reuses the same port and directory,
//! so recovery after [`RedisServer::kill9`] is the real thing. Dropping the
//! value kills the process and deletes the directory. This module is
//! synchronous: it only spawns, probes and kills processes.
//!
//! The child is not tied to our own death (`PR_SET_PDEATHSIG` needs `unsafe`
//! `pre_exec`); if the harness itself is SIGKILLed, its servers outlive it.
//!
//! - `config`: the settings a server starts with, and its `redis.conf`.
//! - `replication`: a replica following a primary, its sync and its promotion.
//! - `cluster`: a Redis Cluster of managed servers, formed and waited for.

pub mod cluster;
mod config;
mod replication;

pub use config::{Fsync, ServerConfig, ServerTls};

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::powerfs::{CutReport, PowerFs, Stats};
use crate::tls::{ClientTls, TlsFiles, TlsOptions, connect_blocking};

/// Environment variable naming the binary that the default [`DEFAULT_BINARY`]
/// stands for, overriding the PATH lookup.
pub const REDIS_SERVER_ENV: &str = "STREAMDRILL_REDIS_SERVER";
/// The binary a managed server runs unless told otherwise: looked up on PATH.
pub const DEFAULT_BINARY: &str = "redis-server";
/// Default time a server gets to answer PING after spawning (AOF/RDB loading included).
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful stop waits for the process to exit before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Fresh ports tried when the one we picked was taken before the server bound it.
const PORT_ATTEMPTS: u32 = 5;
/// Pause between readiness and exit probes.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Timeout of one readiness probe's connect, read and write.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// The log is read from at most this far before its end.
const LOG_TAIL_MAX_BYTES: u64 = 64 * 1024;
const CONF_FILE: &str = "redis.conf";
const LOG_FILE: &str = "redis.log";

/// A running (or killed, awaiting restart) redis-server of our own.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    ready_timeout: Duration,
    child: Option<Child>,
    /// Before `dir`: fields drop in order, so the mount goes before the
    /// directory it sits in (and after `Drop` has killed the server).
    power_fs: Option<PowerFs>,
    /// A TLS-only server's certificates, and how its own probes connect.
    tls: Option<Tls>,
    dir: tempfile::TempDir,
}

#[derive(Debug)]
struct Tls {
    files: TlsFiles,
    /// The CA, and the client certificate when the server asks for one.
    client: ClientTls,
}

/// A probe's connection: plain TCP, or TLS over it.
trait Duplex: Read + Write {}
impl<T: Read + Write> Duplex for T {}

impl RedisServer {
    /// Start a server on a free loopback port in a fresh temporary directory
    /// and wait until it answers PING.
    pub fn start(mut config: ServerConfig) -> Result<RedisServer> {
        let binary = find_binary(&config.binary)?;
        let dir = tempfile::Builder::new()
            .prefix("streamdrill-redis-")
            .tempdir()
            .map_err(|source| Error::Write {
                path: std::env::temp_dir(),
                source,
            })?;
        let power_fs = match config.power_fs {
            true => {
                let fs = mount_power_fs(dir.path())?;
                config.data_dir = Some(fs.mountpoint().to_path_buf());
                Some(fs)
            }
            false => None,
        };
        let tls = match &mut config.tls {
            Some(tls) => {
                let files = match &tls.files {
                    Some(files) => files.clone(),
                    None => TlsFiles::generate(dir.path())?,
                };
                tls.files = Some(files.clone());
                Some(Tls::new(files, tls.auth_clients)?)
            }
            None => None,
        };
        let mut server = RedisServer {
            binary,
            port: 0,
            ready_timeout: config.ready_timeout,
            child: None,
            power_fs,
            tls,
            dir,
        };
        let mut attempt = 1;
        loop {
            server.port =
                free_port().map_err(|e| server.start_error(format!("found no free port: {e}")))?;
            let bus_port = match config.cluster_node_timeout {
                Some(_) => Some(free_port().map_err(|e| {
                    server.start_error(format!("found no free cluster bus port: {e}"))
                })?),
                None => None,
            };
            let conf = server.dir().join(CONF_FILE);
            fs::write(&conf, config.render(server.port, bus_port, server.dir()))
                .map_err(|source| Error::Write { path: conf, source })?;
            // A fresh log per attempt, so a retry's tail is not the last attempt's.
            let _ = fs::remove_file(server.log_path());
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                // Another process took the port between our probe and redis's bind.
                Err(_)
                    if attempt < PORT_ATTEMPTS
                        && server.log_tail(20).contains("Address already in use") =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The binary this server runs, as an absolute path.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://` for a TLS-only server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// How clients reach a TLS-only server: its CA, and the client
    /// certificate when it asks for one. None for a plain server.
    pub fn client_tls(&self) -> Option<ClientTls> {
        self.tls.as_ref().map(|t| t.client.clone())
    }

    /// A TLS-only server's CA and certificates (a replica is given these).
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref().map(|t| &t.files)
    }

    /// The server's directory: redis.conf, redis.log, and the AOF and RDB
    /// files unless [`ServerConfig::data_dir`] put them elsewhere.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id while a process is running (or dead but not yet reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still alive (a crash is noticed and reaped here).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(None) => true,
                Ok(Some(_)) | Err(_) => {
                    self.child = None;
                    false
                }
            },
            None => false,
        }
    }

    /// SIGKILL and reap: whatever was not yet persisted is lost, as in a crash.
    /// A no-op when the process is already gone.
    pub fn kill9(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // `kill` fails only when the child already exited; `wait` reaps either way.
        let _ = child.kill();
        child.wait().map(drop).map_err(|e| {
            Error::Internal(format!(
                "cannot reap redis-server pid {} on port {}: {e}",
                child.id(),
                self.port
            ))
        })
    }

    /// Start again on the same port and data directory, so the server
    /// recovers from its own AOF/RDB files, and wait until it answers PING
    /// (which it does not while loading). A server still running is killed -9 first.
    pub fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        self.spawn_and_wait()
    }

    /// The host loses power: SIGKILL, then every byte of the data files not
    /// fsynced since it was written is gone. Needs `ServerConfig::power_fs`.
    pub fn power_cut(&mut self) -> Result<CutReport> {
        self.kill9()?;
        match &self.power_fs {
            Some(fs) => fs.power_cut(),
            None => Err(Error::Internal(format!(
                "redis-server on port {} has no power-loss file system to cut",
                self.port
            ))),
        }
    }

    /// What the power-loss file system under the data files has seen, if any.
    pub fn power_fs_stats(&self) -> Option<Stats> {
        self.power_fs.as_ref().map(PowerFs::stats)
    }

    /// Graceful stop: SHUTDOWN (which, like SIGTERM, writes an RDB snapshot
    /// when save points are configured and flushes the AOF), then wait for
    /// the exit; SIGKILL if the server refuses or takes longer than the deadline.
    pub fn stop(&mut self) -> Result<()> {
        if !self.is_running() {
            return Ok(());
        }
        if let Ok(reply) = self.request(b"*1\r\n$8\r\nSHUTDOWN\r\n") {
            // A successful SHUTDOWN closes the connection without a reply;
            // an error line means it refused (e.g. the RDB save failed).
            if reply.starts_with('-') {
                return self.kill9();
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !self.is_running() {
                return Ok(());
            }
            sleep(POLL_INTERVAL);
        }
        self.kill9()
    }

    /// The last `lines` lines of the server's log (its stdout and stderr).
    pub fn log_tail(&self, lines: usize) -> String {
        read_tail(&self.log_path(), lines).unwrap_or_else(|e| format!("(cannot read the log: {e})"))
    }

    fn log_path(&self) -> PathBuf {
        self.dir().join(LOG_FILE)
    }

    fn start_error(&self, problem: String) -> Error {
        Error::ServerStart {
            binary: self.binary.clone(),
            port: self.port,
            problem,
            log: self.log_path(),
            log_tail: self.log_tail(30),
        }
    }

    fn spawn_and_wait(&mut self) -> Result<()> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| Error::Write {
                path: log_path.clone(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| Error::Write {
            path: log_path,
            source,
        })?;
        let child = Command::new(&self.binary)
            .arg(self.dir().join(CONF_FILE))
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: a Ctrl-C at the terminal reaches only the
            // harness, which stops the run and then this server in order.
            .process_group(0)
            .spawn()
            .map_err(|e| self.start_error(format!("could not be spawned: {e}")))?;
        self.child = Some(child);
        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(problem) => {
                let _ = self.kill9();
                Err(self.start_error(problem))
            }
        }
    }

    /// Poll until our own process answers PING with +PONG, it exits, or the deadline passes.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("exited ({status}) before answering PING"));
            }
            let last = match self.probe() {
                Ok(()) => return Ok(()),
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "did not answer PING within {:?} (last probe: {last})",
                    self.ready_timeout
                ));
            }
            sleep(POLL_INTERVAL);
        }
    }

    /// One readiness probe: PING must answer +PONG (not -LOADING), and the
    /// answering process must be ours, not someone who grabbed the port first.
    fn probe(&self) -> Result<(), String> {
        let reply = self
            .request(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            .map_err(|e| e.to_string())?;
        if !reply.starts_with("+PONG") {
            return Err(reply.lines().next().unwrap_or_default().to_string());
        }
        let pid = reply
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|p| p.trim().parse::<u32>().ok());
        match (pid, self.pid()) {
            (Some(theirs), Some(ours)) if theirs == ours => Ok(()),
            (theirs, _) => Err(format!("port answered by another process (pid {theirs:?})")),
        }
    }

    /// Send raw RESP and return what comes back: for PING + INFO, the +PONG
    /// line and the whole INFO bulk string; for SHUTDOWN, "" or an error line.
    fn request(&self, resp: &[u8]) -> std::io::Result<String> {
        let mut stream = self.probe_connection()?;
        stream.write_all(resp)?;
        let mut reader = BufReader::new(stream);
        let mut first = String::new();
        if reader.read_line(&mut first)? == 0 || !first.starts_with("+PONG") {
            return Ok(first);
        }
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let len: usize = header
            .trim()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        Ok(first + &String::from_utf8_lossy(&body))
    }

    /// One INFO section as the server answers it (`INFO cpu`): for callers
    /// that may not hold a client of their own, such as `bench`.
    pub fn info(&self, section: &str) -> Result<String> {
        let resp = format!(
            "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n${}\r\n{section}\r\n",
            section.len()
        );
        let reply = self
            .request(resp.as_bytes())
            .map_err(|e| Error::Internal(format!("INFO {section} on port {}: {e}", self.port)))?;
        match reply.strip_prefix("+PONG\r\n") {
            Some(info) => Ok(info.to_string()),
            None => Err(Error::Internal(format!(
                "INFO {section} on port {} answered {:?}",
                self.port,
                reply.lines().next().unwrap_or_default()
            ))),
        }
    }

    /// A short connection of the probes' own, with their timeouts.
    fn probe_connection(&self) -> io::Result<Box<dyn Duplex>> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
        stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
        stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
        Ok(match &self.tls {
            Some(tls) => Box::new(connect_blocking(&tls.client, "127.0.0.1", stream)?),
            None => Box::new(stream),
        })
    }

    /// SIGSTOP: the process stays, its connections stay open, nothing is
    /// answered until [`RedisServer::thaw`]. A no-op without a process.
    pub fn freeze(&mut self) -> Result<()> {
        self.signal("STOP")
    }

    /// SIGCONT after [`RedisServer::freeze`].
    pub fn thaw(&mut self) -> Result<()> {
        self.signal("CONT")
    }

    /// `kill -<name> <pid>`: the std library only sends SIGKILL, and the
    /// crate forbids `unsafe` libc calls.
    fn signal(&mut self, name: &str) -> Result<()> {
        let Some(pid) = self.pid().filter(|_| self.is_running()) else {
            return Ok(());
        };
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status();
        match status {
            Ok(s) if s.success() => Ok(()),
            outcome => Err(Error::Internal(format!(
                "kill -{name} {pid} (redis-server on port {}) failed: {outcome:?}",
                self.port
            ))),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// `<dir>/data` mounted over `<dir>/backing`; FUSE's absence is an error
/// that says how to get it.
fn mount_power_fs(dir: &Path) -> Result<PowerFs> {
    let (backing, data) = (dir.join("backing"), dir.join("data"));
    if let Err(why) = crate::powerfs::available() {
        return Err(Error::PowerFs {
            mountpoint: data,
            doing: format!("mount it for a power_loss drill ({why})"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    for d in [&backing, &data] {
        fs::create_dir(d).map_err(|source| Error::Write {
            path: d.clone(),
            source,
        })?;
    }
    PowerFs::mount(&backing, &data)
}

/// The executable `binary` names, as an absolute path (the server runs in
/// its data directory, where a relative path would point elsewhere): a bare
/// name is looked up on PATH, the default one first as
/// `$STREAMDRILL_REDIS_SERVER` if that is set; a path is taken from the
/// current directory. Checked before anything is spawned, so a wrong path is
/// an error naming it rather than a failed start.
fn find_binary(binary: &Path) -> Result<PathBuf> {
    let unusable = |binary: &Path, problem: String| Error::ServerBinary {
        binary: binary.to_path_buf(),
        problem,
    };
    let env = std::env::var_os(REDIS_SERVER_ENV).filter(|p| !p.is_empty());
    if let Some(env) = env.filter(|_| binary == Path::new(DEFAULT_BINARY)) {
        let env = PathBuf::from(env);
        return executable(&env).map_err(|problem| {
            unusable(&env, format!("{problem} (${REDIS_SERVER_ENV} names it)"))
        });
    }
    if binary.as_os_str().is_empty() || binary.to_string_lossy().contains('/') {
        return executable(binary).map_err(|problem| unusable(binary, problem));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find_map(|dir| executable(&dir.join(binary)).ok())
        .ok_or_else(|| unusable(binary, "not found on PATH".into()))
}

/// `path` as an absolute path if it is an executable file; else what it is instead.
fn executable(path: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        _ => e.to_string(),
    })?;
    let mode = meta.permissions().mode();
    if !meta.is_file() {
        Err("not a file".into())
    } else if mode & 0o111 == 0 {
        Err(format!(
            "not executable (mode {:o}; chmod +x it)",
            mode & 0o777
        ))
    } else {
        std::path::absolute(path).map_err(|e| e.to_string())
    }
}

impl Tls {
    fn new(files: TlsFiles, auth_clients: bool) -> Result<Tls> {
        let client = ClientTls::new(&TlsOptions {
            ca: Some(&files.ca),
            cert: auth_clients.then_some(files.client_cert.as_path()),
            key: auth_clients.then_some(files.client_key.as_path()),
            insecure: false,
        })?;
        Ok(Tls { files, client })
    }
}

/// A port the kernel just handed out. Racy by nature (someone may take it
/// before redis binds it), which `start` handles by retrying.
fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn read_tail(path: &Path, lines: usize) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_MAX_BYTES)))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    Ok(all[all.len().saturating_sub(lines)..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_path_must_be_an_executable_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("valkey-server");
        let problem = |path: &Path| find_binary(path).unwrap_err().to_string();
        let missing = problem(&path);
        for needle in [
            &format!("{}: no such file", path.display()),
            "`redis.server`",
            "--server PATH",
            "scripts/fetch-servers",
        ] {
            assert!(missing.contains(needle), "{needle:?} not in {missing}");
        }
        fs::write(&path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(problem(&path).contains("not executable (mode 644; chmod +x it)"));
        assert!(problem(dir.path()).contains("not a file"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_binary(&path).unwrap(), path);
    }

    /// A relative path is the current directory's (unit tests run in the
    /// package root), made absolute because the server runs in its data dir.
    #[test]
    fn a_relative_path_is_the_current_directory_s_and_a_name_is_on_path() {
        let script = find_binary(Path::new("scripts/fetch-servers")).unwrap();
        assert_eq!(
            script,
            std::env::current_dir()
                .unwrap()
                .join("scripts/fetch-servers")
        );
        assert!(find_binary(Path::new("sh")).unwrap().is_absolute());
        let e = find_binary(Path::new("no-such-server-7"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no-such-server-7: not found on PATH"), "{e}");
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "one\ntwo\nthree\n").unwrap();
        assert_eq!(read_tail(&path, 2).unwrap(), "two\nthree");
        assert_eq!(read_tail(&path, 10).unwrap(), "one\ntwo\nthree");
        assert!(read_tail(&dir.path().join("missing"), 2).is_err());
    }
}
