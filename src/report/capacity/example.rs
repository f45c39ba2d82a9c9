//! A realistic `Capacity` for tests of the views (unit tests here, the
//! headless-Chromium test in `tests/it/capacity_report.rs`): two servers, probe,
//! bisect and confirmation steps, failures of several kinds, a
//! harness-limited search, sizing with and without a stream memory figure.
//! Not part of the API.

use std::collections::BTreeMap;

use super::{
    Bound, Capacity, CapacityResult, Criterion, DrainRow, Quantiles, RetentionRow, SearchSettings,
    ServerSearch, ShardRow, Sizing, Step, StepGroup, StepKind, Verdict,
};
use crate::metrics::{ServerInfo, StreamFeature};
use crate::report::environment::{MachineInfo, RedisInfo};
use crate::scenario::{Overrides, load_str};

const SCENARIO: &str = r#"
name = "orders"
description = "Order events for billing and audit"
duration = "25s"
warmup = "5s"
[[producers]]
stream = "orders"
rate = 5000
[[groups]]
stream = "orders"
name = "billing"
consumers = 4
[[groups]]
stream = "orders"
name = "audit"
[slo]
e2e_p99 = "50ms"
produce_p99 = "20ms"
"#;

/// Two searches of the scenario above: Redis 7 bracketed at 21,000 events/s
/// (billing's lag the limit), Valkey harness-limited at 26,000.
pub fn example_capacity() -> Capacity {
    let scenario = load_str(SCENARIO, "example.toml", &Overrides::default())
        .expect("the example scenario is valid");
    Capacity {
        schema_version: super::CAPACITY_SCHEMA_VERSION,
        streamdrill_version: "0.1.0".into(),
        id: "orders-capacity-20261205T101500Z".into(),
        started_at: "2026-12-05T10:15:00.000Z".into(),
        scenario,
        settings: SearchSettings {
            start_rate_per_s: 2_000.0,
            max_rate_per_s: 200_000.0,
            growth: 2.0,
            resolution: 0.05,
            step_warmup_s: 5.0,
            step_duration_s: 20.0,
            confirm_duration_s: 60.0,
            min_achieved_ratio: 0.99,
            scenario_rate_per_s: Some(5_000.0),
        },
        servers: vec![redis7(), valkey()],
        machine: MachineInfo {
            hostname: "bench-1".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            cpus: 8,
            kernel: "6.1.0-28-amd64".into(),
            cpu_idle: None,
        },
        interrupted: false,
    }
}

/// What a step measured, in the fixture's shorthand.
struct Measured {
    offered: f64,
    achieved: f64,
    /// produce p50 / p99 / p99.9, µs.
    produce_us: [u64; 3],
    /// e2e p99 of billing and audit, µs.
    e2e_p99_us: [u64; 2],
    /// lag slopes of billing and audit, entries/s.
    lag_slope: [Option<f64>; 2],
    redis_cpu: Option<f64>,
    harness_cpu: f64,
}

fn quantiles(p50_us: u64, p99_us: u64, p999_us: u64, count: u64) -> Quantiles {
    Quantiles {
        p50_us,
        p99_us,
        p999_us,
        count,
    }
}

fn step(index: u32, kind: StepKind, m: Measured, verdict: Verdict) -> Step {
    let duration_s = if kind == StepKind::Confirm {
        60.0
    } else {
        20.0
    };
    let count = (m.achieved * duration_s) as u64;
    let [p50, p99, p999] = m.produce_us;
    let groups = ["billing", "audit"]
        .iter()
        .enumerate()
        .map(|(i, name)| StepGroup {
            name: (*name).into(),
            e2e: quantiles(p50 * 3, m.e2e_p99_us[i], m.e2e_p99_us[i] * 2, count),
            lag_slope_per_s: m.lag_slope[i],
            pending_slope_per_s: m.lag_slope[i].map(|s| s / 10.0),
            slope_limit_per_s: (m.offered * 0.01).max(50.0),
        })
        .collect();
    Step {
        index,
        kind,
        run_dir: format!("{index:02}-{}-{:.0}", kind.name(), m.offered),
        offered_rate_per_s: m.offered,
        achieved_rate_per_s: m.achieved,
        measured_duration_s: duration_s,
        produce: quantiles(p50, p99, p999, count),
        service: quantiles(p50 / 2, p99 / 2, p999 / 2, count),
        schedule_lag: quantiles(20, 180, 900, count),
        groups,
        redis_cpu_cores: m.redis_cpu,
        harness_cpu_cores: m.harness_cpu,
        harness_threads: 4,
        used_memory_bytes: Some(2_000_000 + (m.achieved * duration_s * 640.0) as u64),
        used_memory_growth_per_s: Some(m.achieved * 640.0),
        stream_entries: Some(count),
        stream_memory_bytes: Some((count as f64 * 612.4) as u64),
        shards: Vec::new(),
        verdict,
    }
}

fn pass() -> Verdict {
    Verdict {
        passed: true,
        failed: None,
        harness_limited: false,
        reason: "every criterion held".into(),
    }
}

fn fail(failed: Criterion, harness_limited: bool, reason: &str) -> Verdict {
    Verdict {
        passed: false,
        failed: Some(failed),
        harness_limited,
        reason: reason.into(),
    }
}

/// A healthy step below a server's `knee`: latency and CPU grow with the rate.
fn near(knee: f64, offered: f64, redis_cpu: Option<f64>) -> Measured {
    let load = offered / knee;
    Measured {
        offered,
        achieved: offered * 0.9995,
        produce_us: [
            250 + (200.0 * load) as u64,
            900 + (4_000.0 * load * load) as u64,
            2_500 + (9_000.0 * load * load) as u64,
        ],
        e2e_p99_us: [
            1_800 + (30_000.0 * load * load) as u64,
            1_500 + (9_000.0 * load) as u64,
        ],
        lag_slope: [Some(2.0 * load), Some(-load)],
        redis_cpu,
        harness_cpu: 0.1 + 1.2 * load,
    }
}

/// A managed server: what it says it is, the Redis it is compatible with.
fn redis_info(name: &str, version: &str, redis_version: &str, binary: &str) -> RedisInfo {
    RedisInfo {
        mode: "managed".into(),
        url: "redis://127.0.0.1:6379".into(),
        version: redis_version.into(),
        config: BTreeMap::from([("appendonly".into(), "no".into())]),
        server: Some(ServerInfo {
            name: name.into(),
            version: version.into(),
            binary: Some(binary.into()),
            features: vec![StreamFeature::Xautoclaim, StreamFeature::GroupLag],
        }),
        tls: None,
    }
}

const REDIS_7: &str = "/usr/bin/redis-server";
const VALKEY_9: &str = "/opt/valkey/bin/valkey-server";

fn redis7() -> ServerSearch {
    use StepKind::{Bisect, Confirm, Probe};
    let easy = |offered, redis_cpu| near(21_000.0, offered, redis_cpu);
    let lag = |group: &str, slope_per_s| Criterion::GroupLag {
        group: group.into(),
        slope_per_s,
    };
    let steps = vec![
        step(1, Probe, easy(2_000.0, None), pass()),
        step(2, Probe, easy(4_000.0, Some(0.19)), pass()),
        step(3, Probe, easy(8_000.0, Some(0.37)), pass()),
        step(4, Probe, easy(16_000.0, Some(0.74)), pass()),
        step(
            5,
            Probe,
            Measured {
                offered: 32_000.0,
                achieved: 22_720.0,
                produce_us: [480_000, 2_100_000, 2_600_000],
                e2e_p99_us: [3_400_000, 2_900_000],
                lag_slope: [Some(9_100.0), Some(8_800.0)],
                redis_cpu: Some(1.0),
                harness_cpu: 1.6,
            },
            fail(
                Criterion::AchievedRate { ratio: 0.71 },
                false,
                "achieved 22,720/s of 32,000/s offered (71.0 %, need 99 %)",
            ),
        ),
        step(
            6,
            Bisect,
            Measured {
                e2e_p99_us: [71_200, 24_000],
                lag_slope: [Some(1_900.0), Some(4.0)],
                ..easy(24_000.0, Some(0.99))
            },
            fail(
                lag("billing", 1_900.0),
                false,
                "group billing: lag grows 1,900/s (limit 240/s)",
            ),
        ),
        step(7, Bisect, easy(20_000.0, Some(0.93)), pass()),
        step(
            8,
            Bisect,
            Measured {
                lag_slope: [Some(412.0), Some(3.0)],
                ..easy(22_000.0, Some(0.98))
            },
            fail(
                lag("billing", 412.0),
                false,
                "group billing: lag grows 412/s (limit 220/s)",
            ),
        ),
        step(9, Bisect, easy(21_000.0, Some(0.96)), pass()),
        step(10, Confirm, easy(21_000.0, Some(0.97)), pass()),
    ];
    let steps = under("steps/1", steps);
    let limit = steps[7].verdict.clone();
    ServerSearch {
        label: "redis 7.0.15".into(),
        binary: Some(REDIS_7.into()),
        redis: Some(redis_info("redis", "7.0.15", "7.0.15", REDIS_7)),
        steps,
        result: Some(CapacityResult {
            max_sustainable_rate_per_s: 21_000.0,
            bound: Bound::Found,
            first_failing_rate_per_s: Some(22_000.0),
            resolution_reached: Some(1_000.0 / 21_000.0),
            confirmed: true,
            limit: Some(limit),
            knee_step: Some(10),
        }),
        sizing: Some(Sizing {
            bytes_per_entry: Some(612.4),
            used_memory_bytes_per_entry: Some(655.0),
            pending_bytes_per_entry: Some(61.8),
            operating_rate_per_s: 5_000.0,
            headroom: 21_000.0 / 5_000.0 - 1.0,
            retention: retention(
                &[(5_000.0, 3_600.0), (5_000.0, 86_400.0), (21_000.0, 3_600.0)],
                Some(612.4),
            ),
            drain: drain(5_000.0, 21_000.0),
            shards: shards(21_000.0),
        }),
        error: None,
    }
}

fn valkey() -> ServerSearch {
    use StepKind::{Bisect, Confirm, Probe};
    let easy = |offered, redis_cpu| near(26_000.0, offered, redis_cpu);
    let harness = |offered: f64, achieved: f64| Measured {
        achieved,
        harness_cpu: 3.95,
        ..easy(offered, Some(1.1))
    };
    let steps = vec![
        step(1, Probe, easy(2_000.0, Some(0.12)), pass()),
        step(2, Probe, easy(4_000.0, Some(0.2)), pass()),
        step(3, Probe, easy(8_000.0, Some(0.36)), pass()),
        step(4, Probe, easy(16_000.0, Some(0.7)), pass()),
        step(
            5,
            Probe,
            Measured {
                e2e_p99_us: [71_500, 16_000],
                ..harness(32_000.0, 31_800.0)
            },
            fail(
                Criterion::Slo {
                    check: "e2e_p99".into(),
                    detail: "billing e2e p99 71.5ms > 50ms".into(),
                },
                true,
                "SLO e2e_p99: billing e2e p99 71.5ms > 50ms; harness CPU saturated",
            ),
        ),
        step(6, Bisect, easy(24_000.0, Some(0.95)), pass()),
        pending_grows(step(
            7,
            Bisect,
            Measured {
                lag_slope: [None, Some(30.0)],
                ..harness(28_000.0, 27_950.0)
            },
            fail(
                Criterion::GroupPending {
                    group: "audit".into(),
                    slope_per_s: 650.0,
                },
                true,
                "group audit: pending grows 650/s (limit 280/s); harness CPU saturated",
            ),
        )),
        step(8, Bisect, easy(26_000.0, Some(1.02)), pass()),
        step(
            9,
            Bisect,
            harness(27_000.0, 26_400.0),
            fail(
                Criterion::AchievedRate { ratio: 0.978 },
                true,
                "achieved 26,400/s of 27,000/s offered (97.8 %, need 99 %); sends late while Redis was not busy",
            ),
        ),
        step(10, Confirm, easy(26_000.0, Some(1.03)), pass()),
    ];
    let steps = under("steps/2", steps);
    let limit = steps[8].verdict.clone();
    ServerSearch {
        label: "valkey 9.1.2".into(),
        binary: Some(VALKEY_9.into()),
        redis: Some(redis_info("valkey", "9.1.2", "7.2.4", VALKEY_9)),
        steps,
        result: Some(CapacityResult {
            max_sustainable_rate_per_s: 26_000.0,
            bound: Bound::HarnessLimited,
            first_failing_rate_per_s: Some(27_000.0),
            resolution_reached: Some(1_000.0 / 26_000.0),
            confirmed: true,
            limit: Some(limit),
            knee_step: Some(10),
        }),
        sizing: Some(Sizing {
            bytes_per_entry: None,
            used_memory_bytes_per_entry: Some(640.0),
            pending_bytes_per_entry: None,
            operating_rate_per_s: 5_000.0,
            headroom: 26_000.0 / 5_000.0 - 1.0,
            retention: retention(&[(5_000.0, 3_600.0), (26_000.0, 3_600.0)], None),
            drain: drain(5_000.0, 26_000.0),
            shards: shards(26_000.0),
        }),
        error: None,
    }
}

/// Each server's steps in a folder of its own, as a search of several writes them.
fn under(dir: &str, steps: Vec<Step>) -> Vec<Step> {
    (steps.into_iter())
        .map(|s| Step {
            run_dir: format!("{dir}/{}", s.run_dir),
            ..s
        })
        .collect()
}

/// Audit's pending list grows while its lag does not: reads keep up, acks do not.
fn pending_grows(mut step: Step) -> Step {
    step.groups[1].pending_slope_per_s = Some(650.0);
    step
}

fn retention(rows: &[(f64, f64)], bytes_per_entry: Option<f64>) -> Vec<RetentionRow> {
    (rows.iter())
        .map(|&(rate_per_s, window_s)| {
            let entries = (rate_per_s * window_s) as u64;
            RetentionRow {
                rate_per_s,
                window_s,
                entries,
                bytes: bytes_per_entry.map(|b| (b * entries as f64) as u64),
                maxlen: entries,
                minid_ms: (window_s * 1e3) as u64,
            }
        })
        .collect()
}

fn drain(operating: f64, max: f64) -> Vec<DrainRow> {
    ([60.0, 600.0, 3_600.0].iter())
        .map(|&outage_s| {
            let backlog = (operating * outage_s) as u64;
            DrainRow {
                outage_s,
                backlog,
                drain_s: Some(backlog as f64 / (max - operating)),
            }
        })
        .collect()
}

fn shards(max: f64) -> Vec<ShardRow> {
    ([10_000.0, 50_000.0, 100_000.0].iter())
        .map(|&target_rate_per_s| ShardRow {
            target_rate_per_s,
            shards: (target_rate_per_s / max).ceil() as u32,
        })
        .collect()
}
