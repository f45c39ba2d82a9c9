//! Hot-path costs of the metrics types: what every produced or consumed event
//! pays (`record_ns`, ledger updates) and what every interval pays (`add`).
//!
//! Run with `cargo bench --bench metrics`. Plots are off: criterion's plotters
//! backend needs a registered font when `ab_glyph` is enabled (see DESIGN.md).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use streamdrill::metrics::{EventKey, GroupLedger, Latency, ProduceLedger};

/// Pseudo-random latencies in nanoseconds spread over 10 µs .. ~10 ms, without an RNG crate.
fn latencies_ns(n: usize) -> Vec<u64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            10_000 + x % 10_000_000
        })
        .collect()
}

fn record_ns(c: &mut Criterion) {
    let values = latencies_ns(4096);
    let mut latency = Latency::new();
    let mut group = c.benchmark_group("latency");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.bench_function("record_ns", |b| {
        b.iter(|| {
            for &ns in &values {
                latency.record_ns(black_box(ns));
            }
        })
    });
    group.finish();
}

fn add(c: &mut Criterion) {
    let mut interval = Latency::new();
    latencies_ns(10_000)
        .into_iter()
        .for_each(|ns| interval.record_ns(ns));
    let mut total = Latency::new();
    c.bench_function("latency/add (one interval snapshot)", |b| {
        b.iter(|| total.add(black_box(&interval)))
    });
}

fn produce_ledger_acked(c: &mut Criterion) {
    const EVENTS: u64 = 100_000;
    let mut group = c.benchmark_group("ledger");
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("ProduceLedger::acked", |b| {
        b.iter_batched_ref(
            ProduceLedger::new,
            |ledger| (0..EVENTS).for_each(|seq| ledger.acked(black_box(seq))),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn group_ledger_processed(c: &mut Criterion) {
    const PRODUCERS: u32 = 8;
    const EVENTS: u64 = 100_000;
    let keys: Vec<EventKey> = (0..EVENTS)
        .map(|i| EventKey {
            producer: (i % u64::from(PRODUCERS)) as u32,
            seq: i / u64::from(PRODUCERS),
        })
        .collect();
    let mut group = c.benchmark_group("ledger");
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("GroupLedger::processed", |b| {
        b.iter_batched_ref(
            || GroupLedger::new(PRODUCERS as usize),
            |ledger| keys.iter().for_each(|&k| ledger.processed(black_box(k))),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = record_ns, add, produce_ledger_acked, group_ledger_processed
}
criterion_main!(benches);
