//! streamdrill: scenario-driven load tests and failure drills for Redis Streams.
//!
//! # Layout
//!
//! The folders follow the data, from what the user writes to what they read:
//!
//! - [`scenario`]: the TOML file as typed structs; loading, `--set` overrides, validation
//!   (with the fault, network and replication checks), units.
//! - [`plan`]: a valid scenario made concrete: one entry per producer and consumer,
//!   arrival schedules, event mixes, stream keys with the run's prefix.
//! - [`server`]: managed `redis-server` processes (free port, temp dir, kill -9, restart),
//!   used by runs, tests and benches alike.
//! - [`proxy`]: the TCP fault proxy for network drills: latency, bandwidth, blackhole, resets.
//! - [`clock`]: the run-wide clock every latency is measured on, the precise timer
//!   schedules wake on, and the process's own CPU time.
//! - [`cpu_idle`]: `--cpu-idle poll`, the PM QoS hold that keeps idle CPUs polling.
//! - [`connect`]: connections to Redis: TCP_NODELAY, timeouts, reconnection.
//! - [`wire`]: the actors' own RESP client for the per-event path (commands
//!   encoded into one buffer, replies scanned in place).
//! - [`event`]: how an event travels through a stream (producer id, sequence, intended time).
//! - [`decimal`]: ASCII decimal digits written in place, for the event header and RESP.
//! - [`actors`]: the actix actors that do the work: producers, consumers, sampler,
//!   collector, and the chaos actor that plays a drill's fault timeline; the worker
//!   threads they run on.
//! - [`coordinator`]: the phases setup > warmup/measure > drain > verify, returning metrics.
//! - [`runner`]: one whole run: the Redis it targets, the actix System, the report directory.
//! - [`verify`]: what Redis itself holds after the drain, read back to settle the ledger.
//! - [`metrics`]: pure measurement data (HdrHistograms, counters, ledger, in-flight
//!   events, write stalls, durability check, time series with old interval-log entries
//!   spilled to a temporary file); knows neither actix nor redis.
//! - [`report`]: `summary.json` (the source of truth), SLO verdicts, and the views rendered
//!   from it (terminal table, CSV, HdrHistogram logs, plots, index.html, compare).
//! - [`bench`]: streamdrill against redis-benchmark, side by side (`streamdrill bench`).
//! - [`cli`]: the command line, shared by `main.rs` and the tests.
//! - [`error`]: the one error type, with the file, field or server each failure concerns.
//!
//! Outside `src/`: `tests/it/` holds the integration tests, each against its own
//! `redis-server`; `benches/` the criterion benches of the hot paths. What the
//! modules measure and why is in `docs/` (start at README.md).

pub mod actors;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod connect;
pub mod coordinator;
pub mod cpu_idle;
pub mod decimal;
pub mod error;
pub mod event;
pub mod metrics;
pub mod plan;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod server;
pub mod verify;
pub mod wire;

pub use cli::{Cli, run};
pub use error::{Error, Result};
