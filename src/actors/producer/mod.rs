//! Producer actor: issues XADDs on an open-loop schedule (docs/measurement.md,
//! "Open-loop schedule").
//!
//! One actor drives the producers that share a connection (`connections`
//! in the scenario; one each by default): one connection to each Redis
//! node its stream's keys live on, so one unless the run drives a
//! cluster, where each XADD goes to the node of its key's slot and a
//! `-MOVED` or `-ASK` reply sends it on (`route`). Each wake-up sends
//! every event whose intended time has come, of all of them, as one
//! pipeline, without waiting for earlier pipelines to be answered, so a slow
//! Redis cannot slow the schedule down. Latency counts from the intended
//! time; service time from the actual send; the gap between the two is
//! schedule lag. The coordinator sends `Finish` and gets the ledgers back;
//! what is still unanswered or unsent when it gives up is counted, with its
//! latency so far as a lower bound, never dropped (docs/measurement.md,
//! "Accounting").
//!
//! With `wait`, each pipeline ends in `WAIT replicas timeout`: its XADDs are
//! acknowledged when the pipeline's reply comes, and counted `unreplicated`
//! when WAIT reports fewer replicas than asked. The chaos actor sends
//! `ProducerFault`, answered with whether it took effect: a crash ignores
//! the replies still in flight (those writes stay indeterminate) and sends
//! nothing until a restart; events intended while the producer was dead are
//! never sent. Each event gets its version within its aggregate from the
//! stream's `AggregateVersions`, shared with the stream's other producer actors.

mod encode;
mod fault;
mod finish;
mod link;
mod route;
mod source;
mod versions;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::watch;

use self::encode::XaddEncoder;
pub use self::encode::commands;
pub use self::fault::ProducerFault;
pub use self::finish::{Finish, Finished};
use self::link::Link;
use self::route::Routes;
use self::source::Source;
pub use self::versions::AggregateVersions;
use super::{Interval, ProduceReport, every_interval};
use crate::clock::RunClock;
use crate::clock::Timer;
use crate::event::{AggregateVersion, Header, PayloadPool};
use crate::metrics::{Phase, Phased, ProduceStats};
use crate::plan::{ProducerPlan, Trim, Wait, partition_of};
use crate::wire::{Endpoint, Opened, Reply};

/// Most events sent in one pipeline; a producer far behind catches up in steps.
const MAX_PIPELINE: usize = 512;
/// Pipelines awaiting replies at once; beyond this the producer falls behind
/// (visible as schedule lag) instead of queueing without bound.
const MAX_IN_FLIGHT: usize = 64;
/// How often a crashed saturating producer checks whether its run is over.
const DEAD_POLL: Duration = Duration::from_millis(10);

pub struct Producer {
    /// The producers on this connection; `Sent::source` indexes it.
    sources: Vec<Source>,
    /// Each live schedule's next intended time, earliest first.
    due: BinaryHeap<Reverse<(u64, usize)>>,
    /// rate = "max" (one producer per connection): XADDs per pipeline, and
    /// when to stop. Latency is then service time only: there is no
    /// schedule for a slow reply to fall behind.
    saturate: Option<(usize, u64)>,
    /// The producers share an entry, hence a stream, its trim and event
    /// types: one encoder per key of the stream (its partitions, in order).
    encoders: Vec<XaddEncoder>,
    wait: Option<Wait>,
    /// Sleep this long past the next intended time, to send more at once.
    linger_ns: u64,
    /// One connection per node the stream's keys live on.
    links: Vec<Link>,
    /// Which link each key goes out on, and the redirections that moved them.
    routes: Routes,
    /// Unanswered this long, a connection is presumed dead.
    response_timeout: Duration,
    clock: RunClock,
    payloads: Arc<PayloadPool>,
    /// The stream's version counters, shared with its other producer actors.
    versions: Arc<AggregateVersions>,
    measure_from_ns: u64,
    /// The one pending wake-up; replacing it cancels the old one, so ticks
    /// never multiply (each costs a poll of every timer in the context).
    timer: Option<SpawnHandle>,
    /// The timerfd every scheduled wake-up re-arms.
    sleeper: Timer,
    /// `tick` found MAX_IN_FLIGHT pipelines out; the next reply resumes sending.
    blocked: bool,
    stats: Phased<ProduceStats>,
    /// The interval `stats` belong to.
    interval: Interval,
    /// The schedule's end: replies after it are late.
    end_ns: u64,
    collector: Recipient<ProduceReport>,
    /// Set to true once the schedules are exhausted and every reply is in.
    done: watch::Sender<bool>,
    /// Measured-phase XADDs acknowledged while WAIT saw too few replicas.
    unreplicated: u64,
    /// The run is over: a redirected XADD is not sent on.
    giving_up: bool,
}

/// Why a pipeline got no replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The connection was down: nothing was sent (a definite failure).
    NotSent,
    /// The connection was lost after sending: Redis may have applied it.
    Unknown,
    /// Still unanswered when the producer gave up at the end of the run.
    GaveUp,
}

/// One XADD of a pipeline.
#[derive(Clone, Copy)]
struct Sent {
    source: usize,
    /// The source's epoch when sent: a crash since makes the reply unread.
    epoch: u64,
    seq: u64,
    intended_ns: u64,
    /// Its kind's index in the run's kind table, counted when acknowledged;
    /// `u32::MAX` in runs without versioned types.
    kind: u32,
    /// What it was drawn as, to encode it again when redirected.
    partition: u32,
    draw_kind: u32,
    size_bytes: u32,
    aggregate: AggregateVersion,
    /// How often Redis sent it on to another node.
    redirects: u8,
}

/// One pipeline awaiting its replies.
struct Pipeline {
    sent_ns: u64,
    /// Where its bytes start in the connection's output (`Writer::offset`).
    start: u64,
    batch: Vec<Sent>,
    /// It opens with ASKING (an ASK redirection): one reply more, first.
    asking: bool,
}

/// Everything a producer actor needs besides its producers' plans.
pub struct ProducerSetup {
    /// The stream's keys: its partitions in order, or its one key.
    pub stream_keys: Vec<String>,
    pub trim: Option<Trim>,
    pub trim_policy: Option<crate::scenario::TrimPolicy>,
    /// A connection per node, opened before the run clock started (None:
    /// opened when the actor starts).
    pub links: Vec<(Arc<Endpoint>, Option<Opened>)>,
    /// Per stream key, the index in `links` of the node holding it.
    pub key_links: Vec<usize>,
    pub response_timeout: Duration,
    pub clock: RunClock,
    pub end: Duration,
    pub measure_from: Duration,
    pub payloads: Arc<PayloadPool>,
    /// The stream's version counters, one table per stream.
    pub versions: Arc<AggregateVersions>,
    pub collector: Recipient<ProduceReport>,
}

impl Producer {
    /// `plans`: the producers sharing this connection (one with rate = "max").
    pub fn new(plans: Vec<ProducerPlan>, setup: ProducerSetup) -> Producer {
        let end_ns = setup.end.as_nanos() as u64;
        let saturate = plans
            .first()
            .and_then(|p| p.pipeline)
            .map(|depth| (depth as usize, end_ns));
        let wait = plans.first().and_then(|p| p.wait);
        let linger_ns = plans.first().map_or(0, |p| p.linger.as_nanos() as u64);
        let kinds = plans.first().map_or(&[][..], |p| &p.mix.names[..]);
        let encoders = (setup.stream_keys.iter())
            .map(|key| XaddEncoder::new(key, setup.trim, setup.trim_policy, kinds))
            .collect();
        let sources: Vec<Source> = plans
            .into_iter()
            .map(|p| {
                let schedule = p.pipeline.is_none().then(|| p.schedule(setup.end));
                Source::new(p, schedule)
            })
            .collect();
        let due = match saturate {
            Some(_) => BinaryHeap::new(),
            None => (sources.iter().enumerate())
                .filter_map(|(i, s)| s.next_due_ns.map(|d| Reverse((d, i))))
                .collect(),
        };
        Producer {
            sources,
            due,
            saturate,
            encoders,
            wait,
            linger_ns,
            routes: Routes::new(&setup.stream_keys, setup.key_links),
            links: (setup.links.into_iter())
                .map(|(endpoint, conn)| Link::new(endpoint, conn))
                .collect(),
            response_timeout: setup.response_timeout,
            clock: setup.clock,
            payloads: setup.payloads,
            versions: setup.versions,
            measure_from_ns: setup.measure_from.as_nanos() as u64,
            timer: None,
            sleeper: Timer::new(),
            blocked: false,
            stats: Phased::default(),
            interval: Interval::at(0),
            end_ns,
            collector: setup.collector,
            done: watch::channel(false).0,
            unreplicated: 0,
            giving_up: false,
        }
    }

    fn phase(&self, intended_ns: u64) -> Phase {
        if intended_ns < self.measure_from_ns {
            Phase::Warmup
        } else {
            Phase::Measured
        }
    }

    /// Send what is due, then sleep until the next intended time.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        if let Some((depth, end_ns)) = self.saturate {
            return self.saturate(ctx, depth, end_ns);
        }
        if (self.links.iter()).any(|l| l.in_flight.len() >= MAX_IN_FLIGHT) {
            self.blocked = true;
            return;
        }
        let now_ns = self.clock.now_ns();
        self.roll(now_ns);
        // XADDs in this tick's pipelines, over every link.
        let mut sent = 0;
        while let Some(&Reverse((due, i))) = self.due.peek() {
            if due > now_ns || sent == MAX_PIPELINE {
                break;
            }
            self.due.pop();
            let phase = self.phase(due);
            if self.sources[i].sends(due) {
                let (l, xadd) = self.add_xadd(i, due);
                let source = &mut self.sources[i];
                source.ledger.sent_in(source.seq, phase);
                self.links[l].batch.push(xadd);
                source.seq += 1;
                sent += 1;
            } else {
                self.not_sent(i, due, now_ns);
            }
            self.sources[i].advance();
            if let Some(next) = self.sources[i].next_due_ns {
                self.due.push(Reverse((next, i)));
            }
        }
        self.send_batches(ctx);
        self.schedule_tick(ctx);
    }

    /// Sends every link's batch built so far, each as one pipeline.
    fn send_batches(&mut self, ctx: &mut Context<Self>) {
        for l in 0..self.links.len() {
            if !self.links[l].batch.is_empty() {
                let batch = std::mem::take(&mut self.links[l].batch);
                self.send(ctx, l, batch);
            }
        }
    }

    /// One pipeline of `depth` XADDs, intended now, if none is in flight.
    fn saturate(&mut self, ctx: &mut Context<Self>, depth: usize, end_ns: u64) {
        let now_ns = self.clock.now_ns();
        if now_ns >= end_ns && self.nothing_in_flight() {
            self.sources.iter_mut().for_each(|s| s.next_due_ns = None);
            self.done.send_replace(true);
            return;
        }
        let dead = self.sources.first().is_none_or(|s| s.dead);
        if dead && self.timer.is_none() {
            let poll = ctx.run_later(DEAD_POLL, |act, ctx| {
                act.timer = None;
                act.tick(ctx);
            });
            self.timer = Some(poll);
        }
        // While every connection is down nothing is sent: reconnecting wakes it.
        let down = !self.links.iter().any(Link::is_up);
        if !self.nothing_in_flight() || dead || down || now_ns >= end_ns {
            return;
        }
        let phase = self.phase(now_ns);
        for _ in 0..depth {
            let (l, sent) = self.add_xadd(0, now_ns);
            let source = &mut self.sources[0];
            source.ledger.sent_in(source.seq, phase);
            self.links[l].batch.push(sent);
            source.seq += 1;
        }
        self.send_batches(ctx);
    }

    fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        if let Some(old) = self.timer.take() {
            ctx.cancel_future(old);
        }
        match self.due.peek() {
            Some(&Reverse((due, _))) => {
                let wake_ns = due + self.linger_ns;
                let wake = self.sleeper.sleep_until(self.clock.instant_at(wake_ns));
                self.timer = Some(ctx.spawn(wake.into_actor(self).map(|_, act, ctx| {
                    act.timer = None;
                    act.tick(ctx);
                })));
            }
            None if self.nothing_in_flight() => {
                self.done.send_replace(true);
            }
            None => {}
        }
    }

    /// Draws source `i`'s next event and appends its XADD to the pipeline
    /// being built on the link of its key; returns that link and the event.
    fn add_xadd(&mut self, i: usize, intended_ns: u64) -> (usize, Sent) {
        let source = &mut self.sources[i];
        let draw = source.plan.mix.draw_at(&mut source.rng, intended_ns);
        let sent = Sent {
            source: i,
            epoch: source.epoch,
            seq: source.seq,
            intended_ns,
            kind: (source.plan.kind_ids.get(draw.kind).copied()).unwrap_or(u32::MAX),
            partition: partition_of(draw.aggregate, self.encoders.len() as u32),
            draw_kind: draw.kind as u32,
            size_bytes: draw.size_bytes as u32,
            aggregate: AggregateVersion {
                aggregate: draw.aggregate,
                version: self.versions.next(draw.aggregate),
            },
            redirects: 0,
        };
        let l = self.routes.link_of(sent.partition);
        self.encode(l, &sent);
        (l, sent)
    }

    /// Appends `sent`'s XADD to link `l`'s pipeline.
    fn encode(&mut self, l: usize, sent: &Sent) {
        let source = &self.sources[sent.source];
        let header = Header {
            producer: source.plan.id,
            seq: sent.seq,
            intended_ns: self.clock.unix_ns(sent.intended_ns),
        };
        let payload = self.payloads.slice(sent.size_bytes as usize, sent.seq);
        let clock = self.clock;
        let now_ms = || clock.unix_ns(clock.now_ns()) / 1_000_000;
        let encoder = &mut self.encoders[sent.partition as usize];
        let (kind, aggregate) = (sent.draw_kind as usize, sent.aggregate);
        encoder.encode(
            &mut self.links[l].out,
            header,
            kind,
            aggregate,
            payload,
            now_ms,
        );
    }

    /// `replies` came for the pipeline's first commands; `missing` says why
    /// the rest did not (None: they all came).
    fn on_reply(
        &mut self,
        ctx: &mut Context<Self>,
        pipeline: Pipeline,
        replies: &[Reply],
        missing: Option<Outcome>,
    ) {
        let Pipeline {
            sent_ns,
            batch,
            asking,
            ..
        } = pipeline;
        // ASKING's +OK comes first.
        let replies = match asking {
            true => replies.get(1..).unwrap_or_default(),
            false => replies,
        };
        let replied_ns = self.clock.now_ns();
        self.roll(replied_ns);
        let late = replied_ns >= self.end_ns;
        // A lost connection says nothing about whether Redis applied the XADDs:
        // they stay indeterminate (sent, neither acked nor failed) until the
        // stream is read back; so do those still unanswered when the producer
        // gives up. An error reply, or a pipeline that never left the process,
        // is a definite failure. Whatever was not acknowledged waited at least
        // until now: a lower bound of its latency, never a missing value.
        let unknown = matches!(missing, Some(Outcome::Unknown | Outcome::GaveUp));
        let gave_up = missing == Some(Outcome::GaveUp);
        // WAIT's reply follows the XADDs': how many replicas have them all.
        let replicated = match (self.wait, replies.get(batch.len())) {
            (Some(w), Some(Reply::Int(n))) => *n >= i64::from(w.replicas),
            (Some(_), _) => false,
            (None, _) => true,
        };
        let more_in_flight = !self.nothing_in_flight();
        let mut redirected = Vec::new();
        for (sent, reply) in batch
            .iter()
            .zip(replies.iter().map(Some).chain(std::iter::repeat(None)))
        {
            let phase = self.phase(sent.intended_ns);
            let source = &mut self.sources[sent.source];
            // A crash since the send: the process that would read this reply is gone.
            if source.epoch != sent.epoch {
                continue;
            }
            // Not applied there: it goes on, and is counted where it lands.
            if let Some(Reply::Error(e)) = reply
                && let Some(r) = route::redirect(e, sent)
            {
                redirected.push((*sent, r));
                continue;
            }
            let stats = self.stats.get_mut(phase);
            match reply {
                Some(Reply::Bulk) => {
                    stats.acked += 1;
                    stats.late += u64::from(late);
                    stats.latency.record_ns(replied_ns - sent.intended_ns);
                    stats.service.record_ns(replied_ns - sent_ns);
                    source.ledger.acked(sent.seq);
                    if sent.kind != u32::MAX {
                        stats.kinds.add(sent.kind);
                    }
                    source.stalls.acked(replied_ns, more_in_flight);
                    if !replicated {
                        // Per event too: the durability check tells gone
                        // writes WAIT had flagged from silent ones.
                        source.ledger.unreplicated(sent.seq);
                        if phase == Phase::Measured {
                            self.unreplicated += 1;
                        }
                    }
                }
                None if unknown => {
                    stats.indeterminate += 1;
                    stats.unanswered += u64::from(gave_up);
                    stats.waited_at_least(replied_ns - sent.intended_ns);
                }
                _ => {
                    stats.failed += 1;
                    stats.waited_at_least(replied_ns - sent.intended_ns);
                    source.ledger.failed(sent.seq);
                }
            }
        }
        for (sent, to) in redirected {
            self.redirect(ctx, sent, to, sent_ns);
        }
    }

    /// An event of source `i` due at `due` that will never be sent: skipped
    /// if it fell due while the producer was down, else unsent (the producer
    /// was behind when it crashed or gave up), having waited until `now_ns`
    /// or the crash.
    fn not_sent(&mut self, i: usize, due: u64, now_ns: u64) {
        let source = &self.sources[i];
        let stats = self.stats.get_mut(self.phase(due));
        match source.down_since(due) {
            true => stats.skipped += 1,
            false => {
                stats.unsent += 1;
                // Dropped by a crash, it waited until the crash; else until now.
                let dropped = source.dead || due < source.revived_ns;
                let gave_up_ns = match (dropped, source.died_ns) {
                    (true, Some(died)) => died.min(now_ns),
                    _ => now_ns,
                };
                stats.waited_at_least(gave_up_ns.saturating_sub(due));
            }
        }
    }

    /// Ships the stats of the interval that ended, if `now_ns` is past it.
    fn roll(&mut self, now_ns: u64) {
        if let Some(ended) = self.interval.roll(now_ns) {
            self.flush(ended);
        }
    }

    fn flush(&mut self, interval: u32) {
        let stats = std::mem::take(&mut self.stats);
        let stalls = self.sources.iter_mut().map(|s| s.stalls.take()).collect();
        self.collector.do_send(ProduceReport {
            interval,
            stats,
            stalls,
        });
    }
}

impl Actor for Producer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        every_interval(ctx, self.clock, |act: &mut Self, _, ctx| {
            act.roll(act.clock.now_ns());
            act.check_response_timeout(ctx);
        });
        self.start_links(ctx);
        match self.saturate {
            Some(_) => self.tick(ctx),
            None => self.schedule_tick(ctx),
        }
    }
}
