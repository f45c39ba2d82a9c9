//! What a segment of a run split over several processes records for the
//! merge (docs/segments.md, "One report"): its place and clock, and its raw
//! ledgers (`ledger.json`), from which `merge` settles the run exactly as
//! one process would have: per event, whichever segment sent it and
//! whichever processed it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::ledger::{BitSet, COUNT_MAX, EventKey, GroupLedger, PENDING, ProduceLedger, UNREAD};
use super::ledger::{delivered_count, processed_count};

/// The offset of Redis `TIME` from a process's clock (Redis minus local),
/// measured from the fastest of several round trips.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub struct ClockOffset {
    pub offset_ns: i64,
    /// The offset is right to within this: half the round trip, plus half
    /// of TIME's microsecond.
    pub uncertainty_ns: u64,
    pub rtt_ns: u64,
}

impl SegmentFigures {
    /// The most this segment's run clock may be off Redis's during the run:
    /// the offset's uncertainty, plus how far the clocks drifted apart.
    pub fn clock_error_ns(&self) -> u64 {
        let drift = self
            .clock_end
            .map_or(0, |end| end.offset_ns.abs_diff(self.clock.offset_ns));
        self.clock.uncertainty_ns + drift
    }
}

/// The most an end-to-end latency between two segments can be off: each
/// started its clock at the common instant as its offset placed it, so
/// the two largest clock errors add up.
pub fn cross_segment_error_ns(rows: &[SegmentFigures]) -> u64 {
    let mut errors: Vec<u64> = rows.iter().map(SegmentFigures::clock_error_ns).collect();
    errors.sort_unstable_by(|a, b| b.cmp(a));
    errors.iter().take(2).sum()
}

/// summary.json `segment`: which share of the run this was.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct SegmentRun {
    pub index: u32,
    pub count: u32,
    /// The Redis key the segments met at.
    pub meeting: String,
    /// At arrival: the run clock is placed by it.
    pub clock: ClockOffset,
    /// Measured again after the read-back: the difference is the drift
    /// between the two clocks over the run. None when it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_end: Option<ClockOffset>,
    /// Segments that had not finished when this one read Redis back (they
    /// died, or ran past `--segment-wait`).
    #[serde(default)]
    pub unfinished: Vec<u32>,
}

/// A merged run's `segments`: each segment's own figures beside the merged ones.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct SegmentFigures {
    pub index: u32,
    /// Its run directory's name; None for a segment whose directory was not given.
    pub dir: Option<String>,
    pub clock: ClockOffset,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_end: Option<ClockOffset>,
    pub produce_sent: u64,
    pub produce_acked: u64,
    pub produce_errors: u64,
    pub produce_p99_us: u64,
    /// Per group, in scenario order, the processings of its consumers here.
    pub processings: Vec<u64>,
    /// Producer events planned for this segment (measured and warmup);
    /// for a missing segment, what nobody can account for.
    pub planned_events: u64,
}

/// `ledger.json`: the producers this segment ran, and per group what its
/// consumers did with every event, before anything was settled.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct LedgerFile {
    pub index: u32,
    pub count: u32,
    pub producers: Vec<ProducerRecord>,
    pub groups: Vec<GroupRecord>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ProducerRecord {
    pub id: u32,
    pub sent: u64,
    pub measured_from: Option<u64>,
    /// Bit sets, as little-endian 64-bit words in base64.
    pub acked: String,
    pub failed: String,
    pub unreplicated: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct GroupRecord {
    pub name: String,
    /// Per producer id, one byte per sequence number (`GroupLedger`'s cells), base64.
    pub cells: Vec<String>,
    pub dead_letters: Vec<String>,
    pub unexpected_entries: u64,
    pub in_progress: Vec<EventKey>,
    pub readback_failed: Option<String>,
    pub trimmed_head: Option<u64>,
}

impl LedgerFile {
    /// `run`: the producer ids this segment ran (the others' ledgers are empty).
    pub fn new(
        index: u32,
        count: u32,
        produced: &[ProduceLedger],
        run: impl Fn(u32) -> bool,
        groups: &[(String, &GroupLedger)],
    ) -> LedgerFile {
        let producers = (0..)
            .zip(produced)
            .filter(|(id, _)| run(*id))
            .map(|(id, l)| ProducerRecord {
                id,
                sent: l.sent,
                measured_from: l.measured_from,
                acked: bits(&l.acked),
                failed: bits(&l.failed),
                unreplicated: bits(&l.unreplicated),
            })
            .collect();
        let groups = (groups.iter())
            .map(|(name, g)| GroupRecord {
                name: name.clone(),
                cells: g.per_producer.iter().map(|c| STANDARD.encode(c)).collect(),
                dead_letters: g.dead_letters.iter().map(bits).collect(),
                unexpected_entries: g.unexpected_entries,
                in_progress: {
                    let mut keys: Vec<EventKey> = g.in_progress.iter().copied().collect();
                    keys.sort();
                    keys
                },
                readback_failed: g.readback_failed.clone(),
                trimmed_head: g.trimmed_head,
            })
            .collect();
        LedgerFile {
            index,
            count,
            producers,
            groups,
        }
    }
}

impl ProducerRecord {
    pub fn ledger(&self) -> Result<ProduceLedger, String> {
        Ok(ProduceLedger {
            sent: self.sent,
            acked: unbits(&self.acked)?,
            failed: unbits(&self.failed)?,
            unreplicated: unbits(&self.unreplicated)?,
            measured_from: self.measured_from,
        })
    }
}

impl GroupRecord {
    /// Adds this segment's record of the group to `into` (sized for every
    /// producer): processings and deliveries add up per event (saturating
    /// as the cells do), the read-back's marks and dead letters join.
    pub fn add_to(&self, into: &mut GroupLedger) -> Result<(), String> {
        if into.per_producer.len() < self.cells.len() {
            into.per_producer.resize(self.cells.len(), Vec::new());
            into.dead_letters
                .resize(self.cells.len(), BitSet::default());
        }
        for (p, encoded) in self.cells.iter().enumerate() {
            let cells = STANDARD.decode(encoded).map_err(|e| e.to_string())?;
            let mine = &mut into.per_producer[p];
            if mine.len() < cells.len() {
                mine.resize(cells.len(), 0);
            }
            for (cell, add) in mine.iter_mut().zip(cells) {
                *cell = add_cells(*cell, add);
            }
        }
        for (mine, encoded) in into.dead_letters.iter_mut().zip(&self.dead_letters) {
            let theirs = unbits(encoded)?;
            for seq in (0..theirs.words.len() as u64 * 64).filter(|&seq| theirs.get(seq)) {
                mine.set(seq);
            }
        }
        into.unexpected_entries += self.unexpected_entries;
        into.in_progress.extend(self.in_progress.iter().copied());
        if into.readback_failed.is_none() {
            into.readback_failed = self.readback_failed.clone();
        }
        into.trimmed_head = into.trimmed_head.max(self.trimmed_head);
        Ok(())
    }
}

/// One group's ledger over the segments that reported (`records`), for
/// events of producers `0..producers`. `forget`: producers of a segment
/// that did not report, whose events nobody can account for: left out,
/// neither lost nor unexpected.
pub fn merged_group(
    records: &[&GroupRecord],
    producers: usize,
    forget: impl Fn(u32) -> bool,
) -> Result<GroupLedger, String> {
    let mut ledger = GroupLedger::new(producers);
    for r in records {
        r.add_to(&mut ledger)?;
    }
    // A segment that could not tell trimming from loss leaves it untold.
    if records.iter().any(|r| r.trimmed_head.is_none()) {
        ledger.trimmed_head = None;
    }
    for p in (0..ledger.per_producer.len() as u32).filter(|&p| forget(p)) {
        ledger.per_producer[p as usize] = Vec::new();
        ledger.dead_letters[p as usize] = BitSet::default();
    }
    ledger.in_progress.retain(|k| !forget(k.producer));
    Ok(ledger)
}

/// Two segments' cells of one event: counts add up to `COUNT_MAX`, marks
/// join. An entry is delivered for the first time once, in one segment;
/// every segment that saw it only redelivered counted that first delivery
/// too (`GroupLedger::redelivered`), so two nonzero counts share one.
fn add_cells(a: u8, b: u8) -> u8 {
    let processed = (processed_count(a) + processed_count(b)).min(COUNT_MAX);
    let (da, db) = (delivered_count(a), delivered_count(b));
    let shared = u8::from(da > 0 && db > 0);
    let delivered = (da + db - shared).min(COUNT_MAX);
    processed | delivered << 3 | ((a | b) & (UNREAD | PENDING))
}

fn bits(set: &BitSet) -> String {
    let bytes: Vec<u8> = set.words.iter().flat_map(|w| w.to_le_bytes()).collect();
    STANDARD.encode(bytes)
}

fn unbits(encoded: &str) -> Result<BitSet, String> {
    let bytes = STANDARD.decode(encoded).map_err(|e| e.to_string())?;
    let words: Vec<u64> = (bytes.chunks(8))
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect();
    let ones = words.iter().map(|w| u64::from(w.count_ones())).sum();
    Ok(BitSet { words, ones })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two segments' halves of one group's work merge into what one ledger
    /// that saw everything holds.
    #[test]
    fn records_round_trip_and_add_up() {
        let mut produced = ProduceLedger::new();
        for seq in 0..100 {
            produced.sent_in(seq, super::super::Phase::Measured);
            produced.acked(seq);
        }
        let key = |seq| EventKey { producer: 0, seq };
        let (mut a, mut b, mut whole) = (
            GroupLedger::new(1),
            GroupLedger::new(1),
            GroupLedger::new(1),
        );
        for seq in 0..100 {
            let (half, other) = if seq % 2 == 0 {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            half.delivered(key(seq));
            whole.delivered(key(seq));
            if seq == 11 {
                // Given up on by one segment's consumer.
                half.dead_lettered(key(seq));
                whole.dead_lettered(key(seq));
            } else if seq != 7 {
                half.processed(key(seq));
                whole.processed(key(seq));
            }
            if seq == 9 {
                // A redelivery in the other segment, processed twice.
                other.redelivered(key(seq));
                other.processed(key(seq));
                whole.redelivered(key(seq));
                whole.processed(key(seq));
            }
        }
        for g in [&mut a, &mut b, &mut whole] {
            g.pending(key(7));
        }
        let file = |index, g: &GroupLedger| {
            let json = serde_json::to_string(&LedgerFile::new(
                index,
                2,
                std::slice::from_ref(&produced),
                |_| index == 0,
                &[("g".into(), g)],
            ))
            .unwrap();
            serde_json::from_str::<LedgerFile>(&json).unwrap()
        };
        let (fa, fb) = (file(0, &a), file(1, &b));
        assert_eq!((fa.producers.len(), fb.producers.len()), (1, 0));
        let merged = merged_group(&[&fa.groups[0], &fb.groups[0]], 1, |_| false).unwrap();
        let back = [Some(fa.producers[0].ledger().unwrap())];
        let (m, w) = (merged.outcome(&back), whole.outcome(&[Some(produced)]));
        assert_eq!(m.phases.measured.processed, 98);
        assert_eq!(m.phases.measured.dead_lettered, 1);
        assert_eq!(m.phases.measured.stranded, 1);
        assert_eq!(m.phases.measured.duplicates, 1);
        assert_eq!(
            m.phases, w.phases,
            "merged as one ledger would have settled it"
        );
    }
}
