//! index.html's "Cluster" section: per shard, its primary, the entries
//! Redis counted on the keys it held at the start and their share, and its
//! Redis CPU over the measured window; then per stream key where it was at
//! the start and at the end, and the redirections the actors were answered
//! with (docs/cluster.md, "Running against a cluster"). Only cluster runs
//! have it.

use super::{esc, table};
use crate::report::summary::Summary;

pub(super) fn cluster_section(summary: &Summary) -> String {
    let Some(c) = &summary.cluster else {
        return String::new();
    };
    let entries_added = |key: &str| {
        (summary.verify.streams.iter())
            .find(|v| v.key == key)
            .map(|v| v.entries_added)
    };
    let added = |key: &str| entries_added(key).map_or("-".to_string(), |n| n.to_string());
    let per_shard = c.entries_per_shard(entries_added);
    let total: u64 = per_shard.iter().sum();
    let cores = |c: Option<f64>| c.map_or("-".to_string(), |c| format!("{c:.2}"));
    let shard_rows: Vec<Vec<String>> = (c.primaries.iter().enumerate())
        .map(|(i, primary)| {
            let load = c.shards.get(i);
            vec![
                format!("shard {i}"),
                primary.clone(),
                per_shard[i].to_string(),
                match total {
                    0 => "-".to_string(),
                    _ => format!("{:.1} %", 100.0 * per_shard[i] as f64 / total as f64),
                },
                cores(load.and_then(|l| l.cpu_cores_mean)),
                cores(load.and_then(|l| l.cpu_cores_max)),
            ]
        })
        .collect();
    let shard_headers = [
        "shard",
        "primary at the start",
        "entries added",
        "share",
        "Redis CPU (cores, measured window)",
        "busiest second (cores)",
    ];
    let rows: Vec<Vec<String>> = (c.keys.iter())
        .map(|k| {
            let end = match (k.shard_at_end, &k.node_at_end) {
                (Some(s), Some(node)) => format!("shard {s} ({node})"),
                (None, Some(node)) => format!("{node} (no primary at the start)"),
                _ => "unknown".to_string(),
            };
            vec![
                k.key.clone(),
                k.slot.to_string(),
                format!("shard {} ({})", k.shard, k.node),
                end,
                added(&k.key),
            ]
        })
        .collect();
    let headers = ["key", "slot", "at the start", "at the end", "entries added"];
    let r = c.redirects;
    format!(
        "<h2>Cluster</h2>\n<p>{} shards; primaries {}. Redirected: XADD MOVED {}, ASK {}; \
         consumer reads MOVED {}.</p>\n{}{}",
        c.primaries.len(),
        esc(&c.primaries.join(", ")),
        r.xadd_moved,
        r.xadd_ask,
        r.read_moved,
        table(&shard_headers, &shard_rows),
        table(&headers, &rows)
    )
}
