//! The terminal table's producer lines (target and achieved rate, where
//! the intended events went, warmup, harness cost) and latency percentiles.

use std::fmt::Write;

use super::{clip, fit, wrapped};
use crate::metrics::Percentiles;
use crate::report::format::format_us;
use crate::report::summary::Summary;

pub(super) fn produce_lines(out: &mut String, s: &Summary) {
    let p = &s.produce;
    let ratio = if p.target_rate_per_s > 0.0 {
        format!(
            " ({:.1}%)",
            100.0 * p.achieved_rate_per_s / p.target_rate_per_s
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "\nproduce  target {:.1}/s  achieved {:.1}/s{ratio}  sent {}  acked {}  errors {}",
        p.target_rate_per_s, p.achieved_rate_per_s, p.sent, p.acked, p.errors
    );
    if let Some(text) = produce_accounting(s) {
        wrapped(out, "         ", &text);
    }
    if let Some(n) = p.unreplicated {
        let _ = writeln!(
            out,
            "         unreplicated {n}  (acked, WAIT saw too few replicas)"
        );
    }
    let w = &s.warmup;
    let _ = writeln!(
        out,
        "warmup   sent {}  acked {}  errors {}  (apart from the measured figures)",
        w.produce_sent, w.produce_acked, w.produce_errors
    );
    if let Some(h) = &s.harness {
        let _ = writeln!(
            out,
            "harness  CPU {:.2}s, {:.2}µs per event sent (whole run: producing, consuming, measuring)",
            h.cpu_s, h.cpu_us_per_event
        );
    }
    load_lines(out, s);
}

/// Over the measured window: what Redis and the harness used, and whether
/// each group's backlog grew (docs/capacity.md, "When a step passes").
fn load_lines(out: &mut String, s: &Summary) {
    let Some(load) = &s.load else { return };
    let cores = |c: Option<f64>| c.map_or("unknown".to_string(), |c| format!("{c:.2} cores"));
    let mb = |b: Option<u64>| b.map_or("?".to_string(), |b| format!("{:.1} MB", b as f64 / 1e6));
    let _ = writeln!(
        out,
        "window   Redis CPU {}, harness CPU {}, used_memory {} -> {}",
        cores(load.cpu_cores),
        cores(load.harness_cpu_cores),
        mb(load.used_memory_start_bytes),
        mb(load.used_memory_end_bytes)
    );
    let slope = |v: Option<f64>| v.map_or("unknown".to_string(), |v| format!("{v:+.0}/s"));
    let trends: Vec<String> = (load.groups.iter())
        .map(|g| {
            format!(
                "{} lag {} pending {}",
                g.name,
                slope(g.lag_slope_per_s),
                slope(g.pending_slope_per_s)
            )
        })
        .collect();
    if !trends.is_empty() {
        wrapped(
            out,
            "         ",
            &format!("backlog trend: {}", trends.join(", ")),
        );
    }
}

/// Where the intended events went: "intended 24000 = 16000 acked in window
/// + 8000 late, failed 0, indeterminate 0, unsent 0". None for schema-1 files.
fn produce_accounting(s: &Summary) -> Option<String> {
    let p = &s.produce;
    let late = p.late?;
    let mut line = format!(
        "intended {} = {} acked in window + {late} late, failed {}, indeterminate {}",
        p.intended?,
        p.acked - late,
        p.failed?,
        p.indeterminate?,
    );
    if let Some(n) = p.unanswered.filter(|&n| n > 0) {
        let _ = write!(line, " ({n} unanswered)");
    }
    let _ = write!(line, ", unsent {}", p.unsent?);
    if let Some(n) = p.skipped.filter(|&n| n > 0) {
        let _ = write!(line, ", skipped {n}");
    }
    Some(line)
}

pub(super) fn latency_table(out: &mut String, s: &Summary) {
    let _ = writeln!(
        out,
        "\n{:<24}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
        "latency (measured)", "count", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
    latency_row(out, "produce latency", &s.produce.latency_us);
    latency_row(out, "produce service time", &s.produce.service_time_us);
    latency_row(out, "schedule lag", &s.produce.schedule_lag_us);
    for g in &s.groups {
        latency_row(out, &format!("e2e {}", g.name), &g.measured.e2e_latency_us);
    }
    if let Some(n) = s.produce.latency_lower_bounds.filter(|&n| n > 0) {
        let line = format!(
            "  produce latency: {n} values are lower bounds (XADDs never acknowledged, timed until given up)"
        );
        let _ = writeln!(out, "{}", clip(&line));
    }
    // A segment's consumers process a share: the merge says what none did.
    for g in s.groups.iter().filter(|_| s.segment.is_none()) {
        if let Some(n) = g.measured.unprocessed().filter(|&n| n > 0) {
            let line = format!(
                "  e2e {}: {n} acknowledged events not processed, not covered: a lower bound",
                g.name
            );
            let _ = writeln!(out, "{}", clip(&line));
        }
    }
}

fn latency_row(out: &mut String, label: &str, p: &Percentiles) {
    let mean_us = p.mean.round() as u64;
    let _ = writeln!(
        out,
        "{:<24}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
        fit(label, 23),
        p.count,
        format_us(p.p50),
        format_us(p.p90),
        format_us(p.p99),
        format_us(p.p999),
        format_us(p.max),
        format_us(mean_us)
    );
}
