//! The scenario file: what a user writes, as typed serde structs.
//!
//! `load` reads a TOML file, applies `--set` overrides and deserializes it;
//! `validate` checks what types cannot (rates > 0, groups on produced streams),
//! with `group_checks`, `replication_checks`, `cluster` and `faults` (the fault timeline:
//! each fault kind defined once, with what it targets, needs and checks);
//! `units` parses the human forms of durations ("250ms") and sizes ("1KiB"),
//! and the two forms of a distribution ("200us" or `{ dist = "exponential", ... }`).
//! The plan module turns a valid `Scenario` into concrete work.
//! Every type denies unknown fields so a typo is an error, not a silent default.

mod cluster;
mod de;
mod dists;
mod faults;
mod group_checks;
mod load;
mod partition_checks;
mod producer_checks;
mod replay;
mod replication_checks;
mod schema_versions;
mod trim_policy;
mod units;
mod validate;
mod violation;

pub use cluster::ClusterConfig;
pub use dists::{SizeDist, TimeDist};
pub use faults::{
    Fault, FaultKind, Lasts, Link, ReadBack, Spec, Target, resolve_consumer, resolve_producer,
};
pub use load::{Overrides, load_file, load_str};
pub use partition_checks::MAX_PARTITIONS;
pub use producer_checks::{MAX_AGGREGATES, MAX_EVENT_SIZE};
pub use replay::ReplayConfig;
pub use schema_versions::{
    EventKind, Handling, MAX_SCHEMA_VERSION, VersionStep, event_kinds, handling, producer_kinds,
    uses_versions, versioned_name,
};
pub use trim_policy::TrimPolicy;
pub use units::{Bytes, Dur, Rate};
pub use validate::validate;
pub use violation::Violation;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A whole scenario file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seeds every random choice: arrivals, event mix, sizes, processing times.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Total time producers run, warmup included.
    pub duration: Dur,
    /// First part of `duration` whose measurements are reported apart from the totals.
    #[serde(default)]
    pub warmup: Dur,
    /// How long consumers may take after producers stop to process what is left.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: Dur,
    /// How long producers wait past the end of their schedule for the last
    /// replies (k6's `gracefulStop`): what is unanswered then is
    /// indeterminate, what was never sent is unsent.
    #[serde(default = "default_reply_grace")]
    pub reply_grace: Dur,
    #[serde(default)]
    pub redis: RedisConfig,
    #[serde(default)]
    pub streams: Vec<StreamConfig>,
    pub producers: Vec<ProducerConfig>,
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    /// The fault timeline of a failure drill.
    #[serde(default)]
    pub faults: Vec<Fault>,
    #[serde(default)]
    pub slo: Slo,
}

impl Scenario {
    /// How many keys stream `name` is split into (1 when it is not partitioned).
    pub fn partitions_of(&self, name: &str) -> u32 {
        (self.streams.iter())
            .find(|s| s.key == name)
            .map_or(1, |s| s.partitions)
    }
}

fn default_seed() -> u64 {
    1
}
fn default_drain_timeout() -> Dur {
    Dur::from_secs(10)
}
fn default_reply_grace() -> Dur {
    Dur::from_secs(10)
}

/// Where Redis comes from. `--redis URL` on the command line turns any
/// scenario into an external one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    #[serde(default)]
    pub mode: RedisMode,
    /// Required when mode = "external": `redis://host:port[/db]`.
    #[serde(default)]
    pub url: Option<String>,
    /// Managed mode only: the redis-server-compatible binary to start (Redis,
    /// Valkey). A bare name is looked up on PATH, a path is taken from the
    /// current directory; none means `redis-server` (or `$STREAMDRILL_REDIS_SERVER`).
    /// Whether it can be run is checked when the run starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<PathBuf>,
    /// Managed mode only: the persistence and memory settings of the server streamdrill starts.
    #[serde(default)]
    pub appendonly: bool,
    #[serde(default)]
    pub appendfsync: Appendfsync,
    /// RDB snapshot schedule in redis.conf syntax ("900 1 300 10"); "" disables RDB.
    #[serde(default)]
    pub save: String,
    /// e.g. "256mb"; none means unlimited.
    #[serde(default)]
    pub maxmemory: Option<String>,
    /// Extra redis.conf lines, e.g. ["maxmemory-policy allkeys-lru"].
    #[serde(default)]
    pub config: Vec<String>,
    /// Managed mode only: start a second server as a replica of the first
    /// (same settings), for `failover` drills and producer `wait`.
    #[serde(default)]
    pub replica: bool,
    /// Managed mode only: keep the data files on streamdrill's power-loss
    /// file system even without a `power_loss` fault (a `kill_redis` drill
    /// on the same file system, or its overhead); a `power_loss` fault
    /// turns it on by itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub power_fs: bool,
    /// Managed mode only: a TLS-only server with a throwaway CA of its own
    /// (docs/tls.md, "Managed servers"). External servers: `rediss://`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// Managed, with `tls`: the server asks clients for a certificate
    /// (`tls-auth-clients yes`), and the harness shows one its CA signed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls_auth_clients: bool,
    /// External `rediss://` only: the CA file (PEM) that signed the server's
    /// certificate; none trusts the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// External `rediss://` only: a client certificate chain and its key
    /// (PEM), for servers with `tls-auth-clients yes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// External `rediss://` only: accept any server certificate (encrypted,
    /// not authenticated); the report says so wherever it shows the server.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls_insecure: bool,
    /// Managed mode only: a Redis Cluster of `shards` primaries instead of
    /// one server (docs/cluster.md, "Running against a cluster").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            mode: RedisMode::Managed,
            url: None,
            server: None,
            appendonly: false,
            appendfsync: Appendfsync::Everysec,
            save: String::new(),
            maxmemory: None,
            config: Vec::new(),
            replica: false,
            power_fs: false,
            tls: false,
            tls_auth_clients: false,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_insecure: false,
            cluster: None,
        }
    }
}

impl RedisConfig {
    /// Whether the run talks TLS: a managed TLS-only server, or a `rediss://` URL.
    pub fn uses_tls(&self) -> bool {
        match self.mode {
            RedisMode::Managed => self.tls,
            RedisMode::External => self
                .url
                .as_deref()
                .is_some_and(|u| u.starts_with("rediss://")),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    #[default]
    Managed,
    External,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Appendfsync {
    Always,
    #[default]
    Everysec,
    No,
}

/// Per-stream settings. A stream written by a producer but not listed here is untrimmed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub key: String,
    /// Trim on every XADD to at most this many entries (MAXLEN).
    #[serde(default)]
    pub maxlen: Option<u64>,
    /// Trim on every XADD entries older than this age (MINID = now - age).
    #[serde(default)]
    pub minid: Option<Dur>,
    /// Use `~` (approximate, cheaper) trimming instead of `=`.
    #[serde(default = "yes")]
    pub approx: bool,
    /// Split the stream into this many keys by aggregate
    /// (docs/event-sourcing.md, "Partitioned streams").
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub partitions: u32,
    /// What trimming may remove that a group still needs (Redis 8.2's
    /// KEEPREF | DELREF | ACKED; docs/event-sourcing.md, "Safe trimming").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim_policy: Option<TrimPolicy>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProducerConfig {
    /// Label in reports; defaults to the stream key.
    #[serde(default)]
    pub name: Option<String>,
    pub stream: String,
    /// Number of producers sharing this entry's rate (each numbers its own events).
    #[serde(default = "one")]
    pub count: u32,
    /// TCP connections the `count` producers share (default: one each). Fewer
    /// connections coalesce what falls due at once into one write: less
    /// harness CPU per event, the way an application with a connection pool
    /// sends. Scheduled rates only.
    #[serde(default)]
    pub connections: Option<u32>,
    /// How long a connection waits after an event falls due for more to send
    /// with it (Kafka's `linger.ms`): fewer, fuller writes, each event at most
    /// this late (counted in its latency and schedule lag). Default 0.
    #[serde(default)]
    pub linger: Option<Dur>,
    #[serde(default)]
    pub arrival: Arrival,
    /// Constant total rate (events/s across all `count` producers; shorthand for
    /// one stage), or "max": each producer closed-loop at full speed.
    #[serde(default)]
    pub rate: Option<Rate>,
    /// With rate = "max": XADDs per pipeline, each producer keeping one pipeline in flight.
    #[serde(default = "one")]
    pub pipeline: u32,
    /// Rate at time 0 when `stages` ramp; defaults to the first stage's rate.
    #[serde(default)]
    pub start_rate: Option<f64>,
    /// k6-style stages: each ramps linearly from the previous rate to its `rate`
    /// over its `duration`. After the last stage its rate holds.
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Event mix; defaults to one type "Event" of 128 bytes.
    #[serde(default)]
    pub events: Vec<EventType>,
    #[serde(default)]
    pub aggregates: Aggregates,
    /// `WAIT replicas timeout` after each pipeline of XADDs: synchronous
    /// replication, at a latency cost. Needs a replica.
    #[serde(default)]
    pub wait: Option<WaitConfig>,
}

/// A producer's `wait = { replicas = 1, timeout = "100ms" }`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WaitConfig {
    pub replicas: u32,
    pub timeout: Dur,
}

/// A producer as a fault names it: "<label>/<n>" (label = its `name` or
/// stream) or its index among all producers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ProducerRef {
    Index(u32),
    Name(String),
}

impl std::fmt::Display for ProducerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProducerRef::Index(i) => write!(f, "{i}"),
            ProducerRef::Name(n) => f.write_str(n),
        }
    }
}

/// An unpartitioned stream's resolved scenario reads as before partitions existed.
fn is_one(n: &u32) -> bool {
    *n == 1
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub duration: Dur,
    pub rate: f64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Evenly spaced intended send times.
    #[default]
    Uniform,
    /// Exponential gaps (a non-homogeneous Poisson process following the stages).
    Poisson,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventType {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "one_f64")]
    pub weight: f64,
    /// Payload size: "512B" (fixed) or a distribution table.
    #[serde(default = "default_size")]
    pub size: SizeDist,
    /// Schema versions over time (docs/event-sourcing.md, "Schema versions"):
    /// empty for an unversioned type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<VersionStep>,
}

fn one_f64() -> f64 {
    1.0
}
fn default_size() -> SizeDist {
    SizeDist::Fixed { value: Bytes(128) }
}

/// Which aggregate (order id, user id...) an event belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Aggregates {
    #[serde(default = "default_aggregate_count")]
    pub count: u64,
    #[serde(default)]
    pub popularity: Popularity,
    /// Zipf exponent (s); only with popularity = "zipf".
    #[serde(default = "default_zipf_exponent")]
    pub exponent: f64,
}

impl Default for Aggregates {
    fn default() -> Self {
        Aggregates {
            count: default_aggregate_count(),
            popularity: Popularity::Uniform,
            exponent: default_zipf_exponent(),
        }
    }
}

fn default_aggregate_count() -> u64 {
    1000
}
fn default_zipf_exponent() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Popularity {
    #[default]
    Uniform,
    Zipf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub stream: String,
    pub name: String,
    #[serde(default = "one")]
    pub consumers: u32,
    /// XREADGROUP COUNT.
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// XREADGROUP BLOCK.
    #[serde(default = "default_block")]
    pub block: Dur,
    /// XGROUP CREATE id: "0" reads the stream from its start, "$" only new entries.
    #[serde(default = "default_start")]
    pub start: String,
    /// Consumers begin reading this long after the run starts (a late or catching-up group).
    #[serde(default)]
    pub start_after: Dur,
    #[serde(default)]
    pub processing: TimeDist,
    #[serde(default)]
    pub ack: AckMode,
    /// Survivors take over entries another consumer left pending (XAUTOCLAIM).
    #[serde(default)]
    pub reclaim: Option<Reclaim>,
    /// An entry delivered this many times without being processed goes to the
    /// dead-letter stream `<stream>:dlq` (and is acknowledged) when next reclaimed.
    #[serde(default)]
    pub max_deliveries: Option<u32>,
    /// A fraction of events whose processing in this group always fails.
    #[serde(default)]
    pub poison: Option<PoisonConfig>,
    /// Check that each aggregate's events finish in version order across the
    /// group's consumers, and report how far they do not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check_order: bool,
    /// Fold each processed event into a per-aggregate read model in Redis
    /// (docs/event-sourcing.md, "Projections").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<Projection>,
    /// Per versioned type, the schema versions this group reads; others it
    /// dead-letters (docs/event-sourcing.md, "Schema versions").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub understands: BTreeMap<String, Vec<u32>>,
    /// Versions older than the oldest it understands are upcast and processed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upcast: bool,
    /// Rebuild the projection from the stream after the run
    /// (docs/event-sourcing.md, "Replay and snapshots").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayConfig>,
}

/// How a group's projection applies an event to the read model.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Projection {
    /// Count and record the version of every processing: a redelivered
    /// event is applied again.
    Naive,
    /// Apply an event only when its version follows the stored one, in one
    /// script, so a redelivered event changes nothing.
    Idempotent,
}

impl Projection {
    pub fn name(self) -> &'static str {
        match self {
            Projection::Naive => "naive",
            Projection::Idempotent => "idempotent",
        }
    }
}

/// Poison events: which ones is decided from (seed, producer, seq), so every
/// consumer and every redelivery agrees; a poisoned event is never acknowledged.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoisonConfig {
    /// Share of events that are poison, 0 to 1 (e.g. 0.01).
    pub fraction: f64,
}

/// XAUTOCLAIM settings: every `every`, each consumer claims entries that have
/// been pending longer than `min_idle` (a dead or stalled consumer's) and processes them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Reclaim {
    pub min_idle: Dur,
    #[serde(default = "default_reclaim_every")]
    pub every: Dur,
}

fn default_reclaim_every() -> Dur {
    Dur::from_secs(1)
}

fn default_batch() -> u32 {
    100
}
fn default_block() -> Dur {
    Dur::from_millis(100)
}
fn default_start() -> String {
    "0".to_string()
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    /// XACK each batch after it is processed.
    #[default]
    Batch,
    /// XREADGROUP NOACK: entries never enter the pending list.
    Noack,
}

/// Service-level objectives. A failed check makes `run` exit non-zero
/// after the report is written. Absent fields are not checked.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Every group's end-to-end p99 at most this.
    #[serde(default)]
    pub e2e_p99: Option<Dur>,
    /// Produce latency (from intended send time to XADD reply) p99 at most this.
    #[serde(default)]
    pub produce_p99: Option<Dur>,
    /// Achieved produce rate at least this fraction of the target (e.g. 0.99).
    #[serde(default)]
    pub min_rate_ratio: Option<f64>,
    /// Acknowledged-but-never-processed events allowed, per group.
    #[serde(default)]
    pub lost: Option<u64>,
    /// Events processed more than once allowed, per group.
    #[serde(default)]
    pub duplicates: Option<u64>,
    /// Failed XADDs allowed.
    #[serde(default)]
    pub errors: Option<u64>,
    /// After a kill_redis drill: acknowledged XADDs allowed to be gone from the
    /// stream (0 for `appendfsync always`; a budget for `everysec`).
    #[serde(default)]
    pub acked_but_gone: Option<u64>,
}
