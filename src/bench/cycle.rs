//! The scheduled produce -> XREADGROUP -> XACK cycle, each way of sending
//! run with its group and without, and the CPU of an empty timer wake-up
//! that floors any scheduled figure.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{BenchOptions, CycleRow, MAXLEN, harness_cpu_us, run_in_process};
use crate::clock::{CPU_TICK_S, Timer, process_cpu_s};
use crate::error::{Error, Result};
use crate::server::RedisServer;

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

/// Every way of sending, then the timer's floor at the cycle's gap.
pub(super) fn run(
    server: &RedisServer,
    out: &Path,
    opts: &BenchOptions,
) -> Result<(Vec<CycleRow>, f64)> {
    let rows = (CYCLES.iter())
        .map(|&(sending, fields)| cycle(server, out, opts, sending, fields))
        .collect::<Result<_>>()?;
    Ok((rows, timer_wake_cpu_us(1e6 / opts.cycle_rate_per_s)?))
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
