//! The exact per-event ledger (docs/measurement.md, "Accounting"): which
//! events Redis acknowledged, and how often each consumer group saw and
//! processed each one.
//!
//! Every event carries (producer id, sequence number) and producers number
//! their events 0, 1, 2, … densely, so both ledgers are dense arrays indexed by
//! sequence number: 2 bits per event in a `ProduceLedger` (owned by its producer
//! actor; a third, WAIT's "unreplicated", only up to the last flagged event) and 1 byte per event per group in a `GroupLedger` (owned by the
//! collector, updated once per read batch), plus one bit per event for
//! dead-lettered events, allocated only up to the highest one seen.
//! `GroupLedger::outcome` (in `outcome`) compares the two at the end of the
//! run, phase by phase: each producer knows the first sequence number it sent
//! in the measured phase, and sequence numbers follow intended times, so an
//! event's phase costs no memory.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::stats::Phase;

/// Identifies one event across the whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventKey {
    pub producer: u32,
    pub seq: u64,
}

/// How far past the highest sequence seen so far a group ledger will grow for
/// one event. A larger jump (a corrupt or foreign entry) is counted as
/// unexpected instead of allocating gigabytes.
pub const MAX_SEQ_JUMP: u64 = 1 << 28;

/// A growable bit vector: the smallest thing that tracks millions of yes/no per event.
#[derive(Clone, Debug, Default)]
pub(super) struct BitSet {
    pub(super) words: Vec<u64>,
    pub(super) ones: u64,
}

impl BitSet {
    fn heap_bytes(&self) -> usize {
        self.words.capacity() * std::mem::size_of::<u64>()
    }

    pub(super) fn set(&mut self, index: u64) {
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

    pub(super) fn get(&self, index: u64) -> bool {
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
    pub(super) sent: u64,
    pub(super) acked: BitSet,
    pub(super) failed: BitSet,
    /// Acknowledged although WAIT saw too few replicas have it. Empty (and
    /// unallocated) unless a producer WAITs and replication falls behind.
    pub(super) unreplicated: BitSet,
    /// The first sequence number sent in the measured phase; None while
    /// every event sent so far was intended in the warmup.
    pub(super) measured_from: Option<u64>,
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

    /// The event was sent in `phase`. Sequence numbers follow intended
    /// times, so the first measured one splits the producer's events.
    pub fn sent_in(&mut self, seq: u64, phase: Phase) {
        self.sent(seq);
        if phase == Phase::Measured && self.measured_from.is_none_or(|m| seq < m) {
            self.measured_from = Some(seq);
        }
    }

    /// The phase of event `seq`, from its intended time.
    pub fn phase_of(&self, seq: u64) -> Phase {
        match self.measured_from {
            Some(m) if seq >= m => Phase::Measured,
            _ => Phase::Warmup,
        }
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

    /// Sent, neither acknowledged nor failed: fate unknown.
    pub fn indeterminate_count(&self) -> u64 {
        self.sent - self.acked.ones.min(self.sent) - self.failed.ones.min(self.sent)
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
    pub(super) per_producer: Vec<Vec<u8>>,
    /// Per producer, events moved to the dead-letter stream. Apart from the
    /// cells (which have no bit left) and usually empty or short.
    pub(super) dead_letters: Vec<BitSet>,
    /// Entries that were not streamdrill events, or came from outside the ledger's range.
    pub(super) unexpected_entries: u64,
    /// Events a live consumer still held, unfinished, when it was stopped
    /// (a handful per consumer: the batch in hand).
    pub(super) in_progress: HashSet<EventKey>,
    /// Why what Redis held after the drain could not be read back: then
    /// "unread", "stranded" and "lost" cannot be told apart.
    pub(super) readback_failed: Option<String>,
    /// Entries trimming removed from the head of the group's stream, when
    /// the read-back found that only head trimming removed entries
    /// (docs/measurement.md, "Trimmed before read"): then an event the group
    /// never had delivered and that is gone was trimmed unread.
    pub(super) trimmed_head: Option<u64>,
}

const PROCESSED_ONE: u8 = 0x01;
const DELIVERED_ONE: u8 = 0x08;
/// Where the per-event counts saturate.
pub const COUNT_MAX: u8 = 7;
pub(super) const UNREAD: u8 = 0x40;
pub(super) const PENDING: u8 = 0x80;

pub(super) fn processed_count(cell: u8) -> u8 {
    cell & 0x07
}

pub(super) fn delivered_count(cell: u8) -> u8 {
    (cell >> 3) & 0x07
}

/// A read-only view of a group ledger, for settling it (`outcome`).
pub(super) struct LedgerParts<'a> {
    pub cells: &'a [Vec<u8>],
    pub dead_letters: &'a [BitSet],
    pub unexpected_entries: u64,
    pub in_progress: &'a HashSet<EventKey>,
    pub readback_failed: Option<&'a str>,
    pub trimmed_head: Option<u64>,
}

impl GroupLedger {
    /// A ledger for events from producers `0..producers`.
    pub fn new(producers: usize) -> Self {
        GroupLedger {
            per_producer: vec![Vec::new(); producers],
            dead_letters: vec![BitSet::default(); producers],
            unexpected_entries: 0,
            in_progress: HashSet::new(),
            readback_failed: None,
            trimmed_head: None,
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

    /// A live consumer held the event unfinished when the run ended: in
    /// progress, not lost.
    pub fn in_progress(&mut self, key: EventKey) {
        self.in_progress.insert(key);
    }

    /// Redis could not be read back after the drain: unprocessed events
    /// become "unknown", never "lost".
    pub fn readback_failed(&mut self, why: String) {
        self.readback_failed = Some(why);
    }

    /// The read-back found that trimming alone removed entries from the
    /// group's stream, `removed` of them, all from its head: gone events the
    /// group never had delivered were trimmed before it read them.
    pub fn trimmed_head(&mut self, removed: u64) {
        self.trimmed_head = Some(removed);
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

    /// Cells by producer, dead letters by producer, and the run's marks, for `outcome`.
    pub(super) fn parts(&self) -> LedgerParts<'_> {
        LedgerParts {
            cells: &self.per_producer,
            dead_letters: &self.dead_letters,
            unexpected_entries: self.unexpected_entries,
            in_progress: &self.in_progress,
            readback_failed: self.readback_failed.as_deref(),
            trimmed_head: self.trimmed_head,
        }
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
}
