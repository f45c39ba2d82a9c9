//! Events a consumer group has been delivered but has not processed yet, each
//! with the time of its first delivery. Two figures come from it:
//!
//! - the **redelivery latency** histogram: for every event delivered more
//!   than once, from its first delivery to the processing that finally
//!   succeeded (what a crash, a reclaim or a restart cost that event);
//! - per fault, what was **in flight at its start** and when the last of
//!   that was done: the fault's time to recover. In flight means asked for
//!   by a read sent before the start and not processed by then: a blocking
//!   read outstanding when a consumer crashes still delivers into its
//!   pending list, and those entries wait for a reclaim like the batch in hand.
//!
//! The collector owns one per group and feeds it the ledger batches, which
//! carry one run-clock time per batch. The map stays small: consumers report
//! processing right after each read batch, so it holds the batches in hand,
//! plus the pending entries of a crashed or stuck consumer until they are
//! reclaimed, dead-lettered or the run ends. The ledger itself keeps no
//! times: 8 bytes per event for the whole run would break its budget.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::latency::Latency;
use super::ledger::EventKey;

/// A first delivery the harness never saw: the event came from a pending
/// list (a read cut off by a crash or a timeout had delivered it unseen).
const UNSEEN: u64 = u64::MAX;

#[derive(Clone, Copy, Debug)]
struct Flight {
    /// The first delivery's reply arrived (UNSEEN: never saw it).
    first_ns: u64,
    /// The read that first delivered it was sent.
    asked_ns: u64,
    redelivered: bool,
}

impl Flight {
    const UNSEEN: Flight = Flight {
        first_ns: UNSEEN,
        asked_ns: UNSEEN,
        redelivered: true,
    };
}

/// One group's in-flight events and the figures drawn from them.
#[derive(Debug, Default)]
pub struct InFlight {
    events: HashMap<EventKey, Flight, BuildHasherDefault<KeyHasher>>,
    redelivery: Redelivery,
    faults: Vec<InFlightAtFault>,
}

/// Redelivered events of one group, whole run.
#[derive(Clone, Debug, Default)]
pub struct Redelivery {
    /// First delivery -> the end of the processing batch in which the event
    /// was first processed, for events delivered more than once before that
    /// (a batch's time: at most one batch's processing late).
    pub latency: Latency,
    /// Events processed after a redelivery whose first delivery the harness
    /// never saw (a read cut off by a crash or a timeout): no latency known.
    pub unmeasured: u64,
}

/// What one group (or, combined, every group) had in flight when a fault
/// started, and when the last of it was processed or dead-lettered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InFlightAtFault {
    /// The fault's start on the run clock.
    pub start_ns: u64,
    /// Events asked for by a read sent before `start_ns` and not processed then.
    pub events: u64,
    /// When the last of them was done (`start_ns` when there were none).
    pub last_done_ns: u64,
    /// Of `events`, those never processed nor dead-lettered (stranded, lost).
    pub never_done: u64,
}

impl InFlightAtFault {
    fn new(start_ns: u64) -> Self {
        InFlightAtFault {
            start_ns,
            last_done_ns: start_ns,
            ..Default::default()
        }
    }

    /// Seconds from the start until everything in flight then was done;
    /// None when something never was.
    pub fn done_after_s(&self) -> Option<f64> {
        (self.never_done == 0).then(|| (self.last_done_ns - self.start_ns) as f64 / 1e9)
    }

    /// Adds another group's figures for the same fault start.
    pub fn combine(&mut self, other: &InFlightAtFault) {
        self.events += other.events;
        self.never_done += other.never_done;
        self.last_done_ns = self.last_done_ns.max(other.last_done_ns);
    }

    fn done(&mut self, flight: Flight, at_ns: u64) {
        if flight.asked_ns < self.start_ns && at_ns >= self.start_ns {
            self.events += 1;
            self.last_done_ns = self.last_done_ns.max(at_ns);
        }
    }
}

impl InFlight {
    /// `fault_starts_ns`: when each fault of the run starts, on the run clock.
    pub fn new(fault_starts_ns: &[u64]) -> Self {
        InFlight {
            faults: fault_starts_ns
                .iter()
                .map(|&s| InFlightAtFault::new(s))
                .collect(),
            ..Default::default()
        }
    }

    /// Read as a new entry by a read sent at `asked_ns`, its reply arriving
    /// at `at_ns`. Seen before without being processed (the group was
    /// recreated and read it again): a redelivery.
    pub fn delivered(&mut self, key: EventKey, asked_ns: u64, at_ns: u64) {
        self.events
            .entry(key)
            .and_modify(|f| f.redelivered = true)
            .or_insert(Flight {
                first_ns: at_ns,
                asked_ns: asked_ns.min(at_ns),
                redelivered: false,
            });
    }

    /// Read from a pending list (reclaimed, or re-read by its own consumer).
    /// An event already processed is a duplicate on its way: its processing
    /// did not wait for this delivery, so it is not followed.
    pub fn redelivered(&mut self, key: EventKey, already_processed: bool) {
        if already_processed {
            return;
        }
        self.events
            .entry(key)
            .and_modify(|f| f.redelivered = true)
            .or_insert(Flight::UNSEEN);
    }

    /// Processing finished at `at_ns` (the end of its batch).
    pub fn processed(&mut self, key: EventKey, at_ns: u64) {
        let Some(flight) = self.events.remove(&key) else {
            return;
        };
        if flight.redelivered {
            match flight.first_ns {
                UNSEEN => self.redelivery.unmeasured += 1,
                first => self
                    .redelivery
                    .latency
                    .record_ns(at_ns.saturating_sub(first)),
            }
        }
        self.faults.iter_mut().for_each(|f| f.done(flight, at_ns));
    }

    /// Moved to the dead-letter stream at `at_ns`: given up on, so done.
    pub fn dead_lettered(&mut self, key: EventKey, at_ns: u64) {
        if let Some(flight) = self.events.remove(&key) {
            self.faults.iter_mut().for_each(|f| f.done(flight, at_ns));
        }
    }

    /// Events delivered and not processed yet.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The run is over: what is still in flight was never done.
    pub fn finish(self) -> (Redelivery, Vec<InFlightAtFault>) {
        let mut faults = self.faults;
        for flight in self.events.values() {
            for f in faults.iter_mut().filter(|f| flight.asked_ns < f.start_ns) {
                f.events += 1;
                f.never_done += 1;
            }
        }
        (self.redelivery, faults)
    }
}

/// Multiplicative hashing (FxHash's) of an event key. Keys are the run's own
/// events, so nothing needs SipHash's flooding resistance, and this is the
/// per-event path of the collector: a lookup costs a fraction of SipHash's.
#[derive(Default)]
struct KeyHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl KeyHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.mix(u64::from(b)));
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn key(seq: u64) -> EventKey {
        EventKey { producer: 0, seq }
    }

    #[test]
    fn only_redelivered_events_get_a_latency_from_their_first_delivery() {
        let mut f = InFlight::new(&[]);
        for seq in 0..4 {
            f.delivered(key(seq), 10 * MS, 10 * MS);
        }
        f.processed(key(0), 12 * MS); // the normal case: nothing recorded
        assert_eq!(f.len(), 3);
        // Seq 1 and 2 are reclaimed twice, then processed.
        f.redelivered(key(1), false);
        f.redelivered(key(1), false);
        f.redelivered(key(2), false);
        f.processed(key(1), 700 * MS);
        f.processed(key(2), 1_510 * MS);
        // Seq 9: first delivery unseen (a read cut off by a crash).
        f.redelivered(key(9), false);
        f.processed(key(9), 800 * MS);
        // Seq 0 again (its XACK was lost): a duplicate, not followed.
        f.redelivered(key(0), true);
        f.processed(key(0), 900 * MS);
        // Seq 3 is dead-lettered: done, no latency.
        f.redelivered(key(3), false);
        f.dead_lettered(key(3), 950 * MS);
        assert!(f.is_empty());
        let (r, _) = f.finish();
        assert_eq!((r.latency.count(), r.unmeasured), (2, 1));
        let h = r.latency.histogram();
        assert!(h.equivalent(h.min(), 690_000), "min {}", h.min());
        assert!(h.equivalent(h.max(), 1_500_000), "max {}", h.max());
    }

    #[test]
    fn a_new_read_of_an_unprocessed_event_is_a_redelivery() {
        let mut f = InFlight::new(&[]);
        f.delivered(key(1), 5 * MS, 5 * MS);
        f.delivered(key(1), 9 * MS, 9 * MS); // the group was recreated and read it again
        f.processed(key(1), 20 * MS);
        let (r, _) = f.finish();
        assert_eq!(r.latency.count(), 1);
        assert!(
            r.latency
                .histogram()
                .equivalent(r.latency.histogram().max(), 15_000)
        );
    }

    #[test]
    fn in_flight_at_a_fault_start_and_when_it_was_done() {
        let start = 100 * MS;
        let mut f = InFlight::new(&[start, 500 * MS]);
        f.delivered(key(0), 90 * MS, 90 * MS);
        f.processed(key(0), 95 * MS); // done before the fault: not affected
        f.delivered(key(1), 98 * MS, 98 * MS);
        f.processed(key(1), 104 * MS); // a batch straddling the start
        f.delivered(key(2), 99 * MS, 99 * MS); // the crashed consumer's batch
        f.delivered(key(3), 101 * MS, 101 * MS); // delivered after the start: not affected
        f.processed(key(3), 103 * MS);
        f.redelivered(key(2), false);
        f.processed(key(2), 640 * MS);
        f.redelivered(key(7), false); // unseen first delivery: cannot be placed
        f.delivered(key(8), 450 * MS, 450 * MS); // stranded: the second fault never recovers
        // A blocking read sent before the start, answered after it: in flight.
        f.delivered(key(4), 60 * MS, 120 * MS);
        f.redelivered(key(4), false);
        f.processed(key(4), 700 * MS);
        let (_, faults) = f.finish();
        let first = &faults[0];
        assert_eq!((first.events, first.never_done), (3, 0));
        assert_eq!(first.done_after_s(), Some(0.6));
        let second = &faults[1];
        assert_eq!((second.events, second.never_done), (3, 1));
        assert_eq!(second.done_after_s(), None);
        let mut both = InFlightAtFault::new(start);
        both.combine(first);
        both.combine(&InFlightAtFault::new(start));
        assert_eq!(both.done_after_s(), Some(0.6));
        let nothing = InFlightAtFault::new(start);
        assert_eq!(nothing.done_after_s(), Some(0.0));
    }
}
