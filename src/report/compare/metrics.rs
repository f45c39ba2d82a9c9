//! The figures `compare` puts side by side, named as `--fail-if` gates use
//! them (`produce.rate`, `e2e.p99`, `e2e.billing.p99`, `lost`, …), where each
//! run's value and per-second samples come from, and the scenario settings
//! that differ between runs.

use std::collections::BTreeSet;

use serde_json::Value;

use super::RunData;
use crate::metrics::Percentiles;
use crate::report::columns::{self, GroupColumn, Quantile};
use crate::report::groups::GroupSummary;
use crate::report::summary::Summary;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    Micros,
    PerSecond,
    Count,
    /// A fractional figure, such as microseconds per event.
    Decimal,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stat {
    P50,
    P90,
    P99,
    P999,
    P9999,
    Max,
    Mean,
}

const STATS: [(&str, Stat); 7] = [
    ("p50", Stat::P50),
    ("p90", Stat::P90),
    ("p99", Stat::P99),
    ("p999", Stat::P999),
    ("p9999", Stat::P9999),
    ("max", Stat::Max),
    ("mean", Stat::Mean),
];

/// Reads one ledger figure of a group; None where the run's schema lacks it.
type LedgerField = fn(&GroupSummary) -> Option<u64>;

#[derive(Clone, Debug)]
enum Source {
    ProduceRate,
    ProduceErrors,
    /// Absent in runs whose producers do not WAIT.
    ProduceUnreplicated,
    Produce(Stat),
    Service(Stat),
    /// The worst group's value.
    E2eWorst(Stat),
    E2e(String, Stat),
    /// Summed over groups when `None`.
    Ledger(Option<String>, LedgerField),
    /// An event-sourcing figure of one group.
    Group(String, GroupFigure),
}

/// Reads one event-sourcing figure of a group; None where it lacks the feature.
type GroupFigure = fn(&GroupSummary) -> Option<f64>;

/// Per-aggregate order (measured phase, as the report's headline) and the
/// projection's check and cost (whole run), for groups that have them in
/// some run (docs/event-sourcing.md).
const EVENT_SOURCING: [(&str, Unit, GroupFigure); 6] = [
    ("out_of_order", Unit::Count, |g| {
        Some(g.measured.order?.events_out_of_order as f64)
    }),
    ("divergent", Unit::Count, |g| {
        Some(g.projection.as_ref()?.divergent as f64)
    }),
    ("double_applied", Unit::Count, |g| {
        Some(g.projection.as_ref()?.double_applied as f64)
    }),
    ("projection.p99", Unit::Micros, |g| {
        Some(g.measured.projection_latency_us?.p99 as f64)
    }),
    ("projection.redis_us", Unit::Decimal, |g| {
        g.projection.as_ref()?.redis_cost.as_ref()?.usec_per_event
    }),
    ("projection.redis_calls", Unit::Count, |g| {
        Some(g.projection.as_ref()?.redis_cost.as_ref()?.calls as f64)
    }),
];

#[derive(Clone, Debug)]
pub struct Metric {
    /// The name gates use.
    pub key: String,
    pub unit: Unit,
    source: Source,
    /// A run without this figure could not measure it (not: it does not
    /// apply there): a gate on it fails rather than pass unseen.
    pub missing_fails: bool,
}

fn metric(key: impl Into<String>, unit: Unit, source: Source) -> Metric {
    Metric {
        key: key.into(),
        unit,
        source,
        missing_fails: false,
    }
}

/// Every figure, with per-group ones for every group any run has.
pub fn all(runs: &[RunData]) -> Vec<Metric> {
    let mut out = vec![
        metric("produce.rate", Unit::PerSecond, Source::ProduceRate),
        metric("produce.errors", Unit::Count, Source::ProduceErrors),
        metric(
            "produce.unreplicated",
            Unit::Count,
            Source::ProduceUnreplicated,
        ),
    ];
    for (name, stat) in STATS {
        out.push(metric(
            format!("produce.{name}"),
            Unit::Micros,
            Source::Produce(stat),
        ));
    }
    for (name, stat) in STATS {
        out.push(metric(
            format!("service.{name}"),
            Unit::Micros,
            Source::Service(stat),
        ));
    }
    for (name, stat) in STATS {
        out.push(metric(
            format!("e2e.{name}"),
            Unit::Micros,
            Source::E2eWorst(stat),
        ));
    }
    let groups: BTreeSet<&str> = (runs.iter())
        .flat_map(|r| r.summary.groups.iter().map(|g| g.name.as_str()))
        .collect();
    // `processed` is the measured phase's; loss, like the SLOs, the whole
    // run's. Loss is unknown (not 0) where a read-back failed: `unknown`.
    let ledger: [(&str, LedgerField); 5] = [
        ("processed", |g| g.measured.processed),
        ("lost", lost),
        ("unknown", |g| g.whole_run_opt(|p| p.unknown)),
        ("duplicates", |g| Some(g.whole_run(|p| p.duplicates))),
        ("redelivered", |g| Some(g.whole_run(|p| p.redelivered))),
    ];
    for (field, get) in ledger.iter().skip(1) {
        let mut m = metric(*field, Unit::Count, Source::Ledger(None, *get));
        m.missing_fails = *field == "lost";
        out.push(m);
    }
    for g in groups {
        for (name, stat) in [STATS[0], STATS[2], STATS[3], STATS[5]] {
            out.push(metric(
                format!("e2e.{g}.{name}"),
                Unit::Micros,
                Source::E2e(g.into(), stat),
            ));
        }
        for (field, get) in ledger {
            let mut m = metric(
                format!("{g}.{field}"),
                Unit::Count,
                Source::Ledger(Some(g.into()), get),
            );
            m.missing_fails = field == "lost";
            out.push(m);
        }
        for (field, unit, get) in EVENT_SOURCING {
            let any = (runs.iter()).any(|r| group(&r.summary, g).and_then(get).is_some());
            if any {
                let source = Source::Group(g.into(), get);
                out.push(metric(format!("{g}.{field}"), unit, source));
            }
        }
    }
    out
}

/// A group's lost events, whole run, those trimmed before it read them
/// included (as runs before that split counted them); None when some
/// events' fate is unknown (the read-back failed): loss cannot be ruled out.
fn lost(g: &GroupSummary) -> Option<u64> {
    let unknown = g.whole_run_opt(|p| p.unknown).unwrap_or(0);
    let trimmed = g.whole_run(|p| p.trimmed_unread.unwrap_or(0));
    (unknown == 0).then(|| g.whole_run(|p| p.lost) + trimmed)
}

fn stat_of(p: &Percentiles, stat: Stat) -> f64 {
    match stat {
        Stat::P50 => p.p50 as f64,
        Stat::P90 => p.p90 as f64,
        Stat::P99 => p.p99 as f64,
        Stat::P999 => p.p999 as f64,
        Stat::P9999 => p.p9999 as f64,
        Stat::Max => p.max as f64,
        Stat::Mean => p.mean,
    }
}

fn group<'a>(s: &'a Summary, name: &str) -> Option<&'a GroupSummary> {
    s.groups.iter().find(|g| g.name == name)
}

impl Metric {
    /// This run's figure from `summary.json`; `None` where the run lacks it.
    pub fn value(&self, run: &RunData) -> Option<f64> {
        let s = &run.summary;
        match &self.source {
            Source::ProduceRate => Some(s.produce.achieved_rate_per_s),
            Source::ProduceErrors => Some(s.produce.errors as f64),
            Source::ProduceUnreplicated => s.produce.unreplicated.map(|n| n as f64),
            Source::Produce(stat) => Some(stat_of(&s.produce.latency_us, *stat)),
            Source::Service(stat) => Some(stat_of(&s.produce.service_time_us, *stat)),
            Source::E2eWorst(stat) => (s.groups.iter())
                .map(|g| stat_of(&g.measured.e2e_latency_us, *stat))
                .reduce(f64::max),
            Source::E2e(g, stat) => group(s, g).map(|g| stat_of(&g.measured.e2e_latency_us, *stat)),
            Source::Ledger(None, get) => {
                let counts: Option<Vec<u64>> = s.groups.iter().map(get).collect();
                counts.map(|c| c.iter().sum::<u64>() as f64)
            }
            Source::Ledger(Some(g), get) => group(s, g).and_then(get).map(|n| n as f64),
            Source::Group(g, get) => group(s, g).and_then(get),
        }
    }

    /// Per-second samples of the measured phase, where `timeseries.csv` has them.
    pub fn samples(&self, run: &RunData) -> Vec<f64> {
        let (from_s, to_s) = run.measured_s();
        let column = |h: &str| run.ts.values_between(h, from_s, to_s);
        // The CSV holds these two percentiles per second.
        let percentile = |stat: &Stat| match stat {
            Stat::P50 => Some(Quantile::P50),
            Stat::P99 => Some(Quantile::P99),
            _ => None,
        };
        match &self.source {
            Source::ProduceRate => column(columns::ACKED),
            Source::Produce(stat) => percentile(stat)
                .map(|q| column(columns::produce_latency_us(q)))
                .unwrap_or_default(),
            Source::E2e(g, stat) => percentile(stat)
                .map(|p| busy_values(run, g, p))
                .unwrap_or_default(),
            Source::E2eWorst(stat) => percentile(stat)
                .map(|p| worst_per_interval(run, p))
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// A group's e2e percentile per measured second in which it processed something.
fn busy_values(run: &RunData, group: &str, p: Quantile) -> Vec<f64> {
    worst_points(run, &[group], p)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn worst_per_interval(run: &RunData, p: Quantile) -> Vec<f64> {
    let names: Vec<&str> = run.summary.groups.iter().map(|g| g.name.as_str()).collect();
    worst_points(run, &names, p)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

/// Per measured second, the largest e2e percentile among `groups` that processed events.
fn worst_points(run: &RunData, groups: &[&str], p: Quantile) -> Vec<(f64, f64)> {
    let (from_s, to_s) = run.measured_s();
    let mut by_t = std::collections::BTreeMap::<u64, f64>::new();
    for g in groups {
        let processed = run.ts.index(&columns::group(g, GroupColumn::Processed));
        let busy = |r: &[Option<f64>]| processed.and_then(|i| r[i]).is_some_and(|n| n > 0.0);
        for (t, v) in run
            .ts
            .points_where(&columns::group(g, GroupColumn::E2eUs(p)), busy)
        {
            if t >= from_s && t < to_s {
                let slot = by_t.entry(t.to_bits()).or_insert(v);
                *slot = slot.max(v);
            }
        }
    }
    by_t.into_iter()
        .map(|(t, v)| (f64::from_bits(t), v))
        .collect()
}

/// Settings that differ between runs: the resolved scenario (minus its name)
/// and the environment, as dotted paths with each run's value.
pub fn differences(runs: &[RunData]) -> Vec<(String, Vec<String>)> {
    let flat: Vec<Vec<(String, String)>> = runs.iter().map(|r| settings(&r.summary)).collect();
    let keys: BTreeSet<&String> = flat.iter().flatten().map(|(k, _)| k).collect();
    let value_of = |run: &Vec<(String, String)>, key: &str| {
        (run.iter().find(|(k, _)| k == key)).map_or("(absent)".to_string(), |(_, v)| v.clone())
    };
    (keys.into_iter())
        .map(|k| {
            (
                k.clone(),
                flat.iter().map(|run| value_of(run, k)).collect::<Vec<_>>(),
            )
        })
        .filter(|(_, values)| values.iter().any(|v| v != &values[0]))
        .collect()
}

fn settings(s: &Summary) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(scenario) = serde_json::to_value(&s.scenario) {
        flatten("scenario", &scenario, &mut out);
    }
    out.retain(|(k, _)| k != "scenario.name" && k != "scenario.description");
    out.push(("redis.version".into(), s.redis.version.clone()));
    out.push(("redis.server".into(), s.redis.label()));
    out.extend((s.redis.config.iter()).map(|(k, v)| (format!("redis.config.{k}"), v.clone())));
    out.push(("machine.hostname".into(), s.machine.hostname.clone()));
    out.push(("machine.cpus".into(), s.machine.cpus.to_string()));
    out.push(("machine.cpu_idle".into(), s.machine.idle_label()));
    out.push(("streamdrill".into(), s.streamdrill_version.clone()));
    out
}

fn flatten(path: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| flatten(&format!("{path}.{k}"), v, out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| flatten(&format!("{path}.{i}"), v, out)),
        Value::String(s) => out.push((path.to_string(), s.clone())),
        other => out.push((path.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::{Comparison, Gate};
    use crate::report::plot::Timeseries;
    use crate::report::summary::tests::test_summary;

    fn run(name: &str, unreplicated: Option<u64>) -> RunData {
        let mut summary = test_summary();
        summary.produce.unreplicated = unreplicated;
        RunData {
            dir: name.into(),
            summary,
            ts: Timeseries::default(),
        }
    }

    #[test]
    fn unreplicated_writes_are_compared_where_producers_wait() {
        let cmp = Comparison::new(vec![run("a", Some(4)), run("b", Some(10)), run("c", None)]);
        let row = cmp.row("produce.unreplicated").unwrap();
        assert_eq!(row.metric.unit, Unit::Count);
        let values: Vec<Option<f64>> = row.cells.iter().map(|c| c.value).collect();
        assert_eq!(values, [Some(4.0), Some(10.0), None]);
        assert_eq!(row.cells[1].abs, Some(6.0));
        let results = Gate::parse("produce.unreplicated > 5")
            .unwrap()
            .check(&cmp)
            .unwrap();
        let failed: Vec<(&str, bool)> = (results.iter())
            .map(|r| (r.run.as_str(), r.failed))
            .collect();
        assert_eq!(failed, [("b", true), ("c", false)]);
        assert!(results[1].detail.contains("not available"));
    }

    #[test]
    fn unknown_loss_is_not_zero_loss_to_a_gate() {
        let mut unknown = run("readback-failed", None);
        unknown.summary.groups[0].measured.unknown = Some(249);
        let cmp = Comparison::new(vec![run("a", None), unknown]);
        assert_eq!(cmp.row("unknown").unwrap().cells[1].value, Some(249.0));
        assert_eq!(cmp.row("billing.lost").unwrap().cells[1].value, None);
        for gate in ["lost > 0", "billing.lost > 0"] {
            let results = Gate::parse(gate).unwrap().check(&cmp).unwrap();
            assert!(results[0].failed, "{gate}: {:?}", results[0]);
            assert!(results[0].detail.contains("not measured"));
        }
        let dupes = Gate::parse("duplicates > 1").unwrap().check(&cmp).unwrap();
        assert!(!dupes[0].failed);
    }

    #[test]
    fn event_sourcing_figures_only_for_groups_that_have_them() {
        use crate::metrics::projection::{ProjectionCheck, RedisCost};
        let plain = Comparison::new(vec![run("a", None), run("b", None)]);
        assert!(plain.row("billing.divergent").is_none());
        let projecting = |name: &str, double_applied: u64, usec_per_event: f64| {
            let mut r = run(name, None);
            r.summary.groups[0].projection = Some(ProjectionCheck {
                mode: "naive".into(),
                double_applied,
                divergent: double_applied,
                redis_cost: Some(RedisCost {
                    usec_per_event: Some(usec_per_event),
                    ..RedisCost::default()
                }),
                ..ProjectionCheck::default()
            });
            r
        };
        let runs = vec![
            projecting("naive", 22, 4.04),
            projecting("idempotent", 0, 13.3),
            run("plain", None),
        ];
        let cmp = Comparison::new(runs);
        let values = |key: &str| -> Vec<Option<f64>> {
            cmp.row(key)
                .unwrap()
                .cells
                .iter()
                .map(|c| c.value)
                .collect()
        };
        assert_eq!(
            values("billing.double_applied"),
            [Some(22.0), Some(0.0), None]
        );
        assert_eq!(
            values("billing.projection.redis_us"),
            [Some(4.04), Some(13.3), None]
        );
        assert!(cmp.row("billing.out_of_order").is_none());
        let gate = Gate::parse("billing.double_applied > 0").unwrap();
        assert!(!gate.check(&cmp).unwrap()[0].failed);
    }
}
