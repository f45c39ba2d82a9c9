//! `streamdrill bench`: the harness measured against the tool users would
//! otherwise pick, side by side on one managed Redis. For each payload size
//! and pipeline depth, streamdrill runs closed-loop (rate = "max") with the
//! same connection count, then redis-benchmark sends as many XADDs, of the
//! same fields, as streamdrill managed; throughput and client CPU per XADD are compared as
//! ratios, so the noise of a shared machine cancels out. A scheduled
//! produce -> XREADGROUP -> XACK cycle gives the harness CPU per event.
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
    pub cycle: Vec<CycleRow>,
    /// CPU µs of one empty precise sleep (see `timer_wake_cpu_us`); 0 when
    /// the cycle was skipped.
    pub timer_wake_cpu_us: f64,
}

pub fn run(opts: &BenchOptions) -> Result<BenchReport> {
    let idle = IdleHold::acquire(opts.cpu_idle);
    let server = RedisServer::start(ServerConfig::default())?;
    let out = tempfile::tempdir().map_err(|source| Error::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    let mut xadd = Vec::new();
    let mut redis_version = String::new();
    for &payload in &opts.payloads_bytes {
        for &pipeline in &opts.pipelines {
            let summary = xadd::saturate(&server, out.path(), opts, payload, pipeline)?;
            redis_version = summary.redis.version.clone();
            let sent = summary.produce.acked.max(1);
            let (rb_per_s, rb_cpu_s) =
                xadd::redis_benchmark(&server, opts.connections, pipeline, payload, sent)?;
            xadd.push(XaddRow {
                payload_bytes: payload,
                pipeline,
                streamdrill_per_s: summary.produce.achieved_rate_per_s,
                redis_benchmark_per_s: rb_per_s,
                streamdrill_cpu_us: harness_cpu_us(&summary),
                redis_benchmark_cpu_us: rb_cpu_s * 1e6 / sent as f64,
            });
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
