//! The charts of one run, described from what the run folder holds:
//! latency histogram and percentile spectrum from the measured-phase
//! histograms in `summary.json`, everything over time from `timeseries.csv`.
//! Warmup, drain and fault windows are shaded on every time-series chart.

use hdrhistogram::Histogram;

use super::data::Timeseries;
use super::draw::{Axis, Chart, Legend, Line, Window};
use crate::metrics::Latency;
use crate::metrics::tags;
use crate::report::Summary;
use crate::report::columns::{self, GroupColumn, Quantile};

/// Histogram bins per decade of latency: fine enough to show modes.
const BINS_PER_DECADE: f64 = 10.0;
/// Quantile steps per halving of the remaining distance, as HdrHistogram's tools use.
const SPECTRUM_TICKS_PER_HALF: u32 = 5;

const TIME_AXIS: &str = "time since run start (s)";

/// Per-interval counts and percentiles describe a whole second: draw them at its middle.
fn mid(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    points.into_iter().map(|(t, v)| (t + 0.5, v)).collect()
}

pub fn run_charts(summary: &Summary, ts: &Timeseries) -> Vec<Chart> {
    let windows = time_windows(summary, ts);
    let timed = |mut chart: Chart| {
        chart.windows = windows.clone();
        chart
    };
    vec![
        latency_histogram(summary),
        percentile_spectrum(summary),
        timed(throughput(summary, ts)),
        timed(e2e_over_time(summary, ts)),
        timed(backlog(summary, ts)),
        timed(stream_length(ts)),
        timed(memory(ts)),
    ]
}

/// A measured-phase histogram from summary.json, if the run recorded one.
pub fn histogram(summary: &Summary, tag: &str) -> Option<Histogram<u64>> {
    let latency = Latency::decode(summary.histograms.get(tag)?)?;
    (!latency.is_empty()).then(|| latency.histogram().clone())
}

/// The latency histograms worth showing: produce (corrected) and e2e per group.
fn latency_tags(summary: &Summary) -> Vec<(String, String)> {
    let mut shown = vec![(
        tags::PRODUCE_LATENCY.to_string(),
        "produce latency".to_string(),
    )];
    for g in &summary.groups {
        shown.push((tags::e2e(&g.name), format!("e2e {}", g.name)));
    }
    shown
}

fn chart(name: &str, title: &str, x_label: &str, y_label: &str) -> Chart {
    Chart {
        name: name.into(),
        title: title.into(),
        x_label: x_label.into(),
        y_label: y_label.into(),
        x_axis: Axis::Linear,
        y_axis: Axis::Linear,
        lines: Vec::new(),
        windows: Vec::new(),
        rules: Vec::new(),
        legend: Legend::UpperRight,
    }
}

fn line(name: impl Into<String>, points: Vec<(f64, f64)>, dashed: bool) -> Line {
    Line {
        name: name.into(),
        points,
        dashed,
        markers: Vec::new(),
    }
}

fn latency_histogram(summary: &Summary) -> Chart {
    let mut c = chart(
        "latency-histogram",
        "Latency histogram (measured phase)",
        "latency (log scale)",
        "share of events (%)",
    );
    c.x_axis = Axis::LogMicros;
    for (tag, label) in latency_tags(summary) {
        if let Some(h) = histogram(summary, &tag) {
            c.lines.push(line(label, histogram_points(&h), false));
        }
    }
    c
}

/// (log10 µs at the bin centre, % of events in the bin), 10 bins per decade.
pub fn histogram_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let total = h.len().max(1) as f64;
    let mut bins = std::collections::BTreeMap::<i64, u64>::new();
    for v in h.iter_recorded() {
        let value_us = h.median_equivalent(v.value_iterated_to()).max(1) as f64;
        let bin = (value_us.log10() * BINS_PER_DECADE).floor() as i64;
        *bins.entry(bin).or_default() += v.count_at_value();
    }
    (bins.into_iter())
        .map(|(bin, n)| {
            (
                (bin as f64 + 0.5) / BINS_PER_DECADE,
                100.0 * n as f64 / total,
            )
        })
        .collect()
}

fn percentile_spectrum(summary: &Summary) -> Chart {
    let mut c = chart(
        "percentile-spectrum",
        "Percentile spectrum: corrected latency vs service time",
        "percentile",
        "latency (log scale)",
    );
    (c.x_axis, c.y_axis) = (Axis::Spectrum, Axis::LogMicros);
    let mut tags = latency_tags(summary);
    tags.insert(
        1,
        (tags::PRODUCE_SERVICE.into(), "produce service time".into()),
    );
    for (tag, label) in tags {
        if let Some(h) = histogram(summary, &tag) {
            c.lines
                .push(line(label, spectrum_points(&h), tag.ends_with("service")));
        }
    }
    c
}

/// (log10(1/(1-p)), log10 µs) up to the max, as HdrHistogram's plotter draws it.
pub fn spectrum_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = (h.iter_quantiles(SPECTRUM_TICKS_PER_HALF))
        .map(|v| (v.quantile_iterated_to(), v.value_iterated_to()))
        .filter(|(q, _)| *q < 1.0)
        .map(|(q, us)| ((1.0 / (1.0 - q)).log10(), (us.max(1) as f64).log10()))
        .collect();
    let last_x = points.last().map_or(0.0, |p| p.0);
    let max_x = (h.len() as f64).log10().max(last_x);
    points.push((max_x, (h.max().max(1) as f64).log10()));
    points
}

/// Warmup and drain in grey, faults in red, in seconds since run start.
fn time_windows(summary: &Summary, ts: &Timeseries) -> Vec<Window> {
    let s = &summary.scenario;
    let warmup_s = s.warmup.as_secs_f64();
    let duration_s = s.duration.as_secs_f64();
    let end_s = (ts.points(columns::T_S).last()).map_or(duration_s, |p| p.1 + 1.0);
    let mut windows = Vec::new();
    let grey = |label: &str, start, end| Window {
        label: label.into(),
        start,
        end,
        fault: false,
    };
    if warmup_s > 0.0 {
        windows.push(grey("warmup", 0.0, warmup_s));
    }
    if end_s > duration_s {
        windows.push(grey("drain", duration_s, end_s));
    }
    windows.extend(summary.faults.iter().map(|f| Window {
        label: f.name.clone(),
        start: f.start_s,
        end: f.end_s,
        fault: true,
    }));
    windows
}

fn throughput(summary: &Summary, ts: &Timeseries) -> Chart {
    let mut c = chart("throughput", "Throughput", TIME_AXIS, "events/s");
    let target = mid(ts.points(columns::TARGET_RATE_PER_S));
    c.lines.push(line("target", target, true));
    let sent = mid(ts.points(columns::SENT));
    c.lines.push(line("produced (sent)", sent, false));
    let acked = mid(ts.points(columns::ACKED));
    c.lines.push(line("acked by Redis", acked, false));
    for g in &summary.groups {
        let points = mid(ts.points(&columns::group(&g.name, GroupColumn::Processed)));
        c.lines
            .push(line(format!("processed {}", g.name), points, false));
    }
    c
}

fn e2e_over_time(summary: &Summary, ts: &Timeseries) -> Chart {
    let mut c = chart(
        "e2e-latency",
        "End-to-end latency per group",
        TIME_AXIS,
        "latency (ms)",
    );
    for g in &summary.groups {
        // Intervals where nothing was processed have no latency: leave them out.
        let processed = ts.index(&columns::group(&g.name, GroupColumn::Processed));
        let busy = |r: &[Option<f64>]| processed.and_then(|i| r[i]).is_some_and(|n| n > 0.0);
        for (q, dashed) in [(Quantile::P50, true), (Quantile::P99, false)] {
            let points = ts.points_where(&columns::group(&g.name, GroupColumn::E2eUs(q)), busy);
            let ms = points
                .into_iter()
                .map(|(t, us)| (t + 0.5, us / 1e3))
                .collect();
            c.lines
                .push(line(format!("{} {}", g.name, q.label()), ms, dashed));
        }
    }
    c
}

fn backlog(summary: &Summary, ts: &Timeseries) -> Chart {
    let mut c = chart(
        "backlog",
        "Consumer lag and pending entries",
        TIME_AXIS,
        "entries",
    );
    for g in &summary.groups {
        let lag = ts.points(&columns::group(&g.name, GroupColumn::Lag));
        c.lines.push(line(format!("{} lag", g.name), lag, false));
        let pending = ts.points(&columns::group(&g.name, GroupColumn::Pending));
        c.lines
            .push(line(format!("{} pending", g.name), pending, true));
    }
    c
}

fn stream_length(ts: &Timeseries) -> Chart {
    let mut c = chart(
        "stream-length",
        "Stream length (XLEN)",
        TIME_AXIS,
        "entries",
    );
    for h in &ts.headers {
        if let Some(key) = columns::stream_of_length(h) {
            c.lines.push(line(key, ts.points(h), false));
        }
    }
    c
}

fn memory(ts: &Timeseries) -> Chart {
    let mut c = chart(
        "memory",
        "Redis memory (INFO used_memory)",
        TIME_AXIS,
        "used memory (MiB)",
    );
    let mib = (ts.points(columns::USED_MEMORY_BYTES).into_iter())
        .map(|(t, b)| (t, b / (1024.0 * 1024.0)))
        .collect();
    c.lines.push(line("used_memory", mib, false));
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::FaultWindow;
    use crate::report::summary::tests::test_summary;

    #[test]
    fn spectrum_runs_from_zero_to_the_max() {
        let mut l = Latency::new();
        (1..=1000).for_each(|us| l.record_us(us));
        let points = spectrum_points(l.histogram());
        assert_eq!(points[0], (0.0, 0.0));
        let last = *points.last().unwrap();
        assert!(last.0 >= 3.0 && last.0 < 3.1, "{last:?}");
        assert_eq!(last.1, 3.0, "ends at the max, 1 ms");
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
        );
    }

    #[test]
    fn histogram_shares_add_up_to_100() {
        let mut l = Latency::new();
        (1..=1000).for_each(|us| l.record_us(us));
        let points = histogram_points(l.histogram());
        let total: f64 = points.iter().map(|p| p.1).sum();
        assert!((total - 100.0).abs() < 1e-9, "{total}");
        // 1..9 µs fall into 7 bins, then 10 per decade and one for 1000 µs.
        assert_eq!(points.len(), 28);
    }

    #[test]
    fn every_chart_is_described_with_windows() {
        let mut summary = test_summary();
        summary.faults.push(FaultWindow {
            name: "kill billing/0".into(),
            start_s: 20.0,
            end_s: 30.0,
            ..Default::default()
        });
        let header = [
            columns::T_S.to_string(),
            columns::ACKED.to_string(),
            columns::group("billing", GroupColumn::Processed),
            columns::group("billing", GroupColumn::E2eUs(Quantile::P99)),
        ];
        let ts = Timeseries::parse(&format!("{}\n0,5,0,0\n66,5,5,2000\n", header.join(",")));
        let charts = run_charts(&summary, &ts);
        let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "latency-histogram",
                "percentile-spectrum",
                "throughput",
                "e2e-latency",
                "backlog",
                "stream-length",
                "memory"
            ]
        );
        let spectrum = &charts[1];
        assert_eq!(spectrum.lines.len(), 3, "latency, service, e2e billing");
        assert!(spectrum.lines[1].dashed);
        let e2e = &charts[3];
        assert_eq!(e2e.lines[1].points, [(66.5, 2.0)], "idle interval left out");
        let labels: Vec<&str> = e2e.windows.iter().map(|w| w.label.as_str()).collect();
        assert_eq!(labels, ["warmup", "drain", "kill billing/0"]);
    }
}
