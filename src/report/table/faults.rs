//! The terminal table's fault timeline (when each fault ran, whether it
//! was applied, how the run recovered) and the durability read-back.

use std::fmt::Write;

use super::{clip, fit, key_sample, wrapped};
use crate::metrics::durability::GoneRange;
use crate::report::summary::Summary;

/// One row per fault: whether it was applied, when it ran and how fast the
/// run recovered; then why each fault not applied was not (it fails the
/// run), and how many connections CLIENT KILL closed.
pub(super) fn fault_table(out: &mut String, s: &Summary) {
    if s.faults.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<32} {:>7} {:>7} {:>7} {:>13} {:>9} {:>9} {:>9}",
        "faults", "applied", "start", "end", "writes back", "in flight", "recovered", "lag back"
    );
    let secs = |v: Option<f64>| v.map_or("never".to_string(), |s| format!("{s:.2}s"));
    for f in &s.faults {
        // Runs written before these figures existed show "-".
        let writes = match (f.first_write_after_s, f.all_writes_after_s) {
            (None, None) if f.in_flight_at_start.is_none() => "-".to_string(),
            (first, all) => format!("{}/{}", secs(first).trim_end_matches('s'), secs(all)),
        };
        let recovered = match f.in_flight_at_start {
            None => "-".to_string(),
            Some(_) => secs(f.recovered_after_s),
        };
        let line = format!(
            "{:<32} {:>7} {:>6.1}s {:>6.1}s {:>13} {:>9} {:>9} {:>9}",
            fit(&f.name, 32),
            if f.applied { "yes" } else { "NO" },
            f.start_s,
            f.end_s,
            writes,
            f.in_flight_at_start.map_or("-".into(), |n| n.to_string()),
            recovered,
            secs(f.lag_recovered_after_s)
        );
        let _ = writeln!(out, "{}", clip(&line));
    }
    let _ = writeln!(
        out,
        "  writes back: first/all producers acked again, and recovered: the events in flight"
    );
    let _ = writeln!(
        out,
        "  at the start all processed, both from the start; lag back: from the end"
    );
    if let Some(segment) = s.faults.iter().find_map(|f| f.segment) {
        let _ = writeln!(
            out,
            "  merged run: each fault's figures are the view of the segment that applied it \
             (e.g. segment {segment}): its producers and consumers only"
        );
    }
    for f in &s.faults {
        if !f.applied {
            let why = f.error.as_deref().unwrap_or("no reason recorded");
            let text = format!("NOT APPLIED {} at {:.1}s: {why}", f.name, f.start_s);
            wrapped(out, "  ", &text);
        }
        if let Some(n) = f.clients_killed {
            let _ = writeln!(out, "  {} closed {n} connections", fit(&f.name, 60));
        }
    }
}

pub(super) fn durability_lines(out: &mut String, s: &Summary) {
    if let Some(fs) = &s.power_fs {
        let line = format!(
            "power-loss fs  {} writes ({:.1} MB, mean {:.0}µs), {} fsyncs (mean {:.0}µs), {} cut(s)",
            fs.writes,
            fs.written_bytes as f64 / 1e6,
            fs.write_mean_us,
            fs.fsyncs,
            fs.fsync_mean_us,
            fs.cuts
        );
        let _ = writeln!(out, "{}", clip(&line));
    }
    let Some(d) = &s.durability else { return };
    let mut line = format!(
        "durability  acked {}  ACKED BUT GONE {}  indeterminate {} (landed {})",
        d.acked, d.acked_but_gone, d.indeterminate, d.indeterminate_landed
    );
    // With WAIT, gone writes it had flagged unreplicated were known risks.
    if let Some(silent) = d.acked_but_gone_silent.filter(|&n| n != d.acked_but_gone) {
        let flagged = d.acked_but_gone - silent;
        line.push_str(&format!(
            "  gone: {flagged} flagged by WAIT, {silent} silent"
        ));
    }
    let _ = writeln!(out, "{}", clip(&line));
    key_sample(out, "gone", &d.gone_sample);
    const SHOWN: usize = 3;
    for r in d.gone_ranges.iter().take(SHOWN) {
        let _ = writeln!(
            out,
            "{}",
            clip(&format!("  {}", gone_range(r, s.started_at_unix_s)))
        );
    }
    if d.gone_ranges.len() > SHOWN {
        let _ = writeln!(
            out,
            "  ... {} more gone ranges in summary.json",
            d.gone_ranges.len() - SHOWN
        );
    }
}

/// "producer 0 seq 5001-8000: 3000 gone, intended between 5.000 s and 8.001 s"
/// (times from the run's start; the survivors around the range bound it).
pub(crate) fn gone_range(r: &GoneRange, started_at_unix_s: f64) -> String {
    let at = |ns: Option<u64>| {
        ns.map_or("-".to_string(), |ns| {
            format!("{:.3} s", ns as f64 / 1e9 - started_at_unix_s)
        })
    };
    let window = match (r.after_unix_ns, r.before_unix_ns) {
        (None, None) => "no event of it survived".to_string(),
        (after, None) => format!("intended after {} (nothing later survived)", at(after)),
        (after, before) => format!("intended between {} and {}", at(after), at(before)),
    };
    format!(
        "producer {} seq {}-{}: {} gone, {window}",
        r.producer, r.first_seq, r.last_seq, r.count
    )
}
