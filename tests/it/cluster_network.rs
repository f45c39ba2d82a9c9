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
    // A stream per tag, each with its producer and its group; 1.5 s of
    // blackhole stays inside the drill's 2 s response timeout, so the
    // writes it holds are answered when it heals (on a loaded host some
    // may time out: indeterminate, and the read-back finds them landed).
    let stream = |tag: &str| {
        format!(
            "[[streams]]\nkey = \"{{{tag}}}\"\n[[producers]]\nstream = \"{{{tag}}}\"\nrate = 200\n\
             [[groups]]\nstream = \"{{{tag}}}\"\nname = \"g{tag}\"\nblock = \"50ms\"\n"
        )
    };
    let s = run_summary(&format!(
        r#"
name = "cluster-network"
duration = "3500ms"
warmup = "500ms"
drain_timeout = "5s"
[redis]
cluster = {{ shards = {SHARDS} }}
{}{}
[[faults]]
at = "1500ms"
action = "network_blackhole"
duration = "1500ms"
shard = 0
"#,
        stream(&hit),
        stream(&spared)
    ));
    let w = &s.faults[0];
    assert!(w.applied && w.error.is_none(), "{w:?}");
    assert_eq!(w.name, "network_blackhole shard 0");
    assert_eq!(w.target.as_deref(), Some("shard 0"));

    // Delivery latency counts from the intended time: half the measured
    // window's events on shard 0 waited up to 1.5 s for the blackhole to
    // heal, so its top tenth waited more than 1.2 s; the other stream's
    // waited only on the host (the margin allows for a busy one).
    let (held, free) = (&s.groups[0].measured, &s.groups[1].measured);
    let (held_us, free_us) = (&held.delivery_latency_us, &free.delivery_latency_us);
    eprintln!(
        "delivery latency p90/max: {}/{} us on shard 0, {}/{} us elsewhere",
        held_us.p90, held_us.max, free_us.p90, free_us.max
    );
    assert!(held_us.max >= 1_200_000, "{held:?}");
    assert!(free_us.p90 * 2 < held_us.p90, "{held:?}\n{free:?}");

    assert_ledger_adds_up(&s);
    for g in &s.groups {
        for p in [Some(&g.measured), g.warmup.as_ref()].into_iter().flatten() {
            assert_eq!(p.lost, 0, "{p:?}");
            assert_eq!(p.processed, p.produced_acked, "{p:?}");
        }
    }
    // Redis's own count on the shards: every acknowledged write, and any
    // that timed out in the blackhole and landed when it healed.
    let d = s.durability.as_ref().expect("network faults read back");
    assert_eq!(d.acked_but_gone, 0, "{d:?}");
    let added: u64 = s.verify.streams.iter().map(|v| v.entries_added).sum();
    assert_eq!(added, d.acked + d.indeterminate_landed, "{:?}", s.verify);
    // The hash tags put each stream where the test meant it to be.
    let c = s.cluster.as_ref().unwrap();
    assert_eq!(c.keys[0].shard, 0, "{c:?}");
    assert_ne!(c.keys[1].shard, 0, "{c:?}");
}
