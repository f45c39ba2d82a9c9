//! index.html's replay table, in the "Event sourcing" section: per group
//! with `replay`, its rebuilds and what compaction did to the stream
//! (docs/event-sourcing.md, "Replay and snapshots"). Empty without one.

use super::table;
use crate::metrics::replay::ReplayPass;
use crate::report::summary::Summary;

pub(super) fn replay_table(summary: &Summary) -> String {
    let mut rows = Vec::new();
    for g in &summary.groups {
        let Some(r) = &g.replay else { continue };
        let setting = format!("batch {}, checkpoint every {}", r.batch, r.checkpoint_every);
        let raw = &r.raw_read;
        let mut read = vec![g.name.clone(), "read only (XRANGE)".into(), setting.clone()];
        read.extend([raw.events_read.to_string(), "-".into(), "-".into()]);
        read.extend([
            format!("{:.3}", raw.seconds),
            format!("{:.0}", raw.events_per_s),
        ]);
        read.extend(["-".into(), "-".into(), String::new()]);
        rows.push(read);
        rows.push(row(&g.name, "start", &setting, &r.full, r.error.as_deref()));
        if let Some(s) = &r.snapshots {
            let kib = |b: Option<u64>| b.map_or("-".to_string(), |b| (b / 1024).to_string());
            let stream = format!(
                "snapshot every {} events: {} written; {}; XLEN {} → {}, memory {} → {} KiB",
                s.every,
                s.written,
                match s.compacted {
                    true => format!("compacted, {} trimmed", s.trimmed),
                    false => "not compacted".to_string(),
                },
                s.length_before,
                s.length_after,
                kib(s.memory_bytes_before),
                kib(s.memory_bytes_after),
            );
            rows.push(row(&g.name, "snapshots + tail", &stream, &s.tail, None));
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let headers = [
        "group",
        "rebuilt from",
        "setting",
        "events read",
        "applied",
        "checkpoints",
        "seconds",
        "events/s",
        "divergent (stream)",
        "divergent (live model)",
        "error",
    ];
    format!(
        "<p>Each replaying group's projection rebuilt from its stream after the run, \
         into a key of its own, and compared with the stream and with the live model; \
         from snapshots, the events they cover are read but not applied.</p>\n{}",
        table(&headers, &rows)
    )
}

fn row(group: &str, from: &str, setting: &str, p: &ReplayPass, error: Option<&str>) -> Vec<String> {
    let mut row = vec![group.to_string(), from.to_string(), setting.to_string()];
    row.extend([p.events_read, p.events_applied, p.checkpoints].map(|n| n.to_string()));
    row.push(format!("{:.3}", p.seconds));
    row.push(format!("{:.0}", p.events_per_s));
    row.extend([p.divergent, p.divergent_from_live].map(|n| n.to_string()));
    row.push(error.unwrap_or_default().to_string());
    row
}
