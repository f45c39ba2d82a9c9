//! Hot-path costs of the metrics types: what every produced or consumed event
//! pays (`record_ns`, ledger updates, the collector's per-event work) and what
//! every interval pays (`add`).
//!
//! Run with `cargo bench --bench metrics`. Plots are off: criterion's plotters
//! backend needs a registered font when `ab_glyph` is enabled, and only the report code registers one.

// A bench reports on the terminal.
#![allow(clippy::print_stderr)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use streamdrill::metrics::{EventKey, GroupLedger, InFlight, Latency, ProduceLedger};

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

const PRODUCERS: u32 = 8;
const EVENTS: u64 = 100_000;

/// Events of `PRODUCERS` producers, interleaved as a stream holds them.
fn stream_keys() -> Vec<EventKey> {
    (0..EVENTS)
        .map(|i| EventKey {
            producer: (i % u64::from(PRODUCERS)) as u32,
            seq: i / u64::from(PRODUCERS),
        })
        .collect()
}

fn group_ledger_processed(c: &mut Criterion) {
    let keys = stream_keys();
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

/// What the collector does per consumed event: each read batch of 100 is
/// delivered, then processed, into the group ledger, with and without the
/// in-flight map (first-delivery times for redelivery latency and recovery).
fn collector_per_event(c: &mut Criterion) {
    const BATCH: usize = 100;
    const MS: u64 = 1_000_000;
    let keys = stream_keys();
    let mut group = c.benchmark_group("collector per event");
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("ledger: delivered + processed", |b| {
        b.iter_batched_ref(
            || GroupLedger::new(PRODUCERS as usize),
            |ledger| {
                for chunk in keys.chunks(BATCH) {
                    chunk.iter().for_each(|&k| ledger.delivered(black_box(k)));
                    chunk.iter().for_each(|&k| ledger.processed(black_box(k)));
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("ledger + in-flight: delivered + processed", |b| {
        b.iter_batched_ref(
            || {
                let faults = [500 * MS, 700 * MS];
                (GroupLedger::new(PRODUCERS as usize), InFlight::new(&faults))
            },
            |(ledger, flights)| {
                for (i, chunk) in keys.chunks(BATCH).enumerate() {
                    let t = i as u64 * MS;
                    for &k in chunk {
                        ledger.delivered(black_box(k));
                        flights.delivered(k, t, t);
                    }
                    for &k in chunk {
                        ledger.processed(black_box(k));
                        flights.processed(k, t + MS / 2);
                    }
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Not a timing: the ledgers' memory per event after a million events of
/// eight producers, acknowledged, delivered and processed once (the budget
/// is 2 bytes per event per group). Printed once, beside the timings.
fn ledger_bytes_per_event(c: &mut Criterion) {
    const MILLION: u64 = 1_000_000;
    let mut produced: Vec<ProduceLedger> = (0..PRODUCERS).map(|_| ProduceLedger::new()).collect();
    let mut group_ledger = GroupLedger::new(PRODUCERS as usize);
    for i in 0..MILLION {
        let key = EventKey {
            producer: (i % u64::from(PRODUCERS)) as u32,
            seq: i / u64::from(PRODUCERS),
        };
        produced[key.producer as usize].acked(key.seq);
        group_ledger.delivered(key);
        group_ledger.processed(key);
    }
    let producer_bytes: usize = produced.iter().map(ProduceLedger::heap_bytes).sum();
    eprintln!(
        "ledger memory per event: producers {:.3} B, per group {:.3} B",
        producer_bytes as f64 / MILLION as f64,
        group_ledger.heap_bytes() as f64 / MILLION as f64,
    );
    c.bench_function("ledger heap_bytes", |b| {
        b.iter(|| black_box(&group_ledger).heap_bytes())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = record_ns, add, produce_ledger_acked, group_ledger_processed, collector_per_event,
        ledger_bytes_per_event
}
criterion_main!(benches);
