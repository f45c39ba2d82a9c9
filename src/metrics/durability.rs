//! The durability check of a Redis crash drill, after Jepsen's queue checker:
//! the streams are read back after Redis restarted, and every XADD is judged
//! by what Redis answered and what survived. Acknowledged but gone is data
//! loss; an indeterminate write (the connection died with it in flight) that
//! survived is recovered, one that did not was never acknowledged anyway.

use serde::{Deserialize, Serialize};

use super::ledger::{EventKey, ProduceLedger};

/// How many gone keys the report lists.
pub const GONE_SAMPLE_LEN: usize = 20;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Durability {
    /// XADDs Redis acknowledged.
    pub acked: u64,
    /// Acknowledged, yet not in the stream after the restart.
    pub acked_but_gone: u64,
    /// The first gone keys, in producer then sequence order.
    pub gone_sample: Vec<EventKey>,
    /// Acknowledged-but-gone writes that WAIT had not flagged as unreplicated:
    /// loss the producer had no way to see. All of `acked_but_gone` without
    /// `wait`; with it, what synchronous replication failed to warn about.
    /// Absent in runs written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_but_gone_silent: Option<u64>,
    /// Sent with no answer (the connection was lost): outcome unknown at the time.
    pub indeterminate: u64,
    /// Indeterminate writes found in the stream after all.
    pub indeterminate_landed: u64,
}

/// Judges every sent event against the keys found in the streams; `present`
/// may be in any order and may hold keys of other runs' producers.
pub fn check(produced: &[ProduceLedger], present: &[EventKey]) -> Durability {
    let mut found: Vec<Vec<bool>> = produced
        .iter()
        .map(|l| vec![false; l.sent_count() as usize])
        .collect();
    for k in present {
        if let Some(slot) = found
            .get_mut(k.producer as usize)
            .and_then(|f| f.get_mut(k.seq as usize))
        {
            *slot = true;
        }
    }
    let mut d = Durability::default();
    let mut silent = 0;
    for (producer, (ledger, found)) in produced.iter().zip(&found).enumerate() {
        for (seq, &there) in found.iter().enumerate() {
            let seq = seq as u64;
            if ledger.is_acked(seq) {
                d.acked += 1;
                if !there {
                    d.acked_but_gone += 1;
                    silent += u64::from(!ledger.is_unreplicated(seq));
                    if d.gone_sample.len() < GONE_SAMPLE_LEN {
                        d.gone_sample.push(EventKey {
                            producer: producer as u32,
                            seq,
                        });
                    }
                }
            } else if !ledger.is_failed(seq) {
                d.indeterminate += 1;
                d.indeterminate_landed += u64::from(there);
            }
        }
    }
    d.acked_but_gone_silent = Some(silent);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_acked_failed_and_unknown_writes() {
        let mut l = ProduceLedger::new();
        for seq in 0..4 {
            l.acked(seq);
        }
        l.failed(4);
        l.unreplicated(3); // WAIT warned about 3
        l.sent(5); // no reply
        l.sent(6); // no reply
        let key = |seq| EventKey { producer: 0, seq };
        // 2 and 3 were lost in the crash; 5 landed although unanswered.
        let d = check(
            &[l],
            &[
                key(0),
                key(1),
                key(5),
                EventKey {
                    producer: 9,
                    seq: 0,
                },
            ],
        );
        assert_eq!(
            (
                d.acked,
                d.acked_but_gone,
                d.indeterminate,
                d.indeterminate_landed
            ),
            (4, 2, 2, 1)
        );
        assert_eq!(d.gone_sample, vec![key(2), key(3)]);
        assert_eq!(d.acked_but_gone_silent, Some(1), "2 was lost unannounced");
    }
}
