//! A shard's primary killed mid-run (docs/cluster.md, "Shard failover"):
//! the cluster promotes its replica by itself, producers and consumers find
//! it through `-MOVED`, writes come back, and every acknowledged event is
//! processed or counted gone by the read-back.

use streamdrill::server::cluster::slot_ranges;
use streamdrill::slot::key_slot;

use crate::support::run_summary;

/// The shard holding "{orders}": a hash tag puts every partition of the
/// stream in that one slot, so every producer writes the shard a fault acts on.
fn orders_shard() -> usize {
    let slot = key_slot(b"orders");
    (slot_ranges(3).iter())
        .position(|&(a, b)| a <= slot && slot <= b)
        .unwrap()
}

/// A 3-shard cluster with a replica each, a stream in one slot written for
/// `duration`, and `fault`.
fn scenario(duration: &str, fault: &str) -> String {
    format!(
        r#"
name = "cluster-failover"
duration = "{duration}"
warmup = "500ms"
drain_timeout = "5s"
[redis]
cluster = {{ shards = 3, replicas = 1, node_timeout = "1s" }}
[[streams]]
key = "{{orders}}"
partitions = 2
[[producers]]
stream = "{{orders}}"
rate = 500
aggregates = {{ count = 50 }}
[[groups]]
stream = "{{orders}}"
name = "billing"
consumers = 2
block = "50ms"
{fault}
"#
    )
}

#[test]
fn a_killed_primary_is_replaced_and_its_partitions_written_again() {
    let shard = orders_shard();
    let s = run_summary(&scenario(
        "7s",
        &format!("[[faults]]\nat = \"1500ms\"\naction = \"kill_primary\"\nshard = {shard}"),
    ));
    let w = &s.faults[0];
    assert!(w.applied && w.error.is_none(), "{w:?}");
    // Every producer writes that shard: its first acknowledgement after
    // the kill is when the promoted replica took writes.
    let back = w.first_write_after_s.expect("writes came back");
    assert!(back > 0.5 && back < 5.0, "{w:?}");
    assert!(s.produce.failed.unwrap() > 0, "{:?}", s.produce);

    let c = s.cluster.as_ref().unwrap();
    for k in &c.keys {
        assert_eq!(k.shard, shard, "{k:?}");
        // The promoted replica holds them now: no primary at the start.
        assert_ne!(k.node_at_end.as_deref(), Some(k.node.as_str()), "{k:?}");
        assert!(k.node_at_end.is_some() && k.shard_at_end.is_none(), "{k:?}");
    }
    assert!(c.redirects.xadd_moved >= 1, "{:?}", c.redirects);
    assert!(c.redirects.read_moved >= 1, "{:?}", c.redirects);

    // Lost is exactly what the read-back found gone (replication is
    // asynchronous, so on a loaded host it may be more than 0).
    let d = s
        .durability
        .as_ref()
        .expect("a killed primary reads the streams back");
    let g = &s.groups[0];
    let lost: u64 = [Some(&g.measured), g.warmup.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| p.lost)
        .sum();
    assert_eq!(lost, d.acked_but_gone, "{d:?}");
    assert!(s.verify.consistent, "{:?}", s.verify);
}

/// A handover (CLUSTER FAILOVER) stops writes on the primary until its
/// replica has them all: nothing acknowledged is lost, and the actors
/// follow the new primary through `-MOVED`.
#[test]
fn a_handover_to_the_replica_loses_no_acknowledged_write() {
    let shard = orders_shard();
    let s = run_summary(&scenario(
        "4s",
        &format!("[[faults]]\nat = \"1500ms\"\naction = \"failover_shard\"\nshard = {shard}"),
    ));
    let w = &s.faults[0];
    assert!(w.applied && w.error.is_none(), "{w:?}");
    let d = s
        .durability
        .as_ref()
        .expect("a failover reads the streams back");
    assert_eq!(d.acked_but_gone, 0, "{d:?}");
    let g = &s.groups[0];
    for p in [Some(&g.measured), g.warmup.as_ref()].into_iter().flatten() {
        assert_eq!(p.lost, 0, "{p:?}");
        assert_eq!(p.processed, p.produced_acked, "{p:?}");
    }
    let c = s.cluster.as_ref().unwrap();
    for k in &c.keys {
        assert_ne!(k.node_at_end.as_deref(), Some(k.node.as_str()), "{k:?}");
    }
    assert!(c.redirects.xadd_moved >= 1, "{:?}", c.redirects);
}
