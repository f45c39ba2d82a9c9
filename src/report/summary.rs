//! `summary.json`: the versioned record of one run and the source of truth
//! for every view (terminal table, plots, HTML, comparisons).
//!
//! `Summary::build` turns what the collector ended with (`RunMetrics`) and what
//! the coordinator knows (`SummaryContext`) into it, then judges the SLOs.
//! Conventions (docs/measurement.md, "Accounting"): latencies in
//! microseconds; every figure belongs to the measured phase (events intended
//! after the warmup, wherever they were answered or processed) unless its
//! doc says "warmup" or "whole run".

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::environment::{HarnessCost, MachineInfo, RedisInfo};
use super::groups::GroupSummary;
use super::slo::{self, SloReport};
use super::utc::{rfc3339, unix_s};
use crate::metrics::tags;
use crate::metrics::{
    Durability, FaultWindow, IdleState, Percentiles, PowerFsUse, ProduceStats, RunMetrics,
    StreamUsage, VerifySummary, WindowLoad,
};
use crate::scenario::Scenario;

/// Bumped whenever a field changes meaning or disappears (adding one does
/// not). 2: group figures per phase (measured headline, warmup beside),
/// `processed` distinct events, the in-window achieved rate; `report/migrate`
/// reads version 1.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Summary {
    pub schema_version: u32,
    pub streamdrill_version: String,
    pub run_id: String,
    /// RFC 3339, UTC, e.g. "2024-05-01T12:00:00.250Z".
    pub started_at: String,
    /// The same instant as seconds since the Unix epoch (for interval logs and plots).
    pub started_at_unix_s: f64,
    pub measured_duration_s: f64,
    /// The scenario as resolved (overrides applied, defaults filled in).
    pub scenario: Scenario,
    pub redis: RedisInfo,
    pub produce: ProduceSummary,
    /// What the harness itself cost (None in runs written before it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness: Option<HarnessCost>,
    /// What the measured window cost (Redis's and the harness's CPU, Redis's
    /// memory, each group's backlog trend) and the streams after the drain.
    /// None in runs written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<WindowLoad>,
    pub warmup: WarmupSummary,
    pub groups: Vec<GroupSummary>,
    pub verify: VerifySummary,
    pub slo: SloReport,
    /// Fault windows of the drill (empty when the scenario has none), in seconds since run start.
    #[serde(default)]
    pub faults: Vec<FaultWindow>,
    /// After a Redis kill or a network fault, the streams read back (whole
    /// run): acknowledged writes that are gone, indeterminate writes that
    /// landed. Absent when no such fault ran (or a stream is trimmed), or
    /// when the read-back failed (`durability_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<Durability>,
    /// Why the durability read-back failed, when it was asked for and did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability_error: Option<String>,
    /// Measured-phase histograms by tag ("produce.latency", "produce.service",
    /// "produce.schedule_lag", "e2e.<group>", "delivery.<group>"; and
    /// "redelivery.<group>", whole run, when it had any): HdrHistogram
    /// V2-deflate, base64, so plots, `.hgrm` files and comparisons can be redrawn
    /// from this file alone. Absent in runs written before it existed.
    #[serde(default)]
    pub histograms: BTreeMap<String, String>,
    /// The machine streamdrill ran on.
    #[serde(default)]
    pub machine: MachineInfo,
    /// The power-loss file system under the managed server's data files,
    /// when the run had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_fs: Option<PowerFsUse>,
    /// A cluster run's shards, where each stream key lived, and the
    /// redirections producers were answered with (docs/cluster.md,
    /// "Running against a cluster").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<crate::metrics::cluster::ClusterRun>,
    /// A segment of a run split over several processes: which, its clock
    /// offset to Redis, who had not finished (docs/segments.md, "One report").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<crate::metrics::SegmentRun>,
    /// A merged run: each segment's own figures (docs/segments.md, "One report").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<crate::metrics::segment::SegmentFigures>>,
    /// The run was stopped early (Ctrl-C): the figures cover what ran.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// Whole run, in a run that writes a versioned type: per kind of event
    /// (type and schema version) the XADDs Redis acknowledged
    /// (docs/event-sourcing.md, "Schema versions").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_kinds: Option<Vec<super::schema_versions::ProducedKind>>,
}

/// All producers, measured phase: events intended after the warmup. How
/// the counts add up: intended = sent + unsent + skipped; sent = acked +
/// failed + indeterminate; late is part of acked, unanswered part of
/// indeterminate. Fields marked "(schema 2)" are absent in schema-1 files.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ProduceSummary {
    pub target_rate_per_s: f64,
    /// XADDs acknowledged inside the measured window (not `late`) / its
    /// length. Schema 1: every measured-phase ack, late ones included.
    pub achieved_rate_per_s: f64,
    /// Events the schedule intended (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intended: Option<u64>,
    pub sent: u64,
    /// XADDs that got an entry id, `late` included.
    pub acked: u64,
    /// Acknowledged after the schedule ended, in the reply grace (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<u64>,
    /// failed + indeterminate.
    pub errors: u64,
    /// Certainly not written: an error reply, or never sent on a dead
    /// connection (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
    /// Sent, never answered: connection lost, producer crashed, or no reply
    /// when producers gave up (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indeterminate: Option<u64>,
    /// Of `indeterminate`: still awaiting a reply when producers gave up (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unanswered: Option<u64>,
    /// Due but never sent when producers gave up: the producer had fallen
    /// behind its schedule (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsent: Option<u64>,
    /// Intended while a crashed producer was down, never sent (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<u64>,
    /// Intended send time -> XADD reply, for every event but the skipped;
    /// for those never acknowledged (failed, indeterminate, unsent), intended
    /// -> when their fate was settled or producers gave up: a lower bound.
    pub latency_us: Percentiles,
    /// Values in `latency_us` that are lower bounds (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_lower_bounds: Option<u64>,
    /// Actual send time -> XADD reply.
    pub service_time_us: Percentiles,
    /// Actual send time - intended send time.
    pub schedule_lag_us: Percentiles,
    /// With producer `wait`: acked XADDs whose WAIT saw fewer replicas than
    /// asked (acknowledged, yet a failover may lose them). Absent without `wait`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreplicated: Option<u64>,
}

/// Producers in the warmup: events intended before it ended.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct WarmupSummary {
    pub produce_sent: u64,
    pub produce_acked: u64,
    pub produce_errors: u64,
    pub produce_latency_us: Percentiles,
}

/// What the coordinator knows about the run besides the metrics.
#[derive(Clone, Debug)]
pub struct SummaryContext {
    pub scenario: Scenario,
    pub run_id: String,
    /// When the run clock started, in ns since the Unix epoch: `started_at`
    /// and `started_at_unix_s` are both written from it.
    pub started_unix_ns: u64,
    pub measured_duration_s: f64,
    pub target_rate_per_s: f64,
    pub redis: RedisInfo,
    pub verify: VerifySummary,
    /// When each fault of a drill was active.
    pub faults: Vec<FaultWindow>,
    /// None: no read-back was asked for; Err: why it failed.
    pub durability: Option<std::result::Result<Durability, String>>,
    /// Stopped early by Ctrl-C.
    pub interrupted: bool,
    /// What `IdleHold` held while the run lasted.
    pub cpu_idle: IdleState,
    /// `Measured::harness_cpu_s`.
    pub harness_cpu_s: f64,
    /// `Measured::harness_threads`.
    pub harness_threads: u32,
    /// `Measured::streams`.
    pub streams: Vec<StreamUsage>,
}

impl Summary {
    pub fn build(ctx: SummaryContext, metrics: &RunMetrics) -> Summary {
        let produce = produce_summary(metrics, ctx.target_rate_per_s, ctx.measured_duration_s);
        let warmup = warmup_summary(metrics);
        let (durability, durability_error) = match ctx.durability {
            Some(Ok(d)) => (Some(d), None),
            Some(Err(why)) => (None, Some(why)),
            None => (None, None),
        };
        let harness = HarnessCost::of(ctx.harness_cpu_s, produce.sent + warmup.produce_sent)
            .on_threads(ctx.harness_threads);
        let warmup_s = ctx.scenario.warmup.as_secs_f64();
        let window_end_s = warmup_s + ctx.measured_duration_s;
        let load = WindowLoad::over(&metrics.series, warmup_s, window_end_s, ctx.streams);
        let mut summary = Summary {
            schema_version: SCHEMA_VERSION,
            streamdrill_version: env!("CARGO_PKG_VERSION").to_string(),
            run_id: ctx.run_id,
            started_at: rfc3339(ctx.started_unix_ns),
            started_at_unix_s: unix_s(ctx.started_unix_ns),
            measured_duration_s: ctx.measured_duration_s,
            produce,
            harness: Some(harness),
            load: Some(load),
            warmup,
            groups: metrics.groups.iter().map(GroupSummary::of).collect(),
            scenario: ctx.scenario,
            redis: ctx.redis,
            verify: ctx.verify,
            slo: SloReport::default(),
            faults: ctx.faults,
            durability,
            durability_error,
            histograms: measured_histograms(metrics),
            machine: MachineInfo {
                cpu_idle: Some(ctx.cpu_idle),
                ..MachineInfo::current()
            },
            interrupted: ctx.interrupted,
            power_fs: None,
            cluster: None,
            segment: None,
            segments: None,
            event_kinds: None,
        };
        super::schema_versions::fill(&mut summary, metrics);
        if let Some(d) = &summary.durability {
            summary.verify.account_for_landed(d.indeterminate_landed);
        }
        summary.slo = slo::evaluate(&summary.scenario.slo, &summary);
        summary
    }
}

fn produce_summary(
    metrics: &RunMetrics,
    target_rate_per_s: f64,
    duration_s: f64,
) -> ProduceSummary {
    let m: &ProduceStats = &metrics.produce.measured;
    let achieved_rate_per_s = match duration_s > 0.0 {
        true => m.acked_in_window() as f64 / duration_s,
        false => 0.0,
    };
    ProduceSummary {
        target_rate_per_s,
        achieved_rate_per_s,
        intended: Some(m.intended()),
        sent: m.sent,
        acked: m.acked,
        late: Some(m.late),
        errors: m.errors(),
        failed: Some(m.failed),
        indeterminate: Some(m.indeterminate),
        unanswered: Some(m.unanswered),
        unsent: Some(m.unsent),
        skipped: Some(m.skipped),
        latency_us: m.latency.percentiles(),
        latency_lower_bounds: Some(m.latency_lower_bounds),
        service_time_us: m.service.percentiles(),
        schedule_lag_us: m.schedule_lag.percentiles(),
        unreplicated: None,
    }
}

fn measured_histograms(metrics: &RunMetrics) -> BTreeMap<String, String> {
    let p = &metrics.produce.measured;
    let mut out = BTreeMap::from([
        (tags::PRODUCE_LATENCY.to_string(), p.latency.encode()),
        (tags::PRODUCE_SERVICE.to_string(), p.service.encode()),
        (
            tags::PRODUCE_SCHEDULE_LAG.to_string(),
            p.schedule_lag.encode(),
        ),
    ]);
    for g in &metrics.groups {
        out.insert(tags::e2e(&g.name), g.stats.measured.e2e.encode());
        out.insert(tags::delivery(&g.name), g.stats.measured.delivery.encode());
        if g.projects {
            out.insert(
                tags::projection(&g.name),
                g.stats.measured.projection.encode(),
            );
        }
        // Whole run, as the ledger; only when there were redeliveries.
        if !g.redelivery.latency.is_empty() {
            out.insert(tags::redelivery(&g.name), g.redelivery.latency.encode());
        }
    }
    out
}

fn warmup_summary(metrics: &RunMetrics) -> WarmupSummary {
    let w = &metrics.produce.warmup;
    WarmupSummary {
        produce_sent: w.sent,
        produce_acked: w.acked,
        produce_errors: w.errors(),
        produce_latency_us: w.latency.percentiles(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metrics::{
        ConsumeStats, DeliveryCounts, GroupMetrics, GroupOutcome, LedgerOutcome, Phased, Series,
    };

    pub(crate) fn test_scenario() -> Scenario {
        let toml = "name = \"orders\"\nduration = \"65s\"\nwarmup = \"5s\"\nproducers = []\n";
        toml::from_str(toml).expect("minimal scenario parses")
    }

    fn produce(sent: u64, latency_us: u64, errors: u64) -> ProduceStats {
        let mut s = ProduceStats {
            sent,
            acked: sent - errors,
            failed: errors,
            ..Default::default()
        };
        for _ in 0..sent {
            s.latency.record_us(latency_us);
            s.service.record_us(latency_us / 4);
            s.schedule_lag.record_us(20);
        }
        s
    }

    fn consume(processed: u64, e2e_us: u64) -> ConsumeStats {
        let mut c = ConsumeStats {
            delivered: processed + 1,
            processed,
            acked: processed,
            ..Default::default()
        };
        for _ in 0..processed {
            c.e2e.record_us(e2e_us);
            c.delivery.record_us(e2e_us / 2);
        }
        c
    }

    fn redelivered_once(latency_us: u64) -> crate::metrics::Redelivery {
        let mut r = crate::metrics::Redelivery::default();
        r.latency.record_us(latency_us);
        r
    }

    pub(crate) fn test_metrics() -> RunMetrics {
        let mut metrics = RunMetrics::default();
        metrics.produce.warmup = produce(500, 3_000, 0);
        metrics.produce.measured = produce(6_000, 2_000, 0);
        metrics.groups.push(GroupMetrics {
            name: "billing".into(),
            stream: "orders".into(),
            consumers: 3,
            checks_order: false,
            projects: false,
            stats: crate::metrics::Phased {
                warmup: consume(500, 40_000),
                measured: consume(6_000, 10_000),
            },
            ledger: GroupOutcome {
                phases: Phased {
                    warmup: LedgerOutcome {
                        produced_acked: 500,
                        processed: 500,
                        delivery_counts: DeliveryCounts([500, 0, 0, 0, 0, 0, 0]),
                        ..Default::default()
                    },
                    measured: LedgerOutcome {
                        produced_acked: 6_000,
                        processed: 6_000,
                        duplicates: 1,
                        redelivered: 1,
                        delivery_counts: DeliveryCounts([5_999, 1, 0, 0, 0, 0, 0]),
                        ..Default::default()
                    },
                },
                ..Default::default()
            },
            redelivery: redelivered_once(750_000),
            pending_at_end: Some(0),
            drained: true,
            projection: None,
            replay: None,
            trim: None,
        });
        metrics.series = Series::new(vec!["billing".into()]);
        metrics
    }

    fn acked_ledger(n: u64) -> crate::metrics::ProduceLedger {
        let mut l = crate::metrics::ProduceLedger::new();
        (0..n).for_each(|seq| l.acked(seq));
        l
    }

    pub(crate) fn test_context() -> SummaryContext {
        let streams = vec![crate::metrics::StreamVerify {
            key: "sd:orders".into(),
            entries_added: 6_500,
            length: 6_500,
            partition: None,
        }];
        SummaryContext {
            scenario: test_scenario(),
            run_id: "orders-20231114T221320Z".into(),
            started_unix_ns: 1_700_000_000_250_000_000,
            measured_duration_s: 60.0,
            target_rate_per_s: 100.0,
            redis: RedisInfo {
                mode: "managed".into(),
                url: "redis://127.0.0.1:6390".into(),
                version: "7.0.15".into(),
                config: BTreeMap::from([("appendonly".into(), "no".into())]),
                server: Some(crate::metrics::ServerInfo {
                    name: "redis".into(),
                    version: "7.0.15".into(),
                    binary: Some("/usr/bin/redis-server".into()),
                    features: vec![
                        crate::metrics::StreamFeature::Xautoclaim,
                        crate::metrics::StreamFeature::GroupLag,
                    ],
                }),
                tls: None,
            },
            verify: VerifySummary::new(streams, &[acked_ledger(6_500)]),
            faults: Vec::new(),
            durability: None,
            interrupted: false,
            cpu_idle: IdleState::Poll,
            harness_cpu_s: 0.65,
            harness_threads: 1,
            streams: vec![StreamUsage {
                key: "orders".into(),
                length: 6_500,
                memory_bytes: Some(1_300_000),
            }],
        }
    }

    pub(crate) fn test_summary() -> Summary {
        Summary::build(test_context(), &test_metrics())
    }

    #[test]
    fn build_fills_in_measured_rates_and_percentiles() {
        let s = test_summary();
        assert_eq!(s.schema_version, 2);
        assert_eq!(s.started_at, "2023-11-14T22:13:20.250Z");
        assert_eq!(s.started_at_unix_s, 1_700_000_000.25);
        assert_eq!((s.produce.sent, s.produce.acked), (6_000, 6_000));
        assert_eq!(s.produce.achieved_rate_per_s, 100.0);
        assert_eq!(s.produce.latency_us.p99, 2_000);
        assert_eq!(s.produce.service_time_us.p50, 500);
        assert_eq!(s.warmup.produce_sent, 500);
        let g = &s.groups[0];
        let (m, w) = (&g.measured, g.warmup.as_ref().unwrap());
        assert!(w.e2e_latency_us.p50 >= 40_000);
        assert_eq!(
            m.processed,
            Some(6_000),
            "distinct, measured: produce.acked"
        );
        assert_eq!(
            (m.processings, m.deliveries, m.duplicates),
            (6_000, 6_001, 1)
        );
        assert_eq!((w.processed, w.processings), (Some(500), 500));
        assert_eq!(m.outcomes_total(), m.produced_acked);
        assert_eq!(g.whole_run(|p| p.deliveries), 6_502);
        assert_eq!(m.e2e_latency_us.count, 6_000);
        assert_eq!(m.delivery_counts.redelivered(), m.redelivered);
        assert_eq!(g.redelivery_latency_us.count, 1);
        assert!(s.histograms.contains_key(&tags::redelivery("billing")));
        assert!(s.verify.consistent);
        assert!(s.slo.passed && s.slo.checks.is_empty());
    }

    #[test]
    fn json_round_trip_keeps_everything() {
        let s = test_summary();
        let json = serde_json::to_string_pretty(&s).unwrap();
        let back: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let p = value["produce"]["latency_us"].as_object().unwrap();
        let keys: Vec<&str> = p.keys().map(String::as_str).collect();
        for key in ["count", "mean", "p50", "p90", "p99", "p999", "p9999", "max"] {
            assert!(keys.contains(&key), "missing {key} in {keys:?}");
        }
    }
}
