//! Consumer actor: one member of a consumer group. Reads with XREADGROUP on
//! its own connection (a BLOCK on a shared connection stalls every command
//! queued behind it), from its stream's key or from every partition it owns
//! at once (docs/event-sourcing.md, "Partitioned streams"),
//! "processes" each entry for a sampled time, XACKs the batch, records
//! delivery and end-to-end latency from the intended send time carried in
//! the event, and reports each batch to the ledger: once when it
//! is delivered, once when it is processed. With `reclaim` it also takes over
//! entries idle in other consumers' PELs (XAUTOCLAIM). The chaos actor crashes,
//! restarts, stalls and slows it through `ConsumerFault`.
//!
//! Poison events (the group's `poison`) fail their processing every time: they
//! are neither processed nor acknowledged, and come back through reclaim. With
//! `max_deliveries`, an entry read from a pending list that Redis has already
//! delivered more often than that is moved to the dead-letter stream instead
//! of being processed again.
//!
//! The parts: `machine` says what the consumer is doing and what it does
//! next (one transition function, no actix); `cursors` where it reads next;
//! `read` sends a read and takes its reply apart; `work` dead-letters,
//! processes and acknowledges a batch and keeps the events in hand;
//! `control` takes the chaos actor's fault steps and the coordinator's stop.
//! This file holds the actor, its measurements, `on` (through which every
//! transition is taken) and the timers the machine asks for.

mod control;
mod cursors;
mod machine;
mod read;
mod schema_versions;
mod work;

pub use control::{ConsumerFault, Stop};

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use actix::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::watch;

use self::cursors::Cursors;
use self::machine::{Action, Event, State};
use self::work::{Ack, InHand, Slowdown};
use super::reads::{self, Read};
use super::{ConsumeReport, Interval, LedgerBatch, every_interval};
use crate::clock::{RunClock, Timer};
use crate::metrics::{ConsumeStats, OrderCheck, Phase, Phased};
use crate::plan::{GroupPlan, SeedKind, derive_seed};
use crate::wire::{Endpoint, Replies, Session, Writer};

/// Pause before reading again after a failed read, so a dead Redis is not hammered.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

pub struct Consumer {
    group: Arc<GroupPlan>,
    name: String,
    /// The keys it reads: the partitions it owns, or its stream's one key.
    stream_keys: Vec<String>,
    conn: Session,
    clock: RunClock,
    rng: SmallRng,
    measure_from_ns: u64,
    stats: Phased<ConsumeStats>,
    /// The interval `stats` belong to.
    interval: Interval,
    collector: Recipient<ConsumeReport>,
    ledger: Recipient<LedgerBatch>,
    /// What it is doing (machine.rs).
    state: State,
    /// The batch, lone XACK or timer in hand, which a crash or a stop may
    /// cancel: Some exactly when `state.cancellable()`. Never a read.
    cancellable: Option<SpawnHandle>,
    /// Turns true when it goes idle; the stop waits for it.
    idle: watch::Sender<bool>,
    /// The last stall_consumer's end on the run clock (0: never stalled).
    stalled_until_ns: u64,
    /// The last slow_consumer fault; inactive once its window is over.
    slowdown: Option<Slowdown>,
    /// Where the next read goes: the own PEL, a reclaim, or new entries.
    cursors: Cursors,
    /// The timerfd that times each batch's simulated processing.
    timer: Timer,
    /// Events delivered to it and not finished (docs/measurement.md, "The drain").
    in_hand: InHand,
    /// The read of new entries, the same every time: encoded once.
    new_read: Vec<u8>,
    /// The group's per-aggregate order check, with `check_order`.
    order: Option<Arc<OrderCheck>>,
    /// The batch in hand's events whose projection effects Redis applied:
    /// processed, even if a crash comes before the batch's end.
    applied: Vec<work::Applied>,
    /// Crashes so far: a reply to a write that comes back after a crash
    /// belongs to the consumer that died, and says only what Redis did.
    crashes: u32,
    /// Reads a cluster answered `-MOVED`, counted across the run.
    moved: Arc<AtomicU64>,
    /// A cluster's primaries, asked in turn while its node is unreachable.
    fallbacks: Vec<Arc<Endpoint>>,
    next_fallback: usize,
}

pub struct ConsumerSetup {
    pub index: u32,
    /// The partitions it owns, in order, or its stream's one key.
    pub stream_keys: Vec<String>,
    /// A connection of its own, opened before the run clock started.
    pub conn: (Replies, Writer),
    /// Where to reconnect after losing it.
    pub endpoint: Arc<Endpoint>,
    /// Longer than BLOCK: a blocking read is not a dead connection.
    pub response_timeout: Duration,
    pub clock: RunClock,
    pub measure_from: Duration,
    pub collector: Recipient<ConsumeReport>,
    pub ledger: Recipient<LedgerBatch>,
    /// The group's count of events in hand, shared by its consumers.
    pub busy: Arc<AtomicU64>,
    /// The group's per-aggregate order check, shared by its consumers
    /// (`check_order`).
    pub order: Option<Arc<OrderCheck>>,
    /// The run's count of consumer reads answered `-MOVED`.
    pub moved: Arc<AtomicU64>,
    /// In a cluster, every primary: where to read when its node is
    /// unreachable, to be told by `-MOVED` where its keys live now.
    pub fallbacks: Vec<Arc<Endpoint>>,
}

/// The name consumer `index` of a group reads under.
pub fn name(index: u32) -> String {
    format!("c{index}")
}

impl Consumer {
    pub fn new(group: Arc<GroupPlan>, setup: ConsumerSetup) -> Consumer {
        let name = name(setup.index);
        let new_read =
            reads::command(&Read::New, &group, &name, &setup.stream_keys).get_packed_command();
        Consumer {
            rng: SmallRng::seed_from_u64(derive_seed(
                group.seed,
                SeedKind::Consumer,
                setup.index as u64,
                0,
            )),
            name,
            cursors: Cursors::new(group.reclaim, setup.stream_keys.len()),
            stream_keys: setup.stream_keys,
            conn: Session::new(setup.endpoint, Some(setup.conn), setup.response_timeout),
            clock: setup.clock,
            measure_from_ns: setup.measure_from.as_nanos() as u64,
            stats: Phased::default(),
            interval: Interval::at(0),
            collector: setup.collector,
            ledger: setup.ledger,
            state: State::Starting,
            cancellable: None,
            idle: watch::channel(false).0,
            stalled_until_ns: 0,
            slowdown: None,
            timer: Timer::new(),
            in_hand: InHand::new(setup.busy),
            new_read,
            order: setup.order,
            applied: Vec::new(),
            crashes: 0,
            moved: setup.moved,
            fallbacks: setup.fallbacks,
            next_fallback: 0,
            group,
        }
    }

    /// Takes the machine's transition on `event`; returns what to do.
    fn on(&mut self, event: Event) -> Action {
        let (state, action) = self.state.on(event);
        self.state = state;
        action
    }

    fn stalled(&self, now_ns: u64) -> bool {
        now_ns < self.stalled_until_ns
    }

    /// What it had in hand is over; `ack`: the XACK of the batch it just
    /// processed, due now. Reads (the XACK riding in front), sends the XACK
    /// alone, waits out a stall, or goes idle.
    fn ready(&mut self, ack: Option<Ack>, ctx: &mut Context<Self>) {
        self.cancellable = None;
        let now_ns = self.clock.now_ns();
        let stalled = self.stalled(now_ns);
        let action = self.on(Event::Ready {
            ack: ack.is_some(),
            stalled,
        });
        match (action, ack) {
            (Action::Read, ack) => self.read(ack, now_ns, ctx),
            (Action::Ack, Some(ack)) => self.acknowledge(ack, ctx),
            (action, _) => self.act(action, ctx),
        }
    }

    /// Sends a write that a crash cannot take back once it is out (a
    /// projection's effects, a move to the dead-letter stream): its reply is
    /// always read and handed to `landed`, with whether the consumer crashed
    /// meanwhile, so the ledger hears what Redis did either way; only `then`,
    /// the work that follows, is cancellable (docs/measurement.md, "Accounting").
    fn write_then<T: 'static, R: 'static>(
        &mut self,
        request: impl std::future::Future<Output = T> + 'static,
        landed: impl FnOnce(&mut Self, T, bool) -> R + 'static,
        then: impl FnOnce(&mut Self, R, &mut Context<Self>) + 'static,
        ctx: &mut Context<Self>,
    ) {
        let crashes = self.crashes;
        let (tx, rx) = tokio::sync::oneshot::channel::<R>();
        ctx.spawn(request.into_actor(self).map(move |reply, act, _| {
            let crashed = act.crashes != crashes;
            let result = landed(act, reply, crashed);
            if !crashed {
                let _ = tx.send(result);
            }
        }));
        let handle = ctx.spawn(rx.into_actor(self).map(move |result, act, ctx| {
            if let Ok(result) = result {
                then(act, result, ctx);
            }
        }));
        self.cancellable = Some(handle);
    }

    /// Runs an action that needs no batch or XACK in hand.
    fn act(&mut self, action: Action, ctx: &mut Context<Self>) {
        match action {
            Action::Wait | Action::Refuse(_) => {}
            Action::Read => self.read(None, self.clock.now_ns(), ctx),
            Action::Stall => {
                let left_ns = self.stalled_until_ns.saturating_sub(self.clock.now_ns());
                let wait = Duration::from_nanos(left_ns);
                self.cancellable = Some(ctx.run_later(wait, |act, ctx| act.ready(None, ctx)));
            }
            Action::Backoff => {
                let retry = ctx.run_later(RETRY_BACKOFF, |act, ctx| act.ready(None, ctx));
                self.cancellable = Some(retry);
            }
            Action::Cancel | Action::Idle => {
                if let Some(handle) = self.cancellable.take() {
                    ctx.cancel_future(handle);
                }
                if action == Action::Idle {
                    self.idle.send_replace(true);
                }
            }
            // The machine asks for these only with a batch or an XACK in
            // hand, and their callers run them.
            Action::Ack | Action::Work | Action::Abandon => {
                unreachable!("{action:?} in {:?} without its data", self.state)
            }
        }
    }

    fn phase(&self, intended_ns: u64) -> Phase {
        if intended_ns < self.measure_from_ns {
            Phase::Warmup
        } else {
            Phase::Measured
        }
    }

    /// A consumer command failed: counted by when (warmup or after), as
    /// commands have no intended time.
    fn command_failed(&mut self) {
        let now_ns = self.clock.now_ns();
        self.roll(now_ns);
        self.stats.get_mut(self.phase(now_ns)).errors += 1;
    }

    /// Ships the stats of the interval that ended, if `now_ns` is past it.
    fn roll(&mut self, now_ns: u64) {
        if let Some(ended) = self.interval.roll(now_ns) {
            self.flush(ended);
        }
    }

    fn flush(&mut self, interval: u32) {
        let stats = std::mem::take(&mut self.stats);
        self.collector.do_send(ConsumeReport {
            group: self.group.index,
            interval,
            stats,
        });
    }
}

impl Actor for Consumer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        every_interval(ctx, self.clock, |act: &mut Self, _, _| {
            act.roll(act.clock.now_ns())
        });
        let wait = self
            .group
            .start_after
            .saturating_sub(Duration::from_nanos(self.clock.now_ns()));
        self.cancellable = Some(ctx.run_later(wait, |act, ctx| act.ready(None, ctx)));
    }
}
