//! A group's replay figures and the pure parts of a replay: the fold's
//! state as the projection's writes leave it, when to checkpoint and
//! snapshot, and how far compaction may trim. The coordinator's replay
//! phase does the I/O.
//! docs/event-sourcing.md, "Replay and snapshots"

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// One group's replay, in `summary.json`'s group.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ReplayReport {
    /// The projection's mode the rebuild folds with: "naive" or "idempotent".
    pub mode: String,
    /// Entries per XRANGE.
    pub batch: u32,
    /// Events between two saved positions.
    pub checkpoint_every: u64,
    /// The stream read alone just before, in the same batches and decoded
    /// alike, without a write: the rate the rebuild could reach at best.
    pub raw_read: RawRead,
    /// The rebuild from the stream's first entry.
    pub full: ReplayPass,
    /// Snapshots written by the full rebuild, compaction and the rebuild
    /// from the snapshots and the tail; None without `snapshot_every`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<SnapshotReport>,
    /// Why the replay stopped; the figures then cover what ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The stream read from the start with XRANGE alone.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct RawRead {
    pub events_read: u64,
    pub seconds: f64,
    pub events_per_s: f64,
}

/// One rebuild of the model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ReplayPass {
    /// Entries XRANGE returned.
    pub events_read: u64,
    /// Events folded into the model (read minus those a snapshot covers).
    pub events_applied: u64,
    /// Positions saved: ceil(events_read / checkpoint_every).
    pub checkpoints: u64,
    /// Wall time from the first XRANGE to the last write's reply.
    pub seconds: f64,
    /// events_read / seconds.
    pub events_per_s: f64,
    /// Aggregates in the stream or in the rebuilt model.
    pub aggregates: u64,
    /// Aggregates whose rebuilt count or version differs from the stream's.
    pub divergent: u64,
    /// Aggregates whose rebuilt count or version differs from the live
    /// projection's model.
    pub divergent_from_live: u64,
}

/// Snapshots and compaction of one group's stream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct SnapshotReport {
    /// A snapshot of an aggregate every this many of its events.
    pub every: u64,
    /// Snapshot writes (HSET of state and covered id).
    pub written: u64,
    /// Aggregates with a snapshot.
    pub aggregates: u64,
    /// Whether the stream was trimmed (XTRIM MINID) below the oldest snapshot still needed.
    pub compacted: bool,
    /// Entries XTRIM removed (0 without compaction).
    pub trimmed: u64,
    /// XLEN of the stream (its partitions added up) before and after compaction.
    pub length_before: u64,
    pub length_after: u64,
    /// MEMORY USAGE (SAMPLES 0) before and after compaction; None where the
    /// server has no MEMORY USAGE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes_before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes_after: Option<u64>,
    /// The rebuild from the snapshots and the entries after them.
    pub tail: ReplayPass,
}

/// A stream id as (ms, seq).
pub type Id = (u64, u64);

/// The id right after `id`: the lowest MINID that keeps nothing up to `id`.
pub fn successor(id: Id) -> Id {
    match id.1.checked_add(1) {
        Some(seq) => (id.0, seq),
        None => (id.0 + 1, 0),
    }
}

/// An aggregate's model state as the projection's writes leave it:
/// effects applied and last version applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub n: u64,
    pub v: u64,
}

impl State {
    /// Folds one event as the projection's writes do (actors::projection):
    /// naive applies every event, idempotent only the next version.
    pub fn fold(&mut self, idempotent: bool, version: u64) {
        if !idempotent || version == self.v + 1 {
            self.n += 1;
            self.v = version;
        }
    }
}

/// Per aggregate of one stream key: the events seen, the latest snapshot's
/// id, and the first event's id after it. Fed in stream order by the full
/// rebuild; says when to snapshot and how far compaction may trim.
#[derive(Default)]
pub struct Coverage {
    every: u64,
    seen: HashMap<u64, (u64, Option<Id>, Option<Id>)>,
}

impl Coverage {
    pub fn new(every: u64) -> Coverage {
        Coverage {
            every,
            seen: HashMap::new(),
        }
    }

    /// Records an event of `aggregate` at `id`; true when it completes a
    /// snapshot (the aggregate's count of events is a multiple of `every`).
    pub fn event(&mut self, aggregate: u64, id: Id) -> bool {
        let slot = self.seen.entry(aggregate).or_default();
        slot.0 += 1;
        if slot.0.is_multiple_of(self.every) {
            *slot = (slot.0, Some(id), None);
            return true;
        }
        slot.2.get_or_insert(id);
        false
    }

    /// The lowest id an aggregate still needs past its snapshot (its first
    /// event with none), or None when every aggregate's last event is in a
    /// snapshot and the whole key could go.
    pub fn oldest_needed(&self) -> Option<Id> {
        self.seen.values().filter_map(|s| s.2).min()
    }
}

/// XTRIM MINID for one key: below the oldest event a snapshot does not
/// cover, and never above any group's bound (its oldest pending entry, or
/// the entry after its last delivered one), so no unread or unacknowledged
/// entry goes. `last`: the key's last id.
pub fn compaction_minid(needed: Option<Id>, last: Id, group_bounds: &[Id]) -> Id {
    let snap = needed.unwrap_or_else(|| successor(last));
    group_bounds.iter().copied().fold(snap, Id::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fold_matches_the_projection_modes() {
        let mut naive = State::default();
        let mut idem = State::default();
        for v in [1, 2, 2, 4, 3] {
            naive.fold(false, v);
            idem.fold(true, v);
        }
        assert_eq!(naive, State { n: 5, v: 3 });
        assert_eq!(idem, State { n: 3, v: 3 });
    }

    #[test]
    fn compaction_keeps_what_a_snapshot_does_not_cover_and_what_a_group_has_not_read() {
        let mut c = Coverage::new(2);
        // Aggregate 1: events at 1, 3 (snapshot at 3), 5. Aggregate 2: 2, 4 (snapshot at 4).
        let snaps: Vec<bool> = [(1, 1), (2, 2), (1, 3), (2, 4), (1, 5)]
            .iter()
            .map(|&(a, ms)| c.event(a, (ms, 0)))
            .collect();
        assert_eq!(snaps, [false, false, true, true, false]);
        assert_eq!(c.oldest_needed(), Some((5, 0)));
        assert_eq!(compaction_minid(c.oldest_needed(), (5, 0), &[]), (5, 0));
        // A group that has read up to 3-0 keeps 4-0 on.
        assert_eq!(
            compaction_minid(c.oldest_needed(), (5, 0), &[successor((3, 0))]),
            (3, 1)
        );
        // Everything covered: the whole key may go.
        assert_eq!(compaction_minid(None, (5, 0), &[]), (5, 1));
    }
}
