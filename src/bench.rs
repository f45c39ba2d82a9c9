//! `streamdrill bench`: the harness measured against the tool users would
//! otherwise pick, side by side on one managed Redis. For each payload size
//! and pipeline depth, streamdrill runs closed-loop (rate = "max") with the
//! same connection count, then redis-benchmark sends as many XADDs, of the
//! same fields, as streamdrill managed; throughput and client CPU per XADD are compared as
//! ratios, so the noise of a shared machine cancels out. A scheduled
//! produce -> XREADGROUP -> XACK cycle gives the harness CPU per event.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::clock::Timer;
use crate::clock::{CPU_TICK_S, process_cpu_s};
use crate::cpu_idle::{CpuIdle, IdleHold};
use crate::error::{Error, Result};
use crate::metrics::IdleState;
use crate::report::{Summary, format_us};
use crate::runner::{RunOptions, run_scenario};
use crate::scenario::{Overrides, load_str};
use crate::server::{RedisServer, ServerConfig};

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

/// The cycle's ways of sending: four producers on a connection each, every
/// event written the moment it falls due (the default); and the same
/// producers sharing one connection that lingers, coalescing what falls due
/// close together into one write, as a pooled client would.
const CYCLES: [(&str, &str); 3] = [
    ("4 connections, no linger", ""),
    (
        "1 connection, linger 100us",
        "connections = 1\nlinger = \"100us\"",
    ),
    (
        "1 connection, linger 500us",
        "connections = 1\nlinger = \"500us\"",
    ),
];

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
            let summary = saturate(&server, out.path(), opts, payload, pipeline)?;
            redis_version = summary.redis.version.clone();
            let sent = summary.produce.acked.max(1);
            let (rb_per_s, rb_cpu_s) =
                redis_benchmark(&server, opts.connections, pipeline, payload, sent)?;
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
        true => (
            (CYCLES.iter())
                .map(|&(sending, fields)| cycle(&server, out.path(), opts, sending, fields))
                .collect::<Result<_>>()?,
            timer_wake_cpu_us(1e6 / opts.cycle_rate_per_s)?,
        ),
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

fn saturate(
    server: &RedisServer,
    out: &Path,
    opts: &BenchOptions,
    payload: u64,
    pipeline: u32,
) -> Result<Summary> {
    let toml = format!(
        r#"
name = "bench-xadd"
duration = "{duration}ms"
drain_timeout = "5s"
[redis]
mode = "external"
url = "{url}"
[[streams]]
key = "bench"
maxlen = {MAXLEN}
[[producers]]
stream = "bench"
count = {connections}
rate = "max"
pipeline = {pipeline}
events = [ {{ type = "Bench", size = "{payload}B" }} ]
"#,
        duration = opts.duration.as_millis(),
        url = server.url(),
        connections = opts.connections,
    );
    run_in_process(&toml, out)
}

/// The cycle's one group: two consumers, no simulated work.
const SINK_GROUP: &str = r#"
[[groups]]
stream = "cycle"
name = "sink"
consumers = 2
batch = 500
"#;

fn cycle(
    server: &RedisServer,
    out: &Path,
    opts: &BenchOptions,
    sending: &'static str,
    producer_fields: &str,
) -> Result<CycleRow> {
    // The same schedule twice, with and without the group. The difference is
    // what the group added, a lower bound on what consuming and acknowledging
    // cost: producers alone wake an idle loop for fewer events per wake-up.
    let toml = |group: &str| {
        format!(
            r#"
name = "bench-cycle"
duration = "{duration}ms"
warmup = "{warmup}ms"
drain_timeout = "10s"
[redis]
mode = "external"
url = "{url}"
[[streams]]
key = "cycle"
maxlen = {MAXLEN}
[[producers]]
stream = "cycle"
count = 4
rate = {rate}
{producer_fields}
events = [ {{ type = "Bench", size = "128B" }} ]
{group}"#,
            duration = opts.duration.as_millis(),
            warmup = opts.duration.as_millis() / 5,
            url = server.url(),
            rate = opts.cycle_rate_per_s,
        )
    };
    let alone = run_in_process(&toml(""), out)?;
    let s = run_in_process(&toml(SINK_GROUP), out)?;
    // The kernel counts CPU in 10 ms ticks: a split finer than the
    // resolution of a short run would be noise.
    let events = (alone.produce.sent + alone.warmup.produce_sent).max(1);
    let resolution_us = CPU_TICK_S * 1e6 / events as f64;
    Ok(CycleRow {
        sending,
        target_per_s: s.produce.target_rate_per_s,
        achieved_per_s: s.produce.achieved_rate_per_s,
        cpu_us_per_event: harness_cpu_us(&s),
        produce_cpu_us_per_event: (resolution_us < 0.1).then(|| harness_cpu_us(&alone)),
        e2e_p99_us: (s.groups.first()).map_or(0, |g| g.measured.e2e_latency_us.p99),
        schedule_lag_p99_us: s.produce.schedule_lag_us.p99,
    })
}

/// The CPU one wake-up of the producers' precise timer costs with nothing
/// else to do: sleeps of `gap_us` back to back for a second. A scheduled
/// producer pays this once per wake-up however lean the rest is, so it is
/// the floor under the cycle's per-event figure (on a VM, arming the timer
/// and taking its interrupt each leave the guest).
fn timer_wake_cpu_us(gap_us: f64) -> Result<f64> {
    let gap = Duration::from_secs_f64(gap_us.max(1.0) / 1e6);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
    let before = process_cpu_s();
    let wakes = runtime.block_on(async {
        let (timer, end) = (Timer::new(), Instant::now() + Duration::from_secs(1));
        let mut wakes = 0u32;
        while Instant::now() < end {
            timer.sleep_until(Instant::now() + gap).await;
            wakes += 1;
        }
        wakes
    });
    Ok((process_cpu_s() - before) * 1e6 / f64::from(wakes.max(1)))
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

/// `requests` XADDs with redis-benchmark; returns its rate and its own CPU seconds
/// (bash's `times` reports the children's user and system time).
fn redis_benchmark(
    server: &RedisServer,
    connections: u32,
    pipeline: u32,
    payload: u64,
    requests: u64,
) -> Result<(f64, f64)> {
    let value = "x".repeat(payload as usize);
    // The entry streamdrill writes, field for field (a typical header, type,
    // aggregate with its version, payload): Redis's work per XADD grows with its fields, so
    // a one-field XADD would flatter redis-benchmark's rate.
    let script = format!(
        "redis-benchmark -p {port} -c {connections} -P {pipeline} -n {requests} --csv \
         XADD rbench MAXLEN '~' {MAXLEN} '*' sd 12:1048576:1764230400123456789 \
         type Bench agg 4242:17 data {value} && times",
        port = server.port()
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .map_err(|e| Error::Internal(format!("running redis-benchmark: {e}")))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(Error::Internal(format!(
            "redis-benchmark failed (is it installed? it ships with redis-server): {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    parse_benchmark_output(&text)
        .ok_or_else(|| Error::Internal(format!("could not read redis-benchmark's output:\n{text}")))
}

/// The rps column of redis-benchmark's CSV line, and the children's CPU from `times`.
fn parse_benchmark_output(text: &str) -> Option<(f64, f64)> {
    let csv = text.lines().find(|l| l.starts_with("\"XADD"))?;
    let rps: f64 = csv.split(',').nth(1)?.trim_matches('"').parse().ok()?;
    let children = text
        .lines()
        .rev()
        .find(|l| l.contains("m") && l.ends_with('s'))?;
    let cpu: f64 = children
        .split_whitespace()
        .filter_map(parse_times_field)
        .sum();
    Some((rps, cpu))
}

/// "0m1.234s" -> 1.234
fn parse_times_field(field: &str) -> Option<f64> {
    let (m, s) = field.strip_suffix('s')?.split_once('m')?;
    Some(m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

pub fn render(r: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "XADD, closed loop, {} connections, Redis {} on loopback, idle CPUs: {} (ratio = streamdrill / redis-benchmark)",
        r.connections, r.redis_version, r.cpu_idle
    );
    let _ = writeln!(
        out,
        "{:>8} {:>5} {:>14} {:>16} {:>7} {:>12} {:>12} {:>7}",
        "payload",
        "pipe",
        "streamdrill/s",
        "redis-bench/s",
        "ratio",
        "sd cpu/op",
        "rb cpu/op",
        "ratio"
    );
    for x in &r.xadd {
        let _ = writeln!(
            out,
            "{:>7}B {:>5} {:>14.0} {:>16.0} {:>7.2} {:>10.2}µs {:>10.2}µs {:>7.2}",
            x.payload_bytes,
            x.pipeline,
            x.streamdrill_per_s,
            x.redis_benchmark_per_s,
            x.streamdrill_per_s / x.redis_benchmark_per_s.max(1e-9),
            x.streamdrill_cpu_us,
            x.redis_benchmark_cpu_us,
            x.streamdrill_cpu_us / x.redis_benchmark_cpu_us.max(1e-9),
        );
    }
    if !r.cycle.is_empty() {
        let _ = writeln!(
            out,
            "\nfull cycle (XADD -> XREADGROUP -> XACK, one group, 2 consumers), CPU from clock start to drained:"
        );
    }
    for c in &r.cycle {
        let split = match c.produce_cpu_us_per_event {
            Some(alone) => format!(
                "producers alone {alone:.2}, the group added {:.2}",
                // Below zero is noise: producers alone batch less.
                (c.cpu_us_per_event - alone).max(0.0)
            ),
            None => "run too short to split".to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<27} target {:.0}/s achieved {:.0}/s, harness CPU {:.2}µs/event ({split}), \
             e2e p99 {}, schedule lag p99 {}",
            c.sending,
            c.target_per_s,
            c.achieved_per_s,
            c.cpu_us_per_event,
            format_us(c.e2e_p99_us),
            format_us(c.schedule_lag_p99_us)
        );
    }
    if r.timer_wake_cpu_us > 0.0 {
        let _ = writeln!(
            out,
            "  an empty precise timer wake-up, for scale: {:.2}µs CPU (a scheduled producer pays one per wake-up)",
            r.timer_wake_cpu_us
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redis_benchmark_csv_and_times() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\"\n\"XADD rbench MAXLEN ~ 100000 * field xx\",\"716845.81\",\"1.055\"\n0m0.002s 0m0.000s\n0m1.018s 0m0.060s\n";
        let (rps, cpu) = parse_benchmark_output(text).unwrap();
        assert_eq!(rps, 716845.81);
        assert!((cpu - 1.078).abs() < 1e-9);
    }
}
