//! The delivery-count distribution of a consumer group: how many distinct
//! events it saw delivered once, twice, … (`GroupLedger::outcome` fills it
//! from the ledger's per-event counts, which saturate at `COUNT_MAX`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ledger::COUNT_MAX;

/// How many distinct events a group saw delivered once, twice, … six times,
/// and seven times or more (the ledger's counts saturate there): index 0 is
/// "once". Covers every sent event delivered at least once (or processed),
/// whatever became of it (processed, stranded, dead-lettered, or lost after
/// delivery), so its total is the distinct events delivered, and everything
/// from "2" up is exactly `redelivered`.
/// In JSON an object `{"1": n, "2": n, …, "6": n, "7+": n}`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(into = "BTreeMap<String, u64>", try_from = "BTreeMap<String, u64>")]
pub struct DeliveryCounts(pub [u64; COUNT_MAX as usize]);

impl DeliveryCounts {
    /// Counts one event delivered `deliveries` times (0: not delivered, not counted).
    pub fn add(&mut self, deliveries: u8) {
        if deliveries > 0 {
            let bucket = usize::from(deliveries.min(COUNT_MAX)) - 1;
            self.0[bucket] += 1;
        }
    }

    /// Events delivered at least once.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Events delivered more than once.
    pub fn redelivered(&self) -> u64 {
        self.0[1..].iter().sum()
    }

    /// The JSON key of bucket `index`: "1" … "6", "7+".
    pub fn label(index: usize) -> String {
        match index + 1 {
            n if n < COUNT_MAX as usize => n.to_string(),
            n => format!("{n}+"),
        }
    }
}

impl From<DeliveryCounts> for BTreeMap<String, u64> {
    fn from(c: DeliveryCounts) -> Self {
        (c.0.iter().enumerate())
            .map(|(i, &n)| (DeliveryCounts::label(i), n))
            .collect()
    }
}

impl TryFrom<BTreeMap<String, u64>> for DeliveryCounts {
    type Error = String;

    fn try_from(map: BTreeMap<String, u64>) -> Result<Self, String> {
        let mut out = DeliveryCounts::default();
        for (key, n) in map {
            let index = (0..out.0.len())
                .find(|&i| DeliveryCounts::label(i) == key)
                .ok_or_else(|| {
                    format!(
                        "delivery_counts: unknown key {key:?} (expected \"1\" to \"6\" or \"7+\")"
                    )
                })?;
            out.0[index] = n;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_counts_are_a_json_object_by_count() {
        let counts = DeliveryCounts([5, 4, 0, 0, 0, 0, 2]);
        let json = serde_json::to_string(&counts).unwrap();
        assert_eq!(json, r#"{"1":5,"2":4,"3":0,"4":0,"5":0,"6":0,"7+":2}"#);
        let back: DeliveryCounts = serde_json::from_str(&json).unwrap();
        assert_eq!(back, counts);
        let sparse: DeliveryCounts = serde_json::from_str(r#"{"2":1}"#).unwrap();
        assert_eq!(sparse, DeliveryCounts([0, 1, 0, 0, 0, 0, 0]));
        let err = serde_json::from_str::<DeliveryCounts>(r#"{"8":1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown key \"8\""), "{err}");
    }
}
