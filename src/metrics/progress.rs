//! The figures of the live progress line: the newest complete second of the
//! time series, and what Redis said at the sampler's last reading. The
//! collector assembles them on request; the command line prints them, and
//! the live metrics endpoint (`live`) serves them with the run's totals so
//! far and the newest closed second of the time series.

use super::latency::Latency;
use super::series::{Reading, Row};
use super::stats::{ConsumeStats, Phased, ProduceStats};

/// The figures of the progress line: the last complete interval.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub elapsed_s: f64,
    pub target_rate_per_s: f64,
    pub acked_per_s: u64,
    pub errors: u64,
    pub produce_p99_us: u64,
    /// Per group: name, processed per second, e2e p99 (µs), lag, pending.
    pub groups: Vec<GroupProgress>,
    /// Everything counted since the run began.
    pub totals: Totals,
    /// The newest closed second of the time series: its percentiles are
    /// final, the very figures `timeseries.csv` gets for that second.
    pub settled: Option<Row>,
    /// The sampler's last reading of Redis.
    pub reading: Option<Reading>,
}

/// Counts since the run began, by the events' phase where the report has
/// one (docs/measurement.md, "Phases").
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub produce: Phased<ProduceTotals>,
    /// Whole run: intended send time -> XADD reply (lower bounds included,
    /// as in the report), actual send -> reply, and the schedule lag.
    pub produce_latency: LatencyTotal,
    pub produce_service: LatencyTotal,
    pub schedule_lag: LatencyTotal,
    /// In scenario order.
    pub groups: Vec<GroupTotals>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProduceTotals {
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub indeterminate: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupTotals {
    /// Entries whose processing finished, duplicates included.
    pub processed: Phased<u64>,
    /// Redeliveries, whole run: every entry of every batch read again
    /// counts, so an event delivered three times counts twice (summary.json's
    /// `redelivered` counts distinct events).
    pub redeliveries: u64,
    /// Moves to the dead-letter stream, whole run, one per entry moved
    /// (summary.json's `dead_lettered` is an outcome: distinct events).
    pub dead_letter_moves: u64,
    /// Whole run: intended send time -> processed.
    pub e2e: LatencyTotal,
}

/// How many values a histogram holds and their sum (its mean times its
/// count: to the histogram's 3 significant digits).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencyTotal {
    pub count: u64,
    pub sum_us: f64,
}

impl LatencyTotal {
    /// Both phases of one histogram.
    pub fn of(phased: [&Latency; 2]) -> LatencyTotal {
        let mut total = LatencyTotal::default();
        for latency in phased {
            let count = latency.count();
            total.count += count;
            if count > 0 {
                total.sum_us += latency.histogram().mean() * count as f64;
            }
        }
        total
    }
}

impl Totals {
    /// From the collector's run totals; `dead_letters[i]` and
    /// `redeliveries[i]` are group i's, counted batch by batch.
    pub fn of(
        produce: &Phased<ProduceStats>,
        groups: &[&Phased<ConsumeStats>],
        redeliveries: &[u64],
        dead_letters: &[u64],
    ) -> Totals {
        let counts = |p: &ProduceStats| ProduceTotals {
            sent: p.sent,
            acked: p.acked,
            failed: p.failed,
            indeterminate: p.indeterminate,
        };
        let (w, m) = (&produce.warmup, &produce.measured);
        Totals {
            produce: Phased {
                warmup: counts(w),
                measured: counts(m),
            },
            produce_latency: LatencyTotal::of([&w.latency, &m.latency]),
            produce_service: LatencyTotal::of([&w.service, &m.service]),
            schedule_lag: LatencyTotal::of([&w.schedule_lag, &m.schedule_lag]),
            groups: (groups.iter().enumerate())
                .map(|(i, g)| GroupTotals {
                    processed: Phased {
                        warmup: g.warmup.processed,
                        measured: g.measured.processed,
                    },
                    redeliveries: redeliveries.get(i).copied().unwrap_or(0),
                    dead_letter_moves: dead_letters.get(i).copied().unwrap_or(0),
                    e2e: LatencyTotal::of([&g.warmup.e2e, &g.measured.e2e]),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct GroupProgress {
    pub name: String,
    pub processed_per_s: u64,
    pub e2e_p99_us: u64,
    pub lag: Option<u64>,
    pub pending: u64,
}

impl Progress {
    /// From the newest complete row (`live`, None before the first) and the
    /// sampler's last reading; `groups` names the groups in scenario order.
    pub fn of(
        elapsed_s: f64,
        target_rate_per_s: f64,
        live: Option<&Row>,
        reading: Option<&Reading>,
        groups: &[&str],
    ) -> Progress {
        let groups = (groups.iter().enumerate())
            .map(|(i, name)| {
                let stats = live.and_then(|row| row.groups.get(i));
                let redis = reading.and_then(|s| s.groups.get(i));
                GroupProgress {
                    name: name.to_string(),
                    processed_per_s: stats.map_or(0, |s| s.processed),
                    e2e_p99_us: stats.map_or(0, |s| s.e2e_us.p99),
                    lag: redis.and_then(|r| r.lag),
                    pending: redis.map_or(0, |r| r.pending),
                }
            })
            .collect();
        Progress {
            elapsed_s,
            target_rate_per_s,
            acked_per_s: live.map_or(0, |row| row.produce.acked),
            errors: live.map_or(0, |row| row.produce.errors),
            produce_p99_us: live.map_or(0, |row| row.produce.latency_us.p99),
            groups,
            totals: Totals::default(),
            settled: None,
            reading: reading.cloned(),
        }
    }
}
