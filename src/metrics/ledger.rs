//! The exact per-event ledger (docs/measurement.md, "Accounting: phases, ledger and verify"): which events Redis acknowledged,
//! and how often each consumer group saw and processed each one.
//!
//! Every event carries (producer id, sequence number) and producers number
//! their events 0, 1, 2, … densely, so both ledgers are dense arrays indexed by
//! sequence number: 2 bits per event in a `ProduceLedger` (owned by its producer
//! actor; a third, WAIT's "unreplicated", only up to the last flagged event) and 1 byte per event per group in a `GroupLedger` (owned by the
//! collector, updated once per read batch), plus one bit per event for
//! dead-lettered events, allocated only up to the highest one seen.
//! `GroupLedger::outcome` compares the two at the end of the run: lost,
//! duplicated, redelivered, dead-lettered, unexpected events, and how many
//! events were delivered once, twice, … (`DeliveryCounts`).

use serde::{Deserialize, Serialize};

use super::deliveries::DeliveryCounts;

/// Identifies one event across the whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventKey {
    pub producer: u32,
    pub seq: u64,
}

/// How many lost keys the outcome lists by name.
pub const LOST_SAMPLE_LEN: usize = 20;

/// How far past the highest sequence seen so far a group ledger will grow for
/// one event. A larger jump (a corrupt or foreign entry) is counted as
/// unexpected instead of allocating gigabytes.
pub const MAX_SEQ_JUMP: u64 = 1 << 28;

/// A growable bit vector: the smallest thing that tracks millions of yes/no per event.
#[derive(Clone, Debug, Default)]
struct BitSet {
    words: Vec<u64>,
    ones: u64,
}

impl BitSet {
    fn heap_bytes(&self) -> usize {
        self.words.capacity() * std::mem::size_of::<u64>()
    }

    fn set(&mut self, index: u64) {
        let word = (index / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let bit = 1u64 << (index % 64);
        if self.words[word] & bit == 0 {
            self.words[word] |= bit;
            self.ones += 1;
        }
    }

    fn get(&self, index: u64) -> bool {
        let word = (index / 64) as usize;
        self.words
            .get(word)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }
}

/// One producer's record of what Redis answered for each of its events.
#[derive(Clone, Debug, Default)]
pub struct ProduceLedger {
    /// One past the highest sequence number sent.
    sent: u64,
    acked: BitSet,
    failed: BitSet,
    /// Acknowledged although WAIT saw too few replicas have it. Empty (and
    /// unallocated) unless a producer WAITs and replication falls behind.
    unreplicated: BitSet,
}

impl ProduceLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Memory held on the heap (what the per-event budget is about).
    pub fn heap_bytes(&self) -> usize {
        self.acked.heap_bytes() + self.failed.heap_bytes() + self.unreplicated.heap_bytes()
    }

    /// The event was sent (its outcome may never be known: a lost reply).
    pub fn sent(&mut self, seq: u64) {
        self.sent = self.sent.max(seq.saturating_add(1));
    }

    /// Redis returned an entry id for this event.
    pub fn acked(&mut self, seq: u64) {
        self.sent(seq);
        self.acked.set(seq);
    }

    /// Redis returned a definite error for this event.
    pub fn failed(&mut self, seq: u64) {
        self.sent(seq);
        self.failed.set(seq);
    }

    /// WAIT answered that fewer replicas than asked have this acknowledged event.
    pub fn unreplicated(&mut self, seq: u64) {
        self.unreplicated.set(seq);
    }

    pub fn is_unreplicated(&self, seq: u64) -> bool {
        self.unreplicated.get(seq)
    }

    pub fn sent_count(&self) -> u64 {
        self.sent
    }

    pub fn acked_count(&self) -> u64 {
        self.acked.ones
    }

    pub fn failed_count(&self) -> u64 {
        self.failed.ones
    }

    pub fn is_acked(&self, seq: u64) -> bool {
        self.acked.get(seq)
    }

    pub fn is_failed(&self, seq: u64) -> bool {
        self.failed.get(seq)
    }
}

/// What a group did with each event, one byte each: processings (bits 0-2) and
/// deliveries (bits 3-5), saturating at 7 ("more than once" is what matters),
/// and two marks read back from Redis after the drain: still unread in the
/// stream (bit 6), still pending in the group (bit 7).
#[derive(Clone, Debug, Default)]
pub struct GroupLedger {
    per_producer: Vec<Vec<u8>>,
    /// Per producer, events moved to the dead-letter stream. Apart from the
    /// cells (which have no bit left) and usually empty or short.
    dead_letters: Vec<BitSet>,
    /// Entries that were not streamdrill events, or came from outside the ledger's range.
    unexpected_entries: u64,
}

const PROCESSED_ONE: u8 = 0x01;
const DELIVERED_ONE: u8 = 0x08;
/// Where the per-event counts saturate.
pub const COUNT_MAX: u8 = 7;
const UNREAD: u8 = 0x40;
const PENDING: u8 = 0x80;

fn processed_count(cell: u8) -> u8 {
    cell & 0x07
}

fn delivered_count(cell: u8) -> u8 {
    (cell >> 3) & 0x07
}

impl GroupLedger {
    /// A ledger for events from producers `0..producers`.
    pub fn new(producers: usize) -> Self {
        GroupLedger {
            per_producer: vec![Vec::new(); producers],
            dead_letters: vec![BitSet::default(); producers],
            unexpected_entries: 0,
        }
    }

    /// Memory held on the heap (what the per-event budget is about).
    pub fn heap_bytes(&self) -> usize {
        let cells: usize = self.per_producer.iter().map(Vec::capacity).sum();
        cells
            + self
                .dead_letters
                .iter()
                .map(BitSet::heap_bytes)
                .sum::<usize>()
    }

    /// A consumer of this group read the event (first delivery or redelivery).
    pub fn delivered(&mut self, key: EventKey) {
        if let Some(cell) = self.cell(key)
            && delivered_count(*cell) < COUNT_MAX
        {
            *cell += DELIVERED_ONE;
        }
    }

    /// The event came from a pending list (XAUTOCLAIM, or a restarted consumer
    /// re-reading its own): Redis delivered it before, even if the harness never
    /// saw that first delivery (a consumer crashed with the reply in flight).
    pub fn redelivered(&mut self, key: EventKey) {
        if let Some(cell) = self.cell(key) {
            let count = delivered_count(*cell);
            let target = (count + 1).clamp(2, COUNT_MAX);
            *cell += (target - count) * DELIVERED_ONE;
        }
    }

    /// A consumer of this group finished processing the event.
    pub fn processed(&mut self, key: EventKey) {
        match self.cell(key) {
            Some(cell) if processed_count(*cell) < COUNT_MAX => *cell += PROCESSED_ONE,
            Some(_) => {}
            None => self.unexpected_entries += 1,
        }
    }

    /// After the drain the event was still in the stream, beyond the group's
    /// last delivered id: not lost, just not reached (the group fell behind).
    pub fn unread(&mut self, key: EventKey) {
        if let Some(cell) = self.cell(key) {
            *cell |= UNREAD;
        }
    }

    /// After the drain the event was still in the group's pending entries list:
    /// delivered, never acknowledged (a consumer died or stalled with it).
    pub fn pending(&mut self, key: EventKey) {
        if let Some(cell) = self.cell(key) {
            *cell |= PENDING;
        }
    }

    /// A consumer moved the event to the dead-letter stream and acknowledged
    /// it: given up on, but accounted for (not lost).
    pub fn dead_lettered(&mut self, key: EventKey) {
        if self.cell(key).is_some()
            && let Some(set) = self.dead_letters.get_mut(key.producer as usize)
        {
            set.set(key.seq);
        }
    }

    /// Whether a consumer of this group has finished processing the event
    /// (a redelivery of such an event is a duplicate on its way, not a retry).
    pub fn was_processed(&self, key: EventKey) -> bool {
        let cells = self.per_producer.get(key.producer as usize);
        let cell = cells.and_then(|c| c.get(usize::try_from(key.seq).ok()?));
        cell.is_some_and(|&c| processed_count(c) > 0)
    }

    /// A processed entry was not a streamdrill event at all.
    pub fn unparsable(&mut self) {
        self.unexpected_entries += 1;
    }

    fn cell(&mut self, key: EventKey) -> Option<&mut u8> {
        let cells = self.per_producer.get_mut(key.producer as usize)?;
        let len = cells.len() as u64;
        if key.seq >= len {
            if key.seq - len >= MAX_SEQ_JUMP {
                return None;
            }
            cells.resize(key.seq as usize + 1, 0);
        }
        cells.get_mut(key.seq as usize)
    }

    /// Compares what this group saw with what producers sent; `produced[p]`
    /// is the ledger of producer `p`, or `None` for a producer that writes
    /// another stream (its events are none of this group's business: one that
    /// shows up here anyway is unexpected).
    pub fn outcome<L: std::borrow::Borrow<ProduceLedger>>(
        &self,
        produced: &[Option<L>],
    ) -> LedgerOutcome {
        let mut out = LedgerOutcome {
            unexpected: self.unexpected_entries,
            ..Default::default()
        };
        let none = BitSet::default();
        for (producer, cells) in self.per_producer.iter().enumerate() {
            let dead = self.dead_letters.get(producer).unwrap_or(&none);
            match produced.get(producer).and_then(Option::as_ref) {
                Some(ledger) => {
                    let marks = Marks { cells, dead };
                    tally_producer(&mut out, producer as u32, marks, ledger.borrow())
                }
                None => {
                    out.unexpected +=
                        cells.iter().filter(|&&c| processed_count(c) > 0).count() as u64
                }
            }
        }
        // Producers this group never heard from still count: all their acked events are lost.
        for (producer, ledger) in produced.iter().enumerate().skip(self.per_producer.len()) {
            if let Some(ledger) = ledger {
                let marks = Marks {
                    cells: &[],
                    dead: &none,
                };
                tally_producer(&mut out, producer as u32, marks, ledger.borrow());
            }
        }
        out
    }
}

/// What a group ledger knows of one producer's events.
#[derive(Clone, Copy)]
struct Marks<'a> {
    cells: &'a [u8],
    dead: &'a BitSet,
}

fn tally_producer(out: &mut LedgerOutcome, producer: u32, marks: Marks, ledger: &ProduceLedger) {
    out.produced_acked += ledger.acked_count();
    for seq in 0..ledger.sent_count() {
        let cell = marks.cells.get(seq as usize).copied().unwrap_or(0);
        let dead = marks.dead.get(seq);
        let key = EventKey { producer, seq };
        tally_sent_event(out, key, cell, dead, ledger.is_acked(seq));
    }
    let beyond_sent = marks.cells.iter().skip(ledger.sent_count() as usize);
    out.unexpected += beyond_sent.filter(|&&c| processed_count(c) > 0).count() as u64;
}

fn tally_sent_event(out: &mut LedgerOutcome, key: EventKey, cell: u8, dead: bool, acked: bool) {
    let processed = processed_count(cell);
    if processed > 0 {
        out.processed += 1;
        if !acked {
            out.processed_unacked_writes += 1;
        }
    } else if dead {
        // In the stream, so written, whatever the producer heard back.
        out.dead_lettered += 1;
    } else if acked && cell & UNREAD != 0 {
        out.unread += 1;
    } else if acked && cell & PENDING != 0 {
        out.stranded += 1;
    } else if acked {
        out.lost += 1;
        if out.lost_sample.len() < LOST_SAMPLE_LEN {
            out.lost_sample.push(key);
        }
    }
    out.duplicates += u64::from(processed > 1);
    out.redelivered += u64::from(delivered_count(cell) > 1);
    // A processed event was delivered, even if the harness missed the read.
    let deliveries = delivered_count(cell).max(u8::from(processed > 0));
    out.delivery_counts.add(deliveries);
}

/// One group's ledger verdict. All counts are distinct events unless noted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct LedgerOutcome {
    /// Events Redis acknowledged to the producers.
    pub produced_acked: u64,
    /// Sent events processed at least once.
    pub processed: u64,
    /// Acknowledged by Redis, never processed, and no longer in the stream
    /// (trimmed, deleted, or gone with a Redis restart).
    pub lost: u64,
    /// Acknowledged, never delivered, still in the stream at the end: the group
    /// had not caught up when the drain timed out. Not lost, but not done.
    #[serde(default)]
    pub unread: u64,
    /// Delivered but never processed, still pending in the group at the end.
    #[serde(default)]
    pub stranded: u64,
    /// Never processed, moved to the dead-letter stream after `max_deliveries`.
    #[serde(default)]
    pub dead_lettered: u64,
    /// Events processed more than once.
    pub duplicates: u64,
    /// Events delivered more than once.
    pub redelivered: u64,
    /// Events by how often they were delivered (absent in older files: all 0).
    #[serde(default)]
    pub delivery_counts: DeliveryCounts,
    /// Processed but never sent: unknown producer, seq >= sent, or unparsable (entries, not events).
    pub unexpected: u64,
    /// Processed although its XADD got an error or no reply: an indeterminate write that landed.
    pub processed_unacked_writes: u64,
    /// The first lost keys (at most `LOST_SAMPLE_LEN`), in producer then sequence order.
    pub lost_sample: Vec<EventKey>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine(produced: &[ProduceLedger]) -> Vec<Option<&ProduceLedger>> {
        produced.iter().map(Some).collect()
    }

    #[test]
    fn other_streams_producers_are_not_this_groups_loss() {
        let produced = [acked_ledger(3), acked_ledger(5)];
        let mut g = GroupLedger::new(2);
        for seq in 0..3 {
            deliver_and_process(&mut g, key(0, seq));
        }
        let out = g.outcome(&[Some(&produced[0]), None]);
        assert_eq!((out.processed, out.lost, out.produced_acked), (3, 0, 3));
    }

    fn key(producer: u32, seq: u64) -> EventKey {
        EventKey { producer, seq }
    }

    fn acked_ledger(n: u64) -> ProduceLedger {
        let mut l = ProduceLedger::new();
        (0..n).for_each(|seq| l.acked(seq));
        l
    }

    fn deliver_and_process(g: &mut GroupLedger, k: EventKey) {
        g.delivered(k);
        g.processed(k);
    }

    #[test]
    fn produce_ledger_counts() {
        let mut l = ProduceLedger::new();
        l.acked(0);
        l.acked(0);
        l.failed(1);
        l.sent(2);
        l.acked(130);
        assert_eq!(
            (l.sent_count(), l.acked_count(), l.failed_count()),
            (131, 2, 1)
        );
        assert!(l.is_acked(130) && l.is_acked(0));
        assert!(!l.is_acked(1) && !l.is_acked(2) && !l.is_acked(10_000));
    }

    #[test]
    fn clean_run_has_nothing_to_report() {
        let produced = vec![acked_ledger(100), acked_ledger(50)];
        let mut g = GroupLedger::new(2);
        for p in 0..2u32 {
            for seq in 0..produced[p as usize].sent_count() {
                deliver_and_process(&mut g, key(p, seq));
            }
        }
        let out = g.outcome(&mine(&produced));
        assert_eq!(
            out,
            LedgerOutcome {
                produced_acked: 150,
                processed: 150,
                delivery_counts: DeliveryCounts([150, 0, 0, 0, 0, 0, 0]),
                ..Default::default()
            }
        );
    }

    #[test]
    fn lost_duplicates_and_redeliveries() {
        let produced = vec![acked_ledger(10)];
        let mut g = GroupLedger::new(1);
        for seq in 0..10 {
            if seq != 3 && seq != 7 {
                deliver_and_process(&mut g, key(0, seq));
            }
        }
        // Seq 4: redelivered after a consumer crash and processed twice.
        deliver_and_process(&mut g, key(0, 4));
        // Seq 5: redelivered but processed only once (crashed before processing).
        g.delivered(key(0, 5));
        // Seq 7: delivered twice, never processed.
        g.delivered(key(0, 7));
        g.delivered(key(0, 7));
        let out = g.outcome(&mine(&produced));
        assert_eq!(out.produced_acked, 10);
        assert_eq!(out.processed, 8);
        assert_eq!(out.lost, 2);
        assert_eq!(out.lost_sample, vec![key(0, 3), key(0, 7)]);
        assert_eq!(out.duplicates, 1);
        assert_eq!(out.redelivered, 3);
        assert_eq!((out.unexpected, out.processed_unacked_writes), (0, 0));
    }

    #[test]
    fn unexpected_and_indeterminate_writes() {
        let mut p0 = acked_ledger(4);
        p0.failed(4); // error reply, yet the entry landed
        p0.sent(5); // no reply at all, entry landed
        p0.sent(6); // no reply, entry never landed: neither lost nor processed
        let produced = vec![p0];
        let mut g = GroupLedger::new(3);
        for seq in 0..6 {
            deliver_and_process(&mut g, key(0, seq));
        }
        deliver_and_process(&mut g, key(0, 9)); // beyond what was sent
        deliver_and_process(&mut g, key(1, 0)); // producer with no ledger
        deliver_and_process(&mut g, key(7, 0)); // producer unknown to the group ledger
        g.processed(key(0, u64::MAX)); // corrupt sequence number
        g.unparsable();
        let out = g.outcome(&mine(&produced));
        assert_eq!(out.produced_acked, 4);
        assert_eq!(out.processed, 6);
        assert_eq!(out.processed_unacked_writes, 2);
        assert_eq!(out.lost, 0);
        assert_eq!(out.unexpected, 5);
    }

    #[test]
    fn silent_producer_counts_as_lost_and_sample_is_capped() {
        let produced = vec![acked_ledger(2), acked_ledger(30)];
        let mut g = GroupLedger::new(1);
        deliver_and_process(&mut g, key(0, 0));
        deliver_and_process(&mut g, key(0, 1));
        let out = g.outcome(&mine(&produced));
        assert_eq!((out.produced_acked, out.processed, out.lost), (32, 2, 30));
        assert_eq!(out.lost_sample.len(), LOST_SAMPLE_LEN);
        assert_eq!(out.lost_sample[0], key(1, 0));
    }

    #[test]
    fn unread_and_pending_marks_are_not_lost() {
        let produced = vec![acked_ledger(4)];
        let mut g = GroupLedger::new(1);
        deliver_and_process(&mut g, key(0, 0));
        g.delivered(key(0, 1));
        g.pending(key(0, 1));
        g.unread(key(0, 2));
        // seq 3: neither processed nor anywhere in Redis any more.
        let out = g.outcome(&mine(&produced));
        assert_eq!(
            (out.processed, out.stranded, out.unread, out.lost),
            (1, 1, 1, 1)
        );
        assert_eq!(out.lost_sample, vec![key(0, 3)]);
    }

    #[test]
    fn dead_lettered_events_are_not_lost() {
        let produced = vec![acked_ledger(5), acked_ledger(1)];
        let mut g = GroupLedger::new(2);
        for seq in [0, 2, 4] {
            deliver_and_process(&mut g, key(0, seq));
        }
        for _ in 0..3 {
            g.redelivered(key(0, 1));
        }
        g.dead_lettered(key(0, 1));
        g.dead_lettered(key(0, 1)); // a second mark is the same event
        g.dead_lettered(key(1, 0)); // never seen delivered by the harness
        g.dead_lettered(key(5, 0)); // unknown producer: ignored
        let out = g.outcome(&mine(&produced));
        assert_eq!((out.processed, out.dead_lettered, out.lost), (3, 2, 1));
        assert_eq!(out.lost_sample, vec![key(0, 3)]);
        assert_eq!((out.redelivered, out.duplicates), (1, 0));
    }

    #[test]
    fn a_pending_read_counts_as_a_redelivery_even_unseen_before() {
        let produced = vec![acked_ledger(2)];
        let mut g = GroupLedger::new(1);
        g.redelivered(key(0, 0));
        g.delivered(key(0, 1));
        g.redelivered(key(0, 1));
        g.processed(key(0, 0));
        g.processed(key(0, 1));
        let out = g.outcome(&mine(&produced));
        assert_eq!((out.processed, out.redelivered, out.duplicates), (2, 2, 0));
    }

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let produced = vec![acked_ledger(1)];
        let mut g = GroupLedger::new(1);
        for _ in 0..40 {
            deliver_and_process(&mut g, key(0, 0));
        }
        let out = g.outcome(&mine(&produced));
        assert_eq!((out.processed, out.duplicates, out.redelivered), (1, 1, 1));
        assert_eq!(out.delivery_counts, DeliveryCounts([0, 0, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn delivery_counts_cover_every_delivered_event() {
        let produced = vec![acked_ledger(8)];
        let mut g = GroupLedger::new(1);
        deliver_and_process(&mut g, key(0, 0)); // once
        deliver_and_process(&mut g, key(0, 1));
        deliver_and_process(&mut g, key(0, 1)); // twice, a duplicate
        g.delivered(key(0, 2));
        g.redelivered(key(0, 2));
        g.redelivered(key(0, 2));
        g.processed(key(0, 2)); // three times
        g.redelivered(key(0, 3)); // first delivery unseen: counts as two
        g.processed(key(0, 3));
        g.processed(key(0, 4)); // processed, its delivery never reported: once
        for _ in 0..9 {
            g.redelivered(key(0, 5)); // poison, dead-lettered after 7+ deliveries
        }
        g.dead_lettered(key(0, 5));
        g.delivered(key(0, 6));
        g.pending(key(0, 6)); // stranded after one delivery
        // seq 7: never delivered, lost; not in the distribution.
        let out = g.outcome(&mine(&produced));
        let counts = out.delivery_counts;
        assert_eq!(counts, DeliveryCounts([3, 2, 1, 0, 0, 0, 1]));
        assert_eq!(counts.redelivered(), out.redelivered);
        assert_eq!(
            counts.total(),
            out.processed + out.stranded + out.dead_lettered
        );
        assert!(g.was_processed(key(0, 4)) && !g.was_processed(key(0, 6)));
        assert!(!g.was_processed(key(3, 0)) && !g.was_processed(key(0, 1 << 40)));
    }
}
