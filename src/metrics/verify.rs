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
}
