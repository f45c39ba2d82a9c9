//! The durability check of a Redis crash drill, after Jepsen's queue checker:
//! the streams are read back after Redis restarted, and every XADD is judged
//! by what Redis answered and what survived. Acknowledged but gone is data
//! loss; an indeterminate write (the connection died with it in flight) that
//! survived is recovered, one that did not was never acknowledged anyway.

use serde::{Deserialize, Serialize};

use super::ledger::{EventKey, ProduceLedger};
use crate::event::Header;

/// How many gone keys the report lists.
pub const GONE_SAMPLE_LEN: usize = 20;
/// How many runs of gone events the report lists.
pub const GONE_RANGES_LEN: usize = 20;

/// One producer's run of acknowledged events that are gone, with no event
/// of it surviving in between, and when the survivors around it were
/// intended: the stretch of writes the crash took.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GoneRange {
    pub producer: u32,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Acknowledged events gone in the range (unacknowledged ones are not loss).
    pub count: u64,
    /// Intended send time (unix ns) of the producer's last surviving event
    /// before the range; None if none survived before it.
    pub after_unix_ns: Option<u64>,
    /// Intended send time of its first surviving event after the range.
    pub before_unix_ns: Option<u64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Durability {
    /// XADDs Redis acknowledged.
    pub acked: u64,
    /// Acknowledged, yet not in the stream after the restart.
    pub acked_but_gone: u64,
    /// The first gone keys, in producer then sequence order.
    pub gone_sample: Vec<EventKey>,
    /// The gone events as runs per producer (the first `GONE_RANGES_LEN`),
    /// with the time window each spans. Absent in runs written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gone_ranges: Vec<GoneRange>,
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

/// Judges every sent event against the events found in the streams;
/// `present` may be in any order and may hold other runs' producers' events.
pub fn check(produced: &[ProduceLedger], present: &[Header]) -> Durability {
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
    // Per gone range, the sequence numbers of the survivors around it.
    let mut neighbours: Vec<(Option<u64>, Option<u64>)> = Vec::new();
    for (producer, (ledger, found)) in produced.iter().zip(&found).enumerate() {
        // The run of gone events under way, broken by a surviving event.
        let mut run: Option<GoneRange> = None;
        let mut last_there = None;
        for (seq, &there) in found.iter().enumerate() {
            let seq = seq as u64;
            if there {
                if let Some(r) = run.take() {
                    d.gone_ranges.push(r);
                    neighbours.push((last_there, Some(seq)));
                }
                last_there = Some(seq);
            }
            if ledger.is_acked(seq) {
                d.acked += 1;
                if !there {
                    let r = run.get_or_insert(GoneRange {
                        producer: producer as u32,
                        first_seq: seq,
                        last_seq: seq,
                        count: 0,
                        after_unix_ns: None,
                        before_unix_ns: None,
                    });
                    r.last_seq = seq;
                    r.count += 1;
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
        if let Some(r) = run {
            d.gone_ranges.push(r);
            neighbours.push((last_there, None));
        }
    }
    d.gone_ranges.truncate(GONE_RANGES_LEN);
    // When the survivors around each range were intended (a second pass
    // over the few events needed, not a time kept per event).
    for h in present {
        let ranges = d.gone_ranges.iter_mut().zip(&neighbours);
        for (r, &(after, before)) in ranges.filter(|(r, _)| r.producer == h.producer) {
            if after == Some(h.seq) {
                r.after_unix_ns = Some(h.intended_ns);
            }
            if before == Some(h.seq) {
                r.before_unix_ns = Some(h.intended_ns);
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
        let at = |seq| Header {
            producer: 0,
            seq,
            intended_ns: 1_000 + seq,
        };
        // 2 and 3 were lost in the crash; 5 landed although unanswered.
        let foreign = Header {
            producer: 9,
            seq: 0,
            intended_ns: 7,
        };
        let d = check(&[l], &[at(5), at(0), foreign, at(1)]);
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
        // 2-3 gone, between the survivors 1 and 5 (4 failed, not loss).
        assert_eq!(
            d.gone_ranges,
            vec![GoneRange {
                producer: 0,
                first_seq: 2,
                last_seq: 3,
                count: 2,
                after_unix_ns: Some(1_001),
                before_unix_ns: Some(1_005),
            }]
        );
    }

    #[test]
    fn gone_runs_are_split_by_survivors_and_may_run_to_the_end() {
        let mut l = ProduceLedger::new();
        (0..10).for_each(|seq| l.acked(seq));
        let at = |seq| Header {
            producer: 0,
            seq,
            intended_ns: seq * 10,
        };
        // 0 and 5 survived: 1-4 and 6-9 are gone, the last with no survivor after.
        let d = check(&[l], &[at(0), at(5)]);
        let spans: Vec<_> = (d.gone_ranges.iter())
            .map(|r| {
                (
                    r.first_seq,
                    r.last_seq,
                    r.count,
                    r.after_unix_ns,
                    r.before_unix_ns,
                )
            })
            .collect();
        assert_eq!(
            spans,
            vec![(1, 4, 4, Some(0), Some(50)), (6, 9, 4, Some(50), None)]
        );
    }
}
