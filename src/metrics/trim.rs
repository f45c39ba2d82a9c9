//! A group on a trimmed stream (docs/event-sourcing.md, "Safe trimming"):
//! how close it came to the trimmed head over the run, what trimming
//! removed, and whether the ledger could put gone events down to trimming
//! (docs/measurement.md, "Trimmed before read").

use serde::{Deserialize, Serialize};

/// One group's trimming figures, whole run; only for a trimmed stream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct TrimSafety {
    /// The stream's `trim_policy` ("keepref", "delref", "acked"); absent:
    /// Redis's default trimming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Entries trimming removed from the stream by the end of the run
    /// (XINFO STREAM `entries-added` − `length`, every partition).
    pub trimmed_entries: u64,
    /// The fewest entries, over the per-second samples taken once trimming
    /// had begun, between the group's read position and the trimmed head:
    /// XLEN − lag, the entries up to its cursor still in the stream (the
    /// least over partitions). 0: it fell off the end. None: no sample.
    pub min_head_distance: Option<u64>,
    /// Samples that went into `min_head_distance`.
    pub samples: u64,
    /// Whether the read-back found that only head trimming removed entries,
    /// so the ledger tells `trimmed_unread` from `lost`.
    pub classified: bool,
    /// Why not, when not: gone events then count as lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unclassified_why: Option<String>,
}

impl TrimSafety {
    /// One reading of the group's distance to the trimmed head, if it had one.
    pub fn sample(&mut self, distance: Option<u64>) {
        if let Some(d) = distance {
            self.samples += 1;
            self.min_head_distance = Some(self.min_head_distance.map_or(d, |m| m.min(d)));
        }
    }
}

/// One key's distance between a group's cursor and the trimmed head: the
/// entries up to its cursor still in the stream (`length` − `lag`, 0 when
/// trimming has passed the cursor). None before trimming removed anything
/// (`removed` = entries-added − length is 0: there is no trimmed head yet)
/// or when Redis cannot tell the lag.
pub fn head_distance(length: u64, entries_added: u64, lag: Option<u64>) -> Option<u64> {
    if entries_added <= length {
        return None;
    }
    Some(length.saturating_sub(lag?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_what_the_group_has_read_still_in_the_stream() {
        // Nothing trimmed yet: no head to be near.
        assert_eq!(head_distance(50, 50, Some(50)), None);
        // 100 kept, 40 of them beyond the cursor: 60 entries of slack.
        assert_eq!(head_distance(100, 500, Some(40)), Some(60));
        // 300 unread but only 100 kept: trimmed past the cursor.
        assert_eq!(head_distance(100, 500, Some(300)), Some(0));
        assert_eq!(head_distance(100, 500, None), None);
        let mut t = TrimSafety::default();
        for d in [None, Some(60), Some(0), Some(7)] {
            t.sample(d);
        }
        assert_eq!((t.min_head_distance, t.samples), (Some(0), 3));
    }
}
