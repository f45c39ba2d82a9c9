//! The HTTP side of the endpoint: one thread of its own, a blocking std
//! listener, `GET /metrics` answered from the [`Live`] board, everything
//! else 404 (405 for another method). It is a thread and not a task on the
//! run's actix runtime because it must outlive each run's runtime (a
//! capacity search runs many) and must never share the event loop that
//! sends XADDs; it is hand-written because a scrape is one small GET, and
//! an HTTP server crate would bring a second runtime for it.
//!
//! Connections are served one at a time and closed after each response.
//! A client gets `HEAD_DEADLINE` for its whole request head, however slowly
//! it trickles in, and `MAX_HEAD_BYTES` of it are read at most: a slow or
//! hostile client delays the next scrape by that long at worst, and costs
//! no more memory than that.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Live;
use super::exposition::render;
use super::text::Format;
use crate::error::{Error, Result};

/// How long a connection may take to send its whole request head; also
/// the longest a response may take to write.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(2);
/// The most of a request head read; a scrape's is a few hundred bytes.
const MAX_HEAD_BYTES: u64 = 16 * 1024;
/// The pause after a failed accept, so that a lasting failure (out of file
/// descriptors) does not spin the thread.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// The path the metrics are served at.
pub const METRICS_PATH: &str = "/metrics";

/// The endpoint, serving until dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    live: Live,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// `--metrics-addr`: HOST:PORT, or PORT / :PORT for the loopback address,
/// so the endpoint is reachable from elsewhere only when asked.
pub fn parse_addr(text: &str) -> Result<SocketAddr> {
    let text = text.trim();
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)));
    }
    let usage = |why: String| Error::Usage(format!("--metrics-addr {text}: {why}"));
    (text.to_socket_addrs())
        .map_err(|e| usage(format!("{e}; write HOST:PORT, e.g. 127.0.0.1:9464")))?
        .next()
        .ok_or_else(|| usage("resolves to no address".into()))
}

impl MetricsServer {
    /// Binds `addr` (port 0: any free port) and serves `live` from a thread.
    pub fn start(addr: SocketAddr, live: Live) -> Result<MetricsServer> {
        let listener = TcpListener::bind(addr).map_err(|e| cannot_listen(addr, &e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Internal(format!("metrics endpoint address: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (live, stop) = (live.clone(), stop.clone());
            std::thread::Builder::new()
                .name("metrics-endpoint".into())
                .spawn(move || serve(&listener, &live, &stop))
                .map_err(|e| Error::Internal(format!("metrics endpoint thread: {e}")))?
        };
        Ok(MetricsServer {
            addr,
            live,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens (the port chosen for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}{METRICS_PATH}", self.addr)
    }

    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Keeps the endpoint up until its scraper has the run's last figures
    /// (docs/metrics-endpoint.md, "The end of a run"), unless Ctrl-C stopped
    /// the run or stops the wait: whoever pressed it wants the prompt back.
    /// `announce` is told how long it may wait, before it does.
    pub fn finish(self, interrupted: bool, announce: impl FnOnce(std::time::Duration)) {
        let Some(wait) = self.live().final_scrape_wait().filter(|_| !interrupted) else {
            return;
        };
        announce(wait);
        // The run's Ctrl-C handler outlives it and swallows the signal, so the
        // wait listens for it too.
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            self.live().wait_for_final_scrape();
            return;
        };
        let live = self.live().clone();
        runtime.block_on(async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = tokio::task::spawn_blocking(move || live.wait_for_final_scrape()) => {}
            }
        });
        // Leaves a wait cut short by Ctrl-C to end with the process.
        runtime.shutdown_background();
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the blocking accept; it then sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Why the endpoint cannot listen at `addr`, and for a port in use, what to
/// do about it.
fn cannot_listen(addr: SocketAddr, e: &io::Error) -> Error {
    let fix = match e.kind() {
        io::ErrorKind::AddrInUse if addr.ip().is_loopback() => {
            "; another process listens there: pick another port, or `--metrics-addr 0` for any free one (the URL is printed)".to_string()
        }
        io::ErrorKind::AddrInUse => format!(
            "; another process listens there: pick another port, or `--metrics-addr {}:0` for any free one (the URL is printed)",
            match addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            }
        ),
        _ => String::new(),
    };
    Error::Usage(format!(
        "--metrics-addr {addr}: cannot listen there: {e}{fix}"
    ))
}

fn serve(listener: &TcpListener, live: &Live, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // A failed accept or a client gone mid-request ends only that exchange.
        match conn {
            Ok(conn) => {
                let _ = answer(conn, live);
            }
            Err(_) => std::thread::sleep(ACCEPT_ERROR_PAUSE),
        }
    }
}

/// Reads from a connection until a deadline, however the bytes trickle in:
/// each read may wait only for the time left.
struct Deadline<'a> {
    conn: &'a TcpStream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.conn.set_read_timeout(Some(left))?;
        (&mut &*self.conn).read(buf)
    }
}

/// Reads one request head and answers it.
fn answer(mut conn: TcpStream, live: &Live) -> io::Result<()> {
    conn.set_write_timeout(Some(HEAD_DEADLINE))?;
    let head = Deadline {
        conn: &conn,
        until: Instant::now() + HEAD_DEADLINE,
    };
    let mut reader = BufReader::new(head.take(MAX_HEAD_BYTES));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut accept = String::new();
    loop {
        let mut line = String::new();
        // 0 at the end of the stream, or once MAX_HEAD_BYTES are read.
        let n = reader.read_line(&mut line)?;
        if n == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("accept")
        {
            accept = value.trim().to_string();
        }
    }
    drop(reader);
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body, generation) = match (method, path) {
        ("GET", METRICS_PATH) => {
            let format = Format::accepting(&accept);
            let (view, generation) = live.view();
            let body = render(&view, format, crate::clock::process_cpu_s());
            ("200 OK", format.content_type(), body, Some(generation))
        }
        (_, METRICS_PATH) => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".into(),
            None,
        ),
        _ => (
            "404 Not Found",
            "text/plain",
            format!("metrics are at {METRICS_PATH}\n"),
            None,
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    conn.flush()?;
    if let Some(generation) = generation {
        live.served(generation);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(addr: SocketAddr, path: &str, accept: &str) -> String {
        let mut conn = TcpStream::connect(addr).unwrap();
        write!(
            conn,
            "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn serves_metrics_in_the_format_asked_and_nothing_else() {
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), Live::new()).unwrap();
        let om = get(
            server.addr(),
            "/metrics",
            "application/openmetrics-text;version=1.0.0",
        );
        assert!(om.starts_with("HTTP/1.1 200 OK\r\n"), "{om}");
        assert!(om.contains("Content-Type: application/openmetrics-text"));
        assert!(om.ends_with("# EOF\n"), "{om}");
        let plain = get(server.addr(), "/metrics", "*/*");
        assert!(plain.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(plain.contains("streamdrill_harness_cpu_seconds_total "));
        assert!(get(server.addr(), "/", "*/*").starts_with("HTTP/1.1 404"));
        assert!(server.live().final_figures_scraped());
    }

    #[test]
    fn a_port_in_use_says_which_flag_and_what_to_do() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let Err(e) = MetricsServer::start(addr, Live::new()) else {
            panic!("a second listener on {addr}");
        };
        assert!(matches!(e, Error::Usage(_)), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("--metrics-addr"), "{text}");
        assert!(text.contains("`--metrics-addr 0`"), "{text}");
        // And what it suggests works: port 0 is any free port.
        let any = MetricsServer::start(parse_addr("0").unwrap(), Live::new()).unwrap();
        assert_ne!(any.addr().port(), 0);
    }

    #[test]
    fn a_client_trickling_its_head_is_cut_off_at_the_deadline() {
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), Live::new()).unwrap();
        let addr = server.addr();
        let started = Instant::now();
        let trickler = std::thread::spawn(move || {
            let mut conn = TcpStream::connect(addr).unwrap();
            // A byte every 50 ms, never a blank line, until cut off.
            while started.elapsed() < HEAD_DEADLINE * 3 {
                if conn.write_all(b"a").is_err() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        });
        std::thread::sleep(Duration::from_millis(100));
        let text = get(addr, "/metrics", "*/*");
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        let waited = started.elapsed();
        assert!(waited < HEAD_DEADLINE * 2, "a scrape waited {waited:?}");
        assert!(trickler.join().unwrap(), "the trickler was cut off");
    }

    #[test]
    fn a_bare_port_binds_loopback() {
        let lo = std::net::Ipv4Addr::LOCALHOST;
        assert_eq!(parse_addr("9464").unwrap(), SocketAddr::from((lo, 9464)));
        assert_eq!(parse_addr(":9464").unwrap(), SocketAddr::from((lo, 9464)));
        assert_eq!(
            parse_addr("0.0.0.0:9464").unwrap(),
            SocketAddr::from(([0, 0, 0, 0], 9464))
        );
        assert!(parse_addr("nowhere").is_err());
    }
}
