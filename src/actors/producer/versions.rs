//! Each event's version within its aggregate: one counter per aggregate of a
//! stream, shared by every producer actor writing that stream, taken when
//! the event is encoded. Versions therefore follow send order; two producer
//! connections racing on one aggregate may land in the stream swapped, as
//! any concurrent writers without optimistic concurrency control would
//! (docs/event-sourcing.md, "Per-aggregate ordering").

use std::sync::atomic::{AtomicU32, Ordering};

pub struct AggregateVersions {
    /// The last version given out, per aggregate id (0: none yet).
    last: Box<[AtomicU32]>,
}

impl AggregateVersions {
    /// A table for aggregate ids `0..aggregates`; validation bounds the count
    /// (`scenario::MAX_AGGREGATES`), so the table stays small.
    pub fn new(aggregates: u64) -> AggregateVersions {
        AggregateVersions {
            last: (0..aggregates).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The next version of `aggregate`, from 1. Relaxed: the counter itself
    /// is the only thing ordered, and each fetch_add sees every earlier one.
    /// An id beyond the table (none is drawn) gets version 0.
    pub fn next(&self, aggregate: u64) -> u32 {
        let slot = usize::try_from(aggregate)
            .ok()
            .and_then(|i| self.last.get(i));
        slot.map_or(0, |v| v.fetch_add(1, Ordering::Relaxed).wrapping_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn versions_count_from_one_per_aggregate() {
        let v = AggregateVersions::new(3);
        let got: Vec<u32> = [0, 0, 2, 0, 2, 1].iter().map(|&a| v.next(a)).collect();
        assert_eq!(got, [1, 2, 1, 3, 2, 1]);
        assert_eq!(v.next(3), 0, "beyond the table");
    }

    #[test]
    fn writers_sharing_a_table_never_repeat_a_version() {
        let v = Arc::new(AggregateVersions::new(1));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let v = v.clone();
                std::thread::spawn(move || (0..1000).map(|_| v.next(0)).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u32> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (1..=4000).collect::<Vec<u32>>());
    }
}
