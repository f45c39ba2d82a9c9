//! The views of a run folder rendered from `summary.json` and the files beside
//! it: `.hgrm` files, `plots/`, and `index.html`, one self-contained page
//! (inline CSS and SVG, no script, no network) that opens offline years later.
//! `write_run` calls `render_views` for a new run; `streamdrill report` calls it
//! for an old one. The page helpers (`page`, `table`, `esc`) serve `compare` too.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::columns::{self, GroupColumn, Quantile};
use super::files::TIMESERIES_FILE;
use super::groups::GroupPhase;
use super::plot::{self, Rendered, Timeseries};
use super::summary::Summary;
use super::{format_us, hgrm, render_table};
use crate::error::{Error, Result};
use crate::metrics::{DeliveryCounts, Percentiles};

pub const INDEX_FILE: &str = "index.html";

/// Writes `.hgrm` files, plots and `index.html` into `dir`; returns their paths.
/// A missing `timeseries.csv` leaves the time-series plots empty.
pub fn render_views(dir: &Path, summary: &Summary) -> Result<Vec<PathBuf>> {
    let ts_path = dir.join(TIMESERIES_FILE);
    let ts = if ts_path.exists() {
        Timeseries::read(&ts_path)?
    } else {
        Timeseries::default()
    };
    let mut written = hgrm::write_hgrms(dir, summary)?;
    let rendered = plot::write_charts(dir, &plot::run_charts(summary, &ts))?;
    written.extend(rendered.iter().flat_map(|r| r.files.iter().cloned()));
    let path = dir.join(INDEX_FILE);
    write_text(&path, &index_html(summary, &ts, &rendered))?;
    written.push(path);
    Ok(written)
}

pub fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

pub fn index_html(summary: &Summary, ts: &Timeseries, plots: &[Rendered]) -> String {
    let s = &summary.scenario;
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>{} <small>{}</small></h1>",
        esc(&s.name),
        esc(&summary.run_id)
    );
    if !s.description.is_empty() {
        let _ = writeln!(body, "<p>{}</p>", esc(&s.description));
    }
    body += &verdict(summary);
    body += &environment(summary);
    body += &latency_section(summary);
    body += &ledger_section(summary);
    body += &fault_section(summary, ts);
    body += &durability_section(summary);
    body += &plots_section(plots);
    let scenario_toml = toml::to_string(s).unwrap_or_default();
    let _ = writeln!(
        body,
        "<h2>Scenario (resolved)</h2>\n<pre>{}</pre>",
        esc(&scenario_toml)
    );
    let _ = writeln!(
        body,
        "<h2>Terminal summary</h2>\n<pre>{}</pre>",
        esc(&render_table(summary))
    );
    page(&format!("streamdrill: {}", s.name), &body)
}

/// A complete HTML document with the shared stylesheet.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        esc(title)
    )
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:2em auto;\
max-width:1060px;color:#222;padding:0 1em}h1 small{font-size:.5em;color:#666}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;\
text-align:right}th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}\
.pass{background:#d7f5dd;border:2px solid #2a8a3e;padding:.6em 1em}\
.fail{background:#fbdada;border:2px solid #b22;padding:.6em 1em}\
figure{margin:1.5em 0}svg{max-width:100%;height:auto;border:1px solid #ddd}\
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}";

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A table with a header row; cells are escaped.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table>\n<tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out += "</tr>\n";
    for row in rows {
        out += "<tr>";
        for cell in row {
            let _ = write!(out, "<td>{}</td>", esc(cell));
        }
        out += "</tr>\n";
    }
    out + "</table>\n"
}

fn verdict(summary: &Summary) -> String {
    let slo = &summary.slo;
    let (class, text) = match (slo.checks.is_empty(), slo.passed) {
        (true, _) => ("pass", "No SLO set".to_string()),
        (false, true) => ("pass", format!("SLO PASSED ({} checks)", slo.checks.len())),
        (false, false) => ("fail", "SLO FAILED".to_string()),
    };
    let mut out = format!("<p class=\"{class}\"><b>{}</b></p>\n", esc(&text));
    if !slo.checks.is_empty() {
        let rows: Vec<Vec<String>> = (slo.checks.iter())
            .map(|c| {
                let mark = if c.passed { "pass" } else { "FAIL" };
                vec![
                    c.name.clone(),
                    c.scope.label().into(),
                    c.objective.threshold_text(),
                    c.actual_with_note(),
                    mark.into(),
                ]
            })
            .collect();
        let headers = ["objective", "events", "threshold", "actual", "verdict"];
        out += &table(&headers, &rows);
    }
    out
}

fn environment(summary: &Summary) -> String {
    let r = &summary.redis;
    let m = &summary.machine;
    let mut rows = vec![
        vec!["started".into(), summary.started_at.clone()],
        vec![
            "measured duration".into(),
            format!("{:.1} s", summary.measured_duration_s),
        ],
        vec!["streamdrill".into(), summary.streamdrill_version.clone()],
        vec![
            "redis".into(),
            format!("{} ({}, {})", r.version, r.mode, r.url),
        ],
        vec![
            "machine".into(),
            format!(
                "{} {}/{}, {} CPUs, kernel {}",
                m.hostname, m.os, m.arch, m.cpus, m.kernel
            ),
        ],
        vec!["idle CPUs".into(), m.idle_label()],
    ];
    if let Some(h) = &summary.harness {
        rows.push(vec![
            "harness CPU".into(),
            format!(
                "{:.2} s, {:.2} µs per event sent (whole run)",
                h.cpu_s, h.cpu_us_per_event
            ),
        ]);
    }
    rows.extend(
        r.config
            .iter()
            .map(|(k, v)| vec![format!("redis {k}"), v.clone()]),
    );
    format!("<h2>Environment</h2>\n{}", table(&["", "value"], &rows))
}

/// The columns `latency_row` fills after its label.
const PERCENTILE_COLUMNS: [&str; 8] = [
    "count", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean",
];

/// `label`'s header cell, then the percentile columns.
fn latency_headers(label: &str) -> Vec<&str> {
    std::iter::once(label).chain(PERCENTILE_COLUMNS).collect()
}

fn latency_row(label: &str, p: &Percentiles) -> Vec<String> {
    let mut row = vec![label.to_string(), p.count.to_string()];
    row.extend([p.p50, p.p90, p.p99, p.p999, p.p9999, p.max].map(format_us));
    row.push(format_us(p.mean.round() as u64));
    row
}

fn latency_section(summary: &Summary) -> String {
    let p = &summary.produce;
    let ratio = if p.target_rate_per_s > 0.0 {
        100.0 * p.achieved_rate_per_s / p.target_rate_per_s
    } else {
        0.0
    };
    let opt = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
    let mut rates = vec![vec![
        format!("{:.1}", p.target_rate_per_s),
        format!("{:.1} ({ratio:.1}%)", p.achieved_rate_per_s),
        opt(p.intended),
        p.sent.to_string(),
        p.acked.to_string(),
        opt(p.late),
        opt(p.failed),
        opt(p.indeterminate),
        opt(p.unanswered),
        opt(p.unsent),
        opt(p.skipped),
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
            "<p>Produce latency: {n} values are lower bounds (unanswered or unsent when producers gave up).</p>"
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

/// `n`, or "-" for a figure the summary's schema did not record.
fn opt(n: Option<u64>) -> String {
    n.map_or("-".into(), |n| n.to_string())
}

/// The partition of a phase's acknowledged events, then its activity counts.
fn phase_row(group: &str, phase: &str, p: &GroupPhase) -> Vec<String> {
    let mut row = vec![group.to_string(), phase.to_string()];
    row.extend([
        opt(p.produced_acked),
        opt(p.processed),
        p.dead_lettered.to_string(),
        opt(p.in_progress),
        p.unread.to_string(),
        p.stranded.to_string(),
        opt(p.unknown),
        p.lost.to_string(),
    ]);
    row.extend([p.deliveries, p.processings, p.acked, p.errors].map(|n| n.to_string()));
    row
}

fn ledger_section(summary: &Summary) -> String {
    let measured = match summary.schema_version {
        1 => "whole run (schema 1)",
        _ => "measured",
    };
    let mut rows = Vec::new();
    for g in &summary.groups {
        rows.push(phase_row(&g.name, measured, &g.measured));
        if let Some(w) = &g.warmup {
            rows.push(phase_row(&g.name, "warmup", w));
        }
    }
    let headers = [
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
        "deliveries",
        "processings",
        "XACKed",
        "errors",
    ];
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
            row.push(opt(g.pending_at_end));
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
    let consistent = if v.consistent {
        "consistent"
    } else {
        "MISMATCH"
    };
    format!(
        "<h2>Ledger</h2>\n<p>Acknowledged events by outcome; they add up to the acked column. \
         Loss objectives judge both phases together.</p>\n{}<h3>Whole run</h3>\n{}{}\
         <h3>Verify: entries-added vs {} produce acks: {consistent}</h3>\n{}",
        table(&headers, &rows),
        table(&whole_headers, &whole),
        redelivery_tables(summary),
        v.produce_acked,
        table(&["stream", "entries-added", "length"], &verify_rows)
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

fn plots_section(plots: &[Rendered]) -> String {
    let mut out = String::from("<h2>Plots</h2>\n");
    for p in plots {
        let png = p
            .files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == "png"));
        let name = png
            .and_then(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        let _ = writeln!(
            out,
            "<figure>\n{}\n<figcaption>{} (PNG: plots/{})</figcaption>\n</figure>",
            strip_xml_declaration(&p.svg),
            esc(&p.title),
            esc(&name.unwrap_or_default())
        );
    }
    out
}

/// Fault windows with their recovery figures (writes back, in-flight events
/// done, lag back), then per group the worst e2e p99 while the fault lasted
/// and how long after it ended p99 fell back to twice its pre-fault median
/// (from the per-second `timeseries.csv`).
fn fault_section(summary: &Summary, ts: &Timeseries) -> String {
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
    out + &recovery_table(summary) + &table(&headers, &rows)
}

/// After a drill that read the streams back: what Redis acknowledged and lost.
fn durability_section(summary: &Summary) -> String {
    let Some(d) = &summary.durability else {
        return String::new();
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
        .map(|r| vec![super::table::gone_range(r, summary.started_at_unix_s)])
        .collect();
    let mut out = String::from("<h2>Durability (streams read back)</h2>\n");
    out += &table(&headers, &counts);
    if !ranges.is_empty() {
        out += &table(&["gone ranges (times from the run's start)"], &ranges);
    }
    out
}

/// Each fault's recovery figures from `summary.json`.
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
    ];
    table(&headers, &rows)
}

/// Inline SVG must not carry an XML declaration.
pub fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(at) => &svg[at..],
        None => svg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::tests::test_summary;

    #[test]
    fn page_is_self_contained_and_shows_the_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let summary = test_summary();
        let written = render_views(dir.path(), &summary).unwrap();
        assert!(
            written
                .iter()
                .any(|p| p.ends_with("plots/percentile-spectrum.png"))
        );
        let html = std::fs::read_to_string(dir.path().join(INDEX_FILE)).unwrap();
        for text in [
            "orders-20231114T221320Z",
            "No SLO set",
            "7.0.15",
            "e2e billing",
            "<svg",
            "Percentile spectrum",
        ] {
            assert!(html.contains(text), "missing {text}");
        }
        for external in ["<script", "<img", "<link", "src=", "href=\"http", "url("] {
            assert!(
                !html.contains(external),
                "page must be self-contained: {external}"
            );
        }
        assert_eq!(html.matches("<svg").count(), 7);
    }

    #[test]
    fn page_shows_redelivery_recovery_and_unreplicated() {
        let mut summary = test_summary();
        summary.produce.unreplicated = Some(42);
        summary.faults = vec![crate::report::FaultWindow {
            name: "crash_consumer billing/0".into(),
            start_s: 2.0,
            end_s: 9.0,
            first_write_after_s: Some(0.0),
            all_writes_after_s: Some(0.0),
            in_flight_at_start: Some(50),
            recovered_after_s: Some(0.612),
            ..Default::default()
        }];
        let html = index_html(&summary, &Timeseries::default(), &[]);
        for text in [
            "<th>unreplicated (WAIT saw too few replicas)</th>",
            "<td>42</td>",
            "<th>7+x</th>",
            "<td>billing</td><td>6499</td><td>1</td><td>0</td>",
            "Redelivery latency",
            "<td>billing</td><td>1</td><td>750ms</td>",
            "<td>crash_consumer billing/0</td><td>2.000</td><td>9.000</td>\
             <td>0.000 s</td><td>0.000 s</td><td>50</td><td>0.612 s</td><td>never</td>",
        ] {
            assert!(html.contains(text), "missing {text}");
        }
        summary.produce.unreplicated = None;
        let html = index_html(&summary, &Timeseries::default(), &[]);
        assert!(!html.contains("unreplicated"));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
