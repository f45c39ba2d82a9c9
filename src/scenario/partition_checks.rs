//! Checks of partitioned streams (`[[streams]] partitions`): the count's
//! range, and what a group on such a stream may do in this version (no more
//! consumers than partitions, no reclaim or dead-lettering). Pure; called by
//! `validate`.

use super::Scenario;
use super::violation::Violation;

/// The most partitions one stream may have: each is a key, a group per
/// group and a consumer connection, so thousands would be a mistake.
pub const MAX_PARTITIONS: u32 = 256;

pub(super) fn check(s: &Scenario) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut add = |field: String, problem: String| v.push(Violation { field, problem });
    for (i, st) in s.streams.iter().enumerate() {
        if st.partitions == 0 || st.partitions > MAX_PARTITIONS {
            add(
                format!("streams[{i}].partitions"),
                format!(
                    "{} is out of range: use 1 (one key) to {MAX_PARTITIONS}",
                    st.partitions
                ),
            );
        }
    }
    for (i, g) in s.groups.iter().enumerate() {
        let partitions = s.partitions_of(&g.stream);
        if partitions <= 1 {
            continue;
        }
        // Each partition has one owner, which alone finishes its
        // aggregates' events: per-aggregate order holds by construction.
        if g.consumers > partitions {
            add(
                format!("groups[{i}].consumers"),
                format!(
                    "group `{}` reads stream `{}`, which has {partitions} partitions, each \
                     owned by one consumer: a consumer beyond {partitions} would own none, so \
                     use at most {partitions} consumers (or more `partitions`)",
                    g.name, g.stream
                ),
            );
        }
        if g.reclaim.is_some() || g.max_deliveries.is_some() {
            add(
                format!("groups[{i}]"),
                format!(
                    "group `{}` reads a partitioned stream, where `reclaim` and \
                     `max_deliveries` are not supported yet: remove them, or read an \
                     unpartitioned stream",
                    g.name
                ),
            );
        }
    }
    v
}
