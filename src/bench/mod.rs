//! `streamdrill bench`: the harness measured against the tool users would
//! otherwise pick, side by side on one managed Redis. For each payload size
//! and pipeline depth, streamdrill runs closed-loop (rate = "max") with the
//! same connection count, then redis-benchmark sends as many XADDs, of the
//! same fields, as streamdrill managed; throughput and client CPU per XADD are compared as
//! ratios, so the noise of a shared machine cancels out. A scheduled
//! produce -> XREADGROUP -> XACK cycle gives the harness CPU per event.
//! With `--tls`, each row runs again on a TLS-only managed server, and the
//! report adds what TLS cost: rate and Redis's CPU per XADD, TLS / plain.
//!
//! `xadd` runs the comparison, `cycle` the scheduled cycle, `render` turns
//! the report into text.

mod cycle;
mod render;
mod xadd;

use std::path::Path;
use std::time::Duration;

use crate::cpu_idle::{CpuIdle, IdleHold};
use crate::error::{Error, Result};
use crate::metrics::IdleState;
use crate::report::Summary;
use crate::runner::{RunOptions, run_scenario};
use crate::scenario::{Overrides, load_str};
use crate::server::{RedisServer, ServerConfig};

pub use render::render;

/// Both tools trim with MAXLEN ~ this, so the stream (and Redis's memory) stays
/// the same size whichever runs first.
const MAXLEN: u64 = 100_000;

pub struct BenchOptions {
    pub duration: Duration,
    pub connections: u32,
    pub payloads_bytes: Vec<u64>,
    pub pipelines: Vec<u32>,
    /// Scheduled rate of the full-cycle run (0 skips it).
    pub cycle_rate_per_s: f64,
    /// Held for the whole comparison, so both tools run with idle CPUs alike.
    pub cpu_idle: CpuIdle,
    /// Also run every row on a TLS-only managed server.
    pub tls: bool,
}

/// One side-by-side comparison.
#[derive(Debug, Clone)]
pub struct XaddRow {
    pub payload_bytes: u64,
    pub pipeline: u32,
    pub streamdrill_per_s: f64,
    pub redis_benchmark_per_s: f64,
    pub streamdrill_cpu_us: f64,
    pub redis_benchmark_cpu_us: f64,
    /// Redis's own CPU per XADD (INFO used_cpu_user + used_cpu_sys) while
    /// streamdrill ran, over its measured window; None when the window held
    /// fewer than two sampler readings.
    pub streamdrill_redis_cpu_us: Option<f64>,
    /// The same while redis-benchmark ran, over its whole run.
    pub redis_benchmark_redis_cpu_us: f64,
}

/// The comparison again on a TLS-only managed server.
#[derive(Debug, Clone)]
pub struct TlsComparison {
    /// What streamdrill's connections negotiated, e.g. "TLSv1.3
    /// TLS13_AES_256_GCM_SHA384".
    pub negotiated: String,
    /// Row for row as the plain `BenchReport::xadd`.
    pub xadd: Vec<XaddRow>,
}

/// The scheduled produce + consume + acknowledge cycle.
#[derive(Debug, Clone)]
pub struct CycleRow {
    /// How its four producers send (see `CYCLES`).
    pub sending: &'static str,
    pub target_per_s: f64,
    pub achieved_per_s: f64,
    pub cpu_us_per_event: f64,
    /// The same producers with no group reading; None when the run was too
    /// short to tell the difference from the CPU clock's resolution.
    pub produce_cpu_us_per_event: Option<f64>,
    pub e2e_p99_us: u64,
    pub schedule_lag_p99_us: u64,
}

pub struct BenchReport {
    pub redis_version: String,
    /// What the hold the comparison ran under held.
    pub cpu_idle: IdleState,
    pub connections: u32,
    pub xadd: Vec<XaddRow>,
    /// None without `--tls`.
    pub tls: Option<TlsComparison>,
    pub cycle: Vec<CycleRow>,
    /// CPU µs of one empty precise sleep (see `timer_wake_cpu_us`); 0 when
    /// the cycle was skipped.
    pub timer_wake_cpu_us: f64,
}

pub fn run(opts: &BenchOptions) -> Result<BenchReport> {
    let idle = IdleHold::acquire(opts.cpu_idle);
    let server = RedisServer::start(ServerConfig::default())?;
    // Both servers stay up through the grid, so each TLS row runs right
    // after its plain one: a shared machine's load drifts over minutes, and
    // the TLS / plain ratios should not see it. No client certificates, so
    // redis-benchmark needs only the CA.
    let tls_server = match opts.tls {
        true => Some(RedisServer::start(ServerConfig::default().tls(false))?),
        false => None,
    };
    let out = tempfile::tempdir().map_err(|source| Error::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    let mut xadd = Vec::new();
    let mut tls = tls_server.as_ref().map(|_| TlsComparison {
        negotiated: String::new(),
        xadd: Vec::new(),
    });
    let mut redis_version = String::new();
    for &payload in &opts.payloads_bytes {
        for &pipeline in &opts.pipelines {
            let (row, summary) = xadd::compare(&server, out.path(), opts, payload, pipeline)?;
            redis_version = summary.redis.version.clone();
            xadd.push(row);
            if let (Some(server), Some(tls)) = (&tls_server, &mut tls) {
                let (row, summary) = xadd::compare(server, out.path(), opts, payload, pipeline)?;
                tls.negotiated =
                    (summary.redis.tls.as_ref()).map_or_else(String::new, |t| t.describe());
                tls.xadd.push(row);
            }
        }
    }
    let (cycle, timer_wake_cpu_us) = match opts.cycle_rate_per_s > 0.0 {
        true => cycle::run(&server, out.path(), opts)?,
        false => (Vec::new(), 0.0),
    };
    Ok(BenchReport {
        redis_version,
        cpu_idle: idle.state().clone(),
        connections: opts.connections,
        xadd,
        tls,
        cycle,
        timer_wake_cpu_us,
    })
}

/// Runs a scenario in this process (the server is another one).
fn run_in_process(toml: &str, out: &Path) -> Result<Summary> {
    let scenario = load_str(toml, "bench", &Overrides::default())?;
    // `run` holds the machine's idle state for the whole comparison.
    let options = RunOptions::new(out).cpu_idle(CpuIdle::Os);
    Ok(run_scenario(scenario, options)?.summary)
}

/// The run's own CPU per event, from the run clock's start to the end of
/// the drain (setup, read-back and report left out).
fn harness_cpu_us(s: &Summary) -> f64 {
    s.harness.as_ref().map_or(0.0, |h| h.cpu_us_per_event)
}
