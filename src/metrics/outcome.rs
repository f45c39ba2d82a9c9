//! Settling a group's ledger at the end of a run: every event a producer of
//! its stream sent, judged by what the group did with it and what Redis still
//! held, phase by phase (docs/measurement.md, "Accounting").
//!
//! The outcomes of *acknowledged* events partition them, so they add up:
//! `produced_acked = processed + dead_lettered + in_progress + unread +
//! stranded + unknown + trimmed_unread + lost`. Beside the partition: duplicates, redeliveries
//! and the delivery-count distribution (over every event sent), writes that
//! got no acknowledgement yet reached the group (`unacked_landed`), and,
//! for the whole run, entries that were never sent at all (`unexpected`).

use serde::{Deserialize, Serialize};

use super::deliveries::DeliveryCounts;
use super::ledger::{
    BitSet, EventKey, GroupLedger, PENDING, ProduceLedger, UNREAD, delivered_count, processed_count,
};
use super::stats::Phased;

/// How many lost keys the outcome lists by name.
pub const LOST_SAMPLE_LEN: usize = 20;

/// One phase's verdict for one group. Counts are distinct events.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct LedgerOutcome {
    /// Events of the group's stream Redis acknowledged to the producers.
    pub produced_acked: u64,
    /// Acknowledged events processed at least once.
    pub processed: u64,
    /// Acknowledged, never processed, moved to the dead-letter stream after
    /// `max_deliveries`: given up on, but accounted for.
    pub dead_lettered: u64,
    /// Acknowledged, delivered, and still unfinished in a live consumer's
    /// hands when the run ended (it was stopped mid-batch): not lost.
    pub in_progress: u64,
    /// Acknowledged, never delivered, still in the stream beyond the group's
    /// cursor after the drain: the group had not caught up. Not lost.
    pub unread: u64,
    /// Acknowledged, delivered, never processed, still pending in the group:
    /// a consumer died or stalled with it.
    pub stranded: u64,
    /// Acknowledged and unprocessed, but Redis could not be read back after
    /// the drain, so unread, stranded and lost cannot be told apart.
    pub unknown: u64,
    /// Acknowledged, never delivered to the group, and removed by trimming
    /// before it read them (docs/measurement.md, "Trimmed before read").
    #[serde(default)]
    pub trimmed_unread: u64,
    /// Acknowledged, never processed, and no longer in Redis (trimmed,
    /// deleted, gone with a restart, or delivered with NOACK to a consumer
    /// that died with it).
    pub lost: u64,
    /// Events processed more than once.
    pub duplicates: u64,
    /// Events delivered more than once.
    pub redelivered: u64,
    /// Events by how often they were delivered.
    pub delivery_counts: DeliveryCounts,
    /// Writes that got an error or no reply, yet the group processed or
    /// dead-lettered them: they landed after all. Outside the partition.
    pub unacked_landed: u64,
}

/// A group's whole verdict: per phase, plus what has no phase.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct GroupOutcome {
    pub phases: Phased<LedgerOutcome>,
    /// Processed entries that were never sent (unknown producer, sequence
    /// beyond what was sent) or not streamdrill events: entries, not events.
    pub unexpected: u64,
    /// The first lost keys (at most `LOST_SAMPLE_LEN`), either phase, in
    /// producer then sequence order.
    pub lost_sample: Vec<EventKey>,
    /// Why Redis could not be read back after the drain, if it could not.
    pub readback_failed: Option<String>,
    /// The read-back found only head trimming, yet more events were gone
    /// unread than Redis trimmed: none was put down to trimming.
    pub trim_refused: bool,
}

impl GroupLedger {
    /// Compares what this group saw with what producers sent; `produced[p]`
    /// is the ledger of producer `p`, or `None` for a producer that writes
    /// another stream (its events are none of this group's business: one that
    /// shows up here anyway is unexpected).
    pub fn outcome<L: std::borrow::Borrow<ProduceLedger>>(
        &self,
        produced: &[Option<L>],
    ) -> GroupOutcome {
        let parts = self.parts();
        let out = settle(&parts, produced, parts.trimmed_head.is_some());
        // More events trimmed unread than Redis says it trimmed: something
        // else removed entries too, so none of them is put down to trimming.
        let trimmed = out.phases.warmup.trimmed_unread + out.phases.measured.trimmed_unread;
        match parts.trimmed_head {
            Some(removed) if trimmed > removed => GroupOutcome {
                trim_refused: true,
                ..settle(&parts, produced, false)
            },
            _ => out,
        }
    }
}

/// The outcome of every event; `trimmed_head`: gone events the group never
/// had delivered count as trimmed unread rather than lost.
fn settle<L: std::borrow::Borrow<ProduceLedger>>(
    parts: &super::ledger::LedgerParts,
    produced: &[Option<L>],
    trimmed_head: bool,
) -> GroupOutcome {
    let mut out = GroupOutcome {
        unexpected: parts.unexpected_entries,
        readback_failed: parts.readback_failed.map(str::to_string),
        ..Default::default()
    };
    let none = BitSet::default();
    let producers = parts.cells.len().max(produced.len());
    for producer in 0..producers {
        let cells = parts.cells.get(producer).map_or(&[][..], Vec::as_slice);
        match produced.get(producer).and_then(Option::as_ref) {
            Some(ledger) => {
                let marks = Marks {
                    cells,
                    dead: parts.dead_letters.get(producer).unwrap_or(&none),
                    in_progress: parts.in_progress,
                    readback_failed: parts.readback_failed.is_some(),
                    trimmed_head,
                };
                tally_producer(&mut out, producer as u32, marks, ledger.borrow());
            }
            None => {
                out.unexpected += cells.iter().filter(|&&c| processed_count(c) > 0).count() as u64
            }
        }
    }
    out
}

/// What a group ledger knows of one producer's events.
#[derive(Clone, Copy)]
struct Marks<'a> {
    cells: &'a [u8],
    dead: &'a BitSet,
    in_progress: &'a std::collections::HashSet<EventKey>,
    readback_failed: bool,
    trimmed_head: bool,
}

fn tally_producer(out: &mut GroupOutcome, producer: u32, marks: Marks, ledger: &ProduceLedger) {
    for seq in 0..ledger.sent_count() {
        let key = EventKey { producer, seq };
        let cell = marks.cells.get(seq as usize).copied().unwrap_or(0);
        let phase = ledger.phase_of(seq);
        let event = Event {
            cell,
            acked: ledger.is_acked(seq),
            dead: marks.dead.get(seq),
            in_progress: marks.in_progress.contains(&key),
        };
        let lost = tally_event(out.phases.get_mut(phase), event, marks);
        if lost && out.lost_sample.len() < LOST_SAMPLE_LEN {
            out.lost_sample.push(key);
        }
    }
    let beyond_sent = marks.cells.iter().skip(ledger.sent_count() as usize);
    out.unexpected += beyond_sent.filter(|&&c| processed_count(c) > 0).count() as u64;
}

/// Everything known of one sent event.
#[derive(Clone, Copy)]
struct Event {
    cell: u8,
    acked: bool,
    dead: bool,
    in_progress: bool,
}

/// Counts one sent event into its phase's outcome; true when it is lost.
fn tally_event(out: &mut LedgerOutcome, e: Event, marks: Marks) -> bool {
    let processed = processed_count(e.cell);
    let mut lost = false;
    if !e.acked {
        // Not in the partition: a failed or indeterminate write, which the
        // group seeing it proves landed.
        out.unacked_landed += u64::from(processed > 0 || e.dead);
    } else {
        out.produced_acked += 1;
        let counter = if processed > 0 {
            &mut out.processed
        } else if e.dead {
            &mut out.dead_lettered
        } else if e.in_progress {
            &mut out.in_progress
        } else if marks.readback_failed {
            &mut out.unknown
        } else if e.cell & UNREAD != 0 {
            &mut out.unread
        } else if e.cell & PENDING != 0 {
            &mut out.stranded
        } else if marks.trimmed_head && delivered_count(e.cell) == 0 {
            // Gone, and never read by the group: only head trimming removed
            // entries (docs/measurement.md, "Trimmed before read").
            &mut out.trimmed_unread
        } else {
            lost = true;
            &mut out.lost
        };
        *counter += 1;
    }
    out.duplicates += u64::from(processed > 1);
    out.redelivered += u64::from(delivered_count(e.cell) > 1);
    // A processed event was delivered, even if the harness missed the read.
    let deliveries = delivered_count(e.cell).max(u8::from(processed > 0));
    out.delivery_counts.add(deliveries);
    lost
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Phase;

    /// The partition's sum, which must equal `produced_acked`.
    fn outcomes_total(o: &LedgerOutcome) -> u64 {
        o.processed
            + o.dead_lettered
            + o.in_progress
            + o.unread
            + o.stranded
            + o.unknown
            + o.trimmed_unread
            + o.lost
    }

    fn mine(produced: &[ProduceLedger]) -> Vec<Option<&ProduceLedger>> {
        produced.iter().map(Some).collect()
    }

    fn key(producer: u32, seq: u64) -> EventKey {
        EventKey { producer, seq }
    }

    /// `n` events, all acknowledged and intended in the measured phase.
    fn acked_ledger(n: u64) -> ProduceLedger {
        phased_ledger(0, n)
    }

    /// `warmup` events intended in the warmup, then `measured` more, all acknowledged.
    fn phased_ledger(warmup: u64, measured: u64) -> ProduceLedger {
        let mut l = ProduceLedger::new();
        for seq in 0..warmup + measured {
            let phase = if seq < warmup {
                Phase::Warmup
            } else {
                Phase::Measured
            };
            l.sent_in(seq, phase);
            l.acked(seq);
        }
        l
    }

    fn deliver_and_process(g: &mut GroupLedger, k: EventKey) {
        g.delivered(k);
        g.processed(k);
    }

    /// The partition adds up in every phase (what every test checks too).
    fn assert_adds_up(out: &GroupOutcome) {
        for o in [&out.phases.warmup, &out.phases.measured] {
            assert_eq!(outcomes_total(o), o.produced_acked, "{o:?}");
        }
    }

    fn measured(out: &GroupOutcome) -> &LedgerOutcome {
        assert_adds_up(out);
        &out.phases.measured
    }

    #[test]
    fn other_streams_producers_are_not_this_groups_loss() {
        let produced = [acked_ledger(3), acked_ledger(5)];
        let mut g = GroupLedger::new(2);
        for seq in 0..3 {
            deliver_and_process(&mut g, key(0, seq));
        }
        let out = g.outcome(&[Some(&produced[0]), None]);
        let m = measured(&out);
        assert_eq!((m.processed, m.lost, m.produced_acked), (3, 0, 3));
    }

    #[test]
    fn produce_ledger_counts_and_phases() {
        let mut l = ProduceLedger::new();
        l.sent_in(0, Phase::Warmup);
        l.acked(0);
        l.acked(0);
        l.failed(1);
        l.sent_in(2, Phase::Measured);
        l.acked(130);
        assert_eq!(
            (l.sent_count(), l.acked_count(), l.failed_count()),
            (131, 2, 1)
        );
        assert!(l.is_acked(130) && l.is_acked(0));
        assert!(!l.is_acked(1) && !l.is_acked(2) && !l.is_acked(10_000));
        assert_eq!(
            [0, 1, 2, 130].map(|s| l.phase_of(s)),
            [
                Phase::Warmup,
                Phase::Warmup,
                Phase::Measured,
                Phase::Measured
            ]
        );
        assert_eq!(ProduceLedger::new().phase_of(0), Phase::Warmup);
    }

    #[test]
    fn clean_run_has_nothing_to_report() {
        let produced = vec![acked_ledger(100), acked_ledger(50)];
        let mut g = GroupLedger::new(2);
        for p in 0..2u32 {
            for seq in 0..produced[p as usize].sent_count() {
                deliver_and_process(&mut g, key(p, seq));
            }
        }
        let out = g.outcome(&mine(&produced));
        assert_eq!(
            *measured(&out),
            LedgerOutcome {
                produced_acked: 150,
                processed: 150,
                delivery_counts: DeliveryCounts([150, 0, 0, 0, 0, 0, 0]),
                ..Default::default()
            }
        );
        assert_eq!(out.phases.warmup, LedgerOutcome::default());
        assert_eq!((out.unexpected, out.lost_sample.len()), (0, 0));
    }

    #[test]
    fn each_phase_settles_its_own_events() {
        // 3 warmup events then 5 measured: one of each phase lost, one
        // measured event in progress at the end.
        let produced = vec![phased_ledger(3, 5)];
        let mut g = GroupLedger::new(1);
        for seq in [0, 2, 3, 4, 5] {
            deliver_and_process(&mut g, key(0, seq));
        }
        g.delivered(key(0, 7));
        g.in_progress(key(0, 7));
        let out = g.outcome(&mine(&produced));
        let (w, m) = (&out.phases.warmup, measured(&out));
        assert_eq!((w.produced_acked, w.processed, w.lost), (3, 2, 1));
        assert_eq!(
            (m.produced_acked, m.processed, m.in_progress, m.lost),
            (5, 3, 1, 1)
        );
        assert_eq!(out.lost_sample, vec![key(0, 1), key(0, 6)]);
        let delivered = w.delivery_counts.total() + m.delivery_counts.total();
        assert_eq!(delivered, 6, "each delivered event in its own phase");
    }

    #[test]
    fn lost_duplicates_and_redeliveries() {
        let produced = vec![acked_ledger(10)];
        let mut g = GroupLedger::new(1);
        for seq in 0..10 {
            if seq != 3 && seq != 7 {
                deliver_and_process(&mut g, key(0, seq));
            }
        }
        // Seq 4: redelivered after a consumer crash and processed twice.
        deliver_and_process(&mut g, key(0, 4));
        // Seq 5: redelivered but processed only once (crashed before processing).
        g.delivered(key(0, 5));
        // Seq 7: delivered twice, never processed.
        g.delivered(key(0, 7));
        g.delivered(key(0, 7));
        let out = g.outcome(&mine(&produced));
        let m = measured(&out);
        assert_eq!(m.produced_acked, 10);
        assert_eq!(m.processed, 8);
        assert_eq!(m.lost, 2);
        assert_eq!(out.lost_sample, vec![key(0, 3), key(0, 7)]);
        assert_eq!(m.duplicates, 1);
        assert_eq!(m.redelivered, 3);
        assert_eq!((out.unexpected, m.unacked_landed), (0, 0));
    }

    #[test]
    fn unexpected_and_indeterminate_writes() {
        let mut p0 = acked_ledger(4);
        p0.failed(4); // error reply, yet the entry landed
        p0.sent(5); // no reply at all, entry landed
        p0.sent(6); // no reply, entry never landed: neither lost nor processed
        let produced = vec![p0];
        let mut g = GroupLedger::new(3);
        for seq in 0..6 {
            deliver_and_process(&mut g, key(0, seq));
        }
        deliver_and_process(&mut g, key(0, 9)); // beyond what was sent
        deliver_and_process(&mut g, key(1, 0)); // producer with no ledger
        deliver_and_process(&mut g, key(7, 0)); // producer unknown to the group ledger
        g.processed(key(0, u64::MAX)); // corrupt sequence number
        g.unparsable();
        let out = g.outcome(&mine(&produced));
        let m = measured(&out);
        assert_eq!((m.produced_acked, m.processed, m.lost), (4, 4, 0));
        assert_eq!(m.unacked_landed, 2);
        assert_eq!(out.unexpected, 5);
    }

    #[test]
    fn silent_producer_counts_as_lost_and_sample_is_capped() {
        let produced = vec![acked_ledger(2), acked_ledger(30)];
        let mut g = GroupLedger::new(1);
        deliver_and_process(&mut g, key(0, 0));
        deliver_and_process(&mut g, key(0, 1));
        let out = g.outcome(&mine(&produced));
        let m = measured(&out);
        assert_eq!((m.produced_acked, m.processed, m.lost), (32, 2, 30));
        assert_eq!(out.lost_sample.len(), LOST_SAMPLE_LEN);
        assert_eq!(out.lost_sample[0], key(1, 0));
    }

    #[test]
    fn unread_pending_and_in_progress_marks_are_not_lost() {
        let produced = vec![acked_ledger(6)];
        let mut g = GroupLedger::new(1);
        deliver_and_process(&mut g, key(0, 0));
        g.delivered(key(0, 1));
        g.pending(key(0, 1));
        g.unread(key(0, 2));
        // Seq 4: in a live consumer's hands at the end, and pending (ack mode).
        g.delivered(key(0, 4));
        g.pending(key(0, 4));
        g.in_progress(key(0, 4));
        // Seq 5: processed once, redelivered and in hand again: processed.
        deliver_and_process(&mut g, key(0, 5));
        g.redelivered(key(0, 5));
        g.in_progress(key(0, 5));
        // seq 3: neither processed nor anywhere in Redis any more.
        let out = g.outcome(&mine(&produced));
        let m = measured(&out);
        assert_eq!(
            (m.processed, m.stranded, m.unread, m.in_progress, m.lost),
            (2, 1, 1, 1, 1)
        );
        assert_eq!(out.lost_sample, vec![key(0, 3)]);
        assert_eq!(m.produced_acked - m.processed, 4, "unprocessed");
    }

    #[test]
    fn gone_events_never_delivered_are_trimmed_unread_when_only_trimming_removed_entries() {
        let produced = vec![acked_ledger(6)];
        let mut g = GroupLedger::new(1);
        // Seqs 0-2 trimmed before the group read them; seq 3 delivered, then
        // trimmed from under it: read, so lost, not trimmed unread.
        g.delivered(key(0, 3));
        deliver_and_process(&mut g, key(0, 4));
        g.unread(key(0, 5));
        let before = g.outcome(&mine(&produced));
        assert_eq!(
            (measured(&before).lost, measured(&before).trimmed_unread),
            (4, 0)
        );
        g.trimmed_head(4);
        let out = g.outcome(&mine(&produced));
        let m = measured(&out);
        assert_eq!(
            (m.processed, m.unread, m.trimmed_unread, m.lost),
            (1, 1, 3, 1)
        );
        assert_eq!(out.lost_sample, vec![key(0, 3)]);
        // Redis trimmed fewer entries than the group misses: something else
        // removed some, so none is put down to trimming.
        g.trimmed_head(2);
        let out = g.outcome(&mine(&produced));
        assert_eq!((measured(&out).trimmed_unread, measured(&out).lost), (0, 4));
    }

    #[test]
    fn a_failed_read_back_makes_unprocessed_events_unknown() {
        let produced = vec![acked_ledger(5)];
        let mut g = GroupLedger::new(1);
        deliver_and_process(&mut g, key(0, 0));
        g.delivered(key(0, 1));
        g.in_progress(key(0, 1));
        g.dead_lettered(key(0, 2));
        g.readback_failed("XPENDING: unknown command".into());
        let out = g.outcome(&mine(&produced));
        let m = measured(&out);
        assert_eq!(
            (
                m.processed,
                m.in_progress,
                m.dead_lettered,
                m.unknown,
                m.lost
            ),
            (1, 1, 1, 2, 0)
        );
        assert!(out.lost_sample.is_empty());
        assert_eq!(
            out.readback_failed.as_deref(),
            Some("XPENDING: unknown command")
        );
    }

    #[test]
    fn dead_lettered_events_are_not_lost() {
        let produced = vec![acked_ledger(5), acked_ledger(1)];
        let mut g = GroupLedger::new(2);
        for seq in [0, 2, 4] {
            deliver_and_process(&mut g, key(0, seq));
        }
        for _ in 0..3 {
            g.redelivered(key(0, 1));
        }
        g.dead_lettered(key(0, 1));
        g.dead_lettered(key(0, 1)); // a second mark is the same event
        g.dead_lettered(key(1, 0)); // never seen delivered by the harness
        g.dead_lettered(key(5, 0)); // unknown producer: ignored
        let out = g.outcome(&mine(&produced));
        let m = measured(&out);
        assert_eq!((m.processed, m.dead_lettered, m.lost), (3, 2, 1));
        assert_eq!(out.lost_sample, vec![key(0, 3)]);
        assert_eq!((m.redelivered, m.duplicates), (1, 0));
    }

    #[test]
    fn a_pending_read_counts_as_a_redelivery_even_unseen_before() {
        let produced = vec![acked_ledger(2)];
        let mut g = GroupLedger::new(1);
        g.redelivered(key(0, 0));
        g.delivered(key(0, 1));
        g.redelivered(key(0, 1));
        g.processed(key(0, 0));
        g.processed(key(0, 1));
        let out = g.outcome(&mine(&produced));
        let m = measured(&out);
        assert_eq!((m.processed, m.redelivered, m.duplicates), (2, 2, 0));
    }

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let produced = vec![acked_ledger(1)];
        let mut g = GroupLedger::new(1);
        for _ in 0..40 {
            deliver_and_process(&mut g, key(0, 0));
        }
        let out = g.outcome(&mine(&produced));
        let m = measured(&out);
        assert_eq!((m.processed, m.duplicates, m.redelivered), (1, 1, 1));
        assert_eq!(m.delivery_counts, DeliveryCounts([0, 0, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn delivery_counts_cover_every_delivered_event() {
        let produced = vec![acked_ledger(8)];
        let mut g = GroupLedger::new(1);
        deliver_and_process(&mut g, key(0, 0)); // once
        deliver_and_process(&mut g, key(0, 1));
        deliver_and_process(&mut g, key(0, 1)); // twice, a duplicate
        g.delivered(key(0, 2));
        g.redelivered(key(0, 2));
        g.redelivered(key(0, 2));
        g.processed(key(0, 2)); // three times
        g.redelivered(key(0, 3)); // first delivery unseen: counts as two
        g.processed(key(0, 3));
        g.processed(key(0, 4)); // processed, its delivery never reported: once
        for _ in 0..9 {
            g.redelivered(key(0, 5)); // poison, dead-lettered after 7+ deliveries
        }
        g.dead_lettered(key(0, 5));
        g.delivered(key(0, 6));
        g.pending(key(0, 6)); // stranded after one delivery
        // seq 7: never delivered, lost; not in the distribution.
        let out = g.outcome(&mine(&produced));
        let m = measured(&out);
        let counts = m.delivery_counts;
        assert_eq!(counts, DeliveryCounts([3, 2, 1, 0, 0, 0, 1]));
        assert_eq!(counts.redelivered(), m.redelivered);
        assert_eq!(
            counts.total(),
            m.processed + m.stranded + m.dead_lettered + m.in_progress
        );
        assert!(g.was_processed(key(0, 4)) && !g.was_processed(key(0, 6)));
        assert!(!g.was_processed(key(3, 0)) && !g.was_processed(key(0, 1 << 40)));
    }
}
