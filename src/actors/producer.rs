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

use crate::connect::Conn;
use actix::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use redis::Value;
use tokio::sync::watch;

use super::{ProduceReport, every_interval};
use crate::clock::RunClock;
use crate::event::{Header, PayloadPool};
use crate::metrics::{Phase, Phased, ProduceLedger, ProduceStats};
use crate::plan::{ProducerPlan, Schedule, Trim, Wait};

/// Most events sent in one pipeline; a producer far behind catches up in steps.
const MAX_PIPELINE: usize = 512;
/// Pipelines awaiting replies at once; beyond this the producer falls behind
/// (visible as schedule lag) instead of queueing without bound.
const MAX_IN_FLIGHT: usize = 64;
/// How often a crashed saturating producer checks whether its run is over.
const DEAD_POLL: Duration = Duration::from_millis(10);

pub struct Producer {
    plan: ProducerPlan,
    stream_key: Arc<str>,
    trim: Option<Trim>,
    conn: Conn,
    clock: RunClock,
    pace: Pace,
    next_due_ns: Option<u64>,
    seq: u64,
    rng: SmallRng,
    payloads: Arc<PayloadPool>,
    measure_from_ns: u64,
    in_flight: usize,
    /// The one pending wake-up; replacing it cancels the old one, so ticks
    /// never multiply (each costs a poll of every timer in the context).
    timer: Option<SpawnHandle>,
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
}

/// Everything a producer needs besides its plan.
/// How a producer decides when to send.
enum Pace {
    /// Open loop: intended send times fixed in advance.
    Schedule(Schedule),
    /// Closed loop (rate = "max"): `depth` XADDs per pipeline, the next pipeline
    /// as soon as the last is answered, until `end_ns`. Latency is then service
    /// time only: there is no schedule for a slow reply to fall behind.
    Saturate { depth: usize, end_ns: u64 },
}

pub struct ProducerSetup {
    pub stream_key: String,
    pub trim: Option<Trim>,
    pub conn: Conn,
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
            conn: setup.conn,
            clock: setup.clock,
            pace,
            next_due_ns,
            seq: 0,
            payloads: setup.payloads,
            measure_from_ns: setup.measure_from.as_nanos() as u64,
            in_flight: 0,
            timer: None,
            blocked: false,
            stats: Phased::default(),
            ledger: ProduceLedger::new(),
            collector: setup.collector,
            done: watch::channel(false).0,
            wait: plan.wait,
            unreplicated: 0,
            dead: false,
            epoch: 0,
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
        if self.in_flight >= MAX_IN_FLIGHT {
            self.blocked = true;
            return;
        }
        let now_ns = self.clock.now_ns();
        let mut batch = Vec::new();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        while let Some(due) = self.next_due_ns.filter(|&d| d <= now_ns) {
            if batch.len() == MAX_PIPELINE {
                break;
            }
            self.add_xadd(&mut pipe, due);
            self.ledger.sent(self.seq);
            batch.push((self.seq, due));
            self.seq += 1;
            self.next_due_ns = match &mut self.pace {
                Pace::Schedule(schedule) => schedule.next(),
                Pace::Saturate { .. } => None,
            };
        }
        if !batch.is_empty() {
            self.send(ctx, pipe, batch);
        }
        self.schedule_tick(ctx);
    }

    /// `WAIT replicas timeout` closing the pipeline, when the producer has one.
    fn add_wait(&self, pipe: &mut redis::Pipeline) {
        if let Some(w) = self.wait {
            pipe.cmd("WAIT")
                .arg(w.replicas)
                .arg(w.timeout.as_millis() as u64);
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
        if now_ns >= end_ns && self.in_flight == 0 {
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
        if self.in_flight > 0 || self.dead || now_ns >= end_ns {
            return;
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let mut batch = Vec::with_capacity(depth);
        for _ in 0..depth {
            self.add_xadd(&mut pipe, now_ns);
            self.ledger.sent(self.seq);
            batch.push((self.seq, now_ns));
            self.seq += 1;
        }
        self.send(ctx, pipe, batch);
    }

    fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        if let Some(old) = self.timer.take() {
            ctx.cancel_future(old);
        }
        match self.next_due_ns {
            Some(due) => {
                let wake = super::timer::sleep_until(self.clock.instant_at(due));
                self.timer = Some(ctx.spawn(wake.into_actor(self).map(|_, act, ctx| {
                    act.timer = None;
                    act.tick(ctx);
                })));
            }
            None if self.in_flight == 0 => {
                self.done.send_replace(true);
            }
            None => {}
        }
    }

    fn add_xadd(&mut self, pipe: &mut redis::Pipeline, intended_ns: u64) {
        let draw = self.plan.mix.draw(&mut self.rng);
        let mut header = Vec::with_capacity(crate::event::HEADER_MAX_BYTES);
        Header {
            producer: self.plan.id,
            seq: self.seq,
            intended_ns: self.clock.unix_ns(intended_ns),
        }
        .encode_into(&mut header);
        let cmd = pipe.cmd("XADD").arg(&*self.stream_key);
        match self.trim {
            Some(Trim::MaxLen { len, approx }) => {
                cmd.arg("MAXLEN")
                    .arg(if approx { "~" } else { "=" })
                    .arg(len);
            }
            Some(Trim::MinAge { age, approx }) => {
                let now_ms = self.clock.unix_ns(self.clock.now_ns()) / 1_000_000;
                let min_ms = now_ms.saturating_sub(age.as_millis() as u64);
                cmd.arg("MINID")
                    .arg(if approx { "~" } else { "=" })
                    .arg(min_ms);
            }
            None => {}
        }
        cmd.arg("*")
            .arg(crate::event::HEADER_FIELD)
            .arg(header)
            .arg(crate::event::TYPE_FIELD)
            .arg(&self.plan.mix.names[draw.kind])
            .arg(crate::event::AGGREGATE_FIELD)
            .arg(draw.aggregate)
            .arg(crate::event::DATA_FIELD)
            .arg(self.payloads.slice(draw.size_bytes, self.seq));
    }

    fn send(&mut self, ctx: &mut Context<Self>, mut pipe: redis::Pipeline, batch: Vec<(u64, u64)>) {
        self.add_wait(&mut pipe);
        let epoch = self.epoch;
        let sent_ns = self.clock.now_ns();
        for &(_, due) in &batch {
            let phase = self.phase(due);
            let stats = self.stats.get_mut(phase);
            stats.sent += 1;
            stats.schedule_lag.record_ns(sent_ns - due);
        }
        self.in_flight += 1;
        let mut conn = self.conn.clone();
        let request = async move { pipe.query_async::<Vec<Value>>(&mut conn).await };
        ctx.spawn(request.into_actor(self).map(move |reply, act, ctx| {
            act.in_flight -= 1;
            // A crash since the send: the process that would read this reply is gone.
            if act.epoch == epoch {
                act.on_reply(sent_ns, batch, reply);
            }
            if std::mem::take(&mut act.blocked) || matches!(act.pace, Pace::Saturate { .. }) {
                act.tick(ctx);
            } else if act.next_due_ns.is_none() && act.in_flight == 0 {
                act.done.send_replace(true);
            }
        }));
    }

    fn on_reply(
        &mut self,
        sent_ns: u64,
        batch: Vec<(u64, u64)>,
        reply: redis::RedisResult<Vec<Value>>,
    ) {
        let replied_ns = self.clock.now_ns();
        // A lost connection says nothing about whether Redis applied the XADDs:
        // they stay indeterminate (sent, neither acked nor failed) until the
        // stream is read back. An error reply is a definite failure.
        let (replies, unknown) = match reply {
            Ok(replies) => (replies, false),
            Err(e) => (Vec::new(), crate::connect::outcome_unknown(&e)),
        };
        // WAIT's reply follows the XADDs': how many replicas have them all.
        let replicated = match (self.wait, replies.get(batch.len())) {
            (Some(w), Some(Value::Int(n))) => *n >= i64::from(w.replicas),
            (Some(_), _) => false,
            (None, _) => true,
        };
        for (i, &(seq, due)) in batch.iter().enumerate() {
            let stats = self.stats.get_mut(self.phase(due));
            match replies.get(i) {
                Some(Value::BulkString(_)) => {
                    stats.acked += 1;
                    stats.latency.record_ns(replied_ns - due);
                    stats.service.record_ns(replied_ns - sent_ns);
                    self.ledger.acked(seq);
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
    }

    fn flush(&mut self, interval: u32) {
        let stats = std::mem::take(&mut self.stats);
        self.collector.do_send(ProduceReport { interval, stats });
    }
}

impl Actor for Producer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        every_interval(ctx, self.clock, |act: &mut Self, interval, _| {
            act.flush(interval)
        });
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
