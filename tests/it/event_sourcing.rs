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
    assert!(streamdrill::report::render_table(&s).contains("\nevent sourcing "));
}
