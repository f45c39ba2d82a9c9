//! The terminal table's cluster lines: per shard, its primary, the stream
//! keys it held when the run started (and where any had gone by the end),
//! and the entries Redis counted on them, which sum to the run's; then the
//! redirections the actors were answered with
//! (docs/cluster.md, "Running against a cluster"). Only cluster runs have them.

use std::fmt::Write;

use super::{MAX_WIDTH, fit};
use crate::report::summary::Summary;

pub(super) fn cluster_lines(out: &mut String, s: &Summary) {
    let Some(c) = &s.cluster else {
        return;
    };
    let _ = writeln!(
        out,
        "\n{:<9}{:<22}{:>13}  keys at the start (->shard at the end, if moved)",
        "cluster", "primary", "entries-added"
    );
    for (shard, primary) in c.primaries.iter().enumerate() {
        let keys: Vec<_> = c.keys.iter().filter(|k| k.shard == shard).collect();
        let added: u64 = (keys.iter())
            .filter_map(|k| s.verify.streams.iter().find(|v| v.key == k.key))
            .map(|v| v.entries_added)
            .sum();
        let names: Vec<String> = (keys.iter())
            .map(|k| {
                let name = short(&k.key, &s.run_id);
                match (k.shard_at_end, &k.node_at_end) {
                    (Some(end), _) if end != shard => format!("{name}->shard {end}"),
                    (None, Some(node)) => format!("{name}->{node}"),
                    _ => name,
                }
            })
            .collect();
        let mut line = format!(
            "{:<9}{:<22}{:>13} ",
            format!("shard {shard}"),
            primary,
            added
        );
        if names.is_empty() {
            line.push_str(" -");
        }
        // Keys past the width go on lines of their own, under the first.
        for name in names {
            if line.chars().count() + 1 + name.chars().count() > MAX_WIDTH {
                let _ = writeln!(out, "{line}");
                line = " ".repeat(45);
            }
            line.push(' ');
            line.push_str(&fit(&name, MAX_WIDTH - 46));
        }
        let _ = writeln!(out, "{line}");
    }
    let r = c.redirects;
    let _ = writeln!(
        out,
        "  redirected: XADD MOVED {} ASK {}, reads MOVED {}",
        r.xadd_moved, r.xadd_ask, r.read_moved
    );
}

/// A key without the run's prefix: `sd:<run>:orders:p2` is `orders:p2`.
fn short(key: &str, run_id: &str) -> String {
    let after_run = key.split_once(&format!(":{run_id}:"));
    after_run.map_or(key, |(_, rest)| rest).to_string()
}
