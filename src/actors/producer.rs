//! Producer actor: issues XADDs on an open-loop schedule (DESIGN rule 1).
//!
//! Each wake-up sends every event whose intended time has come as one
//! pipeline, without waiting for earlier pipelines to be answered, so a slow
//! Redis cannot slow the schedule down. Latency counts from the intended time;
//! service time from the actual send; the gap between the two is schedule lag.
//! The coordinator sends `Finish` and gets the producer's ledger back.
//!
//! With `wait`, each pipeline ends in `WAIT replicas timeout`: its XADDs are
//! acknowledged when the pipeline's reply comes, and counted `unreplicated`
//! when WAIT reports fewer replicas than asked. The chaos actor sends
//! `ProducerFault`: a crash ignores the replies still in flight (those writes
//! stay indeterminate) and sends nothing until a restart; events intended
//! while the producer was dead are never sent (a dead process sends nothing,
//! and catching up later would be a burst no real client makes).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::watch;

use super::timer::Timer;
use super::{ProduceReport, every_interval};
use crate::clock::RunClock;
use crate::event::{Header, PayloadPool};
use crate::metrics::{Phase, Phased, ProduceLedger, ProduceStats, StallTracker};
use crate::plan::{ProducerPlan, Schedule, Trim, Wait};
use crate::wire::{Endpoint, InFlight, Replies, Reply, Writer, resp};

/// Most events sent in one pipeline; a producer far behind catches up in steps.
const MAX_PIPELINE: usize = 512;
/// Pipelines awaiting replies at once; beyond this the producer falls behind
/// (visible as schedule lag) instead of queueing without bound.
const MAX_IN_FLIGHT: usize = 64;
/// How often a crashed saturating producer checks whether its run is over.
const DEAD_POLL: Duration = Duration::from_millis(10);
/// Reconnection backoff after the connection was lost: quick first, capped,
/// so a restarted server is found within ~0.5 s of coming back.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

pub struct Producer {
    plan: ProducerPlan,
    stream_key: Arc<str>,
    trim: Option<Trim>,
    link: Link,
    /// The commands of the pipeline being built, RESP-encoded.
    out: Vec<u8>,
    /// The event header being encoded, reused.
    header: Vec<u8>,
    clock: RunClock,
    pace: Pace,
    next_due_ns: Option<u64>,
    seq: u64,
    rng: SmallRng,
    payloads: Arc<PayloadPool>,
    measure_from_ns: u64,
    /// Pipelines sent and not yet answered, oldest first.
    in_flight: InFlight<Pipeline>,
    /// The one pending wake-up; replacing it cancels the old one, so ticks
    /// never multiply (each costs a poll of every timer in the context).
    timer: Option<SpawnHandle>,
    /// The timerfd every scheduled wake-up re-arms.
    sleeper: Timer,
    /// `tick` found MAX_IN_FLIGHT pipelines out; the next reply resumes sending.
    blocked: bool,
    stats: Phased<ProduceStats>,
    ledger: ProduceLedger,
    collector: Recipient<ProduceReport>,
    /// Set to true once the schedule is exhausted and every reply is in.
    done: watch::Sender<bool>,
    wait: Option<Wait>,
    /// Measured-phase XADDs acknowledged while WAIT saw too few replicas.
    unreplicated: u64,
    /// Crashed: sends nothing, skips what falls due.
    dead: bool,
    /// Bumped by each crash; replies of pipelines sent before it are ignored.
    epoch: u64,
    /// Long waits for an acknowledgement: write outages, for fault recovery.
    stalls: StallTracker,
    /// The read half of the first connection, until `started` reads it.
    first_read: Option<Replies>,
}

/// How a producer decides when to send.
enum Pace {
    /// Open loop: intended send times fixed in advance.
    Schedule(Schedule),
    /// Closed loop (rate = "max"): `depth` XADDs per pipeline, the next pipeline
    /// as soon as the last is answered, until `end_ns`. Latency is then service
    /// time only: there is no schedule for a slow reply to fall behind.
    Saturate { depth: usize, end_ns: u64 },
}

/// Why a pipeline got no replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The connection was down: nothing was sent (a definite failure).
    NotSent,
    /// The connection was lost after sending: Redis may have applied it.
    Unknown,
}

/// One pipeline awaiting its replies.
struct Pipeline {
    epoch: u64,
    sent_ns: u64,
    /// (sequence number, intended time) of each XADD, in order.
    batch: Vec<(u64, u64)>,
}

/// The producer's connection (see `wire`): up with a writer, or being
/// re-established after a loss.
struct Link {
    endpoint: Arc<Endpoint>,
    writer: Option<Writer>,
    /// Bumped on every loss, so reads of a dropped connection are ignored.
    generation: u64,
    /// A wait for the socket to take queued bytes is pending.
    flushing: bool,
    reconnect_delay: Duration,
    /// Unanswered this long, the connection is presumed dead.
    response_timeout: Duration,
}

/// Everything a producer needs besides its plan.
pub struct ProducerSetup {
    pub stream_key: String,
    pub trim: Option<Trim>,
    /// The connection, opened before the run clock started.
    pub conn: (Replies, Writer),
    pub endpoint: Arc<Endpoint>,
    pub response_timeout: Duration,
    pub clock: RunClock,
    pub end: Duration,
    pub measure_from: Duration,
    pub payloads: Arc<PayloadPool>,
    pub collector: Recipient<ProduceReport>,
}

impl Producer {
    pub fn new(plan: ProducerPlan, setup: ProducerSetup) -> Producer {
        let (pace, next_due_ns) = match plan.pipeline {
            Some(depth) => {
                let end_ns = setup.end.as_nanos() as u64;
                (
                    Pace::Saturate {
                        depth: depth as usize,
                        end_ns,
                    },
                    Some(0),
                )
            }
            None => {
                let mut schedule = plan.schedule(setup.end);
                let first = schedule.next();
                (Pace::Schedule(schedule), first)
            }
        };
        Producer {
            rng: SmallRng::seed_from_u64(plan.seed ^ 0x5eed),
            stream_key: setup.stream_key.into(),
            trim: setup.trim,
            link: Link {
                endpoint: setup.endpoint,
                writer: Some(setup.conn.1),
                generation: 0,
                flushing: false,
                reconnect_delay: RECONNECT_MIN_DELAY,
                response_timeout: setup.response_timeout,
            },
            first_read: Some(setup.conn.0),
            out: Vec::new(),
            header: Vec::with_capacity(crate::event::HEADER_MAX_BYTES),
            clock: setup.clock,
            pace,
            next_due_ns,
            seq: 0,
            payloads: setup.payloads,
            measure_from_ns: setup.measure_from.as_nanos() as u64,
            in_flight: InFlight::default(),
            timer: None,
            sleeper: Timer::new(),
            blocked: false,
            stats: Phased::default(),
            ledger: ProduceLedger::new(),
            collector: setup.collector,
            done: watch::channel(false).0,
            wait: plan.wait,
            unreplicated: 0,
            dead: false,
            epoch: 0,
            stalls: StallTracker::new(plan.id),
            plan,
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
        if let Pace::Saturate { depth, end_ns } = self.pace {
            return self.saturate(ctx, depth, end_ns);
        }
        if self.dead {
            self.skip_due(self.clock.now_ns());
            return self.schedule_tick(ctx);
        }
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.blocked = true;
            return;
        }
        let now_ns = self.clock.now_ns();
        let mut batch = Vec::new();
        while let Some(due) = self.next_due_ns.filter(|&d| d <= now_ns) {
            if batch.len() == MAX_PIPELINE {
                break;
            }
            self.add_xadd(due);
            self.ledger.sent(self.seq);
            batch.push((self.seq, due));
            self.seq += 1;
            self.next_due_ns = match &mut self.pace {
                Pace::Schedule(schedule) => schedule.next(),
                Pace::Saturate { .. } => None,
            };
        }
        if !batch.is_empty() {
            self.send(ctx, batch);
        }
        self.schedule_tick(ctx);
    }

    /// `WAIT replicas timeout` closing the pipeline, when the producer has one.
    fn add_wait(&mut self) {
        if let Some(w) = self.wait {
            resp::array(&mut self.out, 3);
            resp::bulk(&mut self.out, b"WAIT");
            resp::bulk_u64(&mut self.out, u64::from(w.replicas));
            resp::bulk_u64(&mut self.out, w.timeout.as_millis() as u64);
        }
    }

    /// A dead producer's schedule runs on without it: what falls due is
    /// never sent (and takes no sequence number).
    fn skip_due(&mut self, now_ns: u64) {
        while self.next_due_ns.is_some_and(|d| d <= now_ns) {
            self.next_due_ns = match &mut self.pace {
                Pace::Schedule(schedule) => schedule.next(),
                Pace::Saturate { .. } => None,
            };
        }
    }

    /// One pipeline of `depth` XADDs, intended now, if none is in flight.
    fn saturate(&mut self, ctx: &mut Context<Self>, depth: usize, end_ns: u64) {
        let now_ns = self.clock.now_ns();
        if now_ns >= end_ns && self.in_flight.is_empty() {
            self.next_due_ns = None;
            self.done.send_replace(true);
            return;
        }
        if self.dead && self.timer.is_none() {
            let poll = ctx.run_later(DEAD_POLL, |act, ctx| {
                act.timer = None;
                act.tick(ctx);
            });
            self.timer = Some(poll);
        }
        if !self.in_flight.is_empty() || self.dead || now_ns >= end_ns {
            return;
        }
        let mut batch = Vec::with_capacity(depth);
        for _ in 0..depth {
            self.add_xadd(now_ns);
            self.ledger.sent(self.seq);
            batch.push((self.seq, now_ns));
            self.seq += 1;
        }
        self.send(ctx, batch);
    }

    fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        if let Some(old) = self.timer.take() {
            ctx.cancel_future(old);
        }
        match self.next_due_ns {
            Some(due) => {
                let wake = self.sleeper.sleep_until(self.clock.instant_at(due));
                self.timer = Some(ctx.spawn(wake.into_actor(self).map(|_, act, ctx| {
                    act.timer = None;
                    act.tick(ctx);
                })));
            }
            None if self.in_flight.is_empty() => {
                self.done.send_replace(true);
            }
            None => {}
        }
    }

    /// Appends one XADD to the pipeline being built.
    fn add_xadd(&mut self, intended_ns: u64) {
        let draw = self.plan.mix.draw(&mut self.rng);
        self.header.clear();
        Header {
            producer: self.plan.id,
            seq: self.seq,
            intended_ns: self.clock.unix_ns(intended_ns),
        }
        .encode_into(&mut self.header);
        let trim_args = if self.trim.is_some() { 3 } else { 0 };
        let out = &mut self.out;
        resp::array(out, 11 + trim_args);
        resp::bulk(out, b"XADD");
        resp::bulk(out, self.stream_key.as_bytes());
        match self.trim {
            Some(Trim::MaxLen { len, approx }) => {
                resp::bulk(out, b"MAXLEN");
                resp::bulk(out, if approx { b"~" } else { b"=" });
                resp::bulk_u64(out, len);
            }
            Some(Trim::MinAge { age, approx }) => {
                let now_ms = self.clock.unix_ns(self.clock.now_ns()) / 1_000_000;
                resp::bulk(out, b"MINID");
                resp::bulk(out, if approx { b"~" } else { b"=" });
                resp::bulk_u64(out, now_ms.saturating_sub(age.as_millis() as u64));
            }
            None => {}
        }
        resp::bulk(out, b"*");
        resp::bulk(out, crate::event::HEADER_FIELD.as_bytes());
        resp::bulk(out, &self.header);
        resp::bulk(out, crate::event::TYPE_FIELD.as_bytes());
        resp::bulk(out, self.plan.mix.names[draw.kind].as_bytes());
        resp::bulk(out, crate::event::AGGREGATE_FIELD.as_bytes());
        resp::bulk_u64(out, draw.aggregate);
        resp::bulk(out, crate::event::DATA_FIELD.as_bytes());
        resp::bulk(out, self.payloads.slice(draw.size_bytes, self.seq));
    }

    /// Sends the pipeline built in `out`: its XADDs are `batch`.
    fn send(&mut self, ctx: &mut Context<Self>, batch: Vec<(u64, u64)>) {
        self.add_wait();
        let sent_ns = self.clock.now_ns();
        self.stalls.sent(sent_ns);
        for &(_, due) in &batch {
            let phase = self.phase(due);
            let stats = self.stats.get_mut(phase);
            stats.sent += 1;
            stats.schedule_lag.record_ns(sent_ns - due);
        }
        let commands = batch.len() + usize::from(self.wait.is_some());
        let pipeline = Pipeline {
            epoch: self.epoch,
            sent_ns,
            batch,
        };
        let written = match self.link.writer.as_mut() {
            Some(writer) => writer.write(&self.out),
            None => {
                // Down and reconnecting: nothing reached Redis, a definite failure.
                self.out.clear();
                return self.on_reply(pipeline, Err(Outcome::NotSent));
            }
        };
        self.out.clear();
        self.in_flight.push(pipeline, commands);
        match written {
            Ok(true) => {}
            Ok(false) => self.wait_writable(ctx),
            Err(_) => self.lost(ctx),
        }
    }

    /// The socket took only part of a pipeline: send the rest when it can.
    fn wait_writable(&mut self, ctx: &mut Context<Self>) {
        let Some(writer) = self.link.writer.as_ref() else {
            return;
        };
        if std::mem::replace(&mut self.link.flushing, true) {
            return;
        }
        let generation = self.link.generation;
        ctx.spawn(
            writer
                .writable()
                .into_actor(self)
                .map(move |ready, act, ctx| {
                    act.link.flushing = false;
                    if act.link.generation != generation {
                        return;
                    }
                    match (ready, act.link.writer.as_mut().map(Writer::flush)) {
                        (Ok(()), Some(Ok(true))) => {}
                        (Ok(()), Some(Ok(false))) => act.wait_writable(ctx),
                        _ => act.lost(ctx),
                    }
                }),
        );
    }

    /// Reads the next replies of the current connection, for ever.
    fn read(&mut self, mut replies: Replies, ctx: &mut Context<Self>) {
        let generation = self.link.generation;
        let next = async move {
            let chunk = replies.next_chunk().await;
            (replies, chunk)
        };
        ctx.spawn(
            next.into_actor(self)
                .map(move |(replies, chunk), act, ctx| {
                    if act.link.generation != generation {
                        return;
                    }
                    let answered = chunk.map_err(|e| e.to_string()).and_then(|chunk| {
                        let mut done = Vec::new();
                        act.in_flight
                            .answer(chunk, |p, r| done.push((p, r.to_vec())))?;
                        Ok(done)
                    });
                    match answered {
                        Ok(done) => {
                            for (pipeline, replies) in done {
                                act.on_reply(pipeline, Ok(&replies));
                            }
                            act.after_replies(ctx);
                            act.read(replies, ctx);
                        }
                        Err(_) => act.lost(ctx),
                    }
                }),
        );
    }

    /// The connection is gone (closed, reset, garbled, or silent past the
    /// response timeout): what it carried is indeterminate; reconnect.
    fn lost(&mut self, ctx: &mut Context<Self>) {
        self.link.writer = None;
        self.link.generation += 1;
        let pipelines: Vec<Pipeline> = self.in_flight.drain().collect();
        for pipeline in pipelines {
            self.on_reply(pipeline, Err(Outcome::Unknown));
        }
        self.after_replies(ctx);
        let delay = self.link.reconnect_delay;
        self.link.reconnect_delay = (delay * 2).min(RECONNECT_MAX_DELAY);
        ctx.run_later(delay, |act, ctx| act.reconnect(ctx));
    }

    fn reconnect(&mut self, ctx: &mut Context<Self>) {
        let endpoint = self.link.endpoint.clone();
        let timeout = crate::connect::CONNECT_TIMEOUT;
        let open = async move { endpoint.open(timeout).await };
        ctx.spawn(open.into_actor(self).map(|opened, act, ctx| match opened {
            Ok((replies, writer)) => {
                act.link.writer = Some(writer);
                act.link.reconnect_delay = RECONNECT_MIN_DELAY;
                act.read(replies, ctx);
            }
            Err(_) => {
                let delay = act.link.reconnect_delay;
                act.link.reconnect_delay = (delay * 2).min(RECONNECT_MAX_DELAY);
                ctx.run_later(delay, |act, ctx| act.reconnect(ctx));
            }
        }));
    }

    /// After replies (or their loss): resume a blocked or saturating
    /// producer, or say it is done.
    fn after_replies(&mut self, ctx: &mut Context<Self>) {
        if std::mem::take(&mut self.blocked) || matches!(self.pace, Pace::Saturate { .. }) {
            self.tick(ctx);
        } else if self.next_due_ns.is_none() && self.in_flight.is_empty() {
            self.done.send_replace(true);
        }
    }

    /// A connection silent past the response timeout is presumed dead.
    fn check_response_timeout(&mut self, ctx: &mut Context<Self>) {
        let timeout_ns = self.link.response_timeout.as_nanos() as u64;
        let now_ns = self.clock.now_ns();
        if (self.in_flight.oldest()).is_some_and(|p| now_ns.saturating_sub(p.sent_ns) > timeout_ns)
        {
            self.lost(ctx);
        }
    }

    fn on_reply(&mut self, pipeline: Pipeline, reply: Result<&[Reply], Outcome>) {
        // A crash since the send: the process that would read this reply is gone.
        if pipeline.epoch != self.epoch {
            return;
        }
        let Pipeline { sent_ns, batch, .. } = pipeline;
        let replied_ns = self.clock.now_ns();
        // A lost connection says nothing about whether Redis applied the XADDs:
        // they stay indeterminate (sent, neither acked nor failed) until the
        // stream is read back. An error reply is a definite failure.
        let (replies, unknown) = match reply {
            Ok(replies) => (replies, false),
            Err(outcome) => (&[][..], outcome == Outcome::Unknown),
        };
        // WAIT's reply follows the XADDs': how many replicas have them all.
        let replicated = match (self.wait, replies.get(batch.len())) {
            (Some(w), Some(Reply::Int(n))) => *n >= i64::from(w.replicas),
            (Some(_), _) => false,
            (None, _) => true,
        };
        let mut acked_any = false;
        for (i, &(seq, due)) in batch.iter().enumerate() {
            let stats = self.stats.get_mut(self.phase(due));
            match replies.get(i) {
                Some(Reply::Bulk) => {
                    acked_any = true;
                    stats.acked += 1;
                    stats.latency.record_ns(replied_ns - due);
                    stats.service.record_ns(replied_ns - sent_ns);
                    self.ledger.acked(seq);
                    if !replicated {
                        // Per event too: the durability check tells gone
                        // writes WAIT had flagged from silent ones.
                        self.ledger.unreplicated(seq);
                    }
                    if !replicated && self.phase(due) == Phase::Measured {
                        self.unreplicated += 1;
                    }
                }
                None if unknown => stats.errors += 1,
                _ => {
                    stats.errors += 1;
                    self.ledger.failed(seq);
                }
            }
        }
        if acked_any {
            self.stalls.acked(replied_ns, !self.in_flight.is_empty());
        }
    }

    fn flush(&mut self, interval: u32) {
        let stats = std::mem::take(&mut self.stats);
        let stalls = self.stalls.take();
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
        every_interval(ctx, self.clock, |act: &mut Self, interval, ctx| {
            act.flush(interval);
            act.check_response_timeout(ctx);
        });
        if let Some(replies) = self.first_read.take() {
            self.read(replies, ctx);
        }
        self.schedule_tick(ctx);
    }
}

/// Wait until the schedule has ended and every reply is in (or `deadline`
/// passes: replies still missing then stay unacknowledged in the ledger),
/// flush the last interval and hand back the ledger.
#[derive(Message)]
#[rtype(result = "Finished")]
pub struct Finish {
    pub deadline: Duration,
}

/// What a producer hands back at the end.
#[derive(Debug, Default)]
pub struct Finished {
    pub ledger: ProduceLedger,
    /// Measured-phase XADDs acknowledged although WAIT saw too few replicas
    /// (0 without `wait`).
    pub unreplicated: u64,
}

impl Handler<Finish> for Producer {
    type Result = ResponseActFuture<Self, Finished>;

    fn handle(&mut self, msg: Finish, _: &mut Context<Self>) -> Self::Result {
        let mut done = self.done.subscribe();
        let wait = async move {
            let _ = tokio::time::timeout(msg.deadline, done.wait_for(|d| *d)).await;
        };
        Box::pin(wait.into_actor(self).map(|_, act, ctx| {
            act.next_due_ns = None;
            act.flush(super::final_interval(act.clock));
            ctx.stop();
            Finished {
                ledger: std::mem::replace(&mut act.ledger, ProduceLedger::new()),
                unreplicated: act.unreplicated,
            }
        }))
    }
}

/// A fault the chaos actor injects into a producer.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum ProducerFault {
    /// Die abruptly: replies in flight are never read, nothing more is sent.
    Crash,
    /// Come back and go on with the schedule from now.
    Restart,
}

impl Handler<ProducerFault> for Producer {
    type Result = ();

    fn handle(&mut self, fault: ProducerFault, ctx: &mut Context<Self>) {
        match fault {
            ProducerFault::Crash => {
                self.stalls.interrupted(self.clock.now_ns());
                self.dead = true;
                self.epoch += 1;
                self.blocked = false;
                // Keeps the schedule (or the saturating poll) running, so the
                // producer still finishes when its run ends.
                self.tick(ctx);
            }
            ProducerFault::Restart if self.dead => {
                self.skip_due(self.clock.now_ns());
                self.dead = false;
                self.tick(ctx);
            }
            ProducerFault::Restart => {}
        }
    }
}
