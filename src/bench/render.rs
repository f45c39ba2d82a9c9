//! The bench report as terminal text.

use std::fmt::Write as _;

use super::{BenchReport, XaddRow};
use crate::report::format_us;

pub fn render(r: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "XADD, closed loop, {} connections, Redis {} on loopback, idle CPUs: {} (ratio = streamdrill / redis-benchmark)",
        r.connections, r.redis_version, r.cpu_idle
    );
    xadd_table(&mut out, &r.xadd);
    if let Some(tls) = &r.tls {
        let _ = writeln!(
            out,
            "\nXADD over TLS ({}, no client certificate), the same on a TLS-only managed Redis (ratio = streamdrill / redis-benchmark)",
            match tls.negotiated.as_str() {
                "" => "TLS",
                negotiated => negotiated,
            }
        );
        xadd_table(&mut out, &tls.xadd);
        tls_cost(&mut out, &r.xadd, &tls.xadd);
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

/// The tools side by side, one row per payload and pipeline depth.
fn xadd_table(out: &mut String, rows: &[XaddRow]) {
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
    for x in rows {
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
}

/// What TLS cost, row by row: each tool's rate TLS / plain, and Redis's own
/// CPU per XADD plain and TLS, under each tool (the capacity figure: Redis
/// is single-threaded, so its CPU per XADD bounds the rate one core serves).
fn tls_cost(out: &mut String, plain: &[XaddRow], tls: &[XaddRow]) {
    let _ = writeln!(
        out,
        "\nTLS cost (TLS / plain, row by row); Redis CPU = INFO used_cpu_user + used_cpu_sys, \
         over streamdrill's measured window and over redis-benchmark's whole run"
    );
    let _ = writeln!(
        out,
        "{:>14} {:>17} {:>27} {:>27}",
        "", "rate TLS/plain", "Redis CPU/XADD, sd runs", "Redis CPU/XADD, rb runs"
    );
    let _ = writeln!(
        out,
        "{:>8} {:>5} {:>8} {:>8} {:>9} {:>9} {:>7} {:>9} {:>9} {:>7}",
        "payload", "pipe", "sd", "rb", "plain", "TLS", "ratio", "plain", "TLS", "ratio"
    );
    for (p, t) in plain.iter().zip(tls) {
        let (sd_plain, sd_tls) = (p.streamdrill_redis_cpu_us, t.streamdrill_redis_cpu_us);
        let (rb_plain, rb_tls) = (
            p.redis_benchmark_redis_cpu_us,
            t.redis_benchmark_redis_cpu_us,
        );
        let _ = writeln!(
            out,
            "{:>7}B {:>5} {:>8} {:>8} {:>9} {:>9} {:>7} {:>9} {:>9} {:>7}",
            p.payload_bytes,
            p.pipeline,
            ratio(Some(t.streamdrill_per_s), Some(p.streamdrill_per_s)),
            ratio(Some(t.redis_benchmark_per_s), Some(p.redis_benchmark_per_s)),
            micros(sd_plain),
            micros(sd_tls),
            ratio(sd_tls, sd_plain),
            micros(Some(rb_plain)),
            micros(Some(rb_tls)),
            ratio(Some(rb_tls), Some(rb_plain)),
        );
    }
}

/// "1.23µs", or "-" when not measured.
fn micros(us: Option<f64>) -> String {
    us.map_or_else(|| "-".into(), |us| format!("{us:.2}µs"))
}

/// "1.23", or "-" when either side was not measured (or is zero).
fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> String {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.2}", n / d),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::TlsComparison;
    use crate::metrics::IdleState;

    fn row(pipeline: u32, per_s: f64, redis_cpu_us: Option<f64>) -> XaddRow {
        XaddRow {
            payload_bytes: 16,
            pipeline,
            streamdrill_per_s: per_s,
            redis_benchmark_per_s: per_s / 2.0,
            streamdrill_cpu_us: 1.0,
            redis_benchmark_cpu_us: 2.0,
            streamdrill_redis_cpu_us: redis_cpu_us,
            redis_benchmark_redis_cpu_us: redis_cpu_us.unwrap_or(3.0),
        }
    }

    fn report(tls: Option<TlsComparison>) -> BenchReport {
        BenchReport {
            redis_version: "7.0.15".into(),
            cpu_idle: IdleState::Poll,
            connections: 4,
            xadd: vec![row(1, 100_000.0, Some(4.0)), row(16, 400_000.0, None)],
            tls,
            cycle: Vec::new(),
            timer_wake_cpu_us: 0.0,
        }
    }

    #[test]
    fn without_tls_only_the_plain_table() {
        let text = render(&report(None));
        assert!(!text.contains("TLS"), "{text}");
        assert_eq!(text.lines().count(), 4, "{text}");
    }

    #[test]
    fn tls_rows_and_their_cost_against_the_plain_row() {
        let tls = TlsComparison {
            negotiated: "TLSv1.3 TLS13_AES_256_GCM_SHA384".into(),
            xadd: vec![row(1, 80_000.0, Some(5.0)), row(16, 200_000.0, None)],
        };
        let text = render(&report(Some(tls)));
        assert!(
            text.contains(
                "XADD over TLS (TLSv1.3 TLS13_AES_256_GCM_SHA384, no client certificate)"
            ),
            "{text}"
        );
        let cost: Vec<Vec<&str>> = (text.lines())
            .skip_while(|l| !l.starts_with("TLS cost"))
            .skip(3)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            cost,
            [
                vec![
                    "16B", "1", "0.80", "0.80", "4.00µs", "5.00µs", "1.25", "4.00µs", "5.00µs",
                    "1.25"
                ],
                // No window reading under streamdrill: its figures say so.
                vec![
                    "16B", "16", "0.50", "0.50", "-", "-", "-", "3.00µs", "3.00µs", "1.00"
                ],
            ],
            "{text}"
        );
        // The header's two lines line up with the rows.
        let lines: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("TLS cost"))
            .collect();
        let width = |l: &str| l.chars().count();
        assert_eq!(width(lines[1]), width(lines[2]), "{text}");
        assert_eq!(width(lines[2]), width(lines[3]), "{text}");
    }
}
