//! The terminal table's replay rows, in its event-sourcing part: per group
//! with `replay`, the rebuild from the start and, with snapshots, the one
//! from snapshots + tail, and what compaction did to the stream
//! (docs/event-sourcing.md, "Replay and snapshots"). Only runs with a
//! replaying group have them.

use std::fmt::Write;

use super::fit;
use crate::metrics::replay::ReplayPass;
use crate::report::summary::Summary;

pub(super) fn replay_table(out: &mut String, s: &Summary) {
    let replaying: Vec<_> = (s.groups.iter())
        .filter_map(|g| Some((g, g.replay.as_ref()?)))
        .collect();
    if replaying.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<18}{:<10}{:>8}{:>9}{:>7}{:>9}{:>10}{:>10}{:>10}",
        "replay", "from", "read", "applied", "ckpts", "seconds", "events/s", "divergent", "vs-live"
    );
    for (g, r) in replaying {
        let raw = &r.raw_read;
        let _ = writeln!(
            out,
            "{:<18}{:<10}{:>8}{:>9}{:>7}{:>9.3}{:>10.0}",
            fit(&g.name, 17),
            "read only",
            raw.events_read,
            "-",
            "-",
            raw.seconds,
            raw.events_per_s
        );
        row(out, "", "start", &r.full);
        if let Some(snap) = &r.snapshots {
            row(out, "", "snapshots", &snap.tail);
            let memory = match (snap.memory_bytes_before, snap.memory_bytes_after) {
                (Some(b), Some(a)) => format!(", KiB {} -> {}", b / 1024, a / 1024),
                _ => String::new(),
            };
            let compaction = match snap.compacted {
                true => format!("compacted ({} trimmed)", snap.trimmed),
                false => "not compacted".to_string(),
            };
            let _ = writeln!(
                out,
                "  snapshot every {}: {} written; {compaction}",
                snap.every, snap.written
            );
            let _ = writeln!(
                out,
                "  stream: XLEN {} -> {}{memory}",
                snap.length_before, snap.length_after
            );
        }
        if let Some(why) = &r.error {
            let _ = writeln!(out, "  stopped: {why}");
        }
    }
    let _ = writeln!(
        out,
        "  each projection rebuilt from its stream after the run (docs/event-sourcing.md)"
    );
}

fn row(out: &mut String, label: &str, from: &str, p: &ReplayPass) {
    let _ = writeln!(
        out,
        "{:<18}{:<10}{:>8}{:>9}{:>7}{:>9.3}{:>10.0}{:>10}{:>10}",
        label,
        from,
        p.events_read,
        p.events_applied,
        p.checkpoints,
        p.seconds,
        p.events_per_s,
        p.divergent,
        p.divergent_from_live
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::replay::{ReplayReport, SnapshotReport};

    #[test]
    fn only_replaying_groups_have_rows_and_they_fit() {
        let mut s = crate::report::summary::tests::test_summary();
        let mut out = String::new();
        replay_table(&mut out, &s);
        assert!(out.is_empty());
        s.groups[0].replay = Some(ReplayReport {
            mode: "idempotent".into(),
            batch: 500,
            checkpoint_every: 1000,
            full: ReplayPass {
                events_read: 8000,
                events_applied: 8000,
                checkpoints: 8,
                ..ReplayPass::default()
            },
            snapshots: Some(SnapshotReport {
                every: 20,
                written: 375,
                compacted: true,
                trimmed: 6911,
                length_before: 8000,
                length_after: 1089,
                memory_bytes_before: Some(3_073_574),
                memory_bytes_after: Some(424_426),
                ..SnapshotReport::default()
            }),
            error: None,
            ..ReplayReport::default()
        });
        replay_table(&mut out, &s);
        assert!(out.contains("read only"));
        assert!(
            out.contains(
                "compacted (6911 trimmed)\n  stream: XLEN 8000 -> 1089, KiB 3001 -> 414\n"
            )
        );
        // Ten-digit counts still fit.
        let r = s.groups[0].replay.as_mut().unwrap();
        let big = 9_999_999_999;
        let snap = r.snapshots.as_mut().unwrap();
        (snap.every, snap.written, snap.trimmed) = (big, big, big);
        (snap.length_before, snap.length_after) = (big, big);
        (snap.memory_bytes_before, snap.memory_bytes_after) = (Some(big * 1024), Some(big * 1024));
        replay_table(&mut out, &s);
        for line in out.lines() {
            assert!(line.chars().count() <= super::super::MAX_WIDTH, "{line}");
        }
    }
}
