//! Consumer actor: one member of a consumer group. Reads with XREADGROUP on
//! its own connection (a BLOCK on a shared connection stalls every command
//! queued behind it), "processes" each entry for a sampled time, XACKs the
//! batch, records delivery and end-to-end latency from the intended send time
//! carried in the event, and reports each batch to the ledger: once when it
//! is delivered, once when it is processed. With `reclaim` it also takes over
//! entries idle in other consumers' PELs (XAUTOCLAIM). The chaos actor crashes,
//! restarts, stalls and slows it through `ConsumerFault`.
//!
//! Poison events (the group's `poison`) fail their processing every time: they
//! are neither processed nor acknowledged, and come back through reclaim. With
//! `max_deliveries`, an entry read from a pending list that Redis has already
//! delivered more often than that is moved to the dead-letter stream instead
//! of being processed again.

mod control;
mod cursors;

pub use control::{ConsumerFault, Stop};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use redis::Value;
use std::io;
use tokio::sync::watch;

use self::cursors::Cursors;
use super::reads::{self, Read};
use super::{ConsumeReport, Interval, LedgerBatch, LedgerEvent, every_interval};
use crate::clock::RunClock;
use crate::clock::Timer;
use crate::event::Header;
use crate::metrics::{ConsumeStats, EventKey, Phase, Phased};
use crate::plan::{GroupPlan, derive_seed};
use crate::scenario::AckMode;
use crate::wire::entries::Entry;
use crate::wire::{self, Endpoint, Raw, Replies, Session, Writer, resp};

/// Pause before reading again after a failed read, so a dead Redis is not hammered.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

pub struct Consumer {
    group: Arc<GroupPlan>,
    name: String,
    stream_key: String,
    conn: Session,
    clock: RunClock,
    rng: SmallRng,
    measure_from_ns: u64,
    stats: Phased<ConsumeStats>,
    /// The interval `stats` belong to.
    interval: Interval,
    collector: Recipient<ConsumeReport>,
    ledger: Recipient<LedgerBatch>,
    /// Reading has begun (`start_after` has passed).
    reading: bool,
    stopping: bool,
    /// True once `stopping` is seen between batches: nothing is in flight.
    idle: watch::Sender<bool>,
    /// The batch (or backoff) in progress, cancelled by a crash.
    in_flight: Option<SpawnHandle>,
    /// A read is out. A crash does not cancel it: the command is already in
    /// Redis, which will deliver to this consumer's PEL either way, and the
    /// ledger should see that delivery.
    read_in_flight: bool,
    /// When the last read was sent: its entries were delivered after this.
    read_sent_ns: u64,
    crashed: bool,
    stalled_until_ns: u64,
    /// Waiting out a stall: what `in_flight` holds is the stall's timer, and
    /// nothing else is out.
    waiting_out_stall: bool,
    /// The last slow_consumer fault; inactive once its window is over.
    slowdown: Option<Slowdown>,
    /// Where the next read goes: the own PEL, a reclaim, or new entries.
    cursors: Cursors,
    /// The timerfd that times each batch's simulated processing.
    timer: Timer,
    /// The processed batch's XACK, sent with the next read.
    pending_ack: Option<Ack>,
    /// Events delivered to this consumer and not finished yet (the batch in
    /// hand): what the drain waits for, and "in progress" if the run ends first.
    in_hand: Vec<EventKey>,
    /// Events in hand across the group's consumers, read by the drain.
    busy: Arc<AtomicU64>,
    /// The read of new entries, the same every time: encoded once.
    new_read: Vec<u8>,
}

pub struct ConsumerSetup {
    pub index: u32,
    pub stream_key: String,
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
}

/// An XACK waiting to go out, and how many of its entries were intended in
/// the measured phase (Redis's count is split by it).
struct Ack {
    packed: Vec<u8>,
    entries: u64,
    measured: u64,
}

/// One event of a batch in processing, kept until the batch is done.
struct Delivered {
    key: EventKey,
    intended_ns: u64,
    /// When its processing ends, on the run clock.
    finished_ns: u64,
}

/// A slow_consumer window on the run clock: an event whose processing starts
/// in `from_ns..until_ns` takes `factor` times its sampled time.
#[derive(Debug, Clone, Copy)]
struct Slowdown {
    factor: f64,
    from_ns: u64,
    until_ns: u64,
}

impl Slowdown {
    fn factor_at(&self, start_ns: u64) -> f64 {
        match (self.from_ns..self.until_ns).contains(&start_ns) {
            true => self.factor,
            false => 1.0,
        }
    }
}

fn key_of(header: Option<Header>) -> Option<EventKey> {
    header.map(|h| EventKey {
        producer: h.producer,
        seq: h.seq,
    })
}

impl Consumer {
    pub fn new(group: Arc<GroupPlan>, setup: ConsumerSetup) -> Consumer {
        let name = format!("c{}", setup.index);
        let new_read =
            reads::command(&Read::New, &group, &name, &setup.stream_key).get_packed_command();
        Consumer {
            rng: SmallRng::seed_from_u64(derive_seed(group.seed, 3, setup.index as u64, 0)),
            name,
            stream_key: setup.stream_key,
            conn: Session::new(setup.endpoint, Some(setup.conn), setup.response_timeout),
            clock: setup.clock,
            measure_from_ns: setup.measure_from.as_nanos() as u64,
            stats: Phased::default(),
            interval: Interval::at(0),
            collector: setup.collector,
            ledger: setup.ledger,
            reading: false,
            stopping: false,
            idle: watch::channel(false).0,
            in_flight: None,
            read_in_flight: false,
            read_sent_ns: 0,
            crashed: false,
            stalled_until_ns: 0,
            waiting_out_stall: false,
            slowdown: None,
            cursors: Cursors::new(group.reclaim),
            timer: Timer::new(),
            pending_ack: None,
            in_hand: Vec::new(),
            busy: setup.busy,
            new_read,
            group,
        }
    }

    fn phase(&self, intended_ns: u64) -> Phase {
        if intended_ns < self.measure_from_ns {
            Phase::Warmup
        } else {
            Phase::Measured
        }
    }

    fn poll(&mut self, ctx: &mut Context<Self>) {
        self.reading = true;
        self.in_flight = None;
        self.waiting_out_stall = false;
        let reads_now =
            !self.stopping && !self.crashed && self.clock.now_ns() >= self.stalled_until_ns;
        if !reads_now && let Some(ack) = self.pending_ack.take() {
            // No read to carry it: the acknowledgement goes out alone.
            return self.acknowledge(ack, ctx);
        }
        if self.stopping {
            self.idle.send_replace(true);
            return;
        }
        if self.crashed {
            return;
        }
        let now_ns = self.clock.now_ns();
        if now_ns < self.stalled_until_ns {
            let wait = Duration::from_nanos(self.stalled_until_ns - now_ns);
            self.in_flight = Some(ctx.run_later(wait, |act, ctx| act.poll(ctx)));
            self.waiting_out_stall = true;
            return;
        }
        let read = self.cursors.next(now_ns);
        // The last batch's XACK rides in front of the next read: one write
        // and one round trip per batch instead of two.
        let ack = self.pending_ack.take();
        let at = usize::from(ack.is_some());
        let (mut packed, ack) = match ack {
            Some(Ack {
                packed,
                entries,
                measured,
            }) => (packed, Some((entries, measured))),
            None => (Vec::new(), None),
        };
        match &read {
            Read::New => packed.extend_from_slice(&self.new_read),
            _ => packed.extend(
                reads::command(&read, &self.group, &self.name, &self.stream_key)
                    .get_packed_command(),
            ),
        }
        let conn = self.conn.clone();
        let request = async move { conn.call(packed, at + 1).await };
        self.read_in_flight = true;
        self.read_sent_ns = now_ns;
        let handle = ctx.spawn(request.into_actor(self).map(move |reply, act, ctx| {
            act.read_in_flight = false;
            if let Some(sent) = ack {
                let acked = reply.as_ref().ok();
                act.on_acked(sent, acked.and_then(|raw| reads::acked(raw.bytes(0))));
            }
            act.on_read(read, reply, at, ctx)
        }));
        self.in_flight = Some(handle);
    }

    /// `reply` holds the read's reply at index `at`.
    fn on_read(&mut self, read: Read, reply: io::Result<Raw>, at: usize, ctx: &mut Context<Self>) {
        let received_ns = self.clock.now_ns();
        let reply = match reply {
            Ok(reply) => reply,
            Err(_) => return self.on_read_error(None, ctx),
        };
        if let Some(message) = reply.error(at) {
            return self.on_read_error(Some(&message), ctx);
        }
        // New entries, the hot path, are scanned in place; the rare reads
        // go through redis-rs's parser.
        let batch = match &read {
            Read::New => {
                wire::entries::parse_xreadgroup(reply.bytes(at)).map(|entries| reads::Batch {
                    entries,
                    cursor: None,
                    fields: Vec::new(),
                })
            }
            _ => (reply.value(at))
                .map(|value| reads::parse(&read, value))
                .map_err(|e| e.to_string()),
        };
        let Ok(batch) = batch else {
            return self.on_read_error(None, ctx);
        };
        self.cursors.advance(&read, &batch, received_ns);
        if batch.entries.is_empty() {
            return self.poll(ctx);
        }
        let what = match read {
            Read::New => LedgerEvent::Delivered,
            Read::OwnPending { .. } | Read::Claim { .. } => LedgerEvent::Redelivered,
        };
        self.record_deliveries(&batch.entries, what, received_ns);
        if self.crashed {
            // Delivered to a consumer that died meanwhile: it stays pending.
            return;
        }
        match (read, self.group.max_deliveries) {
            (Read::New, _) | (_, None) => self.process(batch.entries, received_ns, ctx),
            (_, Some(max)) => self.check_deliveries(batch, max, received_ns, ctx),
        }
    }

    /// Entries from a pending list: ask Redis how often each was delivered
    /// (XAUTOCLAIM does not say) and dead-letter those past `max` before
    /// processing the rest.
    fn check_deliveries(
        &mut self,
        batch: reads::Batch,
        max: u32,
        received_ns: u64,
        ctx: &mut Context<Self>,
    ) {
        let packed = reads::delivery_counts(&self.group, &self.stream_key, &batch.entries)
            .get_packed_pipeline();
        let (conn, n) = (self.conn.clone(), batch.entries.len());
        let request = async move { conn.call(packed, n).await };
        let handle = ctx.spawn(request.into_actor(self).map(move |counts, act, ctx| {
            let counts = match counts {
                Ok(raw) => reads::parse_delivery_counts(
                    (0..raw.len())
                        .map(|i| raw.value(i).unwrap_or(Value::Nil))
                        .collect(),
                ),
                // Unknown counts: process them all; they come round again if they fail.
                Err(_) => {
                    act.command_failed();
                    Vec::new()
                }
            };
            let over = counts.iter().any(|&n| n > u64::from(max));
            if over {
                act.dead_letter(batch, counts, max, received_ns, ctx);
            } else {
                act.process(batch.entries, received_ns, ctx);
            }
        }));
        self.in_flight = Some(handle);
    }

    /// Move the entries delivered more than `max` times to the dead-letter
    /// stream and acknowledge them in one MULTI, then process the others.
    fn dead_letter(
        &mut self,
        batch: reads::Batch,
        counts: Vec<u64>,
        max: u32,
        received_ns: u64,
        ctx: &mut Context<Self>,
    ) {
        let (mut dead, mut rest) = (Vec::new(), Vec::new());
        let fields = batch.fields.iter();
        for ((entry, fields), &count) in batch.entries.into_iter().zip(fields).zip(&counts) {
            if count > u64::from(max) {
                dead.push((entry, fields.clone(), count));
            } else {
                rest.push(entry);
            }
        }
        let parts: Vec<(&Entry, &Value, u64)> = dead.iter().map(|(e, f, n)| (e, f, *n)).collect();
        let packed =
            reads::dead_letter(&self.group, &self.stream_key, &parts).get_packed_pipeline();
        // MULTI, one XADD per entry, the XACK, EXEC: a reply each.
        let replies = parts.len() + 3;
        let keys: Vec<EventKey> = dead.iter().filter_map(|(e, ..)| key_of(e.header)).collect();
        let conn = self.conn.clone();
        let request = async move {
            let raw = conn.call(packed, replies).await?;
            // EXEC answers nil when the transaction was aborted.
            match raw.value(replies - 1) {
                Ok(Value::Array(_)) => Ok(()),
                _ => Err(io::Error::other("the dead-letter MULTI failed")),
            }
        };
        let handle = ctx.spawn(request.into_actor(self).map(move |moved, act, ctx| {
            match moved {
                Ok(()) => act.ledger.do_send(LedgerBatch {
                    group: act.group.index,
                    keys,
                    what: LedgerEvent::DeadLettered,
                    at_ns: act.clock.now_ns(),
                    read_sent_ns: 0,
                    unparsable: 0,
                }),
                // Still pending: a later reclaim tries again.
                Err(_) => act.command_failed(),
            }
            act.process(rest, received_ns, ctx);
        }));
        self.in_flight = Some(handle);
    }

    /// Back off and read again. A group that vanished (Redis restarted without
    /// persistence) is created again from the stream's start, as a resilient
    /// consumer would on NOGROUP.
    /// `error`: the error reply, None when the connection failed.
    fn on_read_error(&mut self, error: Option<&str>, ctx: &mut Context<Self>) {
        self.command_failed();
        // Whatever this consumer held may have stayed pending: look there first.
        self.cursors.start_over();
        if error.is_some_and(|e| e.starts_with("NOGROUP")) {
            let packed = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&self.stream_key)
                .arg(&self.group.name)
                .arg("0")
                .arg("MKSTREAM")
                .get_packed_command();
            let conn = self.conn.clone();
            // BUSYGROUP (another consumer was first) is as good as success.
            let create = async move { conn.call(packed, 1).await };
            ctx.spawn(create.into_actor(self).map(|_, _, _| ()));
        }
        self.in_flight = Some(ctx.run_later(RETRY_BACKOFF, |act, ctx| act.poll(ctx)));
    }

    /// Count the deliveries and tell the ledger.
    fn record_deliveries(&mut self, entries: &[Entry], what: LedgerEvent, received_ns: u64) {
        self.roll(received_ns);
        let mut keys = Vec::with_capacity(entries.len());
        let mut unparsable = 0;
        for h in entries.iter().map(|e| e.header) {
            let Some(h) = h else {
                unparsable += 1;
                continue;
            };
            let intended_ns = self.clock.offset_of_unix_ns(h.intended_ns);
            let stats = self.stats.get_mut(self.phase(intended_ns));
            stats.delivered += 1;
            stats
                .delivery
                .record_ns(received_ns.saturating_sub(intended_ns));
            keys.push(EventKey {
                producer: h.producer,
                seq: h.seq,
            });
        }
        if !self.crashed {
            // Delivered to a consumer that died meanwhile, it stays pending:
            // nobody holds it.
            self.hold(keys.clone());
        }
        self.ledger.do_send(LedgerBatch {
            group: self.group.index,
            keys,
            what,
            at_ns: received_ns,
            read_sent_ns: self.read_sent_ns,
            unparsable,
        });
    }

    /// From now on the consumer holds exactly `keys` unfinished.
    fn hold(&mut self, keys: Vec<EventKey>) {
        let (before, after) = (self.in_hand.len() as u64, keys.len() as u64);
        if after > before {
            self.busy.fetch_add(after - before, Ordering::Relaxed);
        } else if before > after {
            self.busy.fetch_sub(before - after, Ordering::Relaxed);
        }
        self.in_hand = keys;
    }

    /// Drops whatever is in hand (processed, or abandoned by a crash).
    pub(super) fn release(&mut self) {
        self.hold(Vec::new());
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

    fn is_poison(&self, header: Option<Header>) -> bool {
        match (self.group.poison, header) {
            (Some(p), Some(h)) => p.is_poison(h.producer, h.seq),
            _ => false,
        }
    }

    /// Work through the batch, then acknowledge what succeeded. Poison events
    /// fail at once and stay pending, unacknowledged, for reclaim to retry.
    fn process(&mut self, entries: Vec<Entry>, received_ns: u64, ctx: &mut Context<Self>) {
        let entries: Vec<Entry> = entries
            .into_iter()
            .filter(|e| !self.is_poison(e.header))
            .collect();
        // Entries are processed one after another; entry i finishes at the sum of
        // the first i+1 sampled times. One precise sleep covers the whole batch,
        // so a slowdown arriving during it applies from the next batch on; in a
        // batch sampled during one, only events starting before its end are slowed.
        let mut batch = Vec::with_capacity(entries.len());
        let mut elapsed_ns = 0u64;
        let mut measured = 0;
        for h in entries.iter().filter_map(|e| e.header) {
            let slower = (self.slowdown).map_or(1.0, |s| s.factor_at(received_ns + elapsed_ns));
            elapsed_ns += (self.group.processing_ns.sample(&mut self.rng) * slower) as u64;
            let intended_ns = self.clock.offset_of_unix_ns(h.intended_ns);
            measured += u64::from(self.phase(intended_ns) == Phase::Measured);
            batch.push(Delivered {
                key: EventKey {
                    producer: h.producer,
                    seq: h.seq,
                },
                intended_ns,
                finished_ns: received_ns + elapsed_ns,
            });
        }
        // Poison and dead-lettered entries are out of hand; the rest is worked on.
        self.hold(batch.iter().map(|d| d.key).collect());
        let ack = (self.group.ack == AckMode::Batch && !entries.is_empty()).then(|| {
            let mut packed = Vec::with_capacity(64 + entries.len() * 24);
            resp::array(&mut packed, 3 + entries.len());
            resp::bulk(&mut packed, b"XACK");
            resp::bulk(&mut packed, self.stream_key.as_bytes());
            resp::bulk(&mut packed, self.group.name.as_bytes());
            for e in &entries {
                resp::bulk(&mut packed, &e.id);
            }
            Ack {
                packed,
                entries: entries.len() as u64,
                measured,
            }
        });
        // Processing is recorded when it ends, before the XACK goes out: a
        // consumer that crashes between the two has processed the batch, and
        // Redis will deliver it again (a duplicate), never the reverse.
        let done_at = self.clock.instant_at(received_ns + elapsed_ns);
        let work = self.timer.sleep_until(done_at);
        let handle = ctx.spawn(work.into_actor(self).map(move |_, act, ctx| {
            act.on_processed(batch);
            act.release();
            act.pending_ack = ack;
            act.poll(ctx);
        }));
        self.in_flight = Some(handle);
    }

    fn on_processed(&mut self, batch: Vec<Delivered>) {
        if batch.is_empty() {
            return;
        }
        self.roll(self.clock.now_ns());
        for d in &batch {
            let stats = self.stats.get_mut(self.phase(d.intended_ns));
            stats.processed += 1;
            stats
                .e2e
                .record_ns(d.finished_ns.saturating_sub(d.intended_ns));
        }
        let at_ns = batch.last().map_or(0, |d| d.finished_ns);
        let keys = batch.into_iter().map(|d| d.key).collect();
        self.ledger.do_send(LedgerBatch {
            group: self.group.index,
            keys,
            what: LedgerEvent::Processed,
            at_ns,
            read_sent_ns: 0,
            unparsable: 0,
        });
    }

    /// An XACK on its own, when no read follows to carry it.
    fn acknowledge(&mut self, ack: Ack, ctx: &mut Context<Self>) {
        let conn = self.conn.clone();
        let Ack {
            packed,
            entries,
            measured,
        } = ack;
        let request = async move { conn.call(packed, 1).await };
        let handle = ctx.spawn(request.into_actor(self).map(move |reply, act, ctx| {
            let acked = reply.ok().and_then(|raw| reads::acked(raw.bytes(0)));
            act.on_acked((entries, measured), acked);
            act.poll(ctx);
        }));
        self.in_flight = Some(handle);
    }

    /// How many entries XACK acknowledged; None when it or its connection
    /// failed. `sent`: the entries it named, and how many of them were
    /// intended in the measured phase.
    fn on_acked(&mut self, sent: (u64, u64), acked: Option<u64>) {
        match acked {
            Some(n) => {
                self.roll(self.clock.now_ns());
                // Fewer than named only for entries acknowledged already (a
                // duplicate's): the shortfall is taken from the measured ones.
                let (entries, measured) = sent;
                let warmup = (entries - measured).min(n);
                self.stats.warmup.acked += warmup;
                self.stats.measured.acked += n - warmup;
            }
            // The entries stay pending: re-read them before anything new.
            _ => {
                self.command_failed();
                self.cursors.start_over();
            }
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
        self.in_flight = Some(ctx.run_later(wait, |act, ctx| act.poll(ctx)));
    }
}
