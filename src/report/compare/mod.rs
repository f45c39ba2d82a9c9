//! `streamdrill compare RUN_A RUN_B [...]`: runs side by side, each later run
//! against the first (the baseline). Figures come from each run's
//! `summary.json`; per-second samples from `timeseries.csv` feed a Welch
//! t-test that says whether a difference exceeds run-to-run noise (as latte
//! does). `metrics` names the figures, `gate` checks `--fail-if` rules,
//! `view` renders the text table, `compare.html` and the overlaid spectrum.

pub mod gate;
pub mod metrics;
pub mod view;

use std::path::{Path, PathBuf};

use statrs::distribution::{ContinuousCDF, StudentsT};

pub use gate::{Gate, GateResult};
pub use metrics::{Metric, Unit};

use super::files::{SUMMARY_FILE, TIMESERIES_FILE, read_summary};
use super::plot::Timeseries;
use super::summary::Summary;
use crate::error::Result;

/// Below this p-value a difference counts as larger than run-to-run noise.
pub const SIGNIFICANCE: f64 = 0.05;

/// One run folder as read back.
pub struct RunData {
    pub dir: PathBuf,
    pub summary: Summary,
    pub ts: Timeseries,
}

impl RunData {
    pub fn load(dir: &Path) -> Result<RunData> {
        let summary = read_summary(&dir.join(SUMMARY_FILE))?;
        let ts_path = dir.join(TIMESERIES_FILE);
        let ts = if ts_path.exists() {
            Timeseries::read(&ts_path)?
        } else {
            Timeseries::default()
        };
        Ok(RunData {
            dir: dir.to_path_buf(),
            summary,
            ts,
        })
    }

    /// Seconds since start that bound the measured phase.
    pub fn measured_s(&self) -> (f64, f64) {
        let s = &self.summary.scenario;
        (s.warmup.as_secs_f64(), s.duration.as_secs_f64())
    }
}

/// One figure of one run against the baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Delta {
    pub value: Option<f64>,
    pub abs: Option<f64>,
    /// Percent change against the baseline; `None` when the baseline is 0.
    pub rel_pct: Option<f64>,
    /// Welch's t-test p-value over per-second samples, where both runs have them.
    pub p_value: Option<f64>,
}

/// One metric across all runs: `cells[0]` is the baseline.
#[derive(Clone, Debug)]
pub struct Row {
    pub metric: Metric,
    pub cells: Vec<Delta>,
}

pub struct Comparison {
    pub runs: Vec<RunData>,
    pub rows: Vec<Row>,
    /// Scenario and environment settings that differ: (path, value per run).
    pub differences: Vec<(String, Vec<String>)>,
}

impl Comparison {
    pub fn load(dirs: &[PathBuf]) -> Result<Comparison> {
        let runs = dirs
            .iter()
            .map(|d| RunData::load(d))
            .collect::<Result<Vec<_>>>()?;
        Ok(Comparison::new(runs))
    }

    pub fn new(runs: Vec<RunData>) -> Comparison {
        let rows = (metrics::all(&runs).into_iter())
            .map(|m| compare_metric(m, &runs))
            .collect();
        let differences = metrics::differences(&runs);
        Comparison {
            runs,
            rows,
            differences,
        }
    }

    pub fn row(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.metric.key == key)
    }
}

fn compare_metric(metric: Metric, runs: &[RunData]) -> Row {
    let base = runs.first().and_then(|r| metric.value(r));
    let base_samples = runs.first().map(|r| metric.samples(r)).unwrap_or_default();
    let cells = (runs.iter().enumerate())
        .map(|(i, run)| {
            let value = metric.value(run);
            if i == 0 {
                return Delta {
                    value,
                    abs: None,
                    rel_pct: None,
                    p_value: None,
                };
            }
            let abs = value.zip(base).map(|(v, b)| v - b);
            let rel_pct = abs
                .zip(base)
                .and_then(|(d, b)| (b != 0.0).then(|| 100.0 * d / b.abs()));
            Delta {
                value,
                abs,
                rel_pct,
                p_value: welch_p_value(&base_samples, &metric.samples(run)),
            }
        })
        .collect();
    Row { metric, cells }
}

/// Two-sided p-value of Welch's t-test: could `a` and `b` have the same mean?
/// `None` with fewer than two samples on either side.
pub fn welch_p_value(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (ma, va, na) = mean_var(a);
    let (mb, vb, nb) = mean_var(b);
    let (sa, sb) = (va / na, vb / nb);
    if sa + sb == 0.0 {
        // No spread at all: any difference is real.
        return Some(if ma == mb { 1.0 } else { 0.0 });
    }
    let t = (ma - mb) / (sa + sb).sqrt();
    let df = (sa + sb).powi(2) / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df.max(1.0)).ok()?;
    Some((2.0 * (1.0 - dist.cdf(t.abs()))).clamp(0.0, 1.0))
}

/// Mean, sample variance (n - 1) and count.
fn mean_var(xs: &[f64]) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_tells_noise_from_a_shift() {
        let a = [10.0, 11.0, 9.0, 10.5, 9.5, 10.2, 9.8];
        let noise = [10.1, 9.2, 10.8, 10.0, 9.7, 10.4, 9.9];
        let shifted: Vec<f64> = a.iter().map(|x| x + 5.0).collect();
        assert!(welch_p_value(&a, &noise).unwrap() > 0.5);
        assert!(welch_p_value(&a, &shifted).unwrap() < 1e-6);
        assert_eq!(welch_p_value(&a, &[1.0]), None);
        assert_eq!(welch_p_value(&[2.0, 2.0], &[2.0, 2.0]), Some(1.0));
        assert_eq!(welch_p_value(&[2.0, 2.0], &[3.0, 3.0]), Some(0.0));
    }

    #[test]
    fn welch_matches_a_known_value() {
        // R: t.test(c(19.1,20.5,18.2,21.3,19.8), c(22.4,21.9,23.8,22.1,24.5)) -> p = 0.003.
        let p = welch_p_value(
            &[19.1, 20.5, 18.2, 21.3, 19.8],
            &[22.4, 21.9, 23.8, 22.1, 24.5],
        )
        .unwrap();
        assert!((p - 0.003).abs() < 0.002, "{p}");
    }
}
