//! The bench report as terminal text.

use std::fmt::Write as _;

use super::BenchReport;
use crate::report::format_us;

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
