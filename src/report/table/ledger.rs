//! The terminal table's ledger (each group's acknowledged events by
//! outcome, measured with the warmup beneath), the whole-run delivery
//! table, and Redis's own counts.

use std::fmt::Write;

use super::{clip, fit, key_sample, wrapped};
use crate::metrics::DeliveryCounts;
use crate::report::format::{dash_or, format_us, verify_beyond_acked};
use crate::report::groups::{GroupPhase, GroupSummary};
use crate::report::summary::Summary;

/// The acknowledged events of each group by outcome (they add up to
/// `acked`), measured phase, with the warmup's row beneath.
pub(super) fn ledger_table(out: &mut String, s: &Summary) {
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
        if let Some(t) = g.whole_run_opt(|p| p.trimmed_unread).filter(|&t| t > 0) {
            let text = format!(
                "trimmed unread {t} (whole run): gone before the group read them, not in the \
                 columns above"
            );
            wrapped(out, "  ", &text);
        }
        if let Some(why) = &g.readback_error {
            let text = format!("READ-BACK FAILED, unprocessed events unknown: {why}");
            wrapped(out, "  ", &text);
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
        dash_or(p.produced_acked),
        dash_or(p.processed),
        p.dead_lettered,
        dash_or(p.in_progress),
        p.unread,
        p.stranded,
        dash_or(p.unknown),
        p.lost
    );
}

/// What happened besides the partition, whole run: repeated deliveries and
/// processings, writes that landed without an ack, strangers, the end state.
pub(super) fn delivery_table(out: &mut String, groups: &[GroupSummary]) {
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
            dash_or(g.pending_at_end),
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

pub(super) fn verify_lines(out: &mut String, s: &Summary) {
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
    let landed = verify_beyond_acked(s);
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
    for p in v.partitions() {
        let entries: Vec<String> = p.entries.iter().map(u64::to_string).collect();
        let line = format!(
            "  partitions of {}: entries-added {}, busiest {:.2}x the mean",
            p.stream,
            entries.join(" / "),
            p.max_over_mean()
        );
        let _ = writeln!(out, "{}", clip(&line));
    }
    for st in &v.dead_letter {
        let line = format!("  {} (dead letters): length {}", st.key, st.length);
        let _ = writeln!(out, "{}", clip(&line));
    }
}
