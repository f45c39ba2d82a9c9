//! How a capacity search is asked to run (docs/capacity.md, "The search"):
//! the options with their documented defaults, and the search settings
//! they make for a shape, checked with errors that name the flag and the fix.

use std::path::PathBuf;
use std::time::Duration;

use super::OnStep;
use super::shape::Shape;
use crate::cpu_idle::CpuIdle;
use crate::error::{Error, Result};
use crate::live::Live;
use crate::report::capacity::SearchSettings;

/// The shortest measured window a step can judge.
const MIN_STEP: Duration = Duration::from_secs(3);

/// The start rate when the scenario has no constant rate of its own.
const DEFAULT_START_PER_S: f64 = 1000.0;

/// How a search runs; `new` gives the documented defaults.
pub struct CapacityOptions {
    /// Parent of the capacity directory (`reports/`).
    pub out_dir: PathBuf,
    /// None: the scenario's own total rate (1000/s when it ramps).
    pub start_rate_per_s: Option<f64>,
    pub max_rate_per_s: f64,
    pub growth: f64,
    pub resolution: f64,
    pub step_warmup: Duration,
    pub step: Duration,
    pub confirm: Duration,
    /// Managed-server binaries to search, in order; empty: the scenario's.
    pub servers: Vec<String>,
    /// Search each managed server twice, plain TCP and TLS-only, side by
    /// side (docs/capacity.md, "Plain and TLS").
    pub tls_compare: bool,
    /// Told when a step starts and when it ends.
    pub on_step: Option<OnStep>,
    pub workers: Option<usize>,
    pub cpu_idle: CpuIdle,
    /// The live metrics endpoint's board: each step's figures, and the step.
    pub live: Option<Live>,
}

impl CapacityOptions {
    pub fn new(out_dir: impl Into<PathBuf>) -> CapacityOptions {
        CapacityOptions {
            out_dir: out_dir.into(),
            start_rate_per_s: None,
            max_rate_per_s: 1_000_000.0,
            growth: 2.0,
            resolution: 0.05,
            step_warmup: Duration::from_secs(2),
            step: Duration::from_secs(8),
            confirm: Duration::from_secs(20),
            servers: Vec::new(),
            tls_compare: false,
            on_step: None,
            workers: None,
            cpu_idle: CpuIdle::default(),
            live: None,
        }
    }
}

/// The settings the options make for `shape`.
pub(super) fn settings(shape: &Shape, o: &CapacityOptions) -> Result<SearchSettings> {
    let own = shape.own_rate_per_s();
    let start = o.start_rate_per_s.or(own).unwrap_or(DEFAULT_START_PER_S);
    let usage = |flag: &str, problem: &str| Err(Error::Usage(format!("{flag}: {problem}")));
    if !(start.is_finite() && start >= 1.0) {
        return usage("--start-rate", "must be at least 1 event/s");
    }
    if !(o.max_rate_per_s.is_finite() && o.max_rate_per_s >= start) {
        let from = match (o.start_rate_per_s, own) {
            (Some(_), _) => "--start-rate",
            (None, Some(_)) => "the scenario's own rate",
            (None, None) => "the default",
        };
        let problem = format!(
            "{} is below the start rate, {start}/s ({from}); raise it or lower --start-rate",
            o.max_rate_per_s
        );
        return usage("--max-rate", &problem);
    }
    if !(o.resolution > 0.0 && o.resolution < 1.0) {
        return usage("--resolution", "must be between 0 and 100 %, e.g. 5%");
    }
    if !(o.growth > 1.0 && o.growth.is_finite()) {
        return usage("--growth", "must be above 1, e.g. 2");
    }
    // A backlog's trend needs three of the sampler's once-a-second readings.
    if o.step < MIN_STEP || o.confirm < MIN_STEP {
        return usage(
            "--step / --confirm",
            "must be at least 3s: a lag trend needs three readings",
        );
    }
    Ok(SearchSettings {
        start_rate_per_s: start,
        max_rate_per_s: o.max_rate_per_s,
        growth: o.growth,
        resolution: o.resolution,
        step_warmup_s: o.step_warmup.as_secs_f64(),
        step_duration_s: o.step.as_secs_f64(),
        confirm_duration_s: o.confirm.as_secs_f64(),
        min_achieved_ratio: 0.99,
        scenario_rate_per_s: own,
    })
}
