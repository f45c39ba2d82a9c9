//! index.html's "Segments" section: a run split over several processes,
//! merged (docs/segments.md, "One report"): each segment's own figures, its
//! clock offset to Redis, and what a missing segment leaves unaccounted for.

use super::{esc, table};
use crate::metrics::segment::cross_segment_error_ns;
use crate::report::summary::Summary;

pub(super) fn segments_section(summary: &Summary) -> String {
    if let Some(seg) = &summary.segment {
        return format!(
            "<h2>Segment</h2>\n<p>Segment {}/{} of run {}: this process's share. Its \
             ledger figures above are that share's alone (what other segments processed \
             reads as lost here); its raw ledgers are in <code>ledger.json</code>, and \
             <code>streamdrill merge</code> settles the run and judges the SLOs.</p>\n",
            seg.index,
            seg.count,
            esc(&summary.run_id)
        );
    }
    let Some(rows) = &summary.segments else {
        return String::new();
    };
    let cells: Vec<Vec<String>> = (rows.iter())
        .map(|r| match &r.dir {
            None => vec![
                r.index.to_string(),
                "missing: its events are unaccounted for".into(),
                r.planned_events.to_string(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ],
            Some(dir) => vec![
                r.index.to_string(),
                esc(dir),
                r.planned_events.to_string(),
                r.produce_sent.to_string(),
                r.produce_acked.to_string(),
                format!("{} µs", r.produce_p99_us),
                r.processings.iter().sum::<u64>().to_string(),
                format!(
                    "{:+.1} ± {:.1} µs",
                    r.clock.offset_ns as f64 / 1e3,
                    r.clock.uncertainty_ns as f64 / 1e3
                ),
            ],
        })
        .collect();
    let headers = [
        "segment",
        "directory",
        "planned",
        "sent",
        "acked",
        "produce p99",
        "processings",
        "clock offset to Redis",
    ];
    format!(
        "<h2>Segments</h2>\n<p>{} processes ran this run; their figures above are merged from \
         raw histograms and per-event ledgers. An end-to-end latency measured across two \
         segments is uncertain by up to {:.1} µs (the two largest offset uncertainties, drift \
         over the run included).</p>\n{}",
        rows.len(),
        cross_segment_error_ns(rows) as f64 / 1e3,
        table(&headers, &cells)
    )
}
