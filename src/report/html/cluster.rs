//! index.html's "Cluster" section: per shard, its primary, the stream keys
//! it held when the run started and where each was at the end, and the
//! entries Redis counted on them; then the redirections the actors were
//! answered with (docs/cluster.md, "Running against a cluster"). Only
//! cluster runs have it.

use super::{esc, table};
use crate::report::summary::Summary;

pub(super) fn cluster_section(summary: &Summary) -> String {
    let Some(c) = &summary.cluster else {
        return String::new();
    };
    let added = |key: &str| {
        (summary.verify.streams.iter())
            .find(|v| v.key == key)
            .map_or("-".to_string(), |v| v.entries_added.to_string())
    };
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
         consumer reads MOVED {}.</p>\n{}",
        c.primaries.len(),
        esc(&c.primaries.join(", ")),
        r.xadd_moved,
        r.xadd_ask,
        r.read_moved,
        table(&headers, &rows)
    )
}
