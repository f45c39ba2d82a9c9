//! Partitioned streams: which of a stream's keys an aggregate's events go
//! to, and what those keys are called (docs/event-sourcing.md, "Partitioned streams").

/// Where one key sits in its stream's partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

/// The key of partition `index` of the stream whose unpartitioned key is
/// `stream_key`. No hash tag: each partition hashes to a slot of its own
/// (docs/event-sourcing.md, "Partitioned streams").
pub fn partition_key(stream_key: &str, index: u32) -> String {
    format!("{stream_key}:p{index}")
}

/// The partition of `aggregate` among `count`: a fixed hash of the id alone,
/// so every producer, run and seed agrees, and ids drawn by popularity rank
/// (Zipf) are not dealt round-robin over the partitions.
pub fn partition_of(aggregate: u64, count: u32) -> u32 {
    let hash = super::mix64(aggregate.wrapping_add(0x9E37_79B9_7F4A_7C15));
    (hash % u64::from(count.max(1))) as u32
}

impl super::Plan {
    /// The keys consumer `index` of `group` reads: partition p is owned by
    /// consumer p % consumers; an unpartitioned stream's one key is read
    /// by all (docs/event-sourcing.md, "Partitioned streams").
    pub fn consumer_keys(&self, group: &super::GroupPlan, index: u32) -> Vec<String> {
        match self.partitions(group.stream) {
            [one] => vec![one.key.clone()],
            keys => (keys.iter().enumerate())
                .filter(|(p, _)| *p as u32 % group.consumers == index)
                .map(|(_, s)| s.key.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_of_an_aggregate_is_fixed() {
        // Written down once: a change here moves every aggregate of every
        // partitioned stream, which users comparing runs would notice.
        let first: Vec<u32> = (0..8).map(|a| partition_of(a, 4)).collect();
        assert_eq!(first, [3, 1, 2, 1, 2, 2, 0, 3]);
        assert_eq!(partition_of(17, 1), 0);
        assert_eq!(partition_of(17, 0), 0);
    }

    #[test]
    fn every_partition_gets_its_share_of_aggregates() {
        for count in [2, 3, 4, 7, 16] {
            let mut per = vec![0u32; count as usize];
            for a in 0..10_000 {
                per[partition_of(a, count) as usize] += 1;
            }
            let fair = 10_000 / count;
            assert!(
                per.iter().all(|&n| n > fair * 8 / 10 && n < fair * 12 / 10),
                "{count} partitions: {per:?}"
            );
        }
    }

    #[test]
    fn partition_keys_extend_the_stream_key() {
        assert_eq!(partition_key("sd:r1:orders", 0), "sd:r1:orders:p0");
        assert_eq!(partition_key("sd:r1:orders", 11), "sd:r1:orders:p11");
        assert!(!partition_key("sd:r1:orders", 3).contains('{'));
    }
}
