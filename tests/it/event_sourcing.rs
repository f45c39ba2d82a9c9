//! Per-aggregate ordering (docs/event-sourcing.md, "Per-aggregate ordering"),
//! on a short run of the shipped `scenarios/es-ordering.toml`: the group
//! with one consumer finishes every aggregate in version order, the group
//! with four does not, and only checking groups carry the figures.

use std::path::Path;

use streamdrill::scenario::{Overrides, load_file};

use crate::support::run_loaded;

#[test]
fn one_consumer_keeps_aggregate_order_and_four_do_not() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/es-ordering.toml");
    let overrides = Overrides::parse(&["duration=3s".into(), "warmup=1s".into()]).unwrap();
    let scenario = load_file(&path, &overrides).expect("the shipped scenario loads");
    let (s, dir) = run_loaded(scenario);

    let group = |name: &str| s.groups.iter().find(|g| g.name == name).unwrap();
    let (projection, workers) = (group("projection"), group("workers"));
    for g in [projection, workers] {
        assert_eq!(g.measured.lost, 0, "{}", g.name);
        assert!(g.measured.processed.unwrap() > 1_000, "{}", g.name);
    }
    let order = |g: &streamdrill::report::GroupSummary| {
        let measured = g
            .measured
            .order
            .expect("a checking group has order figures");
        let warmup = g.warmup.as_ref().and_then(|w| w.order).expect("warmup too");
        println!("{}: measured {measured:?}, warmup {warmup:?}", g.name);
        (measured, warmup)
    };
    for o in <[_; 2]>::from(order(projection)) {
        assert_eq!(
            (o.events_out_of_order, o.gaps, o.max_distance_versions),
            (0, 0, 0)
        );
    }
    let (measured, _) = order(workers);
    assert!(measured.events_out_of_order > 0, "{measured:?}");
    assert!(measured.aggregates_out_of_order > 0, "{measured:?}");
    assert!(measured.aggregates_out_of_order <= 20, "{measured:?}");
    assert!(measured.max_distance_versions >= 1, "{measured:?}");
    // A later version finishing first is also seen from the other side: the
    // consumer that finished it saw a gap.
    assert!(measured.gaps > 0, "{measured:?}");

    let html = std::fs::read_to_string(dir.path.join("index.html")).unwrap();
    assert!(html.contains("<h2>Event sourcing</h2>"));
    assert!(!html.contains("<h3>Partitions"), "no stream is partitioned");
    assert!(streamdrill::report::render_table(&s).contains("\nevent sourcing "));
}

/// A crash leaves the one consumer's batch pending; back under its name, it
/// re-reads it first. That redelivery comes before anything newer, so the
/// group still finishes every aggregate in order: no event out of order, no
/// gap. A group without `check_order` has no order figures.
#[test]
fn a_crashed_consumer_redelivers_without_breaking_order() {
    let s = crate::support::run_summary(
        r#"
name = "es-crash"
duration = "3s"
warmup = "1s"
drain_timeout = "10s"
[[producers]]
stream = "orders"
rate = 500
aggregates = { count = 20 }
[[groups]]
stream = "orders"
name = "projection"
batch = 20
processing = "1500us"
check_order = true
[[groups]]
stream = "orders"
name = "audit"
[[faults]]
action = "crash_consumer"
at = "1500ms"
consumer = "projection/0"
restart_after = "300ms"
"#,
    );
    let group = |name: &str| s.groups.iter().find(|g| g.name == name).unwrap();
    let projection = group("projection");
    assert!(
        projection.whole_run(|p| p.redelivered) > 0,
        "the crash left entries to redeliver: {:?}",
        projection.measured
    );
    println!(
        "projection redelivered: {}",
        projection.whole_run(|p| p.redelivered)
    );
    for (phase, o) in projection.order_by_phase() {
        println!("projection {phase}: {o:?}");
        assert_eq!((o.events_out_of_order, o.gaps), (0, 0), "{phase}: {o:?}");
    }
    assert_eq!(projection.order_by_phase().len(), 2);
    assert!(group("audit").order_by_phase().is_empty());
}

/// Partitioned streams (docs/event-sourcing.md, "Partitioned streams"), on a
/// short run of the shipped `scenarios/es-partitioned.toml`: four consumers
/// that each own a partition finish every aggregate in order, while four
/// consumers sharing one key do not; every event is accounted for, and the
/// partitions' entries add up to what the producer wrote.
#[test]
fn four_consumers_keep_aggregate_order_on_a_partitioned_stream() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/es-partitioned.toml");
    let overrides = Overrides::parse(&["duration=3s".into(), "warmup=1s".into()]).unwrap();
    let scenario = load_file(&path, &overrides).expect("the shipped scenario loads");
    let (s, dir) = run_loaded(scenario);

    let group = |name: &str| s.groups.iter().find(|g| g.name == name).unwrap();
    let (workers, owners) = (group("workers"), group("owners"));
    for g in [workers, owners] {
        assert_eq!(g.measured.lost, 0, "{}", g.name);
        assert!(g.measured.processed.unwrap() > 1_000, "{}", g.name);
    }
    for (phase, o) in owners.order_by_phase() {
        println!("owners {phase}: {o:?}");
        assert_eq!(
            (o.events_out_of_order, o.gaps, o.max_distance_versions),
            (0, 0, 0),
            "{phase}"
        );
    }
    let shared = workers.measured.order.expect("a checking group");
    println!("workers measured: {shared:?}");
    assert!(shared.events_out_of_order > 0, "{shared:?}");

    // Each partition is a key of its own; together they hold what the
    // producer wrote, and the popular aggregates make them uneven.
    let partitions: Vec<_> = (s.verify.streams.iter())
        .filter(|v| v.key.contains(":orders-partitioned:p"))
        .collect();
    assert_eq!(partitions.len(), 4, "{:?}", s.verify.streams);
    let per: Vec<u64> = partitions.iter().map(|v| v.entries_added).collect();
    println!("entries per partition: {per:?}");
    assert!(per.iter().all(|&n| n > 0), "{per:?}");
    let written = owners.whole_run_opt(|p| p.produced_acked).unwrap();
    assert_eq!(per.iter().sum::<u64>(), written);
    assert!(s.verify.consistent);
    let spread = s.verify.partitions();
    assert_eq!(spread.len(), 1);
    assert_eq!(spread[0].entries, per);

    let html = std::fs::read_to_string(dir.path.join("index.html")).unwrap();
    assert!(html.contains("<h3>Partitions: entries added per partition</h3>"));
    let table = streamdrill::report::render_table(&s);
    assert!(
        table.contains("\n  partitions of orders-partitioned: entries-added "),
        "{table}"
    );
}

/// Two consumers owning two partitions each read both with one XREADGROUP
/// and acknowledge each. A crashed owner re-reads its own pending entries
/// on both when it is back, before anything newer: its aggregates stay in
/// order, and nothing is lost (run_summary checks the ledger adds up).
#[test]
fn owners_of_several_partitions_keep_order_through_a_crash() {
    let s = crate::support::run_summary(
        r#"
name = "es-partition-crash"
duration = "3s"
warmup = "1s"
drain_timeout = "10s"
[[streams]]
key = "orders"
partitions = 4
[[producers]]
stream = "orders"
rate = 500
aggregates = { count = 20 }
[[groups]]
stream = "orders"
name = "owners"
consumers = 2
batch = 10
processing = "1500us"
check_order = true
[[faults]]
action = "crash_consumer"
at = "1500ms"
consumer = "owners/0"
restart_after = "300ms"
"#,
    );
    let owners = &s.groups[0];
    assert!(
        owners.whole_run(|p| p.redelivered) > 0,
        "{:?}",
        owners.measured
    );
    assert_eq!(owners.whole_run(|p| p.lost), 0);
    for (phase, o) in owners.order_by_phase() {
        println!("owners {phase}: {o:?}");
        assert_eq!((o.events_out_of_order, o.gaps), (0, 0), "{phase}: {o:?}");
    }
    assert_eq!(s.verify.partitions()[0].entries.len(), 4);
}

/// Projections (docs/event-sourcing.md, "Projections"), on a 3 s version of
/// the shipped `scenarios/es-projection-crash.toml`: each group's consumer
/// crashes after applying a batch's effects and before acknowledging it.
/// The naive model applies every repeated processing twice, exactly; the
/// idempotent one refuses them and matches the stream. Processing takes
/// 1.1 ms here, not the scenario's 0.9 ms: a consumer that never catches up
/// always has a batch in hand, so a crash misses the effects only in the
/// XACK and read round trip, which a loaded machine stretches.
#[test]
fn a_crash_drill_double_applies_in_the_naive_projection_only() {
    let s = crate::support::run_summary(
        r#"
name = "es-projection-crash"
duration = "3s"
warmup = "1s"
drain_timeout = "10s"
[[producers]]
stream = "orders"
rate = 1000
aggregates = { count = 20 }
[[groups]]
stream = "orders"
name = "naive"
batch = 20
processing = "1100us"
projection = "naive"
[[groups]]
stream = "orders"
name = "idempotent"
batch = 20
processing = "1100us"
projection = "idempotent"
[[faults]]
action = "crash_consumer"
at = "1200ms"
consumer = "naive/0"
restart_after = "200ms"
[[faults]]
action = "crash_consumer"
at = "1200ms"
consumer = "idempotent/0"
restart_after = "200ms"
[[faults]]
action = "crash_consumer"
at = "2000ms"
consumer = "naive/0"
restart_after = "200ms"
[[faults]]
action = "crash_consumer"
at = "2000ms"
consumer = "idempotent/0"
restart_after = "200ms"
"#,
    );
    let group = |name: &str| s.groups.iter().find(|g| g.name == name).unwrap();
    let repeats = |g: &streamdrill::report::GroupSummary| {
        g.whole_run(|p| p.processings - p.processed.unwrap())
    };
    let (naive, idempotent) = (group("naive"), group("idempotent"));
    for g in [naive, idempotent] {
        assert_eq!(g.whole_run(|p| p.lost), 0, "{}", g.name);
        println!(
            "{}: {:?}, repeated processings {}",
            g.name,
            g.projection,
            repeats(g)
        );
    }
    let model = naive.projection.as_ref().expect("a projection check");
    assert_eq!(model.mode, "naive");
    assert_eq!(model.aggregates, 20);
    assert!(repeats(naive) > 0, "the crash came after a batch's effects");
    assert_eq!(model.double_applied, repeats(naive));
    assert_eq!(model.missing, 0);
    assert!(model.divergent > 0);
    assert_eq!(model.skipped, None);

    let model = idempotent.projection.as_ref().expect("a projection check");
    assert_eq!(model.mode, "idempotent");
    assert_eq!(
        (model.divergent, model.double_applied, model.missing),
        (0, 0, 0)
    );
    assert!(
        repeats(idempotent) > 0,
        "the crash came after a batch's effects"
    );
    assert_eq!(model.skipped, Some(repeats(idempotent)));
    assert!(streamdrill::report::render_table(&s).contains("\nprojection "));

    // What each projection cost: EVAL is the idempotent group's alone; the
    // script's HINCRBY and HSET make the naive group's counters shared.
    let cost = model.redis_cost.as_ref().expect("the idempotent cost");
    assert_eq!(cost.commands, ["eval"]);
    assert!(cost.calls > 0 && cost.usec_per_event.is_some(), "{cost:?}");
    let naive_model = naive.projection.as_ref().unwrap();
    assert_eq!(naive_model.redis_cost, None);
    let note = naive_model.redis_cost_note.as_deref().unwrap_or_default();
    assert!(note.contains("group(s) idempotent"), "{note}");
    for g in [naive, idempotent] {
        let latency = |p: &streamdrill::report::GroupPhase| p.projection_latency_us.unwrap().count;
        assert_eq!(
            g.whole_run(latency),
            g.whole_run(|p| p.processings),
            "{}",
            g.name
        );
    }
}

/// A naive projection sends HINCRBY and HSET per processing: Redis's own
/// counters, read by the run from INFO commandstats, say so exactly.
#[test]
fn redis_counts_two_commands_per_naive_projection_effect() {
    let s = crate::support::run_summary(
        r#"
name = "projection-cost"
duration = "2s"
warmup = "500ms"
[[producers]]
stream = "orders"
rate = 500
aggregates = { count = 10 }
[[groups]]
stream = "orders"
name = "model"
batch = 10
projection = "naive"
"#,
    );
    let g = &s.groups[0];
    let processings = g.whole_run(|p| p.processings);
    let p = g.projection.as_ref().unwrap();
    let cost = p.redis_cost.as_ref().expect("a cost");
    println!("{cost:?}, {:?}", g.measured.projection_latency_us);
    assert!(processings > 500, "{processings}");
    assert_eq!(cost.commands, ["hincrby", "hset"]);
    assert_eq!(cost.calls, 2 * processings);
    assert!(cost.usec > 0);
    let latency = |p: &streamdrill::report::GroupPhase| p.projection_latency_us.unwrap().count;
    assert_eq!(g.whole_run(latency), processings);
    let table = streamdrill::report::render_table(&s);
    assert!(table.contains("  cost: writes answered in p50 "), "{table}");
}
