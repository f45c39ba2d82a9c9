//! Every metric of the endpoint, written from a [`View`] in the format a
//! scrape asked for (`text`); the reference for users is
//! docs/metrics-endpoint.md, "Metric reference".
//!
//! Latencies are summaries: their quantiles are the newest closed second's
//! percentiles, read from the same merged HdrHistogram as that second's row
//! of `timeseries.csv`, so the two agree to the microsecond; `_count` and
//! `_sum` cover the whole run so far.

use super::text::{Format, Kind, Writer};
use super::{RunPhase, RunView, View};
use crate::metrics::{ProduceTotals, Progress};

/// Every metric family the endpoint may expose, by its name without
/// [`PREFIX`] (a counter's without `_total`): the dashboard test holds
/// `assets/grafana/streamdrill.json` to this list.
pub const FAMILIES: &[&str] = &[
    "run",
    "run_phase",
    "run_elapsed_seconds",
    "settled_second_start_seconds",
    "produce_target_events_per_second",
    "produce_acked_events_per_second",
    "produce_sent",
    "produce_acked",
    "produce_failed",
    "produce_indeterminate",
    "produce_latency_seconds",
    "produce_service_time_seconds",
    "produce_schedule_lag_seconds",
    "group_processed",
    "group_redeliveries",
    "group_dead_letter_moves",
    "group_lag",
    "group_pending",
    "e2e_latency_seconds",
    "stream_length",
    "redis_memory_used_bytes",
    "harness_cpu_seconds",
    "fault_active",
    "capacity_step",
    "capacity_offered_events_per_second",
];

/// The whole exposition; `harness_cpu_s` is this process's CPU time now.
pub fn render(view: &View, format: Format, harness_cpu_s: f64) -> String {
    let mut w = Writer::new(format);
    w.family(
        "harness_cpu_seconds",
        Kind::Counter,
        "CPU time this streamdrill process has spent (user + system).",
    );
    w.sample("harness_cpu_seconds_total", &[], harness_cpu_s);
    if let Some(run) = &view.run {
        write_run(&mut w, run);
    }
    if let Some(step) = &view.capacity {
        w.family(
            "capacity_step",
            Kind::Gauge,
            "The capacity search's current step, from 1 per server searched.",
        );
        let labels = [
            ("kind", step.kind.as_str()),
            ("server", step.server.as_str()),
        ];
        w.sample("capacity_step", &labels, f64::from(step.index));
        w.family(
            "capacity_offered_events_per_second",
            Kind::Gauge,
            "The total rate the current capacity step offers.",
        );
        w.sample(
            "capacity_offered_events_per_second",
            &[],
            step.offered_rate_per_s,
        );
    }
    w.finish()
}

fn write_run(w: &mut Writer, run: &RunView) {
    let labels = &run.labels;
    w.family(
        "run",
        Kind::Info,
        "The run being measured: its id (the report directory's name) and scenario.",
    );
    w.sample(
        "run_info",
        &[
            ("run_id", labels.run_id.as_str()),
            ("scenario", labels.scenario.as_str()),
        ],
        1.0,
    );
    w.family(
        "run_phase",
        Kind::Gauge,
        "1 for the phase the run is in (warmup, measured, drain: reply grace and drain, done), 0 for the others.",
    );
    let phase = run.phase();
    for p in RunPhase::ALL {
        w.sample("run_phase", &[("phase", p.name())], f64::from(p == phase));
    }
    let elapsed_s = run.progress.as_ref().map_or(0.0, |p| p.elapsed_s);
    w.family(
        "run_elapsed_seconds",
        Kind::Gauge,
        "Seconds since the run's clock started, when the figures were taken.",
    );
    w.sample("run_elapsed_seconds", &[], elapsed_s);
    if labels.faults.is_empty() {
        return write_figures(w, run);
    }
    w.family(
        "fault_active",
        Kind::Gauge,
        "1 while a planned fault window is open (at least 1 s), 0 otherwise; `at` is its start in seconds since the run's start.",
    );
    for f in &labels.faults {
        let at = format!("{}", f.start_s);
        let active = !run.finished && f.active_at(elapsed_s);
        let labels = [
            ("kind", f.kind.as_str()),
            ("target", f.target.as_str()),
            ("at", at.as_str()),
        ];
        w.sample("fault_active", &labels, f64::from(active));
    }
    write_figures(w, run);
}

/// What the collector measured, once it has said anything.
fn write_figures(w: &mut Writer, run: &RunView) {
    if let Some(p) = &run.progress {
        write_produce(w, p);
        write_groups(w, p);
        write_redis(w, p);
    }
}

fn write_produce(w: &mut Writer, p: &Progress) {
    let settled = p.settled.as_ref();
    if let Some(row) = settled {
        w.family(
            "settled_second_start_seconds",
            Kind::Gauge,
            "Start (seconds since the run's start) of the second the per-second figures and the latency quantiles describe: the newest closed row of timeseries.csv.",
        );
        w.sample("settled_second_start_seconds", &[], f64::from(row.interval));
        if let Some(target) = row.target_rate_per_s {
            w.family(
                "produce_target_events_per_second",
                Kind::Gauge,
                "The schedule's target rate in that second (absent after the schedule).",
            );
            w.sample("produce_target_events_per_second", &[], target);
        }
        w.family(
            "produce_acked_events_per_second",
            Kind::Gauge,
            "XADDs acknowledged in that second.",
        );
        w.sample(
            "produce_acked_events_per_second",
            &[],
            row.produce.acked as f64,
        );
    }
    let t = &p.totals.produce;
    let phases = [("warmup", &t.warmup), ("measured", &t.measured)];
    for (name, help, read) in [
        (
            "produce_sent",
            "XADDs sent, by the events' phase.",
            (|c| c.sent) as fn(&ProduceTotals) -> u64,
        ),
        (
            "produce_acked",
            "XADDs acknowledged with an entry id, by the events' phase.",
            |c| c.acked,
        ),
        (
            "produce_failed",
            "XADDs certainly not written (an error reply, never sent on a dead connection), by the events' phase.",
            |c| c.failed,
        ),
        (
            "produce_indeterminate",
            "XADDs sent and never answered (fate unknown until the read-back), by the events' phase.",
            |c| c.indeterminate,
        ),
    ] {
        w.family(name, Kind::Counter, help);
        for (phase, counts) in phases {
            let total = format!("{name}_total");
            w.sample(&total, &[("phase", phase)], read(counts) as f64);
        }
    }
    let row = settled.map(|r| &r.produce);
    for (name, help, second, total) in [
        (
            "produce_latency_seconds",
            "Intended send time to XADD reply (free of coordinated omission); quantiles of the settled second, count and sum of the whole run.",
            row.map(|r| &r.latency_us),
            &p.totals.produce_latency,
        ),
        (
            "produce_service_time_seconds",
            "Actual send to XADD reply; quantiles of the settled second, count and sum of the whole run.",
            row.map(|r| &r.service_us),
            &p.totals.produce_service,
        ),
        (
            "produce_schedule_lag_seconds",
            "Actual send minus intended send: the harness's own delay; quantiles of the settled second, count and sum of the whole run.",
            row.map(|r| &r.schedule_lag_us),
            &p.totals.schedule_lag,
        ),
    ] {
        w.family(name, Kind::Summary, help);
        w.summary(name, &[], second, total);
    }
}

fn write_groups(w: &mut Writer, p: &Progress) {
    if p.groups.is_empty() {
        return;
    }
    let names: Vec<&str> = p.groups.iter().map(|g| g.name.as_str()).collect();
    let totals = &p.totals.groups;
    w.family(
        "group_processed",
        Kind::Counter,
        "Entries whose processing finished (duplicates included), per group and by the events' phase.",
    );
    for (name, t) in names.iter().zip(totals) {
        for (phase, n) in [
            ("warmup", t.processed.warmup),
            ("measured", t.processed.measured),
        ] {
            let labels = [("group", *name), ("phase", phase)];
            w.sample("group_processed_total", &labels, n as f64);
        }
    }
    w.family(
        "group_redeliveries",
        Kind::Counter,
        "Redeliveries to the group: every entry read again counts, each time (summary.json's redelivered counts distinct events).",
    );
    for (name, t) in names.iter().zip(totals) {
        w.sample(
            "group_redeliveries_total",
            &[("group", *name)],
            t.redeliveries as f64,
        );
    }
    w.family(
        "group_dead_letter_moves",
        Kind::Counter,
        "Entries the group moved to its dead-letter stream, each move counted (summary.json's dead_lettered counts distinct events).",
    );
    for (name, t) in names.iter().zip(totals) {
        w.sample(
            "group_dead_letter_moves_total",
            &[("group", *name)],
            t.dead_letter_moves as f64,
        );
    }
    let lagging: Vec<_> = (p.groups.iter())
        .filter_map(|g| Some((g.name.as_str(), g.lag?)))
        .collect();
    if !lagging.is_empty() {
        w.family(
            "group_lag",
            Kind::Gauge,
            "Entries the group has not read yet (XINFO GROUPS lag), at the sampler's last reading; absent while Redis cannot tell.",
        );
        for (name, lag) in lagging {
            w.sample("group_lag", &[("group", name)], lag as f64);
        }
    }
    if p.reading.is_some() {
        w.family(
            "group_pending",
            Kind::Gauge,
            "Entries delivered and not acknowledged (XINFO GROUPS pending), at the sampler's last reading.",
        );
        for g in &p.groups {
            w.sample(
                "group_pending",
                &[("group", g.name.as_str())],
                g.pending as f64,
            );
        }
    }
    w.family(
        "e2e_latency_seconds",
        Kind::Summary,
        "Intended send time to processed, per group; quantiles of the settled second, count and sum of the whole run.",
    );
    let settled = p.settled.as_ref();
    for (i, (name, t)) in names.iter().zip(totals).enumerate() {
        let second = settled.and_then(|r| r.groups.get(i)).map(|g| &g.e2e_us);
        w.summary("e2e_latency_seconds", &[("group", *name)], second, &t.e2e);
    }
}

fn write_redis(w: &mut Writer, p: &Progress) {
    let Some(reading) = &p.reading else {
        return;
    };
    w.family(
        "stream_length",
        Kind::Gauge,
        "Entries in the stream (XLEN), per Redis key, at the sampler's last reading.",
    );
    for s in &reading.streams {
        w.sample("stream_length", &[("key", s.key.as_str())], s.length as f64);
    }
    w.family(
        "redis_memory_used_bytes",
        Kind::Gauge,
        "Redis's used_memory (INFO memory), at the sampler's last reading.",
    );
    w.sample(
        "redis_memory_used_bytes",
        &[],
        reading.used_memory_bytes as f64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::text::PREFIX;
    use crate::live::{FaultSpan, RunLabels};
    use crate::metrics::{
        GroupProgress, GroupReading, LatencyTotal, Percentiles, Reading, Row, StreamReading, Totals,
    };
    use std::collections::BTreeSet;
    use std::sync::Arc;

    fn sample_view() -> View {
        let mut row = Row {
            interval: 4,
            target_rate_per_s: Some(1000.0),
            ..Default::default()
        };
        row.produce.acked = 998;
        row.produce.latency_us = Percentiles {
            count: 998,
            mean: 120.0,
            p50: 100,
            p90: 150,
            p99: 431,
            p999: 900,
            p9999: 950,
            max: 1200,
        };
        row.groups.push(Default::default());
        let mut totals = Totals::default();
        totals.produce.measured.acked = 4000;
        totals.produce_latency = LatencyTotal {
            count: 5000,
            sum_us: 600_000.0,
        };
        totals.groups.push(Default::default());
        let progress = Progress {
            elapsed_s: 5.2,
            groups: vec![GroupProgress {
                name: "bill\"ing".into(),
                lag: Some(7),
                pending: 3,
                ..Default::default()
            }],
            totals,
            settled: Some(row),
            reading: Some(Reading {
                used_memory_bytes: 1 << 20,
                streams: vec![StreamReading {
                    key: "sd:r:orders".into(),
                    length: 5000,
                }],
                groups: vec![GroupReading::default()],
                ..Default::default()
            }),
            ..Default::default()
        };
        View {
            run: Some(Arc::new(RunView {
                labels: Arc::new(RunLabels {
                    run_id: "r".into(),
                    scenario: "s".into(),
                    warmup_s: 1.0,
                    schedule_s: 10.0,
                    faults: vec![FaultSpan {
                        kind: "stall_consumer".into(),
                        target: "billing/0".into(),
                        start_s: 5.0,
                        end_s: Some(7.0),
                    }],
                }),
                progress: Some(progress),
                finished: false,
            })),
            capacity: None,
        }
    }

    #[test]
    fn quantiles_are_the_settled_seconds_percentiles_in_seconds() {
        let text = render(&sample_view(), Format::Prometheus, 1.5);
        for line in [
            "streamdrill_produce_latency_seconds{quantile=\"0.99\"} 0.000431",
            "streamdrill_produce_latency_seconds{quantile=\"1\"} 0.0012",
            "streamdrill_produce_latency_seconds_sum 0.6",
            "streamdrill_produce_latency_seconds_count 5000",
            "streamdrill_produce_acked_total{phase=\"measured\"} 4000",
            "streamdrill_produce_acked_events_per_second 998",
            "streamdrill_settled_second_start_seconds 4",
            "streamdrill_group_lag{group=\"bill\\\"ing\"} 7",
            "streamdrill_fault_active{kind=\"stall_consumer\",target=\"billing/0\",at=\"5\"} 1",
            "streamdrill_run_phase{phase=\"measured\"} 1",
            "streamdrill_harness_cpu_seconds_total 1.5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        // An empty second: totals only, no zero quantiles.
        assert!(!text.contains("e2e_latency_seconds{group=\"bill\\\"ing\",quantile"));
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let text = render(&sample_view(), Format::OpenMetrics, 1.5);
        assert!(text.contains("# TYPE streamdrill_produce_acked counter\n"));
        assert!(text.contains("# TYPE streamdrill_run info\n"));
        assert!(text.contains("# UNIT streamdrill_produce_latency_seconds seconds\n"));
        assert!(text.ends_with("# EOF\n"));
        let plain = render(&sample_view(), Format::Prometheus, 1.5);
        assert!(plain.contains("# TYPE streamdrill_produce_acked_total counter\n"));
        assert!(plain.contains("# TYPE streamdrill_run_info gauge\n"));
        assert!(!plain.contains("# EOF") && !plain.contains("# UNIT"));
    }

    /// `sample_view` with every series there is: a capacity step, and a
    /// settled second with every latency.
    fn full_view() -> View {
        let mut view = sample_view();
        view.capacity = Some(crate::live::CapacityStep {
            index: 2,
            kind: "probe".into(),
            server: "1".into(),
            offered_rate_per_s: 4000.0,
        });
        let run = Arc::make_mut(view.run.as_mut().unwrap());
        let row = run.progress.as_mut().unwrap().settled.as_mut().unwrap();
        let p = row.produce.latency_us;
        (row.produce.service_us, row.produce.schedule_lag_us) = (p, p);
        row.groups[0].e2e_us = p;
        view
    }

    #[test]
    fn the_families_written_are_the_ones_listed() {
        let text = render(&full_view(), Format::OpenMetrics, 0.0);
        let written: Vec<&str> = (text.lines())
            .filter_map(|l| {
                l.strip_prefix("# TYPE ")?
                    .split(' ')
                    .next()?
                    .strip_prefix(PREFIX)
            })
            .collect();
        let mut listed = FAMILIES.to_vec();
        let mut sorted = written.clone();
        listed.sort_unstable();
        sorted.sort_unstable();
        assert_eq!(sorted, listed, "FAMILIES lists what is written");
    }

    /// Every `streamdrill_*` name in `text`, as written.
    fn series_names(text: &str) -> BTreeSet<&str> {
        let mut names = BTreeSet::new();
        let mut rest = text;
        while let Some(at) = rest.find(PREFIX) {
            let name_len = (rest[at..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
                .unwrap_or(rest.len() - at);
            names.insert(&rest[at..at + name_len]);
            rest = &rest[at + name_len..];
        }
        names
    }

    #[test]
    fn the_dashboard_asks_only_for_series_the_endpoint_serves() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/grafana/streamdrill.json"
        );
        let dashboard = std::fs::read_to_string(path).unwrap();
        // The names Prometheus stores, whichever format it scraped.
        let text = render(&full_view(), Format::Prometheus, 0.0);
        let served: BTreeSet<&str> = (text.lines())
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let asked = series_names(&dashboard);
        assert!(asked.len() >= 15, "the dashboard's queries: {asked:?}");
        for name in &asked {
            assert!(served.contains(name), "{name} is not served: {served:?}");
        }
        for name in [
            "streamdrill_produce_acked_total",
            "streamdrill_group_lag",
            "streamdrill_group_pending",
            "streamdrill_fault_active",
        ] {
            assert!(asked.contains(name), "the dashboard shows {name}");
        }
        let json: serde_json::Value = serde_json::from_str(&dashboard).expect("JSON");
        let annotations = json["annotations"]["list"].as_array().cloned();
        assert!(
            (annotations.into_iter().flatten()).any(|a| a["expr"]
                .as_str()
                .is_some_and(|e| e.contains("fault_active"))),
            "fault windows are annotations"
        );
    }
}
