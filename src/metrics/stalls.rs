//! Write stalls: stretches in which a producer had XADDs outstanding and got
//! no acknowledgement for longer than `ACK_STALL_MIN_NS`. From them, per
//! fault, how long after its start the first XADD was acknowledged again
//! (by any producer) and when every producer's were.
//!
//! A producer's `StallTracker` is told of each XADD sent and acknowledged
//! (producers sharing a connection interleave in one pipeline; repeats
//! within a pipeline change nothing, and each is a compare and a store, no
//! allocation) and ships what it saw with its interval report; the
//! collector keeps every producer's stalls in `WriteStalls`.
//! Time only counts while the producer waits for a reply (or is crashed):
//! a producer with nothing due is not stalled, so a slow schedule records
//! nothing, and in a healthy run no stall is recorded at all.

/// Shortest wait without an acknowledgement that is recorded: far above a
/// healthy XADD round trip (well under 1 ms on a LAN), so only faults,
/// overload and WAIT timeouts show up. Also the resolution of the figures:
/// a producer without a stall at a fault's start was acknowledged within it.
pub const ACK_STALL_MIN_NS: u64 = 50_000_000;

/// No acknowledgement from `since_ns` (run clock) until `resumed_ns`; None:
/// still none when the producer finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckStall {
    /// The producer's last acknowledgement before the stall (None: none yet).
    /// A producer that sends rarely may start waiting well after a fault
    /// began; it is that fault's stall if nothing was acknowledged between.
    pub after_ack_ns: Option<u64>,
    pub since_ns: u64,
    pub resumed_ns: Option<u64>,
}

/// What one producer ships with each interval report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StallReport {
    pub producer: u32,
    /// Stalls that ended in this interval.
    pub closed: Vec<AckStall>,
    /// Waiting without an acknowledgement since then, as the report leaves.
    pub open_since_ns: Option<u64>,
    /// The last acknowledgement so far.
    pub last_ack_ns: Option<u64>,
}

/// One producer's stall detector.
#[derive(Debug, Default)]
pub struct StallTracker {
    producer: u32,
    /// Since when the producer has waited with XADDs outstanding and no
    /// acknowledgement: the last ack, or the send that came after it.
    waiting_since_ns: Option<u64>,
    last_ack_ns: Option<u64>,
    closed: Vec<AckStall>,
}

impl StallTracker {
    pub fn new(producer: u32) -> Self {
        StallTracker {
            producer,
            ..Default::default()
        }
    }

    /// A pipeline went out at `now_ns`.
    pub fn sent(&mut self, now_ns: u64) {
        self.waiting_since_ns.get_or_insert(now_ns);
    }

    /// The producer crashed at `now_ns`: it wants to write and cannot, so
    /// the outage counts until its first acknowledgement after the restart.
    pub fn interrupted(&mut self, now_ns: u64) {
        self.sent(now_ns);
    }

    /// A reply with at least one acknowledged XADD came at `now_ns`;
    /// `in_flight`: other pipelines are still out (they wait from now on).
    pub fn acked(&mut self, now_ns: u64, in_flight: bool) {
        if let Some(since_ns) = self.waiting_since_ns.take()
            && now_ns.saturating_sub(since_ns) >= ACK_STALL_MIN_NS
        {
            self.closed.push(AckStall {
                after_ack_ns: self.last_ack_ns,
                since_ns,
                resumed_ns: Some(now_ns),
            });
        }
        self.waiting_since_ns = in_flight.then_some(now_ns);
        self.last_ack_ns = Some(now_ns);
    }

    /// The interval's closed stalls and the open one, leaving none behind.
    pub fn take(&mut self) -> StallReport {
        StallReport {
            producer: self.producer,
            closed: std::mem::take(&mut self.closed),
            open_since_ns: self.waiting_since_ns,
            last_ack_ns: self.last_ack_ns,
        }
    }
}

/// Every producer's stalls over the run, kept by the collector.
#[derive(Clone, Debug, Default)]
pub struct WriteStalls {
    /// By producer id.
    producers: Vec<Producer>,
}

#[derive(Clone, Debug, Default)]
struct Producer {
    stalls: Vec<AckStall>,
    /// As its last report said.
    open_since_ns: Option<u64>,
    last_ack_ns: Option<u64>,
}

impl WriteStalls {
    pub fn new(producers: usize) -> Self {
        WriteStalls {
            producers: vec![Producer::default(); producers],
        }
    }

    pub fn add(&mut self, report: StallReport) {
        if let Some(p) = self.producers.get_mut(report.producer as usize) {
            p.stalls.extend(report.closed);
            p.open_since_ns = report.open_since_ns;
            p.last_ack_ns = report.last_ack_ns;
        }
    }

    /// Per producer, nanoseconds from `start_ns` until it was acknowledged
    /// again: the end of the stall that was under way at `start_ns`, began
    /// within `ACK_STALL_MIN_NS` after it (replies already on their way when
    /// a fault hits still arrive), or began later with no acknowledgement
    /// since the start (a producer that sends rarely had nothing out when
    /// the fault began); 0 without one (acknowledged within that time, or
    /// not writing); None when it never was acknowledged again.
    pub fn resumed_after_ns(&self, start_ns: u64) -> Vec<Option<u64>> {
        let covers = |s: &AckStall| {
            let began_with_it = s.since_ns <= start_ns + ACK_STALL_MIN_NS;
            let nothing_acked_since = s.after_ack_ns.is_none_or(|a| a <= start_ns);
            (began_with_it || nothing_acked_since) && s.resumed_ns.is_none_or(|r| r > start_ns)
        };
        (self.producers.iter())
            .map(|p| {
                let open = p.open_since_ns.map(|since_ns| AckStall {
                    after_ack_ns: p.last_ack_ns,
                    since_ns,
                    resumed_ns: None,
                });
                match p.stalls.iter().copied().chain(open).find(covers) {
                    Some(s) => s.resumed_ns.map(|r| r - start_ns),
                    None => Some(0),
                }
            })
            .collect()
    }

    /// Seconds from `start_ns` to the first acknowledged XADD of any producer
    /// and to the moment every producer had one again (None: some never did).
    /// Both None without producers.
    pub fn resumed_after_s(&self, start_ns: u64) -> (Option<f64>, Option<f64>) {
        let each = self.resumed_after_ns(start_ns);
        let first = each.iter().flatten().min();
        let all = match each.iter().all(Option::is_some) {
            true => each.iter().flatten().max(),
            false => None,
        };
        let s = |ns: Option<&u64>| ns.map(|&ns| ns as f64 / 1e9);
        (s(first), s(all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn only_long_waits_with_xadds_outstanding_are_stalls() {
        let mut t = StallTracker::new(3);
        t.sent(0);
        t.acked(MS, false);
        // Idle for a second (nothing due): not a stall.
        t.sent(1_000 * MS);
        t.sent(1_001 * MS);
        t.acked(1_002 * MS, true);
        t.acked(1_003 * MS, false);
        assert!(t.take().closed.is_empty());
        // A 3 s freeze: the pipeline sent at 2 s waits until 5 s.
        t.sent(2_000 * MS);
        t.sent(2_010 * MS);
        t.acked(5_000 * MS, true);
        // The next one was out already: it waits from the last ack on.
        t.acked(5_001 * MS, false);
        let r = t.take();
        assert_eq!(r.producer, 3);
        let stall = AckStall {
            after_ack_ns: Some(1_003 * MS),
            since_ns: 2_000 * MS,
            resumed_ns: Some(5_000 * MS),
        };
        assert_eq!((r.closed, r.open_since_ns), (vec![stall], None));
        // A crash with nothing in flight still counts until the next ack.
        t.interrupted(6_000 * MS);
        assert_eq!(t.take().open_since_ns, Some(6_000 * MS));
        t.sent(7_000 * MS);
        t.acked(7_001 * MS, false);
        assert_eq!(t.take().closed[0].since_ns, 6_000 * MS);
    }

    /// Stalls that each began at an acknowledgement (a pipeline was out).
    fn report(producer: u32, closed: &[(u64, u64)], open: Option<u64>) -> StallReport {
        StallReport {
            producer,
            closed: (closed.iter())
                .map(|&(s, r)| AckStall {
                    after_ack_ns: Some(s * MS),
                    since_ns: s * MS,
                    resumed_ns: Some(r * MS),
                })
                .collect(),
            open_since_ns: open.map(|o| o * MS),
            last_ack_ns: closed.last().map(|&(_, r)| r * MS),
        }
    }

    #[test]
    fn a_rare_sender_stalled_by_a_fault_counts_from_the_fault() {
        // 4 events/s: acknowledged at 0.901 s, nothing out when the fault
        // begins at 1 s, the next send at 1.06 s waits until 3 s.
        let mut t = StallTracker::new(0);
        t.sent(900 * MS);
        t.acked(901 * MS, false);
        t.sent(1_060 * MS);
        t.acked(3_000 * MS, false);
        let mut w = WriteStalls::new(1);
        w.add(t.take());
        assert_eq!(w.resumed_after_ns(1_000 * MS), vec![Some(2_000 * MS)]);
        // A fault after its last acknowledgement before the stall is not it.
        assert_eq!(w.resumed_after_ns(500 * MS), vec![Some(0)]);
    }

    #[test]
    fn first_and_all_producers_back_after_a_fault() {
        let mut w = WriteStalls::new(3);
        w.add(report(0, &[(999, 1_800)], None));
        // Its last reply before the kill came just after the start.
        w.add(report(1, &[(100, 200), (1_020, 2_500)], Some(9_000)));
        w.add(report(2, &[], None)); // never stalled (another stream, say)
        assert_eq!(
            w.resumed_after_ns(1_000 * MS),
            vec![Some(800 * MS), Some(1_500 * MS), Some(0)]
        );
        assert_eq!(w.resumed_after_s(1_000 * MS), (Some(0.0), Some(1.5)));
        // Without producer 2, the first XADD back is producer 0's.
        let mut two = WriteStalls::new(2);
        two.add(report(0, &[(999, 1_800)], None));
        two.add(report(1, &[(1_020, 2_500)], Some(9_000)));
        assert_eq!(two.resumed_after_s(1_000 * MS), (Some(0.8), Some(1.5)));
        // A fault the open stall covers: producer 1 never came back.
        assert_eq!(two.resumed_after_s(9_010 * MS), (Some(0.0), None));
        assert_eq!(WriteStalls::new(0).resumed_after_s(0), (None, None));
        // Reports of unknown producers are ignored.
        two.add(report(7, &[(1, 2)], None));
    }
}
