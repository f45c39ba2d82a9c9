//! Hot-path costs outside the metrics types: what a producer pays per event
//! (next intended time, event draw, header encoding) and what a consumer pays
//! per read batch (walking the XREADGROUP reply). No Redis needed.
//!
//! Run with `cargo bench --bench hot_paths`. Plots are off (see benches/metrics.rs).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use redis::Value;
use streamdrill::event::Header;
use streamdrill::plan::{EventMix, RateProfile, Schedule};
use streamdrill::scenario::{Aggregates, Arrival, Bytes, EventType, Popularity, SizeDist};
use streamdrill::wire::entries::entries;

const EVENTS: u64 = 4096;

fn schedule(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule");
    group.throughput(Throughput::Elements(EVENTS));
    let ramp = RateProfile::stages(1000.0, &[(10.0, 50_000.0), (10.0, 50_000.0)]);
    for (name, arrival) in [("uniform", Arrival::Uniform), ("poisson", Arrival::Poisson)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || Schedule::new(ramp.clone(), arrival, 0.0, 7, 20.0),
                |s| {
                    s.take(EVENTS as usize)
                        .fold(0u64, |acc, t| acc ^ black_box(t))
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn producer_event(c: &mut Criterion) {
    let types = [
        EventType {
            kind: "A".into(),
            weight: 3.0,
            size: SizeDist::Fixed { value: Bytes(512) },
            versions: Vec::new(),
        },
        EventType {
            kind: "B".into(),
            weight: 1.0,
            size: SizeDist::Lognormal {
                mean: Bytes(256),
                stddev: Bytes(64),
            },
            versions: Vec::new(),
        },
    ];
    let aggregates = Aggregates {
        count: 100_000,
        popularity: Popularity::Zipf,
        exponent: 1.1,
    };
    let mix = Arc::new(EventMix::new(&types, &aggregates));
    let mut rng = SmallRng::seed_from_u64(1);
    let mut buf = Vec::with_capacity(64);
    let mut group = c.benchmark_group("producer");
    group.throughput(Throughput::Elements(1));
    group.bench_function("draw event", |b| b.iter(|| black_box(mix.draw(&mut rng))));
    group.bench_function("encode header", |b| {
        let mut seq = 0u64;
        b.iter(|| {
            buf.clear();
            seq += 1;
            Header {
                producer: 3,
                seq,
                intended_ns: 1_764_000_000_000_000_000 + seq,
            }
            .encode_into(&mut buf);
            black_box(&buf);
        })
    });
    group.finish();
}

/// An XREADGROUP entry list of `n` streamdrill events with 128-byte payloads.
fn entry_list(n: u64) -> Value {
    let entry = |seq: u64| {
        let mut header = Vec::new();
        Header {
            producer: 1,
            seq,
            intended_ns: 1_764_000_000_000_000_000 + seq,
        }
        .encode_into(&mut header);
        let field = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        Value::Array(vec![
            Value::BulkString(format!("1764000000000-{seq}").into_bytes()),
            Value::Array(vec![
                field("sd"),
                Value::BulkString(header),
                field("type"),
                field("OrderPlaced"),
                field("agg"),
                field("42:7"),
                field("data"),
                Value::BulkString(vec![b'x'; 128]),
            ]),
        ])
    };
    Value::Array((0..n).map(entry).collect())
}

fn consumer_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("consumer");
    group.throughput(Throughput::Elements(500));
    group.bench_function("parse 500 entries", |b| {
        b.iter_batched(
            || entry_list(500),
            |list| black_box(entries(list)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = schedule, producer_event, consumer_batch
}
criterion_main!(benches);
