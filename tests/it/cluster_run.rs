//! A run against a managed Redis Cluster
//! (docs/cluster.md, "Running against a cluster"): producers write each
//! partition on the shard its slot lives on, consumers read it there, and
//! a partition's slot moved to another shard mid-run is followed by both,
//! counted, with nothing lost or doubled.

use crate::support::run_with_dir;

#[test]
fn a_partition_resharded_mid_run_loses_nothing_and_its_redirects_are_counted() {
    let (s, dir) = run_with_dir(
        r#"
name = "cluster-reshard"
duration = "3s"
warmup = "500ms"
drain_timeout = "5s"
[redis]
cluster = { shards = 3 }
[[streams]]
key = "orders"
partitions = 3
[[producers]]
stream = "orders"
rate = 1500
aggregates = { count = 100 }
[[groups]]
stream = "orders"
name = "billing"
consumers = 3
block = "50ms"
[[faults]]
at = "1500ms"
action = "reshard"
stream = "orders"
partition = 0
"#,
    );
    let c = s
        .cluster
        .as_ref()
        .expect("a cluster run reports its cluster");
    assert_eq!(c.primaries.len(), 3);
    assert_eq!(c.keys.len(), 3);
    // The moved partition ends on the next shard; the others stay.
    for (i, k) in c.keys.iter().enumerate() {
        let expected = match i {
            0 => (k.shard + 1) % 3,
            _ => k.shard,
        };
        assert_eq!(k.shard_at_end, Some(expected), "{k:?}");
    }
    // Producers wrote p0 to its old primary after the move at least once,
    // and its consumer's read was told where the slot went.
    let r = c.redirects;
    assert!(r.xadd_moved >= 1, "{r:?}");
    assert!(r.read_moved >= 1, "{r:?}");

    let w = &s.faults[0];
    assert!(w.applied && w.error.is_none(), "{w:?}");
    let g = &s.groups[0];
    for p in [Some(&g.measured), g.warmup.as_ref()].into_iter().flatten() {
        assert_eq!(p.lost, 0, "{p:?}");
        assert_eq!(p.processed, p.produced_acked, "{p:?}");
        // An XACK answered MOVED leaves its entry pending on the new
        // primary, redelivered and processed again: a duplicate the ledger
        // explains (docs/cluster.md, "Live resharding"), never one without.
        assert!(p.duplicates <= p.redelivered, "{p:?}");
    }
    let d = s
        .durability
        .as_ref()
        .expect("a reshard reads the streams back");
    assert_eq!(d.acked_but_gone, 0);
    // What Redis counted on the shards' keys is every acknowledged write.
    let added: u64 = s.verify.streams.iter().map(|v| v.entries_added).sum();
    assert_eq!(added, s.verify.produce_acked);
    assert!(s.verify.consistent);
    assert!(streamdrill::report::render_table(&s).contains("redirected: XADD MOVED"));
    let html = std::fs::read_to_string(dir.path.join("index.html")).unwrap();
    assert!(
        html.contains("<h2>Cluster</h2>"),
        "index.html shows the cluster"
    );
    assert!(html.contains(&c.keys[0].key), "and where each key lived");
}
