//! Per-aggregate ordering as a group processes its events
//! (docs/event-sourcing.md, "Per-aggregate ordering"). A checking group's
//! consumers share one `OrderCheck`: per aggregate the highest version any
//! of them finished. Each consumer classifies what it finishes against it
//! and counts into its own `OrderStats`, which merge like every other stat.

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

use super::stats::{Merge, Phase};

/// How one finished event compares with what its group finished before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The next version of its aggregate.
    InOrder,
    /// Versions between the last finished and this one were not finished yet.
    Gap,
    /// A later version finished before it, `distance` versions later.
    OutOfOrder { distance: u32 },
    /// Not above the highest finished: a redelivery (or the same version
    /// processed again), not a reordering.
    Repeat,
}

/// The highest version finished per aggregate, and which aggregates were
/// already counted out of order, per phase.
pub struct OrderCheck {
    highest: Box<[AtomicU32]>,
    /// Bit 0: counted out of order in the warmup; bit 1: in the measured phase.
    counted: Box<[AtomicU8]>,
}

impl OrderCheck {
    pub fn new(aggregates: u64) -> OrderCheck {
        OrderCheck {
            highest: (0..aggregates).map(|_| AtomicU32::new(0)).collect(),
            counted: (0..aggregates).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    /// Records that `version` of `aggregate` finished; `redelivered`: it was
    /// read from a pending list (a restart's own or a reclaim), so coming
    /// behind is the redelivery's doing, not the group's ordering. None for
    /// an aggregate beyond the table (none is produced).
    pub fn finish(&self, aggregate: u64, version: u32, redelivered: bool) -> Option<Seen> {
        let slot = self.highest.get(usize::try_from(aggregate).ok()?)?;
        // Relaxed: each slot orders itself; nothing else is published through it.
        let before = slot.fetch_max(version, Ordering::Relaxed);
        Some(match version {
            v if v == before.wrapping_add(1) => Seen::InOrder,
            v if v > before => Seen::Gap,
            v if v == before || redelivered => Seen::Repeat,
            v => Seen::OutOfOrder {
                distance: before - v,
            },
        })
    }

    /// Whether this is the first time `aggregate` is found out of order in
    /// `phase`, across the group's consumers.
    fn first_out_of_order(&self, aggregate: u64, phase: Phase) -> bool {
        let bit = match phase {
            Phase::Warmup => 1,
            Phase::Measured => 2,
        };
        let slot = usize::try_from(aggregate)
            .ok()
            .and_then(|i| self.counted.get(i));
        slot.is_some_and(|c| c.fetch_or(bit, Ordering::Relaxed) & bit == 0)
    }
}

/// One phase's ordering figures of a group, from its consumers' counts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct OrderStats {
    /// Events finished after a later version of their aggregate.
    pub events_out_of_order: u64,
    /// Aggregates with at least one such event.
    pub aggregates_out_of_order: u64,
    /// Events finished while an earlier version of their aggregate was not.
    pub gaps: u64,
    /// Events not above their aggregate's highest finished version:
    /// redeliveries, not reorderings.
    pub repeats: u64,
    /// The most versions an event came behind its aggregate's highest.
    pub max_distance_versions: u64,
}

impl OrderStats {
    /// Checks one finished event against the group's `check` and counts it.
    pub fn record(&mut self, check: &OrderCheck, finished: FinishedEvent) {
        let Some(seen) = check.finish(finished.aggregate, finished.version, finished.redelivered)
        else {
            return;
        };
        match seen {
            Seen::InOrder => {}
            Seen::Gap => self.gaps += 1,
            Seen::Repeat => self.repeats += 1,
            Seen::OutOfOrder { distance } => {
                self.events_out_of_order += 1;
                self.max_distance_versions = self.max_distance_versions.max(u64::from(distance));
                if check.first_out_of_order(finished.aggregate, finished.phase) {
                    self.aggregates_out_of_order += 1;
                }
            }
        }
    }
}

/// One event a consumer finished, as the order check needs it.
#[derive(Debug, Clone, Copy)]
pub struct FinishedEvent {
    pub aggregate: u64,
    pub version: u32,
    /// Read from a pending list rather than as a new entry.
    pub redelivered: bool,
    pub phase: Phase,
}

impl Merge for OrderStats {
    fn merge(&mut self, other: &Self) {
        self.events_out_of_order += other.events_out_of_order;
        self.aggregates_out_of_order += other.aggregates_out_of_order;
        self.gaps += other.gaps;
        self.repeats += other.repeats;
        self.max_distance_versions = self.max_distance_versions.max(other.max_distance_versions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_versions_are_classified_against_the_highest() {
        let check = OrderCheck::new(2);
        let seen = |v, redelivered| check.finish(0, v, redelivered).unwrap();
        assert_eq!(seen(1, false), Seen::InOrder);
        assert_eq!(seen(2, false), Seen::InOrder);
        assert_eq!(seen(5, false), Seen::Gap, "3 and 4 not finished yet");
        assert_eq!(seen(3, false), Seen::OutOfOrder { distance: 2 });
        assert_eq!(seen(4, false), Seen::OutOfOrder { distance: 1 });
        assert_eq!(seen(5, false), Seen::Repeat, "the same version again");
        assert_eq!(seen(2, true), Seen::Repeat, "a redelivery behind");
        assert_eq!(seen(6, true), Seen::InOrder, "a redelivery ahead");
        assert_eq!(
            check.finish(1, 2, false),
            Some(Seen::Gap),
            "aggregates apart"
        );
        assert_eq!(check.finish(2, 1, false), None, "beyond the table");
    }

    #[test]
    fn aggregates_out_of_order_are_counted_once_per_phase_across_consumers() {
        let check = OrderCheck::new(1);
        let (mut a, mut b) = (OrderStats::default(), OrderStats::default());
        let at = |version, phase| FinishedEvent {
            aggregate: 0,
            version,
            redelivered: false,
            phase,
        };
        a.record(&check, at(3, Phase::Warmup));
        b.record(&check, at(1, Phase::Warmup));
        a.record(&check, at(2, Phase::Warmup));
        b.record(&check, at(9, Phase::Measured));
        a.record(&check, at(4, Phase::Measured));
        a.merge(&b);
        assert_eq!(
            a,
            OrderStats {
                events_out_of_order: 3,
                aggregates_out_of_order: 2,
                gaps: 2,
                repeats: 0,
                max_distance_versions: 5,
            },
            "one aggregate, out of order in both phases"
        );
        let mut again = OrderStats::default();
        again.record(&check, at(5, Phase::Measured));
        assert_eq!(
            (again.events_out_of_order, again.aggregates_out_of_order),
            (1, 0),
            "counted in the measured phase already"
        );
    }
}
