//! What `compare` shows: a text table for the terminal, `compare.html`
//! (tables, differing settings, the overlaid percentile spectrum inline) and
//! the spectrum as `compare-spectrum.svg`/`.png` in the output folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::metrics::Unit;
use super::{Comparison, Delta, GateResult, Row, SIGNIFICANCE};
use crate::error::{Error, Result};
use crate::metrics::tags;
use crate::report::format_us;
use crate::report::html::{esc, page, strip_xml_declaration, table, write_text};
use crate::report::plot::{self, Axis, Chart, Legend, Line};

pub const COMPARE_FILE: &str = "compare.html";

/// Run labels: A, B, C, … (the first is the baseline).
pub fn letter(i: usize) -> String {
    char::from(b'A' + (i % 26) as u8).to_string()
}

/// What a run's figures mean when its summary.json is of an older schema
/// (docs/reports.md, "Older runs"); None for today's.
fn older_schema_note(cmp: &Comparison, i: usize) -> Option<String> {
    let version = cmp.runs[i].summary.schema_version;
    (version < 2).then(|| {
        format!(
            "schema {version}: its group counts cover the whole run (its latencies the \
             measured phase), its achieved rate counts late acknowledgements, and \"-\" \
             marks what it did not record"
        )
    })
}

fn run_name(cmp: &Comparison, i: usize) -> String {
    let dir = &cmp.runs[i].dir;
    dir.file_name().map_or(dir.display().to_string(), |n| {
        n.to_string_lossy().into_owned()
    })
}

pub fn format_value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Micros => format_us(v.abs().round() as u64),
        Unit::PerSecond | Unit::Decimal => format!("{:.1}", v.abs()),
        Unit::Count => format!("{}", v.abs().round() as u64),
    }
}

fn signed(unit: Unit, v: f64) -> String {
    let sign = if v < 0.0 { "-" } else { "+" };
    format!("{sign}{}", format_value(unit, v))
}

/// The cells of one run against the baseline: value, change, change %, noise verdict.
fn cells(unit: Unit, d: &Delta) -> [String; 4] {
    let dash = || "-".to_string();
    [
        d.value.map_or_else(dash, |v| format_value(unit, v)),
        d.abs.map_or_else(dash, |v| signed(unit, v)),
        d.rel_pct.map_or_else(dash, percent),
        d.p_value.map_or_else(dash, |p| {
            let verdict = if p < SIGNIFICANCE { "real" } else { "noise" };
            format!("{verdict} p={p:.3}")
        }),
    ]
}

/// A relative change that stays readable when it is huge: "+4.2%", "+264%", "x2624".
fn percent(p: f64) -> String {
    match p.abs() {
        a if a < 100.0 => format!("{p:+.1}%"),
        a if a < 10_000.0 => format!("{p:+.0}%"),
        _ => format!("x{:.0}", 1.0 + p / 100.0),
    }
}

fn shown_in_terminal(row: &Row) -> bool {
    let k = &row.metric.key;
    let minor = [".p90", ".p9999", ".mean"].iter().any(|s| k.ends_with(s));
    !minor && row.cells.iter().any(|c| c.value.is_some())
}

pub fn render_text(cmp: &Comparison, gates: &[GateResult]) -> String {
    let mut out = String::new();
    for i in 0..cmp.runs.len() {
        let role = if i == 0 { " (baseline)" } else { "" };
        let _ = writeln!(out, "{}: {}{role}", letter(i), run_name(cmp, i));
        if let Some(note) = older_schema_note(cmp, i) {
            let _ = writeln!(out, "   {note}");
        }
    }
    let _ = write!(out, "\n{:<24}{:>10}", "metric", "A");
    for i in 1..cmp.runs.len() {
        let _ = write!(
            out,
            "{:>10}{:>10}{:>8}{:>14}",
            letter(i),
            "change",
            "%",
            "vs noise"
        );
    }
    out.push('\n');
    for row in cmp.rows.iter().filter(|r| shown_in_terminal(r)) {
        let _ = write!(
            out,
            "{:<24}{:>10}",
            row.metric.key,
            cells(row.metric.unit, &row.cells[0])[0]
        );
        for cell in &row.cells[1..] {
            let [v, abs, rel, p] = cells(row.metric.unit, cell);
            let _ = write!(out, "{v:>10}{abs:>10}{rel:>8}{p:>14}");
        }
        out.push('\n');
    }
    if !cmp.differences.is_empty() {
        out += "\nsettings that differ:\n";
        for (key, values) in &cmp.differences {
            let _ = writeln!(out, "  {key}: {}", labelled(values).join(" | "));
        }
    }
    for g in gates {
        let verdict = if g.failed { "FAIL" } else { "pass" };
        let _ = writeln!(
            out,
            "gate [{verdict}] {} on {}: {}",
            g.gate, g.run, g.detail
        );
    }
    out
}

fn labelled(values: &[String]) -> Vec<String> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {v}", letter(i)))
        .collect()
}

/// Writes `compare.html` and the overlaid spectrum into `out`; returns the paths.
pub fn write_compare(cmp: &Comparison, gates: &[GateResult], out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|source| Error::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let chart = spectrum_overlay(cmp);
    let svg = plot::draw::svg_string(&chart)?;
    let svg_path = out.join("compare-spectrum.svg");
    let png_path = out.join("compare-spectrum.png");
    write_text(&svg_path, &svg)?;
    plot::draw::write_png(&chart, &png_path)?;
    let html_path = out.join(COMPARE_FILE);
    write_text(&html_path, &compare_html(cmp, gates, &svg))?;
    Ok(vec![svg_path, png_path, html_path])
}

/// Produce latency and every group's e2e latency of every run on one spectrum.
pub fn spectrum_overlay(cmp: &Comparison) -> Chart {
    let mut lines = Vec::new();
    for (i, run) in cmp.runs.iter().enumerate() {
        let s = &run.summary;
        let mut shown = vec![(tags::PRODUCE_LATENCY.to_string(), "produce".to_string())];
        shown.extend((s.groups.iter()).map(|g| (tags::e2e(&g.name), format!("e2e {}", g.name))));
        for (tag, label) in shown {
            if let Some(h) = plot::histogram(s, &tag) {
                lines.push(Line {
                    name: format!("{} {label}", letter(i)),
                    points: plot::spectrum_points(&h),
                    dashed: i == 0,
                    markers: Vec::new(),
                });
            }
        }
    }
    Chart {
        name: "compare-spectrum".into(),
        title: "Percentile spectrum (A dashed = baseline)".into(),
        x_label: "percentile".into(),
        y_label: "latency (log scale)".into(),
        x_axis: Axis::Spectrum,
        y_axis: Axis::LogMicros,
        lines,
        windows: Vec::new(),
        rules: Vec::new(),
        legend: Legend::UpperRight,
    }
}

fn compare_html(cmp: &Comparison, gates: &[GateResult], svg: &str) -> String {
    let mut body = String::from("<h1>streamdrill compare</h1>\n");
    let runs: Vec<Vec<String>> = (0..cmp.runs.len())
        .map(|i| {
            let s = &cmp.runs[i].summary;
            vec![
                letter(i),
                run_name(cmp, i),
                s.started_at.clone(),
                s.scenario.name.clone(),
                older_schema_note(cmp, i).unwrap_or_default(),
            ]
        })
        .collect();
    body += &table(&["", "run", "started", "scenario", "note"], &runs);
    if !gates.is_empty() {
        let failed = gates.iter().any(|g| g.failed);
        let class = if failed { "fail" } else { "pass" };
        let _ = writeln!(
            body,
            "<p class=\"{class}\"><b>gates {}</b></p>",
            if failed { "FAILED" } else { "passed" }
        );
        let rows: Vec<Vec<String>> = (gates.iter())
            .map(|g| {
                vec![
                    g.gate.clone(),
                    g.run.clone(),
                    g.detail.clone(),
                    if g.failed { "FAIL" } else { "pass" }.into(),
                ]
            })
            .collect();
        body += &table(&["gate", "run", "observed", "verdict"], &rows);
    }
    let mut headers = vec!["metric".to_string(), "A".to_string()];
    for i in 1..cmp.runs.len() {
        let l = letter(i);
        headers.extend([
            l.clone(),
            format!("{l} change"),
            format!("{l} %"),
            format!("{l} vs noise (Welch)"),
        ]);
    }
    let rows: Vec<Vec<String>> = (cmp
        .rows
        .iter()
        .filter(|r| r.cells.iter().any(|c| c.value.is_some())))
    .map(|row| {
        let mut cells_out = vec![
            row.metric.key.clone(),
            cells(row.metric.unit, &row.cells[0])[0].clone(),
        ];
        row.cells[1..]
            .iter()
            .for_each(|c| cells_out.extend(cells(row.metric.unit, c)));
        cells_out
    })
    .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let _ = writeln!(body, "<h2>Figures</h2>\n{}", table(&headers, &rows));
    let mut diff_headers = vec!["setting".to_string()];
    diff_headers.extend((0..cmp.runs.len()).map(letter));
    let diff_rows: Vec<Vec<String>> = (cmp.differences.iter())
        .map(|(k, values)| {
            std::iter::once(k.clone())
                .chain(values.iter().cloned())
                .collect()
        })
        .collect();
    let diff_headers: Vec<&str> = diff_headers.iter().map(String::as_str).collect();
    let _ = writeln!(
        body,
        "<h2>Settings that differ</h2>\n{}",
        table(&diff_headers, &diff_rows)
    );
    let _ = writeln!(
        body,
        "<h2>Percentile spectrum</h2>\n<figure>{}</figure>\n<p>{}</p>",
        strip_xml_declaration(svg),
        esc(
            "\"vs noise\": Welch's t-test over the per-second samples of the measured phase; p < 0.05 reads as a real difference."
        )
    );
    page("streamdrill compare", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::RunData;
    use crate::report::plot::Timeseries;
    use crate::report::summary::tests::test_summary;

    #[test]
    fn an_older_schemas_run_is_labelled_and_lacks_what_it_did_not_record() {
        let run = |name: &str, schema_version| {
            let mut summary = test_summary();
            summary.schema_version = schema_version;
            if schema_version == 1 {
                summary.groups[0].measured.processed = None;
            }
            RunData {
                dir: name.into(),
                summary,
                ts: Timeseries::default(),
            }
        };
        let cmp = Comparison::new(vec![run("old", 1), run("new", 2)]);
        let text = render_text(&cmp, &[]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("schema 1: its group counts cover the whole run"));
        assert!(lines[2].starts_with("B: new"), "no note for today's schema");
        let processed = (lines.iter())
            .find(|l| l.starts_with("billing.processed"))
            .unwrap();
        assert!(
            processed.split_whitespace().nth(1) == Some("-"),
            "{processed}"
        );
    }
}
