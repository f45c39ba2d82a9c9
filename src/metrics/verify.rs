//! Redis's own account of a run, read back after the drain: how many
//! entries each stream says were ever added, checked against the XADDs
//! producers saw acknowledged. `verify` (the runtime) reads it; the report
//! renders it.

use serde::{Deserialize, Serialize};

use super::ledger::ProduceLedger;

/// Redis's own count of what was written, read independently of the producers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct VerifySummary {
    pub streams: Vec<StreamVerify>,
    pub produce_acked: u64,
    /// Writes whose reply was lost but that are in the stream after all
    /// (from the durability read-back; 0 without one).
    #[serde(default)]
    pub landed_unacked: u64,
    /// XADDs sent whose fate the producers never learnt (no reply): each may
    /// or may not be in the stream until a read-back says (`landed_unacked`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub indeterminate: u64,
    /// Sum of `entries_added` equals the acks producers received plus the
    /// unacknowledged writes that landed; without a read-back, lies between
    /// the acks and the acks plus every indeterminate write.
    pub consistent: bool,
    /// Why Redis could not be read back after the run (it was down), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Dead-letter streams (`<stream>:dlq`) of groups with `max_deliveries`,
    /// read before an external run deletes its keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dead_letter: Vec<StreamVerify>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct StreamVerify {
    pub key: String,
    /// XINFO STREAM `entries-added`.
    pub entries_added: u64,
    pub length: u64,
    /// Which partition of which stream the key is, when the stream is
    /// partitioned (docs/event-sourcing.md, "Partitioned streams").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionOf>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct PartitionOf {
    /// The stream's name in the scenario.
    pub stream: String,
    pub index: u32,
}

/// A partitioned stream's entries, partition by partition: how unevenly its
/// aggregates' popularity spread them.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionSpread {
    pub stream: String,
    /// `entries_added` of each partition, in partition order.
    pub entries: Vec<u64>,
}

impl PartitionSpread {
    /// The busiest partition's entries over the mean: 1 when even.
    pub fn max_over_mean(&self) -> f64 {
        let total: u64 = self.entries.iter().sum();
        let max = self.entries.iter().copied().max().unwrap_or(0);
        match total {
            0 => 1.0,
            _ => max as f64 * self.entries.len() as f64 / total as f64,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl VerifySummary {
    pub fn new(streams: Vec<StreamVerify>, ledgers: &[ProduceLedger]) -> Self {
        let added: u64 = streams.iter().map(|s| s.entries_added).sum();
        let produce_acked = ledgers.iter().map(ProduceLedger::acked_count).sum();
        let indeterminate = ledgers.iter().map(ProduceLedger::indeterminate_count).sum();
        VerifySummary {
            streams,
            produce_acked,
            landed_unacked: 0,
            indeterminate,
            consistent: (produce_acked..=produce_acked + indeterminate).contains(&added),
            unavailable: None,
            dead_letter: Vec::new(),
        }
    }

    /// Counts writes that landed without an acknowledgement (a reply lost to a
    /// fault) into the expected total, so only unexplained differences mismatch.
    pub fn account_for_landed(&mut self, landed_unacked: u64) {
        let added: u64 = self.streams.iter().map(|s| s.entries_added).sum();
        self.landed_unacked = landed_unacked;
        self.consistent =
            self.unavailable.is_none() && added == self.produce_acked + landed_unacked;
    }

    /// Each partitioned stream's spread, in the order the streams come.
    pub fn partitions(&self) -> Vec<PartitionSpread> {
        let mut out: Vec<PartitionSpread> = Vec::new();
        for (s, p) in (self.streams.iter()).filter_map(|s| Some((s, s.partition.as_ref()?))) {
            match out.iter_mut().find(|o| o.stream == p.stream) {
                Some(o) => o.entries.push(s.entries_added),
                None => out.push(PartitionSpread {
                    stream: p.stream.clone(),
                    entries: vec![s.entries_added],
                }),
            }
        }
        out
    }

    /// Redis could not be read back: nothing is consistent, and the reason is kept.
    pub fn unavailable(ledgers: &[ProduceLedger], why: String) -> Self {
        VerifySummary {
            streams: Vec::new(),
            produce_acked: ledgers.iter().map(|l| l.acked_count()).sum(),
            landed_unacked: 0,
            indeterminate: ledgers.iter().map(ProduceLedger::indeterminate_count).sum(),
            consistent: false,
            unavailable: Some(why),
            dead_letter: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ledgers of `acked` acknowledged XADDs and `unknown` more sent unanswered.
    fn ledgers(acked: u64, unknown: u64) -> Vec<ProduceLedger> {
        let mut l = ProduceLedger::new();
        (0..acked).for_each(|seq| l.acked(seq));
        (acked..acked + unknown).for_each(|seq| l.sent(seq));
        vec![l]
    }

    #[test]
    fn verify_is_consistent_only_when_counts_match() {
        let stream = |added| StreamVerify {
            key: "s".into(),
            entries_added: added,
            length: 0,
            partition: None,
        };
        assert!(VerifySummary::new(vec![stream(3), stream(4)], &ledgers(7, 0)).consistent);
        assert!(!VerifySummary::new(vec![stream(3)], &ledgers(7, 0)).consistent);
        // Two writes of unknown fate: up to two more entries are explained...
        let unknown = VerifySummary::new(vec![stream(8)], &ledgers(7, 2));
        assert!(unknown.consistent && unknown.indeterminate == 2);
        assert!(!VerifySummary::new(vec![stream(10)], &ledgers(7, 2)).consistent);
        // ...until a read-back says exactly which landed.
        let mut landed = VerifySummary::new(vec![stream(9)], &ledgers(7, 2));
        landed.account_for_landed(2);
        assert!(landed.consistent, "two unacknowledged writes landed");
        landed.account_for_landed(1);
        assert!(!landed.consistent);
    }

    #[test]
    fn partitions_spread_per_stream() {
        let key = |stream: &str, index, added| StreamVerify {
            key: format!("{stream}:p{index}"),
            entries_added: added,
            length: added,
            partition: Some(PartitionOf {
                stream: stream.into(),
                index,
            }),
        };
        let plain = StreamVerify {
            key: "t".into(),
            entries_added: 5,
            ..StreamVerify::default()
        };
        let streams = vec![key("s", 0, 10), key("s", 1, 30), plain, key("u", 0, 0)];
        let spread = VerifySummary::new(streams, &ledgers(45, 0)).partitions();
        assert_eq!(spread.len(), 2);
        assert_eq!(
            (spread[0].stream.as_str(), &spread[0].entries[..]),
            ("s", &[10, 30][..])
        );
        assert_eq!(spread[0].max_over_mean(), 1.5);
        assert_eq!(spread[1].max_over_mean(), 1.0);
    }
}
