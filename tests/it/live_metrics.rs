//! The live metrics endpoint against the real tools: a Prometheus of the
//! test's own scrapes a drill and holds its last figures, `promtool check
//! metrics` accepts the exposition, and its latency quantiles are
//! timeseries.csv's. (That the Grafana dashboard asks only for series the
//! endpoint serves is a unit test of `live::exposition`.)
//! Tests that need `prometheus` or `promtool` skip, saying so, where they
//! are missing (Debian: `apt-get install -y prometheus`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use streamdrill::live::Live;
use streamdrill::live::http::MetricsServer;
use streamdrill::report::Summary;
use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::scenario::{Overrides, load_str};

use crate::support::wait_until;

/// A short drill: a consumer stalls from 2 s to 4 s, so its group's lag
/// grows while the fault's window is open.
const STALL_DRILL: &str = r#"
name = "live"
duration = "5s"
warmup = "1s"
drain_timeout = "10s"
[[producers]]
stream = "s"
rate = 400
[[groups]]
stream = "s"
name = "billing"
batch = 20
[[faults]]
at = "2s"
action = "stall_consumer"
consumer = "billing/0"
duration = "2s"
"#;

/// How often the test's Prometheus scrapes: often enough to see a 2 s fault.
const SCRAPE_INTERVAL: &str = "500ms";

fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        println!("SKIPPED: `{tool}` is not installed (Debian: apt-get install -y prometheus)");
    }
    found
}

/// The drill, its figures published on `server`'s board.
fn run_drill(server: &MetricsServer, out: &Path) -> (Summary, PathBuf) {
    let scenario = load_str(STALL_DRILL, "live.toml", &Overrides::default()).expect("valid");
    let options = RunOptions::new(out).workers(1).live(server.live().clone());
    let report = run_scenario(scenario, options).expect("run succeeds");
    (report.summary, report.dir)
}

/// A plain HTTP/1.1 GET; the body.
fn http_get(addr: SocketAddr, path_and_query: &str, accept: &str) -> String {
    let mut conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(
        head.contains(" 200 "),
        "GET {path_and_query}: {head}\n{body}"
    );
    // Prometheus answers in chunks when it likes; the endpoint never does.
    match head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        true => dechunk(body),
        false => body.to_string(),
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A Prometheus of the test's own, on a free loopback port with its data
/// in a temporary directory; killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  scrape_timeout: 400ms\n\
                 scrape_configs:\n  - job_name: streamdrill\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.path().join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus {
            child,
            addr,
            log,
            _dir: dir,
        };
        wait_until(Duration::from_secs(30), "prometheus to be ready", || {
            TcpStream::connect(addr).is_ok_and(|mut c| {
                let _ = write!(
                    c,
                    "GET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                );
                let mut text = String::new();
                let _ = c.read_to_string(&mut text);
                text.contains(" 200 ")
            })
        });
        prometheus
    }

    /// An instant query's result vector or matrix.
    fn query(&self, promql: &str) -> Vec<Value> {
        let body = http_get(
            self.addr,
            &format!("/api/v1/query?query={}", encode(promql)),
            "*/*",
        );
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{promql}: {e}: {body}\n{}", self.log_tail()));
        assert_eq!(json["status"], "success", "{promql}: {body}");
        json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encoding for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A sample value as Prometheus's API writes it: `[timestamp, "value"]`.
fn sample(pair: &Value) -> (f64, f64) {
    let t = pair[0].as_f64().expect("timestamp");
    let v = pair[1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("value");
    (t, v)
}

/// The raw samples of a range selector's one series.
fn raw_samples(prometheus: &Prometheus, selector: &str) -> Vec<(f64, f64)> {
    let result = prometheus.query(&format!("{selector}[10m]"));
    assert_eq!(
        result.len(),
        1,
        "{selector}: one series expected: {result:?}"
    );
    (result[0]["values"].as_array().expect("a matrix").iter())
        .map(sample)
        .collect()
}

#[test]
fn prometheus_scrapes_a_drill_and_keeps_its_last_figures() {
    if !have("prometheus") {
        return;
    }
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), Live::new()).unwrap();
    let prometheus = Prometheus::start(server.addr());
    wait_until(Duration::from_secs(20), "a first scrape", || {
        server.live().final_figures_scraped()
    });
    let out = tempfile::tempdir().unwrap();
    let (summary, _) = run_drill(&server, out.path());
    // What the command does after a run (`wait_for_final_scrape`), with a
    // deadline a loaded machine cannot miss.
    wait_until(
        Duration::from_secs(20),
        "a scrape of the final figures",
        || server.live().final_figures_scraped(),
    );

    let up = prometheus.query("up");
    assert_eq!(
        up[0]["value"][1],
        "1",
        "target up: {up:?}\n{}",
        prometheus.log_tail()
    );
    // The last value Prometheus holds is summary.json's, phase by phase,
    // once it has committed the final scrape's samples (served is not yet
    // stored).
    for (phase, expected) in [
        ("measured", summary.produce.acked),
        ("warmup", summary.warmup.produce_acked),
    ] {
        let promql =
            format!("last_over_time(streamdrill_produce_acked_total{{phase=\"{phase}\"}}[10m])");
        wait_until(
            Duration::from_secs(20),
            &format!("Prometheus to hold {expected} {phase} acked"),
            || {
                let last = prometheus.query(&promql);
                last.len() == 1 && sample(&last[0]["value"]).1 as u64 == expected
            },
        );
    }

    // During the fault, in Prometheus's time: the window from summary.json.
    let fault = &summary.faults[0];
    let from = summary.started_at_unix_s + fault.start_s;
    let to = summary.started_at_unix_s + fault.end_s;
    let during = |samples: &[(f64, f64)]| -> Vec<(f64, f64)> {
        // Figures are up to one second old when scraped.
        (samples.iter().copied())
            .filter(|&(t, _)| t >= from && t <= to + 1.0)
            .collect()
    };
    let active = raw_samples(
        &prometheus,
        "streamdrill_fault_active{kind=\"stall_consumer\",target=\"billing/0\"}",
    );
    let open = during(&active);
    assert!(
        open.iter().any(|&(_, v)| v == 1.0),
        "the fault's gauge is 1 during the fault ({from}..{to}): {active:?}"
    );
    assert!(
        active.iter().any(|&(_, v)| v == 0.0),
        "and 0 outside it: {active:?}"
    );
    let lag = raw_samples(&prometheus, "streamdrill_group_lag{group=\"billing\"}");
    let lag_during = during(&lag);
    assert!(
        !lag_during.is_empty(),
        "lag samples during the fault: {lag:?}"
    );
    assert!(
        lag_during.iter().any(|&(_, v)| v > 0.0),
        "the stalled group lags: {lag_during:?}"
    );
    wait_until(
        Duration::from_secs(20),
        "Prometheus to hold the run's last phase, done",
        || (prometheus.query("streamdrill_run_phase{phase=\"done\"} == 1")).len() == 1,
    );
}

#[test]
fn promtool_accepts_the_exposition_and_its_quantiles_are_timeseries_csv() {
    if !have("promtool") {
        return;
    }
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), Live::new()).unwrap();
    // Scrapes through the run, as a scraper would, in the plain text format.
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let (addr, stop) = (server.addr(), stop.clone());
        std::thread::spawn(move || {
            let mut scrapes = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                scrapes.push(http_get(addr, "/metrics", "text/plain"));
                std::thread::sleep(Duration::from_millis(200));
            }
            scrapes
        })
    };
    let out = tempfile::tempdir().unwrap();
    let (_, dir) = run_drill(&server, out.path());
    stop.store(true, Ordering::Relaxed);
    let mut scrapes = scraper.join().unwrap();
    scrapes.push(http_get(server.addr(), "/metrics", "text/plain"));

    for text in [&scrapes[scrapes.len() / 2], scrapes.last().unwrap()] {
        let mut check = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool runs");
        check
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let verdict = check.wait_with_output().unwrap();
        assert!(
            verdict.status.success(),
            "promtool check metrics: {}{}\n{text}",
            String::from_utf8_lossy(&verdict.stdout),
            String::from_utf8_lossy(&verdict.stderr)
        );
    }

    // Each scrape's quantile is the p99 of timeseries.csv's row for the
    // second it names, to the microsecond.
    let csv = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    let mut rows = csv.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (t_s, p99, acked) = (column("t_s"), column("produce_p99_us"), column("acked"));
    let rows: Vec<Vec<&str>> = rows.map(|r| r.split(',').collect()).collect();
    let value_of = |text: &str, name: &str| -> Option<f64> {
        (text.lines())
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    };
    let mut compared = 0;
    for text in &scrapes {
        let Some(second) = value_of(text, "streamdrill_settled_second_start_seconds") else {
            continue;
        };
        let row = (rows.iter())
            .find(|r| r[t_s].parse::<f64>().ok() == Some(second))
            .unwrap_or_else(|| panic!("no row for second {second}"));
        let acked_per_s = value_of(text, "streamdrill_produce_acked_events_per_second").unwrap();
        assert_eq!(
            acked_per_s.to_string(),
            row[acked],
            "acked in second {second}"
        );
        if let Some(q) = value_of(
            text,
            "streamdrill_produce_latency_seconds{quantile=\"0.99\"}",
        ) {
            assert_eq!(
                (q * 1e6).round().to_string(),
                row[p99],
                "p99 of second {second}"
            );
            compared += 1;
        }
    }
    assert!(compared >= 3, "{compared} seconds compared");
}
