//! `capacity.json`: the record of one capacity search (`streamdrill
//! capacity`), and the views rendered from it, described in
//! docs/reports.md, "Capacity reports". Each step of a search is a whole run
//! with its own `summary.json` under `steps/`; this file keeps, per step,
//! the figures the search judged and plots, its verdict, and the result
//! with its sizing. Knows neither actix nor redis.
//!
//! The views, each rendered from a `Capacity` alone so `streamdrill report`
//! can redraw an old search: `charts` (the plots against offered load),
//! `html` (`index.html`, its sizing tables in `sizing`), `text` (the
//! terminal's summary); `words` holds the sentences they share, `files`
//! writes and reads the directory.

use serde::{Deserialize, Serialize};

pub mod charts;
#[doc(hidden)]
pub mod example;
mod files;
mod html;
#[cfg(test)]
mod schema_tests;
mod sizing;
mod text;
mod words;

pub use files::{read_capacity, render_capacity_views, write_capacity, write_record};
pub use text::render_capacity_text;

use super::environment::{MachineInfo, RedisInfo};
use crate::scenario::Scenario;

pub const CAPACITY_FILE: &str = "capacity.json";

/// Bumped whenever a field changes meaning or disappears.
pub const CAPACITY_SCHEMA_VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Capacity {
    pub schema_version: u32,
    pub streamdrill_version: String,
    /// The directory name: `<scenario>-capacity-<UTC timestamp>`.
    pub id: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// The workload shape as given (overrides applied); each step scales its
    /// producers' rates and replaces its duration.
    pub scenario: Scenario,
    pub settings: SearchSettings,
    /// One search per server, in the order given.
    pub servers: Vec<ServerSearch>,
    pub machine: MachineInfo,
    /// Stopped early (Ctrl-C): the steps so far, and what they found.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// How the search was run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SearchSettings {
    /// The first step's total produce rate (events/s).
    pub start_rate_per_s: f64,
    /// No step goes above this.
    pub max_rate_per_s: f64,
    /// Each probe step multiplies the rate by this until one fails.
    pub growth: f64,
    /// Bisection stops once (fail − pass) / pass is at most this (0.05: 5 %).
    pub resolution: f64,
    /// Each step's warmup, then its measured window.
    pub step_warmup_s: f64,
    pub step_duration_s: f64,
    /// The measured window of the confirmation run at the result.
    pub confirm_duration_s: f64,
    /// A step passes when achieved ≥ this × offered (0.99).
    pub min_achieved_ratio: f64,
    /// The scenario's own total rate (its operating point in the sizing); None
    /// when it has none (a ramp's peak is used as the rate shape).
    pub scenario_rate_per_s: Option<f64>,
}

/// The search against one server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ServerSearch {
    /// What the server says it is, e.g. "redis 7.0.15" or "valkey 9.1.2".
    pub label: String,
    /// The managed server's binary; None for an external Redis.
    pub binary: Option<String>,
    /// From the first step that reached the server.
    pub redis: Option<RedisInfo>,
    pub steps: Vec<Step>,
    /// None when no step ran (or none passed: see `result.bound`).
    pub result: Option<CapacityResult>,
    pub sizing: Option<Sizing>,
    /// Why the search stopped early against this server, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a step ran.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Geometric increase until a step fails.
    Probe,
    /// Halving the interval between the highest pass and the lowest fail.
    Bisect,
    /// The longer run at the result.
    Confirm,
}

impl StepKind {
    /// As capacity.json, step directories and the views write it.
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Probe => "probe",
            StepKind::Bisect => "bisect",
            StepKind::Confirm => "confirm",
        }
    }
}

/// One step: a whole run at one offered rate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Step {
    /// 1-based, in the order run.
    pub index: u32,
    pub kind: StepKind,
    /// The run directory, relative to the capacity directory.
    pub run_dir: String,
    pub offered_rate_per_s: f64,
    /// Acknowledged inside the measured window / its length.
    pub achieved_rate_per_s: f64,
    pub measured_duration_s: f64,
    /// Intended send → XADD reply, µs, measured phase.
    pub produce: Quantiles,
    /// XADD sent → reply, µs.
    pub service: Quantiles,
    /// Intended send → actually sent, µs: how late the harness itself was.
    pub schedule_lag: Quantiles,
    pub groups: Vec<StepGroup>,
    /// Redis's own CPU (user + system) over the measured window, in cores
    /// (1.0: one core busy all the time). None when INFO could not tell.
    pub redis_cpu_cores: Option<f64>,
    /// The harness's CPU over the measured window (over the run without
    /// sampler readings), in cores.
    pub harness_cpu_cores: f64,
    /// Threads the harness ran producers and consumers on.
    pub harness_threads: u32,
    /// INFO used_memory at the end of the measured window.
    pub used_memory_bytes: Option<u64>,
    /// How fast used_memory grew over the measured window (least squares), bytes/s.
    #[serde(default)]
    pub used_memory_growth_per_s: Option<f64>,
    /// Entries in the scenario's streams after the drain (XLEN summed).
    pub stream_entries: Option<u64>,
    /// MEMORY USAGE of those streams after the drain, summed.
    pub stream_memory_bytes: Option<u64>,
    /// A cluster's shards, in slot order: the one whose Redis CPU is
    /// highest is the first to saturate. Empty for one server.
    /// (docs/cluster.md, "Capacity across shards")
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<StepShard>,
    pub verdict: Verdict,
}

/// One shard of a cluster in one step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct StepShard {
    /// Its primary when the step started, `host:port`.
    pub primary: String,
    /// Its Redis CPU (user + system) over the measured window, cores.
    pub cpu_cores_mean: Option<f64>,
    /// The busiest second of it.
    pub cpu_cores_max: Option<f64>,
    /// XINFO entries-added on the stream keys it held at the start.
    pub entries_added: u64,
}

impl Step {
    /// The shard with the most Redis CPU, and its index; None for one server.
    pub fn busiest_shard(&self) -> Option<(usize, &StepShard)> {
        (self.shards.iter().enumerate())
            .filter_map(|(i, s)| Some((s.cpu_cores_mean?, i, s)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, i, s)| (i, s))
    }
}

/// p50 / p99 / p99.9 in µs of `count` values.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub struct Quantiles {
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub count: u64,
}

/// One group in one step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StepGroup {
    pub name: String,
    /// Intended send → processed, µs, measured phase.
    pub e2e: Quantiles,
    /// Least-squares slope of XINFO GROUPS `lag` over the measured window
    /// (entries/s; > 0: falling behind). None when Redis could not tell.
    pub lag_slope_per_s: Option<f64>,
    /// The same for the pending count.
    pub pending_slope_per_s: Option<f64>,
    /// The backlog growth a step tolerates (entries/s): noise of batched
    /// reads, or 1 % of the offered rate, whichever is larger.
    pub slope_limit_per_s: f64,
}

/// A step's judgement: the first criterion that failed, in a fixed order
/// (achieved rate, each group's lag then pending, the scenario's SLO).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    /// Set when `passed` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Criterion>,
    /// The harness, not the server, was the limit: it could not keep its own
    /// schedule (CPU saturated, or sends late while Redis was not busy).
    pub harness_limited: bool,
    /// One line for people, e.g. "group billing: lag grows 412/s (limit 40/s)".
    pub reason: String,
}

/// What failed first.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "criterion", rename_all = "snake_case")]
pub enum Criterion {
    /// Achieved < min_achieved_ratio × offered.
    AchievedRate { ratio: f64 },
    /// A group's lag grew faster than its limit.
    GroupLag { group: String, slope_per_s: f64 },
    /// A group's pending list grew faster than its limit.
    GroupPending { group: String, slope_per_s: f64 },
    /// Whether a group kept up could not be told: Redis reported its lag
    /// for fewer than three readings of the window (it does not report lag,
    /// or it was too busy to answer the sampler).
    GroupTrendUnknown { group: String },
    /// A check of the scenario's `[slo]` failed (`check` as in summary.json).
    Slo { check: String, detail: String },
    /// The run itself did not finish (error or Ctrl-C).
    Incomplete { detail: String },
}

/// What the search found.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CapacityResult {
    /// The highest offered rate that passed (the confirmation's when it ran
    /// and passed). 0 when even the start rate failed.
    pub max_sustainable_rate_per_s: f64,
    pub bound: Bound,
    /// The lowest failing rate above it, if any.
    pub first_failing_rate_per_s: Option<f64>,
    /// (first failing − max sustainable) / max sustainable.
    pub resolution_reached: Option<f64>,
    /// The confirmation run passed.
    pub confirmed: bool,
    /// What the lowest failing step failed on: the limiting factor.
    pub limit: Option<Verdict>,
    /// The step (index) at the knee: the highest passing step.
    pub knee_step: Option<u32>,
}

/// How the search ended.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Bracketed between a pass and a fail to the resolution.
    Found,
    /// The lowest failure was the harness's: the server sustains at least the result.
    HarnessLimited,
    /// Every step up to the ceiling passed: at least the ceiling.
    Ceiling,
    /// Even the start rate failed: lower `--start-rate`.
    BelowStart,
    /// No confirmation held (three failed): the rate given is the highest
    /// that passed once, and the setup is noisy around it.
    Unconfirmed,
    /// Stopped (Ctrl-C or an error) before bracketing.
    Incomplete,
}

/// How big a deployment must be, from the steps' measurements.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Sizing {
    /// MEMORY USAGE / XLEN of the streams after the knee step's drain.
    pub bytes_per_entry: Option<f64>,
    /// The same from INFO used_memory: its growth rate over the knee step's
    /// window / the achieved rate (None when a stream is trimmed).
    pub used_memory_bytes_per_entry: Option<f64>,
    /// Extra memory per pending entry (a probe on a fresh server: INFO
    /// used_memory before and after a stream's entries are read unacknowledged).
    pub pending_bytes_per_entry: Option<f64>,
    /// The rate the sizing plans for: the scenario's own, else half the result.
    pub operating_rate_per_s: f64,
    /// max sustainable / operating − 1 (0.5: 50 % more load fits).
    pub headroom: f64,
    pub retention: Vec<RetentionRow>,
    pub drain: Vec<DrainRow>,
    pub shards: Vec<ShardRow>,
}

/// Memory to keep `window_s` of events at `rate_per_s`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RetentionRow {
    pub rate_per_s: f64,
    pub window_s: f64,
    pub entries: u64,
    pub bytes: Option<u64>,
    /// XADD MAXLEN that holds the window.
    pub maxlen: u64,
    /// XADD MINID = now − window (ms): the id bound that holds it.
    pub minid_ms: u64,
}

/// Catching up after consumers were down `outage_s` at the operating rate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DrainRow {
    pub outage_s: f64,
    pub backlog: u64,
    /// backlog / (max sustainable − operating); None when there is no spare rate.
    pub drain_s: Option<f64>,
}

/// Shards (one stream partition per shard) a target rate needs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ShardRow {
    pub target_rate_per_s: f64,
    pub shards: u32,
}
