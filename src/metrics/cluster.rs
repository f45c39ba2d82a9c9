//! What a cluster run reports of the cluster: which shard held each stream
//! key, how often Redis sent a command on to another node
//! (docs/cluster.md, "Running against a cluster"), and each shard's own
//! Redis CPU over the measured window, from the sampler's per-primary
//! readings (docs/cluster.md, "Per-shard Redis CPU").

use serde::{Deserialize, Serialize};

use super::series::{Reading, Series};

/// A cluster run's cluster: where its keys lived when it started, and
/// how often Redis sent an XADD on to another node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterRun {
    /// Each shard's primary, `host:port`, in slot order.
    pub primaries: Vec<String>,
    pub keys: Vec<KeyPlace>,
    pub redirects: Redirects,
    /// Per shard, indexed like `primaries`: its Redis CPU over the measured
    /// window. Empty in runs written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardLoad>,
}

/// One shard's Redis CPU over the measured window (INFO used_cpu_user +
/// used_cpu_sys of its primary), in cores: 1.0 is one core busy all the
/// time, and one Redis thread serves a shard's commands.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct ShardLoad {
    /// Over the window; None with fewer than two readings of it.
    pub cpu_cores_mean: Option<f64>,
    /// The busiest interval between two consecutive readings.
    pub cpu_cores_max: Option<f64>,
}

/// One primary's CPU in one reading of a cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardReading {
    /// The primary read, `host:port`.
    pub node: String,
    /// Its used_cpu_user + used_cpu_sys: CPU seconds since it started.
    pub cpu_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyPlace {
    pub key: String,
    pub slot: u16,
    /// Index into `primaries`.
    pub shard: usize,
    pub node: String,
    /// Where it was once the run was over, when that could be read: its
    /// primary, and that primary's index in `primaries` if it was one then
    /// (a reshard moves keys; a failover promotes a replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_at_end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_at_end: Option<usize>,
}

impl ClusterRun {
    /// Records where each key is now, as `node_of` (key → `host:port`) says.
    pub fn ended(&mut self, node_of: impl Fn(&str) -> Option<String>) {
        for k in &mut self.keys {
            k.node_at_end = node_of(&k.key);
            let end = k.node_at_end.as_ref();
            k.shard_at_end = end.and_then(|n| self.primaries.iter().position(|p| p == n));
        }
    }

    /// Fills `shards` from the readings taken in `[from_s, to_s]` (seconds
    /// since run start). A shard's figure is what its primaries spent
    /// between consecutive readings of the same node, over the time that
    /// covers: a promoted replica is another process, whose counter starts
    /// from its own start, so the interval across a failover is left out.
    pub fn measure_shards(&mut self, series: &Series, from_s: f64, to_s: f64) {
        let window: Vec<&Reading> = (series.rows())
            .filter_map(|r| r.reading.as_ref())
            .filter(|r| r.at_s >= from_s && r.at_s <= to_s && !r.shards.is_empty())
            .collect();
        self.shards = (0..self.primaries.len())
            .map(|shard| {
                let points: Vec<(f64, &ShardReading)> = (window.iter())
                    .filter_map(|r| Some((r.at_s, self.shard_in(r, shard)?)))
                    .collect();
                shard_load(&points)
            })
            .collect();
    }

    /// Shard `shard`'s primary in a reading: the node that was its primary
    /// at the start, or else the one in its place in slot order (a replica
    /// promoted after a failover serves the same slots).
    fn shard_in<'r>(&self, r: &'r Reading, shard: usize) -> Option<&'r ShardReading> {
        let primary = self.primaries.get(shard)?;
        (r.shards.iter().find(|s| &s.node == primary)).or_else(|| {
            r.shards
                .get(shard)
                .filter(|s| !self.primaries.contains(&s.node))
        })
    }

    /// Entries Redis counted on each shard's keys (where they were at the
    /// start), indexed like `primaries`; `added` gives a key's XINFO
    /// entries-added.
    pub fn entries_per_shard(&self, added: impl Fn(&str) -> Option<u64>) -> Vec<u64> {
        let mut per = vec![0; self.primaries.len()];
        for k in &self.keys {
            if let Some(n) = per.get_mut(k.shard) {
                *n += added(&k.key).unwrap_or(0);
            }
        }
        per
    }
}

/// Mean and busiest rate of a shard's CPU seconds at (time, node) points.
fn shard_load(points: &[(f64, &ShardReading)]) -> ShardLoad {
    let (mut busy_s, mut span_s, mut max) = (0.0, 0.0, None::<f64>);
    for pair in points.windows(2) {
        let ((t0, a), (t1, b)) = (pair[0], pair[1]);
        let (Some(c0), Some(c1)) = (a.cpu_s, b.cpu_s) else {
            continue;
        };
        if a.node != b.node || t1 <= t0 || c1 < c0 {
            continue;
        }
        busy_s += c1 - c0;
        span_s += t1 - t0;
        let rate = (c1 - c0) / (t1 - t0);
        max = Some(max.map_or(rate, |m| m.max(rate)));
    }
    ShardLoad {
        cpu_cores_mean: (span_s > 0.0).then(|| busy_s / span_s),
        cpu_cores_max: max,
    }
}

/// Redirections the actors were answered with.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Redirects {
    /// XADDs answered `-MOVED` (the slot lives elsewhere now), sent on.
    pub xadd_moved: u64,
    /// XADDs answered `-ASK` (the slot is migrating and this key has gone), sent on after ASKING.
    pub xadd_ask: u64,
    /// Consumer reads answered `-MOVED`: the consumer went on at the new primary.
    pub read_moved: u64,
}

impl std::ops::AddAssign for Redirects {
    fn add_assign(&mut self, other: Redirects) {
        self.xadd_moved += other.xadd_moved;
        self.xadd_ask += other.xadd_ask;
        self.read_moved += other.read_moved;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(primaries: &[&str]) -> ClusterRun {
        ClusterRun {
            primaries: primaries.iter().map(|p| p.to_string()).collect(),
            keys: Vec::new(),
            redirects: Redirects::default(),
            shards: Vec::new(),
        }
    }

    fn series(readings: &[(f64, &[(&str, f64)])]) -> Series {
        let mut series = Series::default();
        for (i, (at_s, shards)) in readings.iter().enumerate() {
            let shards = (shards.iter())
                .map(|(node, cpu_s)| ShardReading {
                    node: node.to_string(),
                    cpu_s: Some(*cpu_s),
                })
                .collect();
            series.add_reading(
                i as u32,
                Reading {
                    at_s: *at_s,
                    shards,
                    ..Default::default()
                },
            );
        }
        series
    }

    #[test]
    fn each_shard_gets_its_own_mean_and_busiest_second() {
        let s = series(&[
            (0.5, &[("a", 1.0), ("b", 0.0)]),
            (1.5, &[("a", 1.5), ("b", 0.1)]),
            (2.5, &[("a", 2.5), ("b", 0.2)]),
            (3.5, &[("a", 2.5), ("b", 0.3)]),
            (9.5, &[("a", 9.0), ("b", 9.0)]),
        ]);
        let mut c = run(&["a", "b"]);
        c.measure_shards(&s, 0.0, 4.0);
        let a = c.shards[0];
        assert!((a.cpu_cores_mean.unwrap() - 0.5).abs() < 1e-9, "{a:?}");
        assert!((a.cpu_cores_max.unwrap() - 1.0).abs() < 1e-9, "{a:?}");
        let b = c.shards[1];
        assert!((b.cpu_cores_mean.unwrap() - 0.1).abs() < 1e-9, "{b:?}");
    }

    #[test]
    fn a_promoted_replica_takes_its_shards_place_and_the_failover_is_left_out() {
        // Shard 0's primary "a" dies after 1.5 s; replica "c" serves its slots.
        let s = series(&[
            (0.5, &[("a", 1.0), ("b", 0.0)]),
            (1.5, &[("a", 1.2), ("b", 0.1)]),
            (2.5, &[("c", 0.0), ("b", 0.2)]),
            (3.5, &[("c", 0.4), ("b", 0.3)]),
        ]);
        let mut c = run(&["a", "b"]);
        c.measure_shards(&s, 0.0, 4.0);
        let a = c.shards[0];
        // (0.2 + 0.4) CPU seconds over the two intervals of one node each.
        assert!((a.cpu_cores_mean.unwrap() - 0.3).abs() < 1e-9, "{a:?}");
        assert!((a.cpu_cores_max.unwrap() - 0.4).abs() < 1e-9, "{a:?}");
        let mut lone = run(&["a"]);
        lone.measure_shards(&series(&[(0.5, &[("a", 1.0)])]), 0.0, 4.0);
        assert_eq!(lone.shards, [ShardLoad::default()], "one reading: no rate");
    }

    #[test]
    fn entries_add_up_per_shard_where_keys_started() {
        let mut c = run(&["a", "b", "c"]);
        c.keys = (0..4)
            .map(|i| KeyPlace {
                key: format!("k{i}"),
                slot: 0,
                shard: [0, 2, 2, 1][i],
                node: String::new(),
                node_at_end: None,
                shard_at_end: None,
            })
            .collect();
        let per = c.entries_per_shard(|k| Some(k[1..].parse::<u64>().unwrap() * 10));
        assert_eq!(per, [0, 30, 30]);
    }
}
