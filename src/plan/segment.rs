//! One process's share of a run split over several (docs/segments.md,
//! "Segments"). The split is a pure function of the scenario and `I/N`, so
//! every process computes the same one without talking to the others: a
//! producer connection belongs to segment `connection mod N` (producers that
//! share a connection share a segment, as one pipeline must), a consumer to
//! segment `(group + index) mod N`, a fault to the segment of what it targets
//! and a fault of the server, network or cluster to segment 0.

use std::fmt;

use super::{FaultTarget, GroupPlan, Plan, ProducerPlan};

/// Segment `index` of `count`; `0/1` is a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    pub index: u32,
    pub count: u32,
}

/// Where more segments than this would leave most of them idle; a bound
/// also keeps the meeting hash small.
pub const MAX_SEGMENTS: u32 = 256;

impl Segment {
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// `I/N` with `0 <= I < N <= 256`, as `--segment` and `STREAMDRILL_SEGMENT` take it.
    pub fn parse(text: &str) -> Result<Segment, String> {
        let fix = "write it as I/N, e.g. 0/3 for the first of three processes";
        let (i, n) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not I/N: {fix}"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("{text:?}: {s:?} is not a whole number: {fix}"))
        };
        let (index, count) = (number(i)?, number(n)?);
        if count == 0 || count > MAX_SEGMENTS {
            return Err(format!("{text:?}: N must be 1 to {MAX_SEGMENTS}"));
        }
        if index >= count {
            return Err(format!(
                "{text:?}: segments are numbered 0 to N-1 (0 to {})",
                count - 1
            ));
        }
        Ok(Segment { index, count })
    }

    /// Whether this segment sends on producer connection `connection`.
    pub fn owns_connection(&self, connection: u32) -> bool {
        self.connection_owner(connection) == self.index
    }

    /// Whether this segment runs consumer `index` of group `group`.
    pub fn owns_consumer(&self, group: usize, index: u32) -> bool {
        self.consumer_owner(group, index) == self.index
    }

    /// Which segment applies a fault on `target`; `connection_of` gives a
    /// producer id's connection.
    pub fn owner_of(&self, target: &FaultTarget, connection_of: impl Fn(u32) -> u32) -> u32 {
        match target {
            FaultTarget::Consumer { group, index } => self.consumer_owner(*group, *index),
            FaultTarget::Producer(id) => self.connection_owner(connection_of(*id)),
            _ => 0,
        }
    }

    fn connection_owner(&self, connection: u32) -> u32 {
        connection % self.count
    }

    fn consumer_owner(&self, group: usize, index: u32) -> u32 {
        ((group as u64 + u64::from(index)) % u64::from(self.count)) as u32
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Plan {
    /// The plan of one segment of the run (docs/segments.md, "Segments"):
    /// everything stays planned, ids and sequence numbers included, so the
    /// segments' ledgers line up; only the faults it applies are kept.
    pub fn in_segment(mut self, segment: Segment) -> Plan {
        let connection_of: Vec<u32> = self.producers.iter().map(|p| p.connection).collect();
        self.faults.retain(|f| {
            let connection = |id: u32| connection_of.get(id as usize).copied().unwrap_or(0);
            segment.owner_of(&f.target, connection) == segment.index
        });
        self.segment = segment;
        self
    }

    /// The consumers of `group` this process runs, by index in the group.
    pub fn consumers_run(&self, group: &GroupPlan) -> impl Iterator<Item = u32> + '_ {
        let (segment, g) = (self.segment, group.index);
        (0..group.consumers).filter(move |&c| segment.owns_consumer(g, c))
    }

    /// The producers this process runs (all but in a segment).
    pub fn producers_run(&self) -> impl Iterator<Item = &ProducerPlan> + '_ {
        let segment = self.segment;
        (self.producers.iter()).filter(move |p| segment.owns_connection(p.connection))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_i_of_n_and_refuses_the_rest() {
        assert_eq!(Segment::parse("1/3"), Ok(Segment { index: 1, count: 3 }));
        assert_eq!(Segment::parse(" 0/1 "), Ok(Segment::WHOLE));
        for bad in ["3/3", "1", "a/3", "0/0", "-1/3", "0/257"] {
            assert!(Segment::parse(bad).is_err(), "{bad}");
        }
    }

    /// Every connection and every consumer belongs to exactly one segment.
    #[test]
    fn segments_partition_the_work() {
        for count in 1..6 {
            let segments: Vec<Segment> = (0..count).map(|index| Segment { index, count }).collect();
            for c in 0..20 {
                assert_eq!(segments.iter().filter(|s| s.owns_connection(c)).count(), 1);
                for g in 0..3 {
                    assert_eq!(segments.iter().filter(|s| s.owns_consumer(g, c)).count(), 1);
                }
            }
        }
    }
}
