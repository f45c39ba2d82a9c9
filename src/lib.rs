//! streamdrill: scenario-driven load tests and failure drills for Redis Streams.
//!
//! # Layout
//!
//! The folders follow the data, from what the user writes to what they read:
//! scenario → plan → actors → metrics → report. Layers, bottom to top; a
//! module imports only from its own layer's modules below it and from the
//! base (`tests/it/layers.rs` holds the code to this list):
//!
//! **The base**, for every layer:
//! - [`error`]: the one error type, with the file, field or server each failure concerns.
//! - [`decimal`]: ASCII decimal digits written in place, for the event header and RESP.
//! - [`clock`]: the run-wide clock every latency is measured on, the precise timer
//!   schedules wake on, and the process's own CPU time.
//! - [`event`]: how an event travels through a stream (producer id, sequence, intended time,
//!   aggregate and its version there).
//! - [`slot`]: the Redis Cluster hash slot of a key (CRC16, hash tags).
//!
//! **Pure** (no redis-rs, actix or tokio):
//! - [`scenario`]: the TOML file as typed structs; loading, `--set` overrides, validation
//!   (group, replication and fault checks; a fault is `{ at, kind }`, each kind defined
//!   once in `scenario/faults/kinds.rs`), units.
//! - [`plan`]: a valid scenario made concrete: one entry per producer and consumer,
//!   arrival schedules, event mixes, stream keys with the run's prefix (a partitioned
//!   stream's keys, and the partition an aggregate hashes to), each fault with
//!   its resolved target, the run's timeouts.
//! - [`metrics`]: run records: HdrHistograms, counters, the per-event ledger and its
//!   settling per phase, per-aggregate order, in-flight events, write stalls, fault
//!   windows and their recovery, Redis's own counts, what the server is and which stream features it has,
//!   the window's load (CPU, memory, backlog trends), the progress line's figures, the
//!   time series (old interval-log entries spilled to a temporary file).
//! - [`report`]: `summary.json` (the source of truth, and older schemas read back), SLO
//!   verdicts, and the views rendered from it (terminal table, CSV, HdrHistogram logs,
//!   plots, index.html, compare), and `capacity.json` with its views.
//!
//! **Standalone** (processes and sockets a run or a test starts):
//! - [`server`]: managed `redis-server` processes, or any compatible binary such as Valkey
//!   (free port, temp dir, kill -9, restart), configured by whoever starts them.
//! - [`proxy`]: the TCP fault proxy for network drills: latency, bandwidth, blackhole, resets.
//! - [`tls`]: TLS clients (a CA, a client certificate, or loudly no verification) and the
//!   throwaway CA of a TLS-only managed server.
//! - [`powerfs`]: the FUSE file system for power-loss drills: writes pass through, and a
//!   power cut drops every byte not fsynced since.
//!
//! **The runtime** (talks to Redis, runs the actors, records into metrics):
//! - [`cpu_idle`]: `--cpu-idle poll`, the PM QoS hold that keeps idle CPUs polling.
//! - [`live`]: the live metrics endpoint (`--metrics-addr`): the collector's figures of
//!   each second as an OpenMetrics exposition, served from a thread of its own.
//! - [`wire`]: the actors' own RESP client for the per-event path (commands encoded
//!   into one buffer, replies scanned in place), and stream entries out of replies.
//! - [`connect`]: the Redis under test (its URL and TLS), and redis-rs connections for
//!   setup, sampling and read-back: TCP_NODELAY, timeouts, reconnection; to a cluster,
//!   routed by slot over its primaries.
//! - [`verify`]: what Redis itself holds after the drain, read back to settle the ledger.
//! - [`actors`]: the actix actors that do the work: producers, consumers, sampler,
//!   collector, and the chaos actor that applies a drill's faults by family; the worker
//!   threads they run on.
//! - [`coordinator`]: the phases setup > warmup/measure > reply grace > drain > verify,
//!   returning what was measured.
//!
//! **The top** (picks servers, runs, renders):
//! - [`runner`]: one whole run: the Redis it targets, the actix System, the report directory.
//! - [`bench`]: streamdrill against redis-benchmark, side by side (`streamdrill bench`).
//! - [`capacity`]: the maximum sustainable rate of a workload shape, found by a search
//!   whose every step is a whole run (`streamdrill capacity`), and the sizing from it.
//! - [`merge`]: the run directories of a run's segments (`run --segment I/N`) joined
//!   into one, the ledger settled again from their raw ledgers (`streamdrill merge`).
//! - [`cli`]: the command line, shared by `main.rs` and the tests.
//!
//! Outside `src/`: `tests/it/` holds the integration tests, each against its own
//! `redis-server`; `benches/` the criterion benches of the hot paths. What the
//! modules measure and why is in `docs/` (start at README.md).

pub mod actors;
pub mod bench;
pub mod capacity;
pub mod cli;
pub mod clock;
pub mod connect;
pub mod coordinator;
pub mod cpu_idle;
pub mod decimal;
pub mod error;
pub mod event;
pub mod live;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod powerfs;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod server;
pub mod slot;
pub mod tls;
pub mod verify;
pub mod wire;

pub use cli::{Cli, run};
pub use error::{Error, Result};
