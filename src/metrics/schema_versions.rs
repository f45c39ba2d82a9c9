//! Counts by kind of event (type and schema version) for runs that write
//! versioned types (docs/event-sourcing.md, "Schema versions"): what
//! producers had acknowledged, and what each group processed, upcast or
//! dead-lettered as a version it does not understand.

use super::stats::Merge;

/// Counts per kind of event, by its index in the run's kind table
/// (docs/event-sourcing.md, "Schema versions").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Kinds(pub Vec<u64>);

impl Kinds {
    pub fn add(&mut self, kind: u32) {
        let i = kind as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, 0);
        }
        self.0[i] += 1;
    }

    pub fn get(&self, kind: usize) -> u64 {
        self.0.get(kind).copied().unwrap_or(0)
    }
}

impl Merge for Kinds {
    fn merge(&mut self, other: &Self) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            a.merge(b);
        }
    }
}

/// What one group did with each kind, by the kind's index in the run's table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VersionCounts {
    /// Processings (redeliveries included), upcast ones too.
    pub processed: Kinds,
    /// Of `processed`: an older version than the group's oldest understood
    /// one, upcast before processing.
    pub upcast: Kinds,
    /// Moved to the dead-letter stream unprocessed: a version the group
    /// does not understand.
    pub dead_lettered: Kinds,
}

impl Merge for VersionCounts {
    fn merge(&mut self, other: &Self) {
        self.processed.merge(&other.processed);
        self.upcast.merge(&other.upcast);
        self.dead_lettered.merge(&other.dead_lettered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_grow_as_counted_and_merge_element_wise() {
        let mut a = Kinds::default();
        a.add(2);
        a.add(2);
        let mut b = Kinds::default();
        b.add(0);
        b.add(4);
        a.merge(&b);
        assert_eq!(a.0, [1, 0, 2, 0, 1]);
        assert_eq!((a.get(2), a.get(9)), (2, 0));
    }
}
