//! The terminal's lines for runs split over several processes
//! (docs/segments.md, "One report"): a segment says what its figures are
//! not, a merged run lists each segment's own.

use std::fmt::Write as _;

use crate::metrics::segment::cross_segment_error_ns;
use crate::report::Summary;

pub(super) fn segment_lines(out: &mut String, s: &Summary) {
    if let Some(seg) = &s.segment {
        let _ = writeln!(
            out,
            "segment  {}/{} of run {}: this process's share. Its raw ledgers are in \
             ledger.json: `streamdrill merge` settles the run and judges the SLOs.",
            seg.index, seg.count, s.run_id
        );
        let _ = writeln!(
            out,
            "         clock offset to Redis {:+.1} µs ± {:.1} µs (round trip {:.1} µs){}{}",
            seg.clock.offset_ns as f64 / 1e3,
            seg.clock.uncertainty_ns as f64 / 1e3,
            seg.clock.rtt_ns as f64 / 1e3,
            match seg.clock_end {
                Some(end) => format!(", {:+.1} µs at the end", end.offset_ns as f64 / 1e3),
                None => String::new(),
            },
            match seg.unfinished.is_empty() {
                true => String::new(),
                false => format!("; segments not finished at read-back: {:?}", seg.unfinished),
            }
        );
    }
    let Some(rows) = &s.segments else { return };
    let _ = writeln!(
        out,
        "segments   planned      sent     acked  errors  produce p99  processings  clock offset"
    );
    for r in rows {
        match &r.dir {
            None => {
                let _ = writeln!(
                    out,
                    "{:<8} {:>9}  missing: its events are unaccounted for",
                    r.index, r.planned_events
                );
            }
            Some(_) => {
                let _ = writeln!(
                    out,
                    "{:<8} {:>9} {:>9} {:>9} {:>7} {:>9}µs  {:>11}  {:+.1}±{:.1}µs",
                    r.index,
                    r.planned_events,
                    r.produce_sent,
                    r.produce_acked,
                    r.produce_errors,
                    r.produce_p99_us,
                    r.processings.iter().sum::<u64>(),
                    r.clock.offset_ns as f64 / 1e3,
                    r.clock.uncertainty_ns as f64 / 1e3,
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "         e2e across segments uncertain by up to {:.1} µs (the two largest clock-offset \
         uncertainties, drift over the run included)",
        cross_segment_error_ns(rows) as f64 / 1e3
    );
}
