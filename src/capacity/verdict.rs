//! Whether a step's rate is sustainable, from its `summary.json` alone
//! (docs/capacity.md, "When a step passes"), and the step's record for
//! `capacity.json`. The first criterion that fails names the limit, in a
//! fixed order: the achieved rate, each group's lag then pending trend, the
//! scenario's own SLO. A failing step whose generator ran out of CPU is
//! flagged harness-limited, never blamed on the server.

use crate::metrics::Percentiles;
use crate::report::Summary;
use crate::report::capacity::{
    Criterion, Quantiles, SearchSettings, Step, StepGroup, StepKind, StepShard, Verdict,
};
use crate::scenario::Rate;

/// A backlog may grow by this many full batches per consumer over the
/// window before it counts as falling behind: batched reads make lag and
/// pending saw-tooth between 0 and a few batches.
const NOISE_BATCHES: f64 = 2.0;
/// CPU at or above this share of what it could use: saturated.
const SATURATED: f64 = 0.9;
/// Redis CPU at or above this (cores): the server was busy (one thread
/// serves every command).
const SERVER_BUSY_CORES: f64 = 0.9;

/// The step's record: its figures and its verdict.
pub fn step_of(
    summary: &Summary,
    settings: &SearchSettings,
    index: u32,
    kind: StepKind,
    offered_rate_per_s: f64,
    run_dir: String,
) -> Step {
    let load = summary.load.clone().unwrap_or_default();
    let window_s = summary.measured_duration_s.max(1e-9);
    let groups: Vec<StepGroup> = (summary.groups.iter())
        .map(|g| {
            let trend = load.groups.iter().find(|t| t.name == g.name);
            let batch = (summary.scenario.groups.iter())
                .find(|c| c.name == g.name && c.stream == g.stream)
                .map_or(1, |c| c.batch);
            let noise = NOISE_BATCHES * f64::from(batch) * f64::from(g.consumers.max(1)) / window_s;
            // 1 % of what the group's own stream is offered, not of the total.
            let stream_rate: f64 = (summary.scenario.producers.iter())
                .filter(|p| p.stream == g.stream)
                .filter_map(|p| match p.rate {
                    Some(Rate::PerSecond(r)) => Some(r),
                    _ => None,
                })
                .sum();
            StepGroup {
                name: g.name.clone(),
                e2e: quantiles(&g.measured.e2e_latency_us),
                lag_slope_per_s: trend.and_then(|t| t.lag_slope_per_s),
                pending_slope_per_s: trend.and_then(|t| t.pending_slope_per_s),
                slope_limit_per_s: noise.max(0.01 * stream_rate),
            }
        })
        .collect();
    let harness = summary.harness.clone().unwrap_or_default();
    // Without readings, the run's average: warmup and window (an over-estimate,
    // its CPU runs on into the reply grace and the drain).
    let run_s = summary.scenario.warmup.as_secs_f64() + window_s;
    let harness_cpu_cores = (load.harness_cpu_cores).unwrap_or(harness.cpu_s / run_s);
    let mut step = Step {
        index,
        kind,
        run_dir,
        offered_rate_per_s,
        achieved_rate_per_s: summary.produce.achieved_rate_per_s,
        measured_duration_s: summary.measured_duration_s,
        produce: quantiles(&summary.produce.latency_us),
        service: quantiles(&summary.produce.service_time_us),
        schedule_lag: quantiles(&summary.produce.schedule_lag_us),
        groups,
        redis_cpu_cores: load.cpu_cores,
        harness_cpu_cores,
        harness_threads: harness.threads.unwrap_or(1),
        used_memory_bytes: load.used_memory_end_bytes,
        used_memory_growth_per_s: load.used_memory_slope_per_s,
        stream_entries: (!load.streams.is_empty())
            .then(|| load.streams.iter().map(|s| s.length).sum()),
        stream_memory_bytes: (load.streams.iter().map(|s| s.memory_bytes))
            .sum::<Option<u64>>()
            .filter(|_| !load.streams.is_empty()),
        shards: shards(summary),
        verdict: Verdict {
            passed: true,
            failed: None,
            harness_limited: false,
            reason: String::new(),
        },
    };
    step.verdict = judge(summary, settings, &step);
    step
}

/// A cluster step's shards: each one's Redis CPU and the entries on its keys.
fn shards(summary: &Summary) -> Vec<StepShard> {
    let Some(c) = &summary.cluster else {
        return Vec::new();
    };
    let added = |key: &str| {
        (summary.verify.streams.iter())
            .find(|v| v.key == key)
            .map(|v| v.entries_added)
    };
    let entries = c.entries_per_shard(added);
    (c.primaries.iter().enumerate())
        .map(|(i, primary)| {
            let load = c.shards.get(i).copied().unwrap_or_default();
            StepShard {
                primary: primary.clone(),
                cpu_cores_mean: load.cpu_cores_mean,
                cpu_cores_max: load.cpu_cores_max,
                entries_added: entries[i],
            }
        })
        .collect()
}

fn quantiles(p: &Percentiles) -> Quantiles {
    Quantiles {
        p50_us: p.p50,
        p99_us: p.p99,
        p999_us: p.p999,
        count: p.count,
    }
}

fn judge(summary: &Summary, settings: &SearchSettings, step: &Step) -> Verdict {
    let Some((failed, reason)) = first_failure(summary, settings, step) else {
        return Verdict {
            passed: true,
            failed: None,
            harness_limited: false,
            reason: "sustained".into(),
        };
    };
    let harness_limited = harness_limited(summary, step);
    let reason = match harness_limited {
        true => format!("{reason}; harness-limited: {}", harness_note(step)),
        false => reason,
    };
    Verdict {
        passed: false,
        failed: Some(failed),
        harness_limited,
        reason,
    }
}

fn first_failure(
    summary: &Summary,
    settings: &SearchSettings,
    step: &Step,
) -> Option<(Criterion, String)> {
    if summary.interrupted {
        let detail = "stopped by Ctrl-C".to_string();
        return Some((
            Criterion::Incomplete {
                detail: detail.clone(),
            },
            detail,
        ));
    }
    // Against what the schedule intended in the window, not offered ×
    // window: a Poisson schedule's own count varies by about 1/√(λT).
    let acked_in_window = step.achieved_rate_per_s * step.measured_duration_s;
    let intended = (summary.produce.intended)
        .filter(|n| *n > 0)
        .map_or(step.offered_rate_per_s * step.measured_duration_s, |n| {
            n as f64
        });
    let ratio = acked_in_window / intended.max(1e-9);
    if ratio < settings.min_achieved_ratio {
        let reason = format!(
            "achieved {:.0}/s of {:.0}/s offered ({:.1} % of the events intended, below {:.0} %)",
            step.achieved_rate_per_s,
            step.offered_rate_per_s,
            100.0 * ratio,
            100.0 * settings.min_achieved_ratio
        );
        return Some((Criterion::AchievedRate { ratio }, reason));
    }
    for g in &step.groups {
        let limit = g.slope_limit_per_s;
        if g.lag_slope_per_s.is_none() {
            let reason = format!(
                "group {}: lag unknown (Redis reported it for fewer than three readings)",
                g.name
            );
            let group = g.name.clone();
            return Some((Criterion::GroupTrendUnknown { group }, reason));
        }
        if let Some(slope) = g.lag_slope_per_s.filter(|s| *s > limit) {
            let reason = format!(
                "group {}: lag grows {slope:.0}/s (limit {limit:.0}/s)",
                g.name
            );
            let group = g.name.clone();
            return Some((
                Criterion::GroupLag {
                    group,
                    slope_per_s: slope,
                },
                reason,
            ));
        }
        if let Some(slope) = g.pending_slope_per_s.filter(|s| *s > limit) {
            let reason = format!(
                "group {}: pending grows {slope:.0}/s (limit {limit:.0}/s)",
                g.name
            );
            let group = g.name.clone();
            return Some((
                Criterion::GroupPending {
                    group,
                    slope_per_s: slope,
                },
                reason,
            ));
        }
    }
    let check = summary.slo.checks.iter().find(|c| !c.passed)?;
    let detail = format!(
        "{} against {}",
        check.actual_with_note(),
        check.objective.threshold_text()
    );
    let reason = format!("SLO {}: {detail}", check.name);
    Some((
        Criterion::Slo {
            check: check.name.clone(),
            detail,
        },
        reason,
    ))
}

/// The generator, not the server, was the limit: its CPU was saturated, or,
/// with the server on the same machine, the two together saturated it while
/// Redis itself was not busy. Late sends alone prove nothing: producers
/// wait for replies past their in-flight cap, so a slow server makes them
/// late too. A cluster is busy when its busiest shard is: each shard is one
/// Redis thread, and the sum over shards says nothing about any one.
fn harness_limited(summary: &Summary, step: &Step) -> bool {
    let harness = step.harness_cpu_cores;
    let saturated = harness >= SATURATED * f64::from(step.harness_threads);
    let redis = step.redis_cpu_cores.unwrap_or(0.0);
    let same_machine = summary.redis.mode == "managed";
    let cores = f64::from(summary.machine.cpus.max(1));
    let machine_full = same_machine && harness + redis >= SATURATED * cores;
    let busiest = match step.busiest_shard() {
        Some((_, shard)) => shard.cpu_cores_mean.unwrap_or(0.0),
        None => redis,
    };
    saturated || (machine_full && busiest < SERVER_BUSY_CORES)
}

fn harness_note(step: &Step) -> String {
    let busiest = match step.busiest_shard() {
        Some((i, s)) => format!(
            " (busiest shard {i}: {:.2})",
            s.cpu_cores_mean.unwrap_or(0.0)
        ),
        None => String::new(),
    };
    format!(
        "harness CPU {:.2} cores on {} thread(s), Redis CPU {}{busiest}",
        step.harness_cpu_cores,
        step.harness_threads,
        step.redis_cpu_cores
            .map_or("unknown".to_string(), |c| format!("{c:.2} cores"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{BacklogTrend, WindowLoad};
    use crate::report::summary::tests::test_summary;

    fn settings() -> SearchSettings {
        SearchSettings {
            start_rate_per_s: 100.0,
            max_rate_per_s: 1e6,
            growth: 2.0,
            resolution: 0.05,
            step_warmup_s: 1.0,
            step_duration_s: 60.0,
            confirm_duration_s: 60.0,
            min_achieved_ratio: 0.99,
            scenario_rate_per_s: Some(100.0),
        }
    }

    /// The test summary at `achieved`/s of 100 offered, its group's lag
    /// growing `lag_slope`/s, the harness using `harness_cores`.
    fn summary(achieved: f64, lag_slope: f64, harness_cores: f64) -> Summary {
        let mut s = test_summary();
        s.slo.checks.clear();
        // 100/s offered to the group's stream: a slope limit of 1/s.
        let producer = format!("stream = \"{}\"\nrate = 100", s.groups[0].stream);
        s.scenario.producers = vec![toml::from_str(&producer).unwrap()];
        s.produce.achieved_rate_per_s = achieved;
        s.load = Some(WindowLoad {
            cpu_cores: Some(0.3),
            harness_cpu_cores: Some(harness_cores),
            groups: (s.groups.iter())
                .map(|g| BacklogTrend {
                    name: g.name.clone(),
                    lag_slope_per_s: Some(lag_slope),
                    pending_slope_per_s: Some(0.0),
                    lag_max: Some(10),
                })
                .collect(),
            ..Default::default()
        });
        s
    }

    fn verdict(s: &Summary) -> Verdict {
        step_of(s, &settings(), 1, StepKind::Probe, 100.0, "steps/01".into()).verdict
    }

    #[test]
    fn a_step_that_keeps_up_passes() {
        let v = verdict(&summary(100.0, 0.5, 0.2));
        assert!(v.passed && v.failed.is_none(), "{v:?}");
    }

    #[test]
    fn the_first_failure_names_its_criterion() {
        let v = verdict(&summary(97.0, 50.0, 0.2));
        assert!(
            matches!(v.failed, Some(Criterion::AchievedRate { .. })),
            "{v:?}"
        );
        assert!(
            v.reason.contains("97 %") || v.reason.contains("97.0 %"),
            "{}",
            v.reason
        );
        let v = verdict(&summary(100.0, 50.0, 0.2));
        let group = test_summary().groups[0].name.clone();
        assert!(
            matches!(&v.failed, Some(Criterion::GroupLag { group: g, .. }) if *g == group),
            "{v:?}"
        );
        assert!(!v.harness_limited);
    }

    #[test]
    fn a_cluster_is_busy_when_its_busiest_shard_is_not_when_its_sum_is() {
        use crate::metrics::cluster::{ClusterRun, ShardLoad};
        // Two cores full between the harness (0.7) and three shards (1.2
        // together), none of which is near a core: the harness's limit.
        let mut s = summary(90.0, 0.0, 0.7);
        s.machine.cpus = 2;
        s.load.as_mut().unwrap().cpu_cores = Some(1.2);
        let shard = |cores| ShardLoad {
            cpu_cores_mean: Some(cores),
            cpu_cores_max: Some(cores),
        };
        s.cluster = Some(ClusterRun {
            primaries: vec!["a:1".into(), "b:2".into(), "c:3".into()],
            keys: Vec::new(),
            redirects: Default::default(),
            shards: vec![shard(0.3), shard(0.5), shard(0.4)],
        });
        let step = step_of(
            &s,
            &settings(),
            1,
            StepKind::Probe,
            100.0,
            "steps/01".into(),
        );
        assert_eq!(step.busiest_shard().map(|(i, _)| i), Some(1));
        assert!(step.verdict.harness_limited, "{:?}", step.verdict);
        assert!(
            step.verdict.reason.contains("busiest shard 1: 0.50"),
            "{}",
            step.verdict.reason
        );
        // One shard at a core: the server was busy.
        s.cluster.as_mut().unwrap().shards[1] = shard(0.95);
        assert!(!verdict(&s).harness_limited);
    }

    #[test]
    fn a_saturated_harness_is_named_not_the_server() {
        let v = verdict(&summary(90.0, 0.0, 0.95));
        assert!(!v.passed && v.harness_limited, "{v:?}");
        assert!(v.reason.contains("harness-limited"), "{}", v.reason);
    }
}
