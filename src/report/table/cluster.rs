//! The terminal table's cluster lines: per shard, its primary, the entries
//! Redis counted on the stream keys it held when the run started (they sum
//! to the run's) and their share, its Redis CPU over the measured window
//! (mean and busiest second), and those keys (and where any had gone by the
//! end); then the redirections the actors were answered with
//! (docs/cluster.md, "Running against a cluster"). Only cluster runs have them.

use std::fmt::Write;

use super::{MAX_WIDTH, fit};
use crate::report::summary::Summary;

/// Columns before the keys: shard, primary, entries, share, CPU, a space.
const KEYS_AT: usize = 9 + 22 + 13 + 7 + 12 + 1;

pub(super) fn cluster_lines(out: &mut String, s: &Summary) {
    let Some(c) = &s.cluster else {
        return;
    };
    let _ = writeln!(
        out,
        "\n{:<9}{:<22}{:>13}{:>7}{:>12}  keys (->shard at the end, if moved)",
        "cluster", "primary", "entries-added", "share", "cpu avg/max"
    );
    let added = c.entries_per_shard(|key| {
        (s.verify.streams.iter())
            .find(|v| v.key == key)
            .map(|v| v.entries_added)
    });
    let total: u64 = added.iter().sum();
    for (shard, primary) in c.primaries.iter().enumerate() {
        let names: Vec<String> = (c.keys.iter())
            .filter(|k| k.shard == shard)
            .map(|k| {
                let name = short(&k.key, &s.run_id);
                match (k.shard_at_end, &k.node_at_end) {
                    (Some(end), _) if end != shard => format!("{name}->shard {end}"),
                    (None, Some(node)) => format!("{name}->{node}"),
                    _ => name,
                }
            })
            .collect();
        let share = match total {
            0 => "-".to_string(),
            _ => format!("{:.0} %", 100.0 * added[shard] as f64 / total as f64),
        };
        let cpu = c.shards.get(shard).map_or("-".to_string(), |l| {
            let cores = |c: Option<f64>| c.map_or("-".to_string(), |c| format!("{c:.2}"));
            format!("{}/{}", cores(l.cpu_cores_mean), cores(l.cpu_cores_max))
        });
        let mut line = format!(
            "{:<9}{:<22}{:>13}{share:>7}{cpu:>12} ",
            format!("shard {shard}"),
            primary,
            added[shard]
        );
        if names.is_empty() {
            line.push_str(" -");
        }
        // Keys past the width go on lines of their own, under the first.
        for name in names {
            if line.chars().count() + 1 + name.chars().count() > MAX_WIDTH {
                let _ = writeln!(out, "{line}");
                line = " ".repeat(KEYS_AT);
            }
            line.push(' ');
            line.push_str(&fit(&name, MAX_WIDTH - KEYS_AT - 1));
        }
        let _ = writeln!(out, "{line}");
    }
    let r = c.redirects;
    let _ = writeln!(
        out,
        "  redirected: XADD MOVED {} ASK {}, reads MOVED {}; cpu: Redis CPU in cores",
        r.xadd_moved, r.xadd_ask, r.read_moved
    );
}

/// A key without the run's prefix: `sd:<run>:orders:p2` is `orders:p2`.
fn short(key: &str, run_id: &str) -> String {
    let after_run = key.split_once(&format!(":{run_id}:"));
    after_run.map_or(key, |(_, rest)| rest).to_string()
}
