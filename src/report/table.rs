//! The end-of-run terminal summary, rendered from a `Summary` so it can be
//! reprinted for any old run. Plain text, at most 100 columns wide.

use std::fmt::Write;

use super::groups::{GroupPhase, GroupSummary};
use super::summary::Summary;
use crate::metrics::durability::GoneRange;
use crate::metrics::{DeliveryCounts, EventKey, Percentiles};

/// Widest line `render` produces.
pub const MAX_WIDTH: usize = 100;

pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    header(&mut out, summary);
    produce_lines(&mut out, summary);
    latency_table(&mut out, summary);
    ledger_table(&mut out, summary);
    delivery_table(&mut out, &summary.groups);
    verify_lines(&mut out, summary);
    durability_lines(&mut out, summary);
    fault_table(&mut out, summary);
    slo_lines(&mut out, summary);
    out
}

/// One row per fault window: when it ran and how fast the run recovered.
fn fault_table(out: &mut String, s: &Summary) {
    if s.faults.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<32} {:>7} {:>7} {:>13} {:>9} {:>9} {:>9}",
        "faults", "start", "end", "writes back", "in flight", "recovered", "lag back"
    );
    let secs = |v: Option<f64>| v.map_or("never".to_string(), |s| format!("{s:.2}s"));
    for f in &s.faults {
        // Runs written before these figures existed show "-".
        let writes = match (f.first_write_after_s, f.all_writes_after_s) {
            (None, None) if f.in_flight_at_start.is_none() => "-".to_string(),
            (first, all) => format!("{}/{}", secs(first).trim_end_matches('s'), secs(all)),
        };
        let recovered = match f.in_flight_at_start {
            None => "-".to_string(),
            Some(_) => secs(f.recovered_after_s),
        };
        let line = format!(
            "{:<32} {:>6.1}s {:>6.1}s {:>13} {:>9} {:>9} {:>9}",
            fit(&f.name, 32),
            f.start_s,
            f.end_s,
            writes,
            f.in_flight_at_start.map_or("-".into(), |n| n.to_string()),
            recovered,
            secs(f.lag_recovered_after_s)
        );
        let _ = writeln!(out, "{}", clip(&line));
    }
    let _ = writeln!(
        out,
        "  writes back: first/all producers acked again, and recovered: the events in flight"
    );
    let _ = writeln!(
        out,
        "  at the start all processed, both from the start; lag back: from the end"
    );
}

fn durability_lines(out: &mut String, s: &Summary) {
    let Some(d) = &s.durability else { return };
    let mut line = format!(
        "durability  acked {}  ACKED BUT GONE {}  indeterminate {} (landed {})",
        d.acked, d.acked_but_gone, d.indeterminate, d.indeterminate_landed
    );
    // With WAIT, gone writes it had flagged unreplicated were known risks.
    if let Some(silent) = d.acked_but_gone_silent.filter(|&n| n != d.acked_but_gone) {
        let flagged = d.acked_but_gone - silent;
        line.push_str(&format!(
            "  gone: {flagged} flagged by WAIT, {silent} silent"
        ));
    }
    let _ = writeln!(out, "{}", clip(&line));
    key_sample(out, "gone", &d.gone_sample);
    const SHOWN: usize = 3;
    for r in d.gone_ranges.iter().take(SHOWN) {
        let _ = writeln!(
            out,
            "{}",
            clip(&format!("  {}", gone_range(r, s.started_at_unix_s)))
        );
    }
    if d.gone_ranges.len() > SHOWN {
        let _ = writeln!(
            out,
            "  ... {} more gone ranges in summary.json",
            d.gone_ranges.len() - SHOWN
        );
    }
}

/// "producer 0 seq 5001-8000: 3000 gone, intended between 5.000 s and 8.001 s"
/// (times from the run's start; the survivors around the range bound it).
pub(crate) fn gone_range(r: &GoneRange, started_at_unix_s: f64) -> String {
    let at = |ns: Option<u64>| {
        ns.map_or("-".to_string(), |ns| {
            format!("{:.3} s", ns as f64 / 1e9 - started_at_unix_s)
        })
    };
    let window = match (r.after_unix_ns, r.before_unix_ns) {
        (None, None) => "no event of it survived".to_string(),
        (after, None) => format!("intended after {} (nothing later survived)", at(after)),
        (after, before) => format!("intended between {} and {}", at(after), at(before)),
    };
    format!(
        "producer {} seq {}-{}: {} gone, {window}",
        r.producer, r.first_seq, r.last_seq, r.count
    )
}

fn header(out: &mut String, s: &Summary) {
    let _ = writeln!(
        out,
        "{}",
        clip(&format!(
            "streamdrill {} | run {} | {}",
            s.streamdrill_version, s.run_id, s.started_at
        ))
    );
    let _ = writeln!(
        out,
        "{}",
        clip(&format!(
            "redis {} ({}, {}) | measured {:.1}s{}",
            s.redis.version,
            s.redis.mode,
            s.redis.url,
            s.measured_duration_s,
            if s.interrupted {
                " | INTERRUPTED (Ctrl-C)"
            } else {
                ""
            }
        ))
    );
    // Asked for but refused: say so where the figures are read.
    if s.machine.poll_refused() {
        let line = format!(
            "idle CPUs: {}; latencies include CPU wake-ups from sleep (--cpu-idle os: the machine as configured)",
            s.machine.idle_label()
        );
        let _ = writeln!(out, "{}", clip(&line));
    }
}

fn produce_lines(out: &mut String, s: &Summary) {
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
    if let Some(line) = produce_accounting(s) {
        let _ = writeln!(out, "{}", clip(&line));
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
        "warmup   sent {}  acked {}  errors {}  (not in the numbers above or below)",
        w.produce_sent, w.produce_acked, w.produce_errors
    );
    if let Some(h) = &s.harness {
        let _ = writeln!(
            out,
            "harness  CPU {:.2}s, {:.2}µs per event sent (whole run: producing, consuming, measuring)",
            h.cpu_s, h.cpu_us_per_event
        );
    }
}

/// Where the intended events went: "intended 24000 = 16000 acked in window
/// + 8000 late, failed 0, indeterminate 0, unsent 0". None for schema-1 files.
fn produce_accounting(s: &Summary) -> Option<String> {
    let p = &s.produce;
    let late = p.late?;
    let mut line = format!(
        "         intended {} = {} acked in window + {late} late, failed {}, indeterminate {}",
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

fn latency_table(out: &mut String, s: &Summary) {
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
            "  produce latency: {n} values are lower bounds (unanswered or unsent when producers gave up)"
        );
        let _ = writeln!(out, "{}", clip(&line));
    }
    for g in &s.groups {
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

/// "-" for a figure the summary's schema did not record.
fn opt(n: Option<u64>) -> String {
    n.map_or("-".into(), |n| n.to_string())
}

/// The acknowledged events of each group by outcome (they add up to
/// `acked`), measured phase, with the warmup's row beneath.
fn ledger_table(out: &mut String, s: &Summary) {
    if s.groups.is_empty() {
        return;
    }
    let title = match s.schema_version {
        1 => "ledger (whole run)",
        _ => "ledger (measured)",
    };
    let _ = writeln!(
        out,
        "\n{:<18}{:>8}{:>10}{:>6}{:>8}{:>8}{:>7}{:>8}{:>7}",
        title, "acked", "processed", "dlq", "in-prog", "unread", "strand", "unknown", "lost"
    );
    for g in &s.groups {
        ledger_row(out, &fit(&g.name, 17), &g.measured);
        if let Some(w) = g.warmup.as_ref().filter(|_| !s.scenario.warmup.is_zero()) {
            ledger_row(out, "  warmup", w);
        }
        key_sample(out, "lost", &g.lost_sample);
        if let Some(why) = &g.readback_error {
            let line = format!("  READ-BACK FAILED, unprocessed events unknown: {why}");
            let _ = writeln!(out, "{}", clip(&line));
        }
    }
    if s.schema_version < 2 {
        let _ = writeln!(
            out,
            "  (schema-1 run: whole-run figures, warmup and drain included; acked, processed,"
        );
        let _ = writeln!(
            out,
            "  in-progress and unknown were not recorded, events in progress counted as lost)"
        );
    }
}

fn ledger_row(out: &mut String, label: &str, p: &GroupPhase) {
    let _ = writeln!(
        out,
        "{:<18}{:>8}{:>10}{:>6}{:>8}{:>8}{:>7}{:>8}{:>7}",
        label,
        opt(p.produced_acked),
        opt(p.processed),
        p.dead_lettered,
        opt(p.in_progress),
        p.unread,
        p.stranded,
        opt(p.unknown),
        p.lost
    );
}

/// What happened besides the partition, whole run: repeated deliveries and
/// processings, writes that landed without an ack, strangers, the end state.
fn delivery_table(out: &mut String, groups: &[GroupSummary]) {
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<18}{:>7}{:>8}{:>10}{:>6}{:>8}{:>8}",
        "group (whole run)", "dupes", "redeliv", "unacked-w", "unexp", "pending", "drained"
    );
    for g in groups {
        let _ = writeln!(
            out,
            "{:<18}{:>7}{:>8}{:>10}{:>6}{:>8}{:>8}",
            fit(&g.name, 17),
            g.whole_run(|p| p.duplicates),
            g.whole_run(|p| p.redelivered),
            g.whole_run(|p| p.unacked_landed),
            g.unexpected,
            opt(g.pending_at_end),
            if g.drained { "yes" } else { "NO" }
        );
        redelivery_lines(out, g);
    }
}

/// Under a group's ledger row, when it had redeliveries: how often events were
/// delivered, and how long redelivered ones took from first delivery to processing.
fn redelivery_lines(out: &mut String, g: &GroupSummary) {
    let counts = g.delivery_counts();
    // Runs written before these figures existed have none.
    if counts.redelivered() == 0 {
        return;
    }
    let counts = &counts.0;
    let buckets: Vec<String> = (counts.iter().enumerate())
        .filter(|&(_, &n)| n > 0)
        .map(|(i, n)| format!("{}x {n}", DeliveryCounts::label(i)))
        .collect();
    let line = format!("  deliveries per event: {}", buckets.join("  "));
    let _ = writeln!(out, "{}", clip(&line));
    let p = &g.redelivery_latency_us;
    let mut line = String::from("  redelivery latency (first delivery -> processed): ");
    let _ = match p.count {
        0 => write!(line, "none measured"),
        n => write!(
            line,
            "n {n}  p50 {}  p99 {}  max {}",
            format_us(p.p50),
            format_us(p.p99),
            format_us(p.max)
        ),
    };
    if g.redelivery_unmeasured > 0 {
        let _ = write!(line, "  (+{} unmeasured)", g.redelivery_unmeasured);
    }
    let _ = writeln!(out, "{}", clip(&line));
}

fn verify_lines(out: &mut String, s: &Summary) {
    let v = &s.verify;
    if let Some(why) = &v.unavailable {
        let line = format!("\nverify   UNAVAILABLE: Redis could not be read back ({why})");
        let _ = writeln!(out, "{}", clip(&line));
        return;
    }
    let added: u64 = v.streams.iter().map(|st| st.entries_added).sum();
    let verdict = if v.consistent {
        "consistent"
    } else {
        "MISMATCH"
    };
    let landed = match v.landed_unacked {
        0 => String::new(),
        n => format!(" + {n} landed unacked"),
    };
    let _ = writeln!(
        out,
        "\nverify   entries-added {added} vs produce acked {}{landed}: {verdict}",
        v.produce_acked
    );
    for st in &v.streams {
        let line = format!(
            "  {}: entries-added {}, length {}",
            st.key, st.entries_added, st.length
        );
        let _ = writeln!(out, "{}", clip(&line));
    }
    for st in &v.dead_letter {
        let line = format!("  {} (dead letters): length {}", st.key, st.length);
        let _ = writeln!(out, "{}", clip(&line));
    }
}

fn slo_lines(out: &mut String, s: &Summary) {
    let r = &s.slo;
    if r.checks.is_empty() {
        let _ = writeln!(out, "\nSLO      none set");
        return;
    }
    let _ = writeln!(
        out,
        "\nSLO      {}",
        if r.passed { "PASSED" } else { "FAILED" }
    );
    for c in &r.checks {
        let mark = if c.passed { "pass" } else { "FAIL" };
        let line = format!(
            "  [{mark}] {:<28} {:<10} {:<14} actual {}",
            c.name,
            c.scope.label(),
            c.objective.threshold_text(),
            c.objective.actual_text()
        );
        let _ = writeln!(out, "{}", clip(&line));
        if let Some(note) = &c.note {
            let _ = writeln!(out, "{}", clip(&format!("         {note}")));
        }
    }
}

/// A microsecond value with a readable unit and 3 significant digits: "850µs", "1.23ms", "12.3s".
pub fn format_us(us: u64) -> String {
    if us < 1_000 {
        return format!("{us}µs");
    }
    let (value, unit) = if us < 1_000_000 {
        (us as f64 / 1e3, "ms")
    } else {
        (us as f64 / 1e6, "s")
    };
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{unit}")
}

/// Truncates to `width` characters, marking the cut with '~'.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('~');
    cut
}

fn clip(line: &str) -> String {
    fit(line, MAX_WIDTH)
}

/// One clipped line listing sample events as producer:seq, if there are any.
fn key_sample(out: &mut String, what: &str, keys: &[EventKey]) {
    if keys.is_empty() {
        return;
    }
    let keys: Vec<String> = keys
        .iter()
        .map(|k| format!("{}:{}", k.producer, k.seq))
        .collect();
    let _ = writeln!(
        out,
        "{}",
        clip(&format!("  {what} (producer:seq): {}", keys.join(" ")))
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_idle::IdleState;
    use crate::report::slo::evaluate;
    use crate::report::summary::tests::test_summary;
    use crate::scenario::{Dur, Slo};

    #[test]
    fn units_are_readable() {
        let cases = [
            (0, "0µs"),
            (850, "850µs"),
            (1_234, "1.23ms"),
            (10_007, "10ms"),
            (12_345, "12.3ms"),
            (250_000, "250ms"),
            (1_500_000, "1.5s"),
            (3_600_000_000, "3600s"),
        ];
        for (us, text) in cases {
            assert_eq!(format_us(us), text, "{us} µs");
        }
    }

    #[test]
    fn render_fits_and_shows_the_numbers() {
        let mut summary = test_summary();
        summary.groups[0].name = "a-very-long-consumer-group-name-indeed".into();
        summary.groups[0].measured.dead_lettered = 7;
        summary.groups[0].lost_sample = (0..20)
            .map(|seq| crate::metrics::EventKey {
                producer: 12,
                seq: seq * 1_000_000,
            })
            .collect();
        let slo = Slo {
            e2e_p99: Some(Dur::from_millis(5)),
            lost: Some(0),
            ..Default::default()
        };
        summary.slo = evaluate(&slo, &summary);
        summary.faults = vec![crate::report::FaultWindow {
            name: "freeze_redis 1s".into(),
            start_s: 2.0,
            end_s: 3.0,
            first_ack_after_s: Some(0.0),
            lag_recovered_after_s: None,
            first_write_after_s: Some(1.004),
            all_writes_after_s: Some(1.25),
            in_flight_at_start: Some(12),
            recovered_after_s: Some(0.031),
        }];
        summary.interrupted = true;
        assert!(
            !render(&summary).contains("idle CPUs"),
            "held as asked: nothing to say"
        );
        let why = "/dev/cpu_dma_latency: Permission denied (os error 13)";
        summary.machine.cpu_idle = Some(IdleState::OsPollRefused(why.into()));
        let text = render(&summary);
        assert!(text.contains("INTERRUPTED"), "{text}");
        assert!(
            text.contains(&format!("idle CPUs: os (poll not held: {why})")),
            "{text}"
        );
        let fault = text
            .lines()
            .find(|l| l.starts_with("freeze_redis"))
            .unwrap();
        let cols: Vec<&str> = fault.split_whitespace().collect();
        assert_eq!(
            cols[2..],
            ["2.0s", "3.0s", "1.00/1.25s", "12", "0.03s", "never"],
            "{text}"
        );
        for line in text.lines() {
            assert!(line.chars().count() <= MAX_WIDTH, "too wide: {line:?}");
        }
        assert!(text.contains("achieved 100.0/s (100.0%)"), "{text}");
        // 0.65 s of CPU over the test summary's 6,500 events sent.
        assert!(
            text.contains("harness  CPU 0.65s, 100.00µs per event"),
            "{text}"
        );
        assert!(text.contains("produce latency"));
        assert!(text.contains("e2e a-very-long-consum~"));
        assert!(text.contains("SLO      FAILED"));
        assert!(text.contains("[FAIL] e2e_p99[a-very-long-consumer-group-name-indeed]"));
        assert!(text.contains("[pass] lost["));
        assert!(text.contains("entries-added 6500 vs produce acked 6500: consistent"));
        let mut rows = text.lines().filter(|l| l.starts_with("a-very-long-cons~"));
        let cols = |line: &str| -> Vec<String> {
            line.split_whitespace().skip(1).map(String::from).collect()
        };
        // Measured: acked, processed, dlq, in-prog, unread, strand, unknown, lost.
        assert_eq!(
            cols(rows.next().unwrap()),
            ["6000", "6000", "7", "0", "0", "0", "0", "0"]
        );
        let warmup = text.lines().find(|l| l.starts_with("  warmup")).unwrap();
        assert_eq!(cols(warmup), ["500", "500", "0", "0", "0", "0", "0", "0"]);
        // Whole run: dupes, redeliv, unacked-w, unexp, pending, drained.
        assert_eq!(cols(rows.next().unwrap()), ["1", "1", "0", "0", "0", "yes"]);
        assert!(
            text.contains("  deliveries per event: 1x 6499  2x 1\n"),
            "{text}"
        );
        assert!(
            text.contains("processed): n 1  p50 750ms  p99 750ms  max 750ms\n"),
            "{text}"
        );
    }
}
