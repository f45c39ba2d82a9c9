//! Where a consumer reads next: its own pending entries first after a
//! restart or a failure (walked from "0" to their end), then entries idle in
//! other consumers' PELs when a reclaim is due (XAUTOCLAIM, cursor by
//! cursor), and otherwise new entries. Pure: the actor says what each read
//! returned, and asks for the next one.

use std::time::Duration;

use crate::actors::reads::{Batch, Read};

/// XAUTOCLAIM's cursor value for "start over" and "scan complete".
const CURSOR_START: &str = "0-0";

pub(super) struct Cursors {
    own: OwnPending,
    /// How many keys the consumer reads (its partitions, or 1).
    keys: usize,
    claim: String,
    next_claim_ns: u64,
    /// The group's reclaim: entries idle this long, looked for this often.
    reclaim: Option<(Duration, Duration)>,
}

/// The walk through the consumer's own PEL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnPending {
    /// Nothing of its own to go through: it reads on.
    Done,
    /// Going through it: the next read starts after these ids, one per key.
    After(Vec<String>),
    /// Start over from "0" at the next read, whatever the read in flight
    /// moves the walk to: what the consumer held may have stayed pending (a
    /// failed XACK or read, a restart), possibly before that read's ids.
    FromStart,
}

impl Cursors {
    /// `reclaim`: the group's (min_idle, every), if it reclaims; `keys`:
    /// how many keys the consumer reads.
    pub(super) fn new(reclaim: Option<(Duration, Duration)>, keys: usize) -> Cursors {
        Cursors {
            own: OwnPending::Done,
            keys,
            claim: CURSOR_START.to_string(),
            next_claim_ns: 0,
            reclaim,
        }
    }

    /// Work through the own PEL, from its start, before anything new.
    pub(super) fn start_over(&mut self) {
        self.own = OwnPending::FromStart;
    }

    /// The read to send at `now_ns`.
    pub(super) fn next(&mut self, now_ns: u64) -> Read {
        if self.own == OwnPending::FromStart {
            self.own = OwnPending::After(vec!["0".to_string(); self.keys]);
        }
        if let OwnPending::After(after) = &self.own {
            return Read::OwnPending {
                after: after.clone(),
            };
        }
        match self.reclaim {
            Some((min_idle, _)) if now_ns >= self.next_claim_ns => Read::Claim {
                cursor: self.claim.clone(),
                min_idle,
            },
            _ => Read::New,
        }
    }

    /// `read` returned `batch` at `received_ns`: move its cursor on.
    pub(super) fn advance(&mut self, read: &Read, batch: &Batch, received_ns: u64) {
        match read {
            // Entries that stay pending (poison) are passed by moving on
            // from each key's last id, so the walk ends.
            Read::OwnPending { after } if self.own != OwnPending::FromStart => {
                self.own = match batch.entries.is_empty() {
                    true => OwnPending::Done,
                    false => {
                        let mut after = after.clone();
                        for e in &batch.entries {
                            after[e.key] = String::from_utf8_lossy(&e.id).into_owned();
                        }
                        OwnPending::After(after)
                    }
                };
            }
            Read::Claim { .. } => {
                self.claim = (batch.cursor.clone()).unwrap_or_else(|| CURSOR_START.to_string());
                if self.claim == CURSOR_START {
                    let every = self.reclaim.map_or(Duration::ZERO, |r| r.1);
                    self.next_claim_ns = received_ns + every.as_nanos() as u64;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::entries::Entry;

    const MS: u64 = 1_000_000;

    fn batch(ids: &[&str], cursor: Option<&str>) -> Batch {
        Batch {
            entries: (ids.iter())
                .map(|id| Entry {
                    key: 0,
                    id: id.as_bytes().to_vec(),
                    header: None,
                    aggregate: None,
                    kind: None,
                })
                .collect(),
            cursor: cursor.map(str::to_string),
            fields: Vec::new(),
        }
    }

    fn own(after: &str) -> Read {
        Read::OwnPending {
            after: vec![after.to_string()],
        }
    }

    /// A consumer owning two partitions walks both pending lists at once,
    /// each from its own last id, until neither has anything left.
    #[test]
    fn the_own_pel_of_each_key_is_walked_to_its_end() {
        let mut c = Cursors::new(None, 2);
        c.start_over();
        let first = c.next(0);
        let both = |a: &str, b: &str| Read::OwnPending {
            after: vec![a.into(), b.into()],
        };
        assert_eq!(first, both("0", "0"));
        let mut read = batch(&["1-0", "4-0", "2-0"], None);
        read.entries[2].key = 1;
        c.advance(&first, &read, MS);
        assert_eq!(c.next(MS), both("4-0", "2-0"));
        let mut read = batch(&["3-0"], None);
        read.entries[0].key = 1;
        c.advance(&both("4-0", "2-0"), &read, MS);
        assert_eq!(c.next(MS), both("4-0", "3-0"));
        c.advance(&both("4-0", "3-0"), &batch(&[], None), MS);
        assert_eq!(c.next(MS), Read::New);
    }

    #[test]
    fn without_reclaim_or_a_failure_it_reads_new_entries() {
        let mut c = Cursors::new(None, 1);
        assert_eq!(c.next(0), Read::New);
        c.advance(&Read::New, &batch(&["1-0"], None), MS);
        assert_eq!(c.next(2 * MS), Read::New);
    }

    #[test]
    fn the_own_pel_is_walked_from_0_to_its_end() {
        let mut c = Cursors::new(None, 1);
        c.start_over();
        assert_eq!(c.next(0), own("0"));
        c.advance(&own("0"), &batch(&["1-0", "2-0"], None), MS);
        assert_eq!(c.next(MS), own("2-0"));
        c.advance(&own("2-0"), &batch(&[], None), 2 * MS);
        assert_eq!(c.next(2 * MS), Read::New);
    }

    /// A failed XACK (or a restart) while a read of the own PEL is out:
    /// that read's reply must not move the walk past the entries left
    /// pending, which may lie before its ids.
    #[test]
    fn starting_over_wins_over_the_read_in_flight() {
        let mut c = Cursors::new(None, 1);
        c.start_over();
        let read = c.next(0);
        c.start_over();
        c.advance(&read, &batch(&["7-0"], None), MS);
        assert_eq!(c.next(MS), own("0"));
        c.start_over();
        c.advance(&own("0"), &batch(&[], None), MS);
        assert_eq!(c.next(MS), own("0"), "an empty reply ends no walk either");
    }

    /// An XACK that failed in front of a read of new entries: the entries
    /// read are worked on, and the next read goes back to the own PEL.
    #[test]
    fn a_failed_xack_before_new_entries_sends_the_next_read_to_the_own_pel() {
        let mut c = Cursors::new(None, 1);
        let read = c.next(0);
        assert_eq!(read, Read::New);
        c.start_over();
        c.advance(&read, &batch(&["9-0"], None), MS);
        assert_eq!(c.next(MS), own("0"));
    }

    #[test]
    fn reclaims_scan_cursor_by_cursor_then_wait_their_period() {
        let min_idle = Duration::from_millis(500);
        let mut c = Cursors::new(Some((min_idle, Duration::from_millis(100))), 1);
        let first = c.next(0);
        assert_eq!(
            first,
            Read::Claim {
                cursor: "0-0".into(),
                min_idle
            }
        );
        c.advance(&first, &batch(&["1-0"], Some("5-0")), MS);
        let second = c.next(MS);
        assert_eq!(
            second,
            Read::Claim {
                cursor: "5-0".into(),
                min_idle
            }
        );
        c.advance(&second, &batch(&[], Some("0-0")), 2 * MS);
        assert_eq!(c.next(2 * MS), Read::New, "scan complete");
        assert_eq!(c.next(101 * MS), Read::New);
        assert!(matches!(c.next(102 * MS), Read::Claim { cursor, .. } if cursor == "0-0"));
    }

    #[test]
    fn the_own_pel_comes_before_a_reclaim_that_is_due() {
        let mut c = Cursors::new(Some((Duration::from_secs(1), Duration::from_secs(1))), 1);
        c.start_over();
        assert_eq!(c.next(0), own("0"));
    }
}
