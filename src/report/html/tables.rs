//! index.html's throughput, latency and ledger tables: the measured
//! phase's figures with the warmup's beside them, and what only the whole
//! run has.

use std::fmt::Write as _;

use super::{esc, table};
use crate::metrics::{DeliveryCounts, Percentiles, VerifySummary};
use crate::report::format::{dash_or, format_us, projection_cost, verify_beyond_acked};
use crate::report::groups::GroupPhase;
use crate::report::summary::Summary;

/// The columns `latency_row` fills after its label.
const PERCENTILE_COLUMNS: [&str; 8] = [
    "count", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean",
];

/// `label`'s header cell, then the percentile columns.
pub(super) fn latency_headers(label: &str) -> Vec<&str> {
    std::iter::once(label).chain(PERCENTILE_COLUMNS).collect()
}

pub(super) fn latency_row(label: &str, p: &Percentiles) -> Vec<String> {
    let mut row = vec![label.to_string(), p.count.to_string()];
    row.extend([p.p50, p.p90, p.p99, p.p999, p.p9999, p.max].map(format_us));
    row.push(format_us(p.mean.round() as u64));
    row
}

pub(super) fn latency_section(summary: &Summary) -> String {
    let p = &summary.produce;
    // Saturating producers have no target: no percentage of one.
    let ratio = match p.target_rate_per_s > 0.0 {
        true => format!(
            " ({:.1}%)",
            100.0 * p.achieved_rate_per_s / p.target_rate_per_s
        ),
        false => String::new(),
    };
    let mut rates = vec![vec![
        format!("{:.1}", p.target_rate_per_s),
        format!("{:.1}{ratio}", p.achieved_rate_per_s),
        dash_or(p.intended),
        p.sent.to_string(),
        p.acked.to_string(),
        dash_or(p.late),
        dash_or(p.failed),
        dash_or(p.indeterminate),
        dash_or(p.unanswered),
        dash_or(p.unsent),
        dash_or(p.skipped),
        summary.warmup.produce_sent.to_string(),
    ]];
    let mut rate_headers = vec![
        "target/s",
        "achieved/s (acked inside the window)",
        "intended",
        "sent",
        "acked",
        "of which late",
        "failed",
        "indeterminate",
        "of which unanswered",
        "unsent",
        "skipped (producer down)",
        "warmup sent",
    ];
    // Only producers with `wait` count it.
    if let Some(n) = p.unreplicated {
        rates[0].push(n.to_string());
        rate_headers.push("unreplicated (WAIT saw too few replicas)");
    }
    let mut rows = vec![
        latency_row("produce latency (corrected)", &p.latency_us),
        latency_row("produce service time", &p.service_time_us),
        latency_row("schedule lag", &p.schedule_lag_us),
    ];
    for g in &summary.groups {
        let m = &g.measured;
        rows.push(latency_row(&format!("e2e {}", g.name), &m.e2e_latency_us));
        rows.push(latency_row(
            &format!("delivery {}", g.name),
            &m.delivery_latency_us,
        ));
    }
    let mut notes = String::new();
    if let Some(n) = p.latency_lower_bounds.filter(|&n| n > 0) {
        let _ = writeln!(
            notes,
            "<p>Produce latency: {n} values are lower bounds: XADDs never acknowledged (failed, indeterminate, unsent), timed until their fate was settled or producers gave up.</p>"
        );
    }
    for g in &summary.groups {
        if let Some(n) = g.measured.unprocessed().filter(|&n| n > 0) {
            let _ = writeln!(
                notes,
                "<p>e2e {}: {n} acknowledged events were not processed and are not covered: a lower bound.</p>",
                esc(&g.name)
            );
        }
    }
    let headers = latency_headers("latency (measured phase)");
    format!(
        "<h2>Throughput (measured phase)</h2>\n{}<h2>Latency</h2>\n{}{notes}",
        table(&rate_headers, &rates),
        table(&headers, &rows)
    )
}

/// The partition of a phase's acknowledged events, then its activity counts.
/// `trimmed`: some group's stream is trimmed, so the row has the ledger's
/// `trimmed_unread` beside `lost` (docs/measurement.md, "Trimmed before read").
fn phase_row(group: &str, phase: &str, p: &GroupPhase, trimmed: bool) -> Vec<String> {
    let mut row = vec![group.to_string(), phase.to_string()];
    row.extend([
        dash_or(p.produced_acked),
        dash_or(p.processed),
        p.dead_lettered.to_string(),
        dash_or(p.in_progress),
        p.unread.to_string(),
        p.stranded.to_string(),
        dash_or(p.unknown),
        p.lost.to_string(),
    ]);
    if trimmed {
        row.push(dash_or(p.trimmed_unread));
    }
    row.extend([p.deliveries, p.processings, p.acked, p.errors].map(|n| n.to_string()));
    row
}

/// Per checking group and phase, how far it finished aggregates out of
/// version order, each projection against its stream, schema versions and
/// replays; empty unless a run uses one of them.
pub(super) fn event_sourcing_section(summary: &Summary) -> String {
    let (order, projections) = (order_table(summary), projection_table(summary));
    let versions = super::schema_versions::versions_table(summary);
    let replays = super::replay::replay_table(summary);
    let trim = super::trim::trim_table(summary);
    if [&order, &projections, &versions, &replays, &trim]
        .iter()
        .all(|t| t.is_empty())
    {
        return String::new();
    }
    format!("<h2>Event sourcing</h2>\n{order}{projections}{versions}{replays}{trim}")
}

fn order_table(summary: &Summary) -> String {
    let rows: Vec<Vec<String>> = (summary.groups.iter())
        .flat_map(|g| {
            g.order_by_phase().into_iter().map(|(phase, o)| {
                let mut row = vec![g.name.clone(), phase.to_string()];
                row.extend(
                    [
                        o.aggregates_out_of_order,
                        o.events_out_of_order,
                        o.gaps,
                        o.repeats,
                        o.max_distance_versions,
                    ]
                    .map(|n| n.to_string()),
                );
                row
            })
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let headers = [
        "group",
        "phase",
        "aggregates out of order",
        "events out of order",
        "gaps",
        "repeats",
        "max distance (versions)",
    ];
    format!(
        "<p>Per-aggregate order of the processed events, across \
         each group's consumers: an event is out of order when a later version of its \
         aggregate finished first, a gap when an earlier one had not finished yet.</p>\n{}",
        table(&headers, &rows)
    )
}

fn projection_table(summary: &Summary) -> String {
    let rows: Vec<Vec<String>> = (summary.groups.iter())
        .filter_map(|g| {
            let p = g.projection.as_ref()?;
            let skipped = p.skipped.map_or("-".to_string(), |n| n.to_string());
            let mut row = vec![g.name.clone(), p.mode.clone()];
            row.extend(
                [p.aggregates, p.divergent, p.double_applied, p.missing].map(|n| n.to_string()),
            );
            row.push(skipped);
            row.push(p.readback_error.clone().unwrap_or_default());
            Some(row)
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let headers = [
        "group",
        "projection",
        "aggregates",
        "divergent",
        "double-applied",
        "missing",
        "skipped (idempotent)",
        "read-back error",
    ];
    let costs: String = (summary.groups.iter())
        .filter(|g| g.projection.is_some())
        .map(|g| format!("<li>{}: {}</li>\n", esc(&g.name), esc(&projection_cost(g))))
        .collect();
    format!(
        "<p>Each projection's read model against its stream, per aggregate, after the \
         drain: effects applied twice, effects missing, and the events an idempotent \
         projection refused.</p>\n{}<p>What each projection cost: its writes' round trip \
         per event (measured phase), and Redis's own time in its commands (INFO \
         commandstats, whole run).</p>\n<ul>\n{costs}</ul>\n",
        table(&headers, &rows)
    )
}

pub(super) fn ledger_section(summary: &Summary) -> String {
    let measured = match summary.schema_version {
        1 => "whole run (schema 1)",
        _ => "measured",
    };
    let trimmed = (summary.groups.iter()).any(|g| g.measured.trimmed_unread.is_some());
    let mut rows = Vec::new();
    for g in &summary.groups {
        rows.push(phase_row(&g.name, measured, &g.measured, trimmed));
        if let Some(w) = &g.warmup {
            rows.push(phase_row(&g.name, "warmup", w, trimmed));
        }
    }
    let mut headers = vec![
        "group",
        "phase",
        "acked (produced)",
        "processed",
        "dead-lettered",
        "in progress",
        "unread",
        "stranded",
        "unknown",
        "lost",
    ];
    if trimmed {
        headers.push("trimmed unread");
    }
    headers.extend(["deliveries", "processings", "XACKed", "errors"]);
    let whole: Vec<Vec<String>> = (summary.groups.iter())
        .map(|g| {
            let mut row = vec![g.name.clone(), g.stream.clone()];
            row.extend(
                [
                    g.whole_run(|p| p.duplicates),
                    g.whole_run(|p| p.redelivered),
                    g.whole_run(|p| p.unacked_landed),
                    g.unexpected,
                ]
                .map(|n| n.to_string()),
            );
            row.push(dash_or(g.pending_at_end));
            row.push(if g.drained { "yes" } else { "NO" }.into());
            row.push(g.readback_error.clone().unwrap_or_default());
            row
        })
        .collect();
    let whole_headers = [
        "group",
        "stream",
        "duplicates",
        "redelivered",
        "unacked writes that landed",
        "unexpected",
        "pending at end",
        "drained",
        "read-back error",
    ];
    let v = &summary.verify;
    let verify_rows: Vec<Vec<String>> = (v.streams.iter())
        .map(|s| {
            vec![
                s.key.clone(),
                s.entries_added.to_string(),
                s.length.to_string(),
            ]
        })
        .collect();
    let verdict = match (&v.unavailable, v.consistent) {
        (Some(why), _) => format!("UNAVAILABLE: Redis could not be read back ({why})"),
        (None, true) => "consistent".into(),
        (None, false) => "MISMATCH".into(),
    };
    let unresolved = verify_beyond_acked(summary);
    format!(
        "<h2>Ledger</h2>\n<p>Acknowledged events by outcome; they add up to the acked column. \
         Loss objectives judge both phases together.</p>\n{}<h3>Whole run</h3>\n{}{}\
         <h3>Verify: entries-added vs {} produce acks{}: {}</h3>\n{}{}",
        table(&headers, &rows),
        table(&whole_headers, &whole),
        redelivery_tables(summary),
        v.produce_acked,
        esc(&unresolved),
        esc(&verdict),
        table(&["stream", "entries-added", "length"], &verify_rows),
        partitions_table(v),
    )
}

/// Per partitioned stream, its partitions' entries and their share: how
/// unevenly the aggregates' popularity loads the partitions' owners.
fn partitions_table(v: &VerifySummary) -> String {
    let spreads = v.partitions();
    if spreads.is_empty() {
        return String::new();
    }
    let mut rows = Vec::new();
    for s in &spreads {
        let total: u64 = s.entries.iter().sum();
        for (i, n) in s.entries.iter().enumerate() {
            let share = 100.0 * *n as f64 / total.max(1) as f64;
            rows.push(vec![
                s.stream.clone(),
                format!("p{i}"),
                n.to_string(),
                format!("{share:.1} %"),
            ]);
        }
        let skew = format!("busiest {:.2}x the mean", s.max_over_mean());
        rows.push(vec![
            s.stream.clone(),
            "all".into(),
            total.to_string(),
            skew,
        ]);
    }
    format!(
        "<h3>Partitions: entries added per partition</h3>\n{}",
        table(&["stream", "partition", "entries-added", "share"], &rows)
    )
}

/// Per group: distinct events by delivery count, and the latency from first
/// delivery to processing of those delivered more than once.
fn redelivery_tables(summary: &Summary) -> String {
    let groups = &summary.groups;
    let mut headers = vec!["group".to_string()];
    headers.extend((0..7).map(|i| format!("{}x", DeliveryCounts::label(i))));
    let counts: Vec<Vec<String>> = (groups.iter())
        .map(|g| {
            let mut row = vec![g.name.clone()];
            row.extend(g.delivery_counts().0.iter().map(u64::to_string));
            row
        })
        .collect();
    let latencies: Vec<Vec<String>> = (groups.iter())
        .map(|g| {
            let mut row = latency_row(&g.name, &g.redelivery_latency_us);
            row.push(g.redelivery_unmeasured.to_string());
            row
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut redelivery_headers = latency_headers("group");
    redelivery_headers.push("unmeasured (first delivery unseen)");
    format!(
        "<h3>Events by deliveries, whole run (\"2x\" and up: redelivered)</h3>\n{}\
         <h3>Redelivery latency: first delivery to processing, redelivered events, whole run</h3>\n{}",
        table(&headers, &counts),
        table(&redelivery_headers, &latencies)
    )
}
