//! Service-level objective verdicts: the scenario's `[slo]` thresholds checked
//! against a `Summary`, and, in a drill, that every fault was applied
//! (`faults_not_applied`, checked whether `[slo]` sets anything or not).
//!
//! Works on a summary read back from `summary.json`, so an old run can be
//! re-judged against new thresholds. `Summary::build` stores the verdict in
//! the summary; `run` turns a failed verdict into a non-zero exit code.

use serde::{Deserialize, Serialize};

use super::summary::Summary;
use super::table::format_us;
use crate::metrics::Percentiles;
use crate::scenario::{Dur, Slo};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SloReport {
    /// Every check passed (true when there are none).
    pub passed: bool,
    pub checks: Vec<SloCheck>,
}

impl Default for SloReport {
    fn default() -> Self {
        SloReport {
            passed: true,
            checks: Vec::new(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SloCheck {
    /// e.g. "e2e_p99[billing]".
    pub name: String,
    /// e.g. "<= 25ms".
    pub threshold: String,
    pub actual: String,
    pub passed: bool,
}

/// Checks every objective `slo` sets; absent objectives are not checked.
pub fn evaluate(slo: &Slo, summary: &Summary) -> SloReport {
    let mut checks = Vec::new();
    if let Some(limit) = slo.e2e_p99 {
        for g in &summary.groups {
            checks.push(p99_check(
                format!("e2e_p99[{}]", g.name),
                limit,
                &g.e2e_latency_us,
            ));
        }
    }
    if let Some(limit) = slo.produce_p99 {
        checks.push(p99_check(
            "produce_p99".into(),
            limit,
            &summary.produce.latency_us,
        ));
    }
    if let Some(ratio) = slo.min_rate_ratio {
        checks.push(rate_check(ratio, summary));
    }
    if let Some(limit) = slo.acked_but_gone {
        // No read-back (Redis never came back) cannot pass a durability objective.
        let gone = summary
            .durability
            .as_ref()
            .map_or(u64::MAX, |d| d.acked_but_gone);
        let mut check = count_check("acked_but_gone".into(), limit, gone);
        if summary.durability.is_none() {
            check.actual = "not measured (no read-back)".into();
        }
        checks.push(check);
    }
    if let Some(limit) = slo.lost {
        for g in &summary.groups {
            checks.push(count_check(format!("lost[{}]", g.name), limit, g.lost));
        }
    }
    if let Some(limit) = slo.duplicates {
        for g in &summary.groups {
            checks.push(count_check(
                format!("duplicates[{}]", g.name),
                limit,
                g.duplicates,
            ));
        }
    }
    if let Some(limit) = slo.errors {
        let errors = summary.produce.errors + summary.warmup.produce_errors;
        checks.push(count_check("errors".into(), limit, errors));
    }
    if !summary.faults.is_empty() {
        // No objective of the scenario's: a drill whose faults did not all
        // happen measured something else than it says, so it cannot pass.
        let not_applied = summary.faults.iter().filter(|f| !f.applied).count() as u64;
        checks.push(count_check("faults_not_applied".into(), 0, not_applied));
    }
    SloReport {
        passed: checks.iter().all(|c| c.passed),
        checks,
    }
}

/// A p99 with no measured events fails: an objective about nothing cannot be met.
fn p99_check(name: String, limit: Dur, p: &Percentiles) -> SloCheck {
    let limit_us = u64::try_from(limit.as_duration().as_micros()).unwrap_or(u64::MAX);
    let (actual, passed) = if p.count == 0 {
        ("no measured events".to_string(), false)
    } else {
        (format_us(p.p99), p.p99 <= limit_us)
    };
    SloCheck {
        name,
        threshold: format!("<= {}", format_us(limit_us)),
        actual,
        passed,
    }
}

fn rate_check(min_ratio: f64, summary: &Summary) -> SloCheck {
    let p = &summary.produce;
    let (actual, passed) = if p.target_rate_per_s > 0.0 {
        let ratio = p.achieved_rate_per_s / p.target_rate_per_s;
        let text = format!(
            "{ratio:.4} ({:.1}/s of {:.1}/s)",
            p.achieved_rate_per_s, p.target_rate_per_s
        );
        (text, ratio >= min_ratio)
    } else {
        ("no target rate".to_string(), true)
    };
    SloCheck {
        name: "min_rate_ratio".into(),
        threshold: format!(">= {min_ratio}"),
        actual,
        passed,
    }
}

fn count_check(name: String, limit: u64, actual: u64) -> SloCheck {
    SloCheck {
        name,
        threshold: format!("<= {limit}"),
        actual: actual.to_string(),
        passed: actual <= limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::tests::test_summary;

    fn slo_all(e2e_ms: u64, produce_ms: u64) -> Slo {
        Slo {
            e2e_p99: Some(Dur::from_millis(e2e_ms)),
            produce_p99: Some(Dur::from_millis(produce_ms)),
            min_rate_ratio: Some(0.99),
            lost: Some(0),
            duplicates: Some(0),
            errors: Some(0),
            acked_but_gone: None,
        }
    }

    #[test]
    fn durability_objective_needs_a_read_back() {
        let mut summary = test_summary();
        let slo = Slo {
            acked_but_gone: Some(0),
            ..Default::default()
        };
        assert!(!evaluate(&slo, &summary).passed, "no read-back cannot pass");
        summary.durability = Some(crate::metrics::Durability {
            acked: 10,
            ..Default::default()
        });
        assert!(evaluate(&slo, &summary).passed);
        summary.durability.as_mut().unwrap().acked_but_gone = 3;
        assert_eq!(
            check(&evaluate(&slo, &summary), "acked_but_gone").actual,
            "3"
        );
    }

    fn check<'a>(report: &'a SloReport, name: &str) -> &'a SloCheck {
        report.checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn generous_thresholds_pass() {
        let mut summary = test_summary();
        summary.groups[0].duplicates = 0;
        let report = evaluate(&slo_all(100, 100), &summary);
        assert!(report.passed, "{report:#?}");
        assert_eq!(report.checks.len(), 6);
        let e2e = check(&report, "e2e_p99[billing]");
        assert_eq!(
            (e2e.threshold.as_str(), e2e.actual.as_str()),
            ("<= 100ms", "10ms")
        );
        assert_eq!(
            check(&report, "min_rate_ratio").actual,
            "1.0000 (100.0/s of 100.0/s)"
        );
    }

    #[test]
    fn each_violation_fails_its_check() {
        let mut summary = test_summary();
        summary.groups[0].duplicates = 2;
        summary.groups[0].lost = 1;
        summary.produce.achieved_rate_per_s = 90.0;
        summary.warmup.produce_errors = 1;
        let report = evaluate(&slo_all(5, 1), &summary);
        assert!(!report.passed);
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "e2e_p99[billing]",
                "produce_p99",
                "min_rate_ratio",
                "lost[billing]",
                "duplicates[billing]",
                "errors"
            ]
        );
        assert_eq!(check(&report, "duplicates[billing]").actual, "2");
    }

    #[test]
    fn a_fault_not_applied_fails_the_run_without_any_objective() {
        let mut summary = test_summary();
        let applied = crate::metrics::FaultWindow {
            name: "crash_consumer billing/0".into(),
            ..Default::default()
        };
        summary.faults = vec![applied.clone()];
        let report = evaluate(&Slo::default(), &summary);
        assert!(report.passed, "{report:?}");
        assert_eq!(check(&report, "faults_not_applied").actual, "0");
        summary.faults.push(crate::metrics::FaultWindow {
            applied: false,
            error: Some("consumer billing/0 is already down".into()),
            ..applied
        });
        let report = evaluate(&Slo::default(), &summary);
        assert!(!report.passed);
        let failed = check(&report, "faults_not_applied");
        assert_eq!(
            (failed.threshold.as_str(), failed.actual.as_str()),
            ("<= 0", "1")
        );
        assert!(!failed.passed);
    }

    #[test]
    fn empty_slo_passes_and_empty_latency_fails() {
        let mut summary = test_summary();
        assert_eq!(evaluate(&Slo::default(), &summary), SloReport::default());
        summary.groups[0].e2e_latency_us = Percentiles::default();
        let slo = Slo {
            e2e_p99: Some(Dur::from_secs(1)),
            ..Default::default()
        };
        let report = evaluate(&slo, &summary);
        assert!(!report.passed);
        assert_eq!(report.checks[0].actual, "no measured events");
    }
}
