//! Working on a batch read: the delivery counts of entries from a pending
//! list and the move of those delivered too often to the dead-letter stream,
//! the simulated processing (poison fails, a slowdown stretches it), the
//! record of what was processed, and the XACK that follows. Also the events
//! in hand, which the drain waits for and a stop hands back.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::prelude::*;
use redis::Value;

use super::Consumer;
use crate::actors::{LedgerBatch, LedgerEvent};
use crate::actors::{projection, reads};
use crate::event::{AggregateVersion, Header};
use crate::metrics::{EventKey, FinishedEvent, Phase};
use crate::scenario::AckMode;
use crate::wire::entries::Entry;

/// An XACK waiting to go out, and how many of its entries were intended in
/// the measured phase (Redis's count is split by it).
pub(super) struct Ack {
    /// One XACK per key the batch came from.
    pub(super) packed: Vec<u8>,
    pub(super) commands: usize,
    pub(super) entries: u64,
    pub(super) measured: u64,
}

/// One event of a batch in processing, kept until the batch is done.
struct Delivered {
    key: EventKey,
    intended_ns: u64,
    /// When its processing ends, on the run clock.
    finished_ns: u64,
    aggregate: Option<AggregateVersion>,
    /// Its kind among the group's (runs with schema versions).
    kind: Option<u16>,
}

/// A batch being processed: what happens when its processing time is over.
struct Work {
    batch: Vec<Delivered>,
    redelivered: bool,
    ack: Option<Ack>,
    done_at: std::time::Instant,
}

/// An event whose projection effects Redis applied: its ledger key, its
/// intended time (run clock, which says its phase) and its kind.
#[derive(Debug, Clone, Copy)]
pub(super) struct Applied {
    key: EventKey,
    intended_ns: u64,
    kind: Option<u16>,
}

impl Work {
    /// The processing starts `ns` later than planned (after the
    /// projection's writes were answered): every finish moves with it.
    fn delay(&mut self, ns: u64) {
        for d in &mut self.batch {
            d.finished_ns += ns;
        }
        self.done_at += std::time::Duration::from_nanos(ns);
    }
}

/// A slow_consumer window on the run clock: an event whose processing starts
/// in `from_ns..until_ns` takes `factor` times its sampled time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slowdown {
    pub(super) factor: f64,
    pub(super) from_ns: u64,
    pub(super) until_ns: u64,
}

impl Slowdown {
    fn factor_at(&self, start_ns: u64) -> f64 {
        match (self.from_ns..self.until_ns).contains(&start_ns) {
            true => self.factor,
            false => 1.0,
        }
    }
}

/// Events delivered to this consumer and not finished yet (the batch in
/// hand), counted in the group's `busy` as well: the drain waits for them,
/// a crash drops them (they stay pending, or are lost under NOACK), and a
/// stop hands back what is still here as in progress (docs/measurement.md,
/// "The drain").
pub(super) struct InHand {
    keys: Vec<EventKey>,
    /// Events in hand across the group's consumers, read by the drain.
    busy: Arc<AtomicU64>,
}

impl InHand {
    pub(super) fn new(busy: Arc<AtomicU64>) -> InHand {
        InHand {
            keys: Vec::new(),
            busy,
        }
    }

    /// From now on exactly `keys` are in hand. The buffer is reused: a
    /// batch costs no allocation here once the first has sized it.
    pub(super) fn hold(&mut self, keys: impl IntoIterator<Item = EventKey>) {
        let before = self.keys.len() as u64;
        self.keys.clear();
        self.keys.extend(keys);
        let after = self.keys.len() as u64;
        if after > before {
            self.busy.fetch_add(after - before, Ordering::Relaxed);
        } else if before > after {
            self.busy.fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// Nothing in hand any more: processed, or abandoned by a crash.
    pub(super) fn release(&mut self) {
        self.hold([]);
    }

    /// Hands back what is in hand, keeping nothing.
    pub(super) fn take(&mut self) -> Vec<EventKey> {
        let keys = std::mem::take(&mut self.keys);
        self.busy.fetch_sub(keys.len() as u64, Ordering::Relaxed);
        keys
    }
}

fn key_of(header: Option<Header>) -> Option<EventKey> {
    header.map(|h| EventKey {
        producer: h.producer,
        seq: h.seq,
    })
}

impl Consumer {
    /// Entries from a pending list: ask Redis how often each was delivered
    /// (XAUTOCLAIM does not say) and dead-letter those past `max` before
    /// processing the rest.
    pub(super) fn check_deliveries(
        &mut self,
        batch: reads::Batch,
        max: u32,
        ctx: &mut Context<Self>,
    ) {
        let packed = reads::delivery_counts(&self.group, &self.stream_keys[0], &batch.entries)
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
                act.dead_letter(batch, counts, max, ctx);
            } else {
                act.process(batch.entries, true, ctx);
            }
        }));
        self.cancellable = Some(handle);
    }

    /// Move the entries delivered more than `max` times to the dead-letter
    /// stream and acknowledge them in one MULTI, then process the others. A
    /// crash while the MULTI is out does not stop Redis running it.
    fn dead_letter(
        &mut self,
        batch: reads::Batch,
        counts: Vec<u64>,
        max: u32,
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
            reads::dead_letter(&self.group, &self.stream_keys[0], &parts).get_packed_pipeline();
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
        let landed = move |act: &mut Self, moved: io::Result<()>, crashed: bool| match moved {
            Ok(()) => act.ledger.do_send(LedgerBatch {
                group: act.group.index,
                keys,
                what: LedgerEvent::DeadLettered,
                at_ns: act.clock.now_ns(),
                read_sent_ns: 0,
                unparsable: 0,
            }),
            // Still pending: a later reclaim tries again.
            Err(_) if !crashed => act.command_failed(),
            Err(_) => {}
        };
        let then = move |act: &mut Self, (), ctx: &mut Context<Self>| {
            act.process(rest, true, ctx);
        };
        self.write_then(request, landed, then, ctx);
    }

    fn is_poison(&self, header: Option<Header>) -> bool {
        match (self.group.poison, header) {
            (Some(p), Some(h)) => p.is_poison(h.producer, h.seq),
            _ => false,
        }
    }

    /// Work through the batch, then acknowledge what succeeded. Poison events
    /// fail at once and stay pending, unacknowledged, for reclaim to retry.
    /// `redelivered`: read from a pending list, not as new entries.
    /// Processing starts now: after the read, and after whatever the batch
    /// needed first (its delivery counts, its moves to the dead-letter
    /// stream), as a real consumer could not start before their replies.
    pub(super) fn process(
        &mut self,
        entries: Vec<Entry>,
        redelivered: bool,
        ctx: &mut Context<Self>,
    ) {
        let (entries, dead) = self.unknown_versions(entries);
        if !dead.is_empty() {
            return self.dead_letter_versions(dead, entries, redelivered, ctx);
        }
        let started_ns = self.clock.now_ns();
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
        for (h, aggregate, kind) in entries
            .iter()
            .filter_map(|e| Some((e.header?, e.aggregate, e.kind)))
        {
            let slower = (self.slowdown).map_or(1.0, |s| s.factor_at(started_ns + elapsed_ns));
            elapsed_ns += (self.group.processing_ns.draw(&mut self.rng) * slower) as u64;
            let intended_ns = self.clock.offset_of_unix_ns(h.intended_ns);
            measured += u64::from(self.phase(intended_ns) == Phase::Measured);
            batch.push(Delivered {
                key: EventKey {
                    producer: h.producer,
                    seq: h.seq,
                },
                intended_ns,
                finished_ns: started_ns + elapsed_ns,
                aggregate,
                kind,
            });
        }
        // Poison and dead-lettered entries are out of hand; the rest is worked on.
        self.in_hand.hold(batch.iter().map(|d| d.key));
        let ack = (self.group.ack == AckMode::Batch && !entries.is_empty()).then(|| {
            let (packed, commands) = reads::ack(&self.stream_keys, &self.group.name, &entries);
            Ack {
                packed,
                commands,
                entries: entries.len() as u64,
                measured,
            }
        });
        // Processing is recorded when it ends, before the XACK goes out: a
        // consumer that crashes between the two has processed the batch, and
        // Redis will deliver it again (a duplicate), never the reverse.
        let work = Work {
            batch,
            redelivered,
            ack,
            done_at: self.clock.instant_at(started_ns + elapsed_ns),
        };
        match self.projection_writes(&work.batch) {
            Some(writes) => self.project(writes, work, ctx),
            None => self.work(work, ctx),
        }
    }

    /// Sleeps until the batch's processing ends, then records it and moves on.
    fn work(&mut self, work: Work, ctx: &mut Context<Self>) {
        let Work {
            batch,
            redelivered,
            ack,
            done_at,
        } = work;
        let sleep = self.timer.sleep_until(done_at);
        let handle = ctx.spawn(sleep.into_actor(self).map(move |_, act, ctx| {
            act.applied.clear();
            act.on_processed(batch, redelivered);
            act.in_hand.release();
            act.ready(ack, ctx);
        }));
        self.cancellable = Some(handle);
    }

    fn projection_writes(&self, batch: &[Delivered]) -> Option<projection::Writes> {
        let mode = self.group.projection?;
        let events: Vec<AggregateVersion> = batch.iter().filter_map(|d| d.aggregate).collect();
        projection::writes(mode, &self.group.projection_key, &events)
    }

    /// The handler's effects first, then its processing time,
    /// then the XACK: a crash after the effects redelivers events the model
    /// has applied already, which an idempotent projection must withstand
    /// (docs/event-sourcing.md, "Projections"), so the processing, and each
    /// event's finish, starts once the writes are answered. The writes are
    /// never cancelled: a crash while they are out cannot take back what
    /// Redis applies, so their reply is read either way and says whether the
    /// crashed batch's effects landed; only the rest of the work is cancellable.
    fn project(&mut self, writes: projection::Writes, work: Work, ctx: &mut Context<Self>) {
        let conn = self.conn.clone();
        let projection::Writes { packed, replies } = writes;
        let sent_ns = self.clock.now_ns();
        let effects: Vec<Applied> = (work.batch.iter())
            .filter(|d| d.aggregate.is_some())
            .map(|d| Applied {
                key: d.key,
                intended_ns: d.intended_ns,
                kind: d.kind,
            })
            .collect();
        let request = async move { conn.call(packed, replies).await };
        let landed = move |act: &mut Self, reply: io::Result<crate::wire::Raw>, crashed: bool| {
            let applied = matches!(&reply, Ok(raw) if (0..replies).all(|i| raw.error(i).is_none()));
            if applied {
                act.projected(&effects, sent_ns);
                act.applied = effects;
            }
            match (applied, crashed) {
                (true, true) => act.crashed_after_effects(),
                (false, false) => act.command_failed(),
                _ => {}
            }
            act.clock.now_ns().saturating_sub(sent_ns)
        };
        let then = move |act: &mut Self, round_trip: u64, ctx: &mut Context<Self>| {
            let mut work = work;
            work.delay(round_trip);
            act.work(work, ctx);
        };
        self.write_then(request, landed, then, ctx);
    }

    /// The projection's own latency: its writes' round trip, once per event
    /// so that it is phased like every other per-event figure
    /// (docs/event-sourcing.md, "What a projection costs").
    fn projected(&mut self, effects: &[Applied], sent_ns: u64) {
        let now = self.clock.now_ns();
        self.roll(now);
        let us = now.saturating_sub(sent_ns) / 1_000;
        for e in effects {
            let phase = self.phase(e.intended_ns);
            self.stats.get_mut(phase).projection.record_us(us);
        }
    }

    /// One processing of an event of `kind`, in a run with schema versions.
    fn count_kind(&mut self, phase: Phase, kind: Option<u16>) {
        if let Some((kind, handling)) = self.handling(kind) {
            let stats = self.stats.get_mut(phase);
            stats.versions.processed.add(kind);
            if handling == crate::scenario::Handling::Upcast {
                stats.versions.upcast.add(kind);
            }
        }
    }

    /// A crash: the events whose effects the projection applied (before the
    /// crash, or by writes that were out then) were processed (their
    /// end-to-end latency unmeasured: they never finished), though never
    /// acknowledged; their redelivery processes them again
    /// (docs/event-sourcing.md, "Projections").
    pub(super) fn crashed_after_effects(&mut self) {
        if self.applied.is_empty() {
            return;
        }
        self.roll(self.clock.now_ns());
        let applied = std::mem::take(&mut self.applied);
        for e in &applied {
            let phase = self.phase(e.intended_ns);
            self.stats.get_mut(phase).processed += 1;
            self.count_kind(phase, e.kind);
        }
        self.ledger.do_send(LedgerBatch {
            group: self.group.index,
            keys: applied.into_iter().map(|e| e.key).collect(),
            what: LedgerEvent::Processed,
            at_ns: self.clock.now_ns(),
            read_sent_ns: 0,
            unparsable: 0,
        });
    }

    /// The batch's events finished, in the order they were read; the order
    /// check sees them when the batch's one sleep ends, as documented in
    /// docs/event-sourcing.md, "Per-aggregate ordering".
    fn on_processed(&mut self, batch: Vec<Delivered>, redelivered: bool) {
        if batch.is_empty() {
            return;
        }
        self.roll(self.clock.now_ns());
        for d in &batch {
            let phase = self.phase(d.intended_ns);
            let stats = self.stats.get_mut(phase);
            stats.processed += 1;
            stats
                .e2e
                .record_ns(d.finished_ns.saturating_sub(d.intended_ns));
            self.count_kind(phase, d.kind);
            let stats = self.stats.get_mut(phase);
            if let (Some(check), Some(a)) = (&self.order, d.aggregate) {
                let finished = FinishedEvent {
                    aggregate: a.aggregate,
                    version: a.version,
                    redelivered,
                    phase,
                };
                stats.order.record(check, finished);
            }
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
    pub(super) fn acknowledge(&mut self, ack: Ack, ctx: &mut Context<Self>) {
        let conn = self.conn.clone();
        let Ack {
            packed,
            commands,
            entries,
            measured,
        } = ack;
        let request = async move { conn.call(packed, commands).await };
        let handle = ctx.spawn(request.into_actor(self).map(move |reply, act, ctx| {
            let acked = reply.ok().and_then(|raw| reads::acked_all(&raw, commands));
            act.on_acked((entries, measured), acked);
            act.ready(None, ctx);
        }));
        self.cancellable = Some(handle);
    }

    /// How many entries XACK acknowledged; None when it or its connection
    /// failed. `sent`: the entries it named, and how many of them were
    /// intended in the measured phase.
    pub(super) fn on_acked(&mut self, sent: (u64, u64), acked: Option<u64>) {
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
}
