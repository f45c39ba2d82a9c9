//! Collector actor: where every measurement ends up. Merges the per-interval
//! reports of producers and consumers into run totals (per phase) and the time
//! series, keeps the per-group ledgers up to date batch by batch, answers the
//! progress line, and at `Finish` hands the coordinator the run's metrics.

use std::collections::BTreeMap;

use actix::prelude::*;

use super::{ConsumeReport, LedgerBatch, LedgerEvent, ProduceReport, SampleReport};
use crate::clock::RunClock;
use crate::metrics::{
    ConsumeStats, GroupLedger, GroupMetrics, Merge, Phased, ProduceLedger, ProduceStats,
    RunMetrics, Sample, Series,
};
use crate::plan::Plan;
use crate::verify::GroupMarks;

/// Intervals kept for the progress line (the last complete one and the one filling up).
const LIVE_INTERVALS: usize = 3;

pub struct Collector {
    clock: RunClock,
    /// The stream index each producer writes and each group reads, so a
    /// group is judged only against the producers of its own stream.
    producer_streams: Vec<usize>,
    group_streams: Vec<usize>,
    produce: Phased<ProduceStats>,
    groups: Vec<GroupMetrics>,
    ledgers: Vec<GroupLedger>,
    series: Series,
    /// Target rate of each interval, from the plan.
    target_at: Box<dyn Fn(u32) -> f64>,
    live: BTreeMap<u32, Live>,
    last_sample: Option<Sample>,
}

/// The last few intervals, merged, for the progress line.
#[derive(Default)]
struct Live {
    produce: ProduceStats,
    groups: Vec<ConsumeStats>,
}

impl Collector {
    pub fn new(plan: &Plan, clock: RunClock) -> Collector {
        let groups = plan
            .groups
            .iter()
            .map(|g| GroupMetrics {
                name: g.name.clone(),
                stream: plan.streams[g.stream].name.clone(),
                consumers: g.consumers,
                ..Default::default()
            })
            .collect::<Vec<_>>();
        let plan_for_target = plan.clone();
        Collector {
            clock,
            producer_streams: plan.producers.iter().map(|p| p.stream).collect(),
            group_streams: plan.groups.iter().map(|g| g.stream).collect(),
            produce: Phased::default(),
            ledgers: plan
                .groups
                .iter()
                .map(|_| GroupLedger::new(plan.producers.len()))
                .collect(),
            series: Series::new(groups.iter().map(|g| g.name.clone()).collect()),
            groups,
            target_at: Box::new(move |i| plan_for_target.target_rate_at(i as f64 + 0.5)),
            live: BTreeMap::new(),
            last_sample: None,
        }
    }

    fn live(&mut self, interval: u32) -> &mut Live {
        let groups = self.groups.len();
        while self.live.len() >= LIVE_INTERVALS && !self.live.contains_key(&interval) {
            self.live.pop_first();
        }
        let live = self.live.entry(interval).or_default();
        live.groups.resize_with(groups, Default::default);
        live
    }
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<ProduceReport> for Collector {
    type Result = ();

    fn handle(&mut self, r: ProduceReport, _: &mut Context<Self>) {
        self.produce.merge(&r.stats);
        let all = r.stats.merged();
        self.series
            .set_target(r.interval, (self.target_at)(r.interval));
        self.series.add_produce(r.interval, &all);
        self.live(r.interval).produce.merge(&all);
    }
}

impl Handler<ConsumeReport> for Collector {
    type Result = ();

    fn handle(&mut self, r: ConsumeReport, _: &mut Context<Self>) {
        let Some(group) = self.groups.get_mut(r.group) else {
            return;
        };
        group.stats.merge(&r.stats);
        let all = r.stats.merged();
        self.series.add_consume(r.interval, r.group, &all);
        self.live(r.interval).groups[r.group].merge(&all);
    }
}

impl Handler<LedgerBatch> for Collector {
    type Result = ();

    fn handle(&mut self, b: LedgerBatch, _: &mut Context<Self>) {
        let Some(ledger) = self.ledgers.get_mut(b.group) else {
            return;
        };
        let record = match b.what {
            LedgerEvent::Delivered => GroupLedger::delivered,
            LedgerEvent::Redelivered => GroupLedger::redelivered,
            LedgerEvent::Processed => GroupLedger::processed,
            LedgerEvent::DeadLettered => GroupLedger::dead_lettered,
        };
        for key in b.keys {
            record(ledger, key);
        }
        for _ in 0..b.unparsable {
            ledger.unparsable();
        }
    }
}

impl Handler<SampleReport> for Collector {
    type Result = ();

    fn handle(&mut self, r: SampleReport, _: &mut Context<Self>) {
        self.last_sample = Some(r.sample.clone());
        self.series.add_sample(r.interval, r.sample);
    }
}

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
}

#[derive(Debug, Clone, Default)]
pub struct GroupProgress {
    pub name: String,
    pub processed_per_s: u64,
    pub e2e_p99_us: u64,
    pub lag: Option<u64>,
    pub pending: u64,
}

#[derive(Message)]
#[rtype(result = "Progress")]
pub struct GetProgress;

impl Handler<GetProgress> for Collector {
    type Result = MessageResult<GetProgress>;

    fn handle(&mut self, _: GetProgress, _: &mut Context<Self>) -> Self::Result {
        let now_ns = self.clock.now_ns();
        // The newest complete interval: reports land just after each whole second.
        let newest = RunClock::interval_of(now_ns).saturating_sub(1);
        let (last, live) = match self.live.range(..newest).next_back() {
            Some((&i, live)) => (i, Some(live)),
            None => (newest, None),
        };
        let target = (self.target_at)(last);
        let sample = self.last_sample.as_ref();
        let groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let stats = live.and_then(|l| l.groups.get(i));
                let redis = sample.and_then(|s| s.groups.get(i));
                GroupProgress {
                    name: g.name.clone(),
                    processed_per_s: stats.map_or(0, |s| s.processed),
                    e2e_p99_us: stats.map_or(0, |s| s.e2e.percentiles().p99),
                    lag: redis.and_then(|r| r.lag),
                    pending: redis.map_or(0, |r| r.pending),
                }
            })
            .collect();
        MessageResult(Progress {
            elapsed_s: now_ns as f64 / 1e9,
            target_rate_per_s: target,
            acked_per_s: live.map_or(0, |l| l.produce.acked),
            errors: live.map_or(0, |l| l.produce.errors),
            produce_p99_us: live.map_or(0, |l| l.produce.latency.percentiles().p99),
            groups,
        })
    }
}

/// All reports are in: settle the ledgers against the producers' and return everything.
#[derive(Message)]
#[rtype(result = "RunMetrics")]
pub struct Finish {
    pub ledgers: Vec<ProduceLedger>,
    /// Per group, what Redis still held after the drain.
    pub marks: Vec<GroupMarks>,
}

impl Handler<Finish> for Collector {
    type Result = MessageResult<Finish>;

    fn handle(&mut self, f: Finish, ctx: &mut Context<Self>) -> Self::Result {
        for (g, (group, ledger)) in self.groups.iter_mut().zip(&mut self.ledgers).enumerate() {
            if let Some(marks) = f.marks.get(g) {
                marks.unread.iter().for_each(|&k| ledger.unread(k));
                marks.pending.iter().for_each(|&k| ledger.pending(k));
            }
            let stream = self.group_streams[g];
            let producers: Vec<Option<&ProduceLedger>> =
                (f.ledgers.iter().zip(&self.producer_streams))
                    .map(|(l, &s)| (s == stream).then_some(l))
                    .collect();
            group.ledger = ledger.outcome(&producers);
        }
        self.series.finish();
        ctx.stop();
        MessageResult(RunMetrics {
            produce: std::mem::take(&mut self.produce),
            groups: std::mem::take(&mut self.groups),
            series: std::mem::take(&mut self.series),
        })
    }
}
