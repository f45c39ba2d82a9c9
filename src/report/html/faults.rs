//! index.html's fault timeline (each fault's window, whether it was
//! applied, its recovery figures, and per group the worst e2e p99 while it
//! lasted) and the durability read-back.

use super::{esc, table};
use crate::report::columns::{self, GroupColumn, Quantile};
use crate::report::format_us;
use crate::report::plot::Timeseries;
use crate::report::summary::Summary;

/// Fault windows with their recovery figures (writes back, in-flight events
/// done, lag back), then per group the worst e2e p99 while the fault lasted
/// and how long after it ended p99 fell back to twice its pre-fault median
/// (from the per-second `timeseries.csv`).
pub(super) fn fault_section(summary: &Summary, ts: &Timeseries) -> String {
    let out = String::from("<h2>Fault timeline</h2>\n");
    if summary.faults.is_empty() {
        return out + "<p>No faults in this run.</p>\n";
    }
    let warmup_s = summary.scenario.warmup.as_secs_f64();
    let mut rows = Vec::new();
    for f in &summary.faults {
        for g in &summary.groups {
            let column = columns::group(&g.name, GroupColumn::E2eUs(Quantile::P99));
            let p99 = |from_s, to_s| ts.values_between(&column, from_s, to_s);
            let mut before = p99(warmup_s, f.start_s);
            before.sort_by(f64::total_cmp);
            let baseline_us = before.get(before.len() / 2).copied();
            let worst_us = p99(f.start_s, f.end_s + 1.0)
                .into_iter()
                .fold(0.0, f64::max);
            let recovered = baseline_us.and_then(|b| {
                let after = ts.points(&column);
                after
                    .into_iter()
                    .find(|&(t, v)| t >= f.end_s && v > 0.0 && v <= 2.0 * b.max(1.0))
            });
            rows.push(vec![
                f.name.clone(),
                format!("{:.1}", f.start_s),
                format!("{:.1}", f.end_s),
                g.name.clone(),
                baseline_us.map_or("-".into(), |b| format_us(b as u64)),
                format_us(worst_us as u64),
                recovered.map_or("not within the run".into(), |(t, _)| {
                    format!("{:.0} s", (t - f.end_s).max(0.0))
                }),
            ]);
        }
    }
    let headers = [
        "fault",
        "start (s)",
        "end (s)",
        "group",
        "p99 before",
        "worst p99",
        "p99 recovered after end",
    ];
    out + &not_applied(summary) + &recovery_table(summary) + &table(&headers, &rows)
}

/// The faults that were not applied, and why: each fails the run.
fn not_applied(summary: &Summary) -> String {
    let failed: Vec<String> = (summary.faults.iter())
        .filter(|f| !f.applied)
        .map(|f| {
            let why = f.error.as_deref().unwrap_or("no reason recorded");
            format!("{} (at {:.3} s): {why}", f.name, f.start_s)
        })
        .collect();
    match failed.is_empty() {
        true => String::new(),
        false => format!(
            "<p class=\"fail\"><b>Not applied</b>, which fails the run: {}</p>\n",
            esc(&failed.join("; "))
        ),
    }
}

/// After a drill that read the streams back: what Redis acknowledged and lost.
pub(super) fn durability_section(summary: &Summary) -> String {
    let Some(d) = &summary.durability else {
        return match &summary.durability_error {
            Some(why) => format!(
                "<h2>Durability</h2>\n<p class=\"fail\"><b>Read-back failed</b>: {}; \
                 acknowledged writes that are gone cannot be counted.</p>\n",
                esc(why)
            ),
            None => String::new(),
        };
    };
    let silent = d
        .acked_but_gone_silent
        .map_or("-".into(), |n| n.to_string());
    let counts = vec![vec![
        d.acked.to_string(),
        d.acked_but_gone.to_string(),
        silent,
        d.indeterminate.to_string(),
        d.indeterminate_landed.to_string(),
    ]];
    let headers = [
        "acknowledged",
        "acknowledged but gone",
        "gone, not flagged by WAIT",
        "indeterminate",
        "indeterminate, landed",
    ];
    let ranges: Vec<Vec<String>> = (d.gone_ranges.iter())
        .map(|r| {
            vec![crate::report::table::gone_range(
                r,
                summary.started_at_unix_s,
            )]
        })
        .collect();
    let mut out = String::from("<h2>Durability (streams read back)</h2>\n");
    out += &table(&headers, &counts);
    if !ranges.is_empty() {
        out += &table(&["gone ranges (times from the run's start)"], &ranges);
    }
    out
}

/// Each fault's recovery figures and outcome from `summary.json`.
fn recovery_table(summary: &Summary) -> String {
    let secs = |v: Option<f64>| v.map_or("never".to_string(), |s| format!("{s:.3} s"));
    let rows: Vec<Vec<String>> = (summary.faults.iter())
        .map(|f| {
            // Runs written before a figure existed have none: "-".
            let known = f.in_flight_at_start.is_some();
            let new = |v: Option<f64>| if known { secs(v) } else { "-".into() };
            vec![
                f.name.clone(),
                format!("{:.3}", f.start_s),
                format!("{:.3}", f.end_s),
                new(f.first_write_after_s),
                new(f.all_writes_after_s),
                f.in_flight_at_start.map_or("-".into(), |n| n.to_string()),
                new(f.recovered_after_s),
                secs(f.first_ack_after_s),
                secs(f.lag_recovered_after_s),
                if f.applied { "yes" } else { "NO" }.into(),
                f.clients_killed.map_or("-".into(), |n| n.to_string()),
                f.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let headers = [
        "fault",
        "start (s)",
        "end (s)",
        "first XADD acked after start",
        "all producers acked after start",
        "events in flight at start",
        "those all processed after start",
        "first ack after end (1 s steps)",
        "lag back after end",
        "applied",
        "clients killed",
        "why not applied",
    ];
    table(&headers, &rows)
}
