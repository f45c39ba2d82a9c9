//! Replay and snapshots (docs/event-sourcing.md, "Replay and snapshots"):
//! after the run each replaying group rebuilds its projection from its
//! stream; the rebuild reads exactly the stream's events and gives the live
//! model back, checkpoints follow their rule exactly, and compaction
//! shortens the stream (XLEN read by a client of the test's own) so that
//! the rebuild from snapshots reads fewer events and still gives the model
//! back, with no event lost.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use streamdrill::metrics::replay::ReplayReport;
use streamdrill::report::{GroupSummary, Summary};
use streamdrill::scenario::{Overrides, load_file};

use crate::support::{client, run_loaded, server};

/// ceil(n / every): a checkpoint every `every` events read and after the last.
fn checkpoints(n: u64, every: u64) -> u64 {
    n.div_ceil(every)
}

/// The stream's events as Redis counted them (XINFO `entries-added`), its
/// partitions added up, per partition too.
fn added(s: &Summary, stream: &str) -> Vec<u64> {
    let prefix_end = format!(":{stream}");
    (s.verify.streams.iter())
        .filter(|v| match &v.partition {
            Some(p) => p.stream == stream,
            None => v.key.ends_with(&prefix_end),
        })
        .map(|v| v.entries_added)
        .collect()
}

fn replay<'a>(s: &'a Summary, name: &str) -> (&'a GroupSummary, &'a ReplayReport) {
    let g = s.groups.iter().find(|g| g.name == name).unwrap();
    let r = g
        .replay
        .as_ref()
        .expect("a replaying group has replay figures");
    println!("{name}: {r:#?}");
    assert_eq!(r.error, None, "{name}");
    (g, r)
}

#[test]
fn the_shipped_replay_rebuilds_every_event_and_compaction_reads_fewer() {
    let redis = server();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/es-replay-snapshots.toml");
    let mut overrides = Overrides::parse(&["duration=3s".into(), "warmup=1s".into()]).unwrap();
    overrides.push("redis.mode", "external");
    overrides.push("redis.url", redis.url());
    let scenario = load_file(&path, &overrides).expect("the shipped scenario loads");

    // The compacted stream's XLEN and MEMORY USAGE as a client of the
    // test's own last saw them, before the run deletes its keys.
    let running = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (running, mut conn) = (running.clone(), client(&redis));
        std::thread::spawn(move || {
            let mut last = (0u64, 0u64);
            while running.load(Ordering::Relaxed) {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg("sd:*:orders")
                    .query(&mut conn)
                    .unwrap();
                for key in keys {
                    let len: u64 = redis::cmd("XLEN").arg(&key).query(&mut conn).unwrap();
                    let mem: Option<u64> = (redis::cmd("MEMORY").arg("USAGE").arg(&key))
                        .arg("SAMPLES")
                        .arg(0)
                        .query(&mut conn)
                        .unwrap();
                    if let (true, Some(mem)) = (len > 0, mem) {
                        last = (len, mem);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            last
        })
    };
    let (s, dir) = run_loaded(scenario);
    running.store(false, Ordering::Relaxed);
    let (seen_len, seen_mem) = watcher.join().unwrap();

    for g in &s.groups {
        assert_eq!(g.measured.lost, 0, "{}", g.name);
        assert_eq!(g.warmup.as_ref().unwrap().lost, 0, "{}", g.name);
    }
    let orders: u64 = added(&s, "orders").iter().sum();
    let ledger: u64 = added(&s, "ledger").iter().sum();
    assert!(orders > 1_000 && ledger > 1_000, "{orders} {ledger}");

    for (name, n) in [
        ("compacted", orders),
        ("kept", ledger),
        ("per-event", ledger),
    ] {
        let (_, r) = replay(&s, name);
        assert_eq!(r.raw_read.events_read, n, "{name}");
        let f = &r.full;
        assert_eq!((f.events_read, f.events_applied), (n, n), "{name}");
        assert_eq!(f.checkpoints, checkpoints(n, r.checkpoint_every), "{name}");
        assert_eq!(
            (f.aggregates, f.divergent, f.divergent_from_live),
            (50, 0, 0),
            "{name}"
        );
    }
    let (_, per_event) = replay(&s, "per-event");
    assert_eq!(per_event.full.checkpoints, ledger);
    assert!(per_event.snapshots.is_none());

    let (_, kept) = replay(&s, "kept");
    let kept = kept.snapshots.as_ref().unwrap();
    assert!(!kept.compacted);
    assert_eq!(
        (kept.length_before, kept.length_after, kept.trimmed),
        (ledger, ledger, 0)
    );
    assert_eq!(
        kept.tail.events_read, ledger,
        "without compaction the tail reads it all"
    );
    // Each snapshot covers `every` more events of its aggregate.
    assert_eq!(kept.tail.events_applied, ledger - 20 * kept.written);
    assert_eq!((kept.tail.divergent, kept.tail.divergent_from_live), (0, 0));

    let (_, compacted) = replay(&s, "compacted");
    let c = compacted.snapshots.as_ref().unwrap();
    assert!(c.compacted);
    assert!(c.written > 0 && c.written <= orders / 20, "{c:?}");
    assert_eq!(c.aggregates, 50);
    assert_eq!(c.length_before, orders);
    assert_eq!(c.length_after, orders - c.trimmed);
    assert!(c.length_after < orders / 2, "{c:?}");
    assert_eq!(c.tail.events_read, c.length_after);
    assert_eq!(c.tail.checkpoints, checkpoints(c.length_after, 1000));
    assert_eq!(c.tail.events_applied, orders - 20 * c.written);
    assert_eq!((c.tail.divergent, c.tail.divergent_from_live), (0, 0));
    assert!(c.memory_bytes_after < c.memory_bytes_before, "{c:?}");
    // Independently: what the test's own client read last.
    assert_eq!(seen_len, c.length_after, "XLEN seen by the test");
    assert_eq!(
        Some(seen_mem),
        c.memory_bytes_after,
        "MEMORY USAGE seen by the test"
    );

    let html = std::fs::read_to_string(dir.path.join("index.html")).unwrap();
    assert!(html.contains("<h2>Event sourcing</h2>"));
    assert!(html.contains("snapshots + tail"));
    assert!(streamdrill::report::render_table(&s).contains("\nreplay "));
}

/// On a partitioned stream the replay reads every partition: a checkpoint
/// every N events of each and after its last, and compaction per partition.
#[test]
fn a_partitioned_stream_is_replayed_partition_by_partition() {
    let s = crate::support::run_summary(
        r#"
name = "es-replay-partitions"
duration = "2s"
warmup = "1s"
drain_timeout = "10s"
[[streams]]
key = "orders"
partitions = 3
[[producers]]
stream = "orders"
rate = 1000
aggregates = { count = 30 }
[[groups]]
stream = "orders"
name = "rebuild"
consumers = 3
projection = "naive"
replay = { batch = 100, checkpoint_every = 250, snapshot_every = 10, compact = true }
"#,
    );
    let parts = added(&s, "orders");
    assert_eq!(parts.len(), 3);
    let n: u64 = parts.iter().sum();
    let (g, r) = replay(&s, "rebuild");
    assert_eq!(g.measured.lost, 0);
    assert_eq!(r.raw_read.events_read, n);
    assert_eq!((r.full.events_read, r.full.events_applied), (n, n));
    let expected: u64 = parts.iter().map(|&p| checkpoints(p, 250)).sum();
    assert_eq!(r.full.checkpoints, expected);
    assert_eq!((r.full.divergent, r.full.divergent_from_live), (0, 0));
    let c = r.snapshots.as_ref().unwrap();
    assert_eq!(c.length_after, n - c.trimmed);
    assert!(c.tail.events_read < n, "{c:?}");
    assert_eq!(c.tail.events_applied, n - 10 * c.written);
    assert_eq!((c.tail.divergent, c.tail.divergent_from_live), (0, 0));
}

/// Compaction never trims what a group has not read: with a second group
/// that has not started reading when the run ends, its position (0-0)
/// bounds XTRIM MINID, nothing is trimmed, and its events stay unread,
/// not lost.
#[test]
fn compaction_keeps_every_entry_a_group_has_not_read() {
    let s = crate::support::run_summary(
        r#"
name = "es-replay-unread"
duration = "2s"
warmup = "1s"
drain_timeout = "1s"
[[producers]]
stream = "orders"
rate = 500
aggregates = { count = 10 }
[[groups]]
stream = "orders"
name = "rebuild"
projection = "idempotent"
replay = { snapshot_every = 5, compact = true }
[[groups]]
stream = "orders"
name = "stopped"
start_after = "1h"
"#,
    );
    let n: u64 = added(&s, "orders").iter().sum();
    let (_, r) = replay(&s, "rebuild");
    let c = r.snapshots.as_ref().unwrap();
    assert!(c.written > 0, "{c:?}");
    assert_eq!((c.trimmed, c.length_before, c.length_after), (0, n, n));
    assert_eq!(c.tail.events_read, n);
    assert_eq!(c.tail.events_applied, n - 5 * c.written);
    assert_eq!((c.tail.divergent, c.tail.divergent_from_live), (0, 0));
    let stopped = s.groups.iter().find(|g| g.name == "stopped").unwrap();
    let whole = |f: fn(&streamdrill::report::GroupPhase) -> u64| stopped.whole_run(f);
    assert_eq!(whole(|p| p.lost), 0);
    assert_eq!(whole(|p| p.unread), n);
}
