//! The views of a run folder rendered from `summary.json` and the files beside
//! it: `.hgrm` files, `plots/`, and `index.html`, one self-contained page
//! (inline CSS and SVG, no script, no network) that opens offline years later.
//! `write_run` calls `render_views` for a new run; `streamdrill report` calls it
//! for an old one. The page helpers (`page`, `table`, `esc`) serve `compare` too.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod cluster;
mod faults;
mod replay;
mod schema_versions;
mod segments;
mod tables;
mod trim;

use super::files::TIMESERIES_FILE;
use super::plot::{self, Rendered, Timeseries};
use super::summary::Summary;
use super::{hgrm, render_table};
use crate::error::{Error, Result};

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
    if summary.interrupted {
        let _ = writeln!(
            body,
            "<p class=\"fail\"><b>INTERRUPTED</b> (Ctrl-C): the figures cover what ran, \
             up to {:.1} s of the measured phase.</p>",
            summary.measured_duration_s
        );
    }
    body += &verdict(summary);
    body += &environment(summary);
    body += &tables::latency_section(summary);
    body += &tables::ledger_section(summary);
    body += &tables::event_sourcing_section(summary);
    body += &faults::fault_section(summary, ts);
    body += &faults::durability_section(summary);
    body += &cluster::cluster_section(summary);
    body += &segments::segments_section(summary);
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
    page_with_style(title, "", body)
}

/// The same with rules of the page's own after the shared ones (the
/// capacity page's), so other pages' bytes stay as they are.
pub fn page_with_style(title: &str, own_style: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}{own_style}</style>\n</head>\n<body>\n{body}\
         </body>\n</html>\n",
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
    let rows: Vec<Row> = (rows.iter())
        .map(|r| Row::plain(r.iter().map(|c| esc(c)).collect()))
        .collect();
    table_html(headers, &rows)
}

/// A table row whose cells are HTML already (a link, a mark), with an
/// optional class for the whole row (e.g. `knee`).
pub struct Row {
    pub class: Option<&'static str>,
    pub cells: Vec<String>,
}

impl Row {
    pub fn plain(cells: Vec<String>) -> Row {
        Row { class: None, cells }
    }
}

/// A table with a header row (escaped) over rows of HTML cells.
pub fn table_html(headers: &[&str], rows: &[Row]) -> String {
    let mut out = String::from("<table>\n<tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out += "</tr>\n";
    for row in rows {
        match row.class {
            Some(class) => {
                let _ = write!(out, "<tr class=\"{class}\">");
            }
            None => out += "<tr>",
        }
        for cell in &row.cells {
            let _ = write!(out, "<td>{cell}</td>");
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
    if let Some(tls) = &r.tls {
        rows.insert(4, vec!["tls".into(), tls.describe()]);
    }
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

/// Every plot inline as SVG, captioned with its title and PNG file.
pub fn plots_section(plots: &[Rendered]) -> String {
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
        summary.faults = vec![crate::metrics::FaultWindow {
            name: "crash_consumer billing/0".into(),
            start_s: 2.0,
            end_s: 9.0,
            first_write_after_s: Some(0.0),
            all_writes_after_s: Some(0.0),
            in_flight_at_start: Some(50),
            recovered_after_s: Some(0.612),
            ..Default::default()
        }];
        summary.faults.push(crate::metrics::FaultWindow {
            name: "crash_consumer billing/0".into(),
            applied: false,
            error: Some("consumer billing/0 is already down".into()),
            start_s: 3.0,
            end_s: 3.0,
            ..Default::default()
        });
        let html = index_html(&summary, &Timeseries::default(), &[]);
        for text in [
            "<th>unreplicated (WAIT saw too few replicas)</th>",
            "<td>42</td>",
            "<th>7+x</th>",
            "<td>billing</td><td>6499</td><td>1</td><td>0</td>",
            "Redelivery latency",
            "<td>billing</td><td>1</td><td>750ms</td>",
            "<td>crash_consumer billing/0</td><td>2.000</td><td>9.000</td>\
             <td>0.000 s</td><td>0.000 s</td><td>50</td><td>0.612 s</td><td>never</td>\
             <td>never</td><td>yes</td><td>-</td><td></td></tr>",
            "<td>never</td><td>NO</td><td>-</td><td>consumer billing/0 is already down</td>",
            "<p class=\"fail\"><b>Not applied</b>, which fails the run: crash_consumer \
             billing/0 (at 3.000 s): consumer billing/0 is already down</p>",
        ] {
            assert!(html.contains(text), "missing {text}");
        }
        summary.produce.unreplicated = None;
        let html = index_html(&summary, &Timeseries::default(), &[]);
        assert!(!html.contains("unreplicated"));
    }

    #[test]
    fn event_sourcing_section_only_when_a_group_checks_order() {
        let mut summary = test_summary();
        let ts = Timeseries::default();
        assert!(!index_html(&summary, &ts, &[]).contains("Event sourcing"));
        summary.groups[0].measured.order = Some(crate::metrics::OrderStats {
            events_out_of_order: 231,
            aggregates_out_of_order: 20,
            ..Default::default()
        });
        let html = index_html(&summary, &ts, &[]);
        assert!(html.contains("<h2>Event sourcing</h2>"));
        assert!(
            html.contains("<td>billing</td><td>measured</td><td>20</td><td>231</td>"),
            "{html}"
        );
    }

    #[test]
    fn event_sourcing_section_for_a_projection_alone() {
        let mut summary = test_summary();
        summary.groups[0].projection = Some(crate::metrics::projection::ProjectionCheck {
            mode: "naive".into(),
            aggregates: 20,
            divergent: 14,
            double_applied: 23,
            ..Default::default()
        });
        let html = index_html(&summary, &Timeseries::default(), &[]);
        assert!(html.contains("<h2>Event sourcing</h2>"));
        assert!(
            !html.contains("Per-aggregate order"),
            "no group checks order"
        );
        let row =
            "<td>billing</td><td>naive</td><td>20</td><td>14</td><td>23</td><td>0</td><td>-</td>";
        assert!(html.contains(row), "{html}");
    }

    #[test]
    fn event_sourcing_section_shows_each_replay() {
        let mut summary = test_summary();
        let pass = crate::metrics::replay::ReplayPass {
            events_read: 8000,
            events_applied: 8000,
            checkpoints: 8,
            ..Default::default()
        };
        summary.groups[0].replay = Some(crate::metrics::replay::ReplayReport {
            mode: "idempotent".into(),
            batch: 500,
            checkpoint_every: 1000,
            full: pass,
            ..Default::default()
        });
        let html = index_html(&summary, &Timeseries::default(), &[]);
        assert!(html.contains("<h2>Event sourcing</h2>"));
        let row = "<td>billing</td><td>start</td><td>batch 500, checkpoint every 1000</td>\
                   <td>8000</td><td>8000</td><td>8</td>";
        assert!(html.contains(row), "{html}");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
