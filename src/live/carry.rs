//! Counts carried from one run to the next, so that every counter the
//! endpoint serves (and every summary's `_count` and `_sum`) only grows for
//! the life of the process. A capacity search runs step after step in one
//! process; were each step's counters to start from 0 again, a scraper
//! 5 to 15 s apart could miss the drop, and `rate()` and `increase()` would
//! undercount. [`Live`](super::Live) keeps one [`Carried`] and adds it to
//! every run's figures.

use std::collections::BTreeMap;

use crate::metrics::progress::{GroupTotals, LatencyTotal, ProduceTotals, Totals};
use crate::metrics::stats::Phased;

/// What the runs before the current one counted, as last shown.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    produce: Phased<ProduceTotals>,
    produce_latency: LatencyTotal,
    produce_service: LatencyTotal,
    schedule_lag: LatencyTotal,
    /// By group name: a later run may have other groups, or the same ones
    /// in another order.
    groups: BTreeMap<String, GroupTotals>,
}

impl Carried {
    /// A run's own totals (its groups named by `names`, in the same order)
    /// with the earlier runs' counts added.
    pub fn onto(&self, run: &Totals, names: &[&str]) -> Totals {
        let no_group = GroupTotals::default();
        Totals {
            produce: Phased {
                warmup: add_produce(&self.produce.warmup, &run.produce.warmup),
                measured: add_produce(&self.produce.measured, &run.produce.measured),
            },
            produce_latency: add_latency(self.produce_latency, run.produce_latency),
            produce_service: add_latency(self.produce_service, run.produce_service),
            schedule_lag: add_latency(self.schedule_lag, run.schedule_lag),
            groups: (names.iter().zip(&run.groups))
                .map(|(name, g)| add_group(self.groups.get(*name).unwrap_or(&no_group), g))
                .collect(),
        }
    }

    /// The figures a run last showed (carried counts included) become the
    /// counts carried to the next run; groups it did not have keep theirs.
    pub fn keep(&mut self, shown: &Totals, names: &[&str]) {
        self.produce = shown.produce.clone();
        self.produce_latency = shown.produce_latency;
        self.produce_service = shown.produce_service;
        self.schedule_lag = shown.schedule_lag;
        for (name, g) in names.iter().zip(&shown.groups) {
            self.groups.insert(name.to_string(), g.clone());
        }
    }
}

fn add_produce(a: &ProduceTotals, b: &ProduceTotals) -> ProduceTotals {
    ProduceTotals {
        sent: a.sent + b.sent,
        acked: a.acked + b.acked,
        failed: a.failed + b.failed,
        indeterminate: a.indeterminate + b.indeterminate,
    }
}

fn add_latency(a: LatencyTotal, b: LatencyTotal) -> LatencyTotal {
    LatencyTotal {
        count: a.count + b.count,
        sum_us: a.sum_us + b.sum_us,
    }
}

fn add_group(a: &GroupTotals, b: &GroupTotals) -> GroupTotals {
    GroupTotals {
        processed: Phased {
            warmup: a.processed.warmup + b.processed.warmup,
            measured: a.processed.measured + b.processed.measured,
        },
        redeliveries: a.redeliveries + b.redeliveries,
        dead_letter_moves: a.dead_letter_moves + b.dead_letter_moves,
        e2e: add_latency(a.e2e, b.e2e),
    }
}
