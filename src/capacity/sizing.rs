//! How big a deployment must be, from what the steps measured
//! (docs/capacity.md, "Sizing"): memory per stream entry and per pending
//! entry, retention, drain time after an outage, headroom and shards. Pure
//! arithmetic on measured figures; the only assumption, stated in the
//! docs, is that a backlog drains at the maximum sustainable rate.

use crate::report::capacity::{CapacityResult, DrainRow, RetentionRow, ShardRow, Sizing, Step};
use crate::scenario::Scenario;

const RETENTION_WINDOWS_S: [f64; 3] = [60.0, 3600.0, 86_400.0];
const OUTAGES_S: [f64; 4] = [10.0, 60.0, 600.0, 3600.0];
const SHARD_TARGETS: [f64; 4] = [1.0, 2.0, 5.0, 10.0];

/// `own_rate_per_s`: the scenario's own rate, the operating point planned
/// for; None plans for half the result. `pending_bytes_per_entry`: the probe's.
pub fn sizing(
    scenario: &Scenario,
    steps: &[Step],
    result: &CapacityResult,
    own_rate_per_s: Option<f64>,
    pending_bytes_per_entry: Option<f64>,
) -> Option<Sizing> {
    let max = result.max_sustainable_rate_per_s;
    if max <= 0.0 {
        return None;
    }
    let knee = steps.iter().find(|s| Some(s.index) == result.knee_step)?;
    let bytes_per_entry = match (knee.stream_memory_bytes, knee.stream_entries) {
        (Some(bytes), Some(entries)) if entries > 0 => Some(bytes as f64 / entries as f64),
        _ => None,
    };
    let operating = own_rate_per_s.unwrap_or(max / 2.0);
    let retention = [operating, max]
        .into_iter()
        .flat_map(|rate| RETENTION_WINDOWS_S.map(|w| (rate, w)))
        .map(|(rate_per_s, window_s)| {
            let entries = (rate_per_s * window_s).round() as u64;
            RetentionRow {
                rate_per_s,
                window_s,
                entries,
                bytes: bytes_per_entry.map(|b| (b * entries as f64).round() as u64),
                maxlen: entries,
                minid_ms: (window_s * 1000.0) as u64,
            }
        })
        .collect();
    let drain = OUTAGES_S
        .map(|outage_s| {
            let backlog = (operating * outage_s).round() as u64;
            DrainRow {
                outage_s,
                backlog,
                drain_s: (max > operating).then(|| backlog as f64 / (max - operating)),
            }
        })
        .to_vec();
    let shards = SHARD_TARGETS
        .map(|times| ShardRow {
            target_rate_per_s: operating * times,
            shards: (operating * times / max).ceil().max(1.0) as u32,
        })
        .to_vec();
    Some(Sizing {
        bytes_per_entry,
        used_memory_bytes_per_entry: used_memory_per_entry(scenario, knee),
        pending_bytes_per_entry,
        operating_rate_per_s: operating,
        headroom: max / operating - 1.0,
        retention,
        drain,
        shards,
    })
}

/// used_memory's growth rate over the knee step's window per entry added;
/// only when no stream is trimmed (a trimmed stream stops growing).
fn used_memory_per_entry(scenario: &Scenario, knee: &Step) -> Option<f64> {
    let untrimmed = (scenario.streams.iter()).all(|s| s.maxlen.is_none() && s.minid.is_none());
    let growth = knee.used_memory_growth_per_s?;
    (untrimmed && knee.achieved_rate_per_s >= 1.0).then(|| growth / knee.achieved_rate_per_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::capacity::{Bound, Quantiles, StepKind, Verdict};
    use crate::scenario::{Overrides, load_str};

    fn step(index: u32, rate: f64, passed: bool) -> Step {
        Step {
            index,
            kind: StepKind::Probe,
            run_dir: format!("steps/{index:02}"),
            offered_rate_per_s: rate,
            achieved_rate_per_s: rate,
            measured_duration_s: 10.0,
            produce: Quantiles::default(),
            service: Quantiles::default(),
            schedule_lag: Quantiles::default(),
            groups: Vec::new(),
            redis_cpu_cores: Some(0.5),
            harness_cpu_cores: 0.3,
            harness_threads: 1,
            used_memory_bytes: Some(50_000_000),
            used_memory_growth_per_s: Some(500_000.0),
            stream_entries: Some(50_000),
            stream_memory_bytes: Some(25_000_000),
            shards: Vec::new(),
            verdict: Verdict {
                passed,
                failed: None,
                harness_limited: false,
                reason: String::new(),
            },
        }
    }

    #[test]
    fn sizes_from_the_knee_step() {
        let scenario = load_str(
            "name = \"s\"\nduration = \"5s\"\n[[streams]]\nkey = \"a\"\n[[producers]]\nstream = \"a\"\nrate = 1000\n",
            "s.toml",
            &Overrides::default(),
        )
        .unwrap();
        let steps = vec![step(1, 2000.0, true), step(2, 4000.0, false)];
        let result = CapacityResult {
            max_sustainable_rate_per_s: 2000.0,
            bound: Bound::Found,
            first_failing_rate_per_s: Some(4000.0),
            resolution_reached: Some(1.0),
            confirmed: false,
            limit: None,
            knee_step: Some(1),
        };
        let s = sizing(&scenario, &steps, &result, Some(1000.0), Some(80.0)).unwrap();
        assert_eq!(s.bytes_per_entry, Some(500.0));
        // 500 KB/s at 2000/s.
        assert_eq!(s.used_memory_bytes_per_entry, Some(250.0));
        assert_eq!(s.headroom, 1.0);
        let hour = (s.retention.iter())
            .find(|r| r.rate_per_s == 1000.0 && r.window_s == 3600.0)
            .unwrap();
        assert_eq!((hour.entries, hour.maxlen), (3_600_000, 3_600_000));
        assert_eq!(hour.bytes, Some(1_800_000_000));
        let minute = s.drain.iter().find(|d| d.outage_s == 60.0).unwrap();
        assert_eq!((minute.backlog, minute.drain_s), (60_000, Some(60.0)));
        let shards: Vec<u32> = s.shards.iter().map(|r| r.shards).collect();
        assert_eq!(shards, [1, 1, 3, 5]);
        let none = CapacityResult {
            max_sustainable_rate_per_s: 0.0,
            knee_step: None,
            ..result
        };
        assert_eq!(sizing(&scenario, &steps, &none, None, None), None);
    }
}
