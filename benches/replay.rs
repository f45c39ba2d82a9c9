//! Replay throughput beside the raw read rate: runs the shipped
//! `scenarios/es-replay-snapshots.toml` on a managed Redis, longer and
//! faster than as shipped, and prints, per replaying group, the stream read
//! alone with XRANGE (same batches, decoded alike, nothing written) beside
//! the rebuild from the start and from snapshots + tail, as rates and as a
//! share of the raw read. Both reads run in one run, on one server, one
//! after the other, so the machine's noise touches them alike.
//! docs/benchmarks.md, "Replay against a raw XRANGE read"
//!
//! Run with `cargo bench --bench replay` (release build); under `cargo
//! test` it only says it skipped. The settings:
//! `REPLAY_BENCH_SECONDS` (default 20) of production at
//! `REPLAY_BENCH_RATE` (default 5000) events/s per stream.

// A bench reports on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;

use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::scenario::{Overrides, load_file};

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    // `cargo test --all-targets` runs benches without --bench: a run of
    // seconds and a debug build would say nothing here.
    if !std::env::args().any(|a| a == "--bench") {
        println!("replay bench: skipped (run it with cargo bench --bench replay)");
        return;
    }
    let seconds = setting("REPLAY_BENCH_SECONDS", "20");
    let rate = setting("REPLAY_BENCH_RATE", "5000");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/es-replay-snapshots.toml");
    let sets = [
        format!("duration={seconds}s"),
        "warmup=1s".to_string(),
        format!("producers.0.rate={rate}"),
        format!("producers.1.rate={rate}"),
        "drain_timeout=60s".to_string(),
    ];
    let overrides = Overrides::parse(&sets).unwrap_or_else(|e| panic!("{e}"));
    let scenario = load_file(&path, &overrides).unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let report = run_scenario(scenario, RunOptions::new(out.path()))
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    let s = &report.summary;
    println!(
        "replay bench: {seconds} s at {rate} events/s per stream, redis {}",
        s.redis.version
    );
    println!(
        "{:<11}{:<28}{:>9}{:>9}{:>12}{:>9}",
        "group", "pass", "events", "seconds", "events/s", "of raw"
    );
    for g in &s.groups {
        let Some(r) = &g.replay else { continue };
        let raw = r.raw_read.events_per_s;
        let line = |pass: &str, events: u64, seconds: f64, per_s: f64| {
            println!(
                "{:<11}{:<28}{:>9}{:>9.3}{:>12.0}{:>8.0}%",
                g.name,
                pass,
                events,
                seconds,
                per_s,
                100.0 * per_s / raw.max(1e-9)
            );
        };
        line(
            &format!("raw XRANGE, batch {}", r.batch),
            r.raw_read.events_read,
            r.raw_read.seconds,
            raw,
        );
        let f = &r.full;
        let start = format!("rebuild, checkpoint {}", r.checkpoint_every);
        line(&start, f.events_read, f.seconds, f.events_per_s);
        if let Some(snap) = &r.snapshots {
            let t = &snap.tail;
            line("snapshots + tail", t.events_read, t.seconds, t.events_per_s);
        }
        if let Some(e) = &r.error {
            println!("{:<11}error: {e}", g.name);
        }
    }
}
