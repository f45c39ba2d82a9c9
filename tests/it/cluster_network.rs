//! A network fault on one shard of a managed cluster (docs/cluster.md,
//! "Network faults on one shard"): the actors reach each node through a
//! fault proxy of its own, so a blackhole on shard 0 holds back only the
//! stream living there, while a stream on another shard goes on as before,
//! and the ledger stays exact.

use streamdrill::server::cluster::slot_ranges;
use streamdrill::slot::key_slot;

use crate::support::{assert_ledger_adds_up, run_summary};

/// Shards of the test's cluster.
const SHARDS: u16 = 3;

/// The shard a hash tag's slot belongs to.
fn shard_of(tag: &str) -> usize {
    let slot = key_slot(tag.as_bytes());
    (slot_ranges(SHARDS).iter())
        .position(|&(a, b)| a <= slot && slot <= b)
        .unwrap()
}

/// Two one-letter hash tags: one on shard 0, one on another shard.
fn tags() -> (String, String) {
    let letters = ('a'..='z').map(String::from);
    let on0 = letters.clone().find(|t| shard_of(t) == 0).unwrap();
    let off0 = letters.clone().find(|t| shard_of(t) != 0).unwrap();
    (on0, off0)
}

#[test]
fn a_blackhole_on_one_shard_holds_back_only_its_stream() {
    let (hit, spared) = tags();
    // A stream per tag, each with its producer and its group; 1 s of
    // blackhole stays inside the drill's 2 s response timeout, so every
    // write held is answered once it heals.
    let stream = |tag: &str| {
        format!(
            "[[streams]]\nkey = \"{{{tag}}}\"\n[[producers]]\nstream = \"{{{tag}}}\"\nrate = 200\n\
             [[groups]]\nstream = \"{{{tag}}}\"\nname = \"g{tag}\"\nblock = \"50ms\"\n"
        )
    };
    let s = run_summary(&format!(
        r#"
name = "cluster-network"
duration = "3s"
warmup = "500ms"
drain_timeout = "5s"
[redis]
cluster = {{ shards = {SHARDS} }}
{}{}
[[faults]]
at = "1500ms"
action = "network_blackhole"
duration = "1s"
shard = 0
"#,
        stream(&hit),
        stream(&spared)
    ));
    let w = &s.faults[0];
    assert!(w.applied && w.error.is_none(), "{w:?}");
    assert_eq!(w.name, "network_blackhole shard 0");
    assert_eq!(w.target.as_deref(), Some("shard 0"));

    // Delivery latency counts from the intended time: the stream on
    // shard 0 waited out the blackhole, the other never noticed it.
    let (held, free) = (&s.groups[0], &s.groups[1]);
    let held_us = held.measured.delivery_latency_us.max;
    let free_us = free.measured.delivery_latency_us.p99;
    eprintln!("delivery latency: max {held_us} us on shard 0, p99 {free_us} us elsewhere");
    assert!(held_us >= 800_000, "{:?}", held.measured);
    assert!(free_us < 400_000, "{:?}", free.measured);

    assert_eq!(s.produce.errors, 0, "{:?}", s.produce);
    assert_ledger_adds_up(&s);
    for g in &s.groups {
        for p in [Some(&g.measured), g.warmup.as_ref()].into_iter().flatten() {
            assert_eq!(p.lost, 0, "{p:?}");
            assert_eq!(p.processed, p.produced_acked, "{p:?}");
        }
    }
    let added: u64 = s.verify.streams.iter().map(|v| v.entries_added).sum();
    assert_eq!(added, s.verify.produce_acked);
    // The hash tags put each stream where the test meant it to be.
    let c = s.cluster.as_ref().unwrap();
    assert_eq!(c.keys[0].shard, 0, "{c:?}");
    assert_ne!(c.keys[1].shard, 0, "{c:?}");
}
