//! Collector actor: where every measurement ends up. Merges the per-interval
//! reports of producers and consumers into run totals (per phase) and the time
//! series, keeps the per-group ledgers and in-flight events up to date batch
//! by batch, keeps the producers' write stalls when the run has faults,
//! answers the progress line, and at `Finish` hands the coordinator the run's
//! metrics (from which `metrics::recovery` computes each fault's recovery).

use actix::prelude::*;

use super::{ConsumeReport, LedgerBatch, LedgerEvent, ProduceReport, ReadingReport};
use crate::clock::RunClock;
use crate::metrics::{
    EventKey, GroupLedger, GroupMetrics, InFlight, InFlightAtFault, LedgerFile, Merge, Phased,
    ProduceLedger, ProduceStats, Progress, Reading, RunMetrics, Series, Totals, TrimSafety,
    WriteStalls,
};
use crate::plan::{Plan, Segment};
use crate::verify::GroupMarks;

pub struct Collector {
    clock: RunClock,
    /// The stream index each producer writes and each group reads, so a
    /// group is judged only against the producers of its own stream.
    producer_streams: Vec<usize>,
    group_streams: Vec<usize>,
    produce: Phased<ProduceStats>,
    groups: Vec<GroupMetrics>,
    ledgers: Vec<GroupLedger>,
    /// Per group, events delivered and not processed yet.
    in_flight: Vec<InFlight>,
    /// Producers' waits for acknowledgements; only kept when the run has
    /// faults to measure them against.
    write_stalls: Option<WriteStalls>,
    series: Series,
    /// Target rate of each interval, from the plan; None after the schedule.
    target_at: Box<dyn Fn(u32) -> Option<f64>>,
    last_reading: Option<Reading>,
    /// Per group, redeliveries and moves to the dead-letter stream so far,
    /// for the live endpoint's counters.
    redeliveries: Vec<u64>,
    dead_letters: Vec<u64>,
    /// In a segment of a run, which producers it ran: its raw ledgers go
    /// to the merge (docs/segments.md, "One report"). None in a whole run.
    segment: Option<(Segment, Vec<bool>)>,
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
                checks_order: g.check_order,
                projects: g.projection.is_some(),
                trim: (plan.streams[g.stream].trim.is_some()).then(|| TrimSafety {
                    policy: plan.streams[g.stream].trim_policy.map(|p| p.name().into()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect::<Vec<_>>();
        let plan_for_target = plan.clone();
        let schedule_s = plan.duration.as_secs_f64();
        let mut fault_starts_ns: Vec<u64> = (plan.faults.iter())
            .map(|f| f.at.as_nanos() as u64)
            .collect();
        fault_starts_ns.sort_unstable();
        fault_starts_ns.dedup();
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
            in_flight: (plan.groups.iter())
                .map(|_| InFlight::new(&fault_starts_ns))
                .collect(),
            write_stalls: (!plan.faults.is_empty()).then(|| WriteStalls::new(plan.producers.len())),
            series: Series::new(groups.iter().map(|g| g.name.clone()).collect()),
            groups,
            // The target ends with the schedule: the reply grace and the
            // drain have none.
            target_at: Box::new(move |i| {
                (f64::from(i) < schedule_s)
                    .then(|| plan_for_target.target_rate_at(f64::from(i) + 0.5))
            }),
            last_reading: None,
            redeliveries: vec![0; plan.groups.len()],
            dead_letters: vec![0; plan.groups.len()],
            segment: (!plan.segment.is_whole()).then(|| {
                let run = (plan.producers.iter())
                    .map(|p| plan.segment.owns_connection(p.connection))
                    .collect();
                (plan.segment, run)
            }),
        }
    }

    /// The progress line's figures now, with the run's totals so far.
    fn progress(&self) -> Progress {
        let now_ns = self.clock.now_ns();
        // The newest complete interval: reports land just after each whole second.
        let newest = RunClock::interval_of(now_ns).saturating_sub(1);
        let live = self.series.latest_before(newest);
        let last = live.as_ref().map_or(newest, |row| row.interval);
        let live = live.as_ref();
        let target = (self.target_at)(last).unwrap_or(0.0);
        let names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
        let elapsed_s = now_ns as f64 / 1e9;
        let reading = self.last_reading.as_ref();
        let mut progress = Progress::of(elapsed_s, target, live, reading, &names);
        let group_stats: Vec<_> = self.groups.iter().map(|g| &g.stats).collect();
        progress.totals = Totals::of(
            &self.produce,
            &group_stats,
            &self.redeliveries,
            &self.dead_letters,
        );
        progress.settled = self.series.latest_closed().cloned();
        progress
    }
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<ProduceReport> for Collector {
    type Result = ();

    fn handle(&mut self, r: ProduceReport, _: &mut Context<Self>) {
        if let Some(stalls) = &mut self.write_stalls {
            r.stalls.into_iter().for_each(|s| stalls.add(s));
        }
        self.produce.merge(&r.stats);
        if let Some(target) = (self.target_at)(r.interval) {
            self.series.set_target(r.interval, target);
        }
        // Phase by phase rather than merged first: one of them is nearly
        // always empty, and with a thousand actors reporting each second
        // the merged copies were the largest user-space cost (perf).
        self.series.add_produce(r.interval, &r.stats.warmup);
        self.series.add_produce(r.interval, &r.stats.measured);
    }
}

impl Handler<ConsumeReport> for Collector {
    type Result = ();

    fn handle(&mut self, r: ConsumeReport, _: &mut Context<Self>) {
        let Some(group) = self.groups.get_mut(r.group) else {
            return;
        };
        group.stats.merge(&r.stats);
        self.series
            .add_consume(r.interval, r.group, &r.stats.warmup);
        self.series
            .add_consume(r.interval, r.group, &r.stats.measured);
    }
}

impl Handler<LedgerBatch> for Collector {
    type Result = ();

    fn handle(&mut self, b: LedgerBatch, _: &mut Context<Self>) {
        let (Some(ledger), Some(flights)) = (
            self.ledgers.get_mut(b.group),
            self.in_flight.get_mut(b.group),
        ) else {
            return;
        };
        let (at_ns, asked_ns) = (b.at_ns, b.read_sent_ns);
        // One loop per kind: this runs for every event the run processes.
        match b.what {
            LedgerEvent::Delivered => b.keys.into_iter().for_each(|key| {
                ledger.delivered(key);
                flights.delivered(key, asked_ns, at_ns);
            }),
            LedgerEvent::Redelivered => {
                self.redeliveries[b.group] += b.keys.len() as u64;
                b.keys.into_iter().for_each(|key| {
                    flights.redelivered(key, ledger.was_processed(key));
                    ledger.redelivered(key);
                })
            }
            LedgerEvent::Processed => b.keys.into_iter().for_each(|key| {
                ledger.processed(key);
                flights.processed(key, at_ns);
            }),
            LedgerEvent::DeadLettered => {
                self.dead_letters[b.group] += b.keys.len() as u64;
                b.keys.into_iter().for_each(|key| {
                    ledger.dead_lettered(key);
                    flights.dead_lettered(key, at_ns);
                })
            }
        }
        for _ in 0..b.unparsable {
            ledger.unparsable();
        }
    }
}

impl Handler<ReadingReport> for Collector {
    type Result = ();

    fn handle(&mut self, r: ReadingReport, _: &mut Context<Self>) {
        // Readings list the groups in plan order.
        for (group, reading) in self.groups.iter_mut().zip(&r.reading.groups) {
            if let Some(trim) = &mut group.trim {
                trim.sample(reading.head_distance);
            }
        }
        self.last_reading = Some(r.reading.clone());
        self.series.add_reading(r.interval, r.reading);
    }
}

#[derive(Message)]
#[rtype(result = "Progress")]
pub struct GetProgress;

impl Handler<GetProgress> for Collector {
    type Result = MessageResult<GetProgress>;

    fn handle(&mut self, _: GetProgress, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.progress())
    }
}

/// All reports are in: settle the ledgers against the producers' and return everything.
#[derive(Message)]
#[rtype(result = "RunMetrics")]
pub struct Finish {
    pub ledgers: Vec<ProduceLedger>,
    /// Per group, what Redis still held after the drain, or why it could
    /// not be read back.
    pub marks: Vec<Result<GroupMarks, String>>,
    /// Per group, the events its consumers still held unfinished when stopped.
    pub in_progress: Vec<Vec<EventKey>>,
}

impl Handler<Finish> for Collector {
    type Result = MessageResult<Finish>;

    fn handle(&mut self, f: Finish, ctx: &mut Context<Self>) -> Self::Result {
        let mut in_flight_at_faults: Vec<InFlightAtFault> = Vec::new();
        for (group, flights) in self
            .groups
            .iter_mut()
            .zip(std::mem::take(&mut self.in_flight))
        {
            let (redelivery, faults) = flights.finish();
            group.redelivery = redelivery;
            if in_flight_at_faults.is_empty() {
                in_flight_at_faults = faults;
            } else {
                in_flight_at_faults
                    .iter_mut()
                    .zip(&faults)
                    .for_each(|(a, b)| a.combine(b));
            }
        }
        for (g, (group, ledger)) in self.groups.iter_mut().zip(&mut self.ledgers).enumerate() {
            match f.marks.get(g) {
                Some(Ok(marks)) => {
                    marks.unread.iter().for_each(|&k| ledger.unread(k));
                    marks.pending.iter().for_each(|&k| ledger.pending(k));
                    if let (Some(trim), Some(head)) = (&mut group.trim, &marks.trim) {
                        trim.trimmed_entries = head.trimmed_entries;
                        // A failed read (a timeout) may have delivered entries the
                        // harness never saw, as a fault's cut-off read may.
                        let failed = group.stats.warmup.errors + group.stats.measured.errors;
                        let blind = (failed > 0).then(|| {
                            format!(
                                "{failed} of the group's commands failed, and a failed read \
                                 may have delivered events the harness never saw"
                            )
                        });
                        match head.unclassified_why.clone().or(blind) {
                            None => ledger.trimmed_head(head.trimmed_entries),
                            Some(why) => trim.unclassified_why = Some(why),
                        }
                    }
                }
                Some(Err(why)) => ledger.readback_failed(why.clone()),
                None => ledger.readback_failed("not read back".into()),
            }
            for &key in f.in_progress.get(g).into_iter().flatten() {
                ledger.in_progress(key);
            }
            let stream = self.group_streams[g];
            let producers: Vec<Option<&ProduceLedger>> =
                (f.ledgers.iter().zip(&self.producer_streams))
                    .map(|(l, &s)| (s == stream).then_some(l))
                    .collect();
            group.ledger = ledger.outcome(&producers);
            if let Some(trim) = &mut group.trim {
                if group.ledger.trim_refused {
                    trim.unclassified_why = Some(
                        "more events are gone unread than Redis trimmed: something else removed \
                         entries too"
                            .into(),
                    );
                }
                if let Some(why) = &group.ledger.readback_failed {
                    trim.unclassified_why = Some(why.clone());
                }
                trim.classified = trim.unclassified_why.is_none();
            }
        }
        let ledger_file = self.segment.as_ref().map(|(segment, run)| {
            let groups: Vec<(String, &GroupLedger)> = (self.groups.iter().map(|g| g.name.clone()))
                .zip(&self.ledgers)
                .collect();
            let run = |id: u32| run.get(id as usize).copied().unwrap_or(false);
            LedgerFile::new(segment.index, segment.count, &f.ledgers, run, &groups)
        });
        self.series.finish();
        let progress_at_end = self.progress();
        ctx.stop();
        MessageResult(RunMetrics {
            produce: std::mem::take(&mut self.produce),
            groups: std::mem::take(&mut self.groups),
            series: std::mem::take(&mut self.series),
            write_stalls: self.write_stalls.take().unwrap_or_default(),
            in_flight_at_faults,
            progress_at_end,
            ledger_file,
        })
    }
}
