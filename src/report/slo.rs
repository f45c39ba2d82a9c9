//! Service-level objective verdicts: the scenario's `[slo]` thresholds checked
//! against a `Summary`, and, in a drill, that every fault was applied
//! (`faults_not_applied`, checked whether `[slo]` sets anything or not).
//!
//! Works on a summary read back from `summary.json`, so an old run can be
//! re-judged against new thresholds. `Summary::build` stores the verdict in
//! the summary; `run` turns a failed verdict into a non-zero exit code.
//! Rate and latency objectives judge the measured phase; loss objectives
//! (`lost`, `duplicates`, `acked_but_gone`) the whole run, since loss is
//! never excused by phase (docs/measurement.md, "Accounting"). Thresholds
//! and actual values are numbers, with their unit in the field name.

use serde::{Deserialize, Serialize};

use super::format::format_us;
use super::groups::{GroupPhase, GroupSummary};
use super::summary::Summary;
use crate::metrics::Percentiles;
use crate::scenario::{Dur, Slo};

/// The share of events a p99 may leave out: with more events unprocessed
/// than this, the p99 is unknown, whatever the processed ones say.
const P99_UNCOVERED_MAX: f64 = 0.01;

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
    /// Which events the check judged.
    pub scope: Scope,
    /// The threshold and the actual value, typed.
    #[serde(flatten)]
    pub objective: Objective,
    pub passed: bool,
    /// How to read the actual value, or why there is none (e.g. "lower
    /// bound: 12 events not processed").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Events intended after the warmup.
    #[default]
    Measured,
    /// Warmup and measured phase together.
    WholeRun,
}

impl Scope {
    pub fn label(self) -> &'static str {
        match self {
            Scope::Measured => "measured",
            Scope::WholeRun => "whole run",
        }
    }
}

/// One objective's threshold and what the run achieved; `None` actual: not
/// measured (`note` says why).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Objective {
    /// A p99 latency at most `max_us`.
    P99 { max_us: u64, actual_us: Option<u64> },
    /// Achieved rate / target rate at least `min_ratio`.
    RateRatio {
        min_ratio: f64,
        actual_ratio: Option<f64>,
        achieved_rate_per_s: f64,
        target_rate_per_s: f64,
    },
    /// A count of events at most `max`.
    Count { max: u64, actual: Option<u64> },
    /// A schema-1 file's check, as it was written then (thresholds and
    /// actual values were text).
    Text { threshold: String, actual: String },
}

impl Objective {
    /// The threshold as people read it, e.g. "<= 25ms".
    pub fn threshold_text(&self) -> String {
        match self {
            Objective::P99 { max_us, .. } => format!("<= {}", format_us(*max_us)),
            Objective::RateRatio { min_ratio, .. } => format!(">= {min_ratio}"),
            Objective::Count { max, .. } => format!("<= {max}"),
            Objective::Text { threshold, .. } => threshold.clone(),
        }
    }

    /// The actual value as people read it; "-" when not measured.
    pub fn actual_text(&self) -> String {
        match self {
            Objective::P99 { actual_us, .. } => actual_us.map_or("-".into(), format_us),
            Objective::RateRatio {
                actual_ratio,
                achieved_rate_per_s,
                target_rate_per_s,
                ..
            } => match actual_ratio {
                Some(r) => {
                    format!("{r:.4} ({achieved_rate_per_s:.1}/s of {target_rate_per_s:.1}/s)")
                }
                None => "-".into(),
            },
            Objective::Count { actual, .. } => actual.map_or("-".into(), |n| n.to_string()),
            Objective::Text { actual, .. } => actual.clone(),
        }
    }
}

impl SloCheck {
    /// The actual value, with the note when there is one.
    pub fn actual_with_note(&self) -> String {
        match &self.note {
            Some(note) => format!("{} ({note})", self.objective.actual_text()),
            None => self.objective.actual_text(),
        }
    }
}

/// Checks every objective `slo` sets; absent objectives are not checked.
pub fn evaluate(slo: &Slo, summary: &Summary) -> SloReport {
    let mut checks = Vec::new();
    if let Some(limit) = slo.e2e_p99 {
        for g in &summary.groups {
            let name = format!("e2e_p99[{}]", g.name);
            let m = &g.measured;
            // Dead-lettered events are the designed end of a poison event,
            // accounted for; the others the group should have processed.
            let uncovered = m.unprocessed().map(|n| n - m.dead_lettered.min(n));
            let of = m.produced_acked;
            let unknown = uncovered.zip(of).map(|(n, of)| Unknown {
                n,
                of,
                what: "events not processed",
            });
            checks.push(p99_check(name, limit, &m.e2e_latency_us, unknown));
        }
    }
    if let Some(limit) = slo.produce_p99 {
        let p = &summary.produce;
        let unknown = p.latency_lower_bounds.map(|n| Unknown {
            n,
            of: p.latency_us.count,
            what: "XADDs never acknowledged",
        });
        checks.push(p99_check(
            "produce_p99".into(),
            limit,
            &p.latency_us,
            unknown,
        ));
    }
    if let Some(ratio) = slo.min_rate_ratio {
        checks.push(rate_check(ratio, summary));
    }
    if let Some(limit) = slo.acked_but_gone {
        checks.push(acked_but_gone_check(limit, summary));
    }
    if let Some(limit) = slo.lost {
        for g in &summary.groups {
            checks.push(lost_check(limit, g));
        }
    }
    if let Some(limit) = slo.duplicates {
        for g in &summary.groups {
            let name = format!("duplicates[{}]", g.name);
            let actual = g.whole_run(|p| p.duplicates);
            checks.push(count_check(name, Scope::WholeRun, limit, Some(actual)));
        }
    }
    if let Some(limit) = slo.errors {
        let errors = summary.produce.errors;
        checks.push(count_check(
            "errors".into(),
            Scope::Measured,
            limit,
            Some(errors),
        ));
    }
    if !summary.faults.is_empty() {
        // No objective of the scenario's: a drill whose faults did not all
        // happen measured something else than it says, so it cannot pass.
        let not_applied = summary.faults.iter().filter(|f| !f.applied).count() as u64;
        let name = "faults_not_applied".into();
        checks.push(count_check(name, Scope::WholeRun, 0, Some(not_applied)));
    }
    SloReport {
        passed: checks.iter().all(|c| c.passed),
        checks,
    }
}

/// Events whose latency a p99 does not know: not in it (unprocessed), or
/// in it only as a lower bound (never acknowledged).
struct Unknown {
    n: u64,
    of: u64,
    what: &'static str,
}

/// A p99 with no measured events fails: an objective about nothing cannot
/// be met. Beyond `P99_UNCOVERED_MAX` of events of unknown latency the p99
/// is unknown and fails too; with fewer it is a lower bound, and says so.
fn p99_check(name: String, limit: Dur, p: &Percentiles, unknown: Option<Unknown>) -> SloCheck {
    let max_us = u64::try_from(limit.as_duration().as_micros()).unwrap_or(u64::MAX);
    let mut check = SloCheck {
        name,
        scope: Scope::Measured,
        objective: Objective::P99 {
            max_us,
            actual_us: (p.count > 0).then_some(p.p99),
        },
        passed: p.count > 0 && p.p99 <= max_us,
        note: (p.count == 0).then(|| "no measured events".to_string()),
    };
    if let Some(Unknown { n, of, what }) = unknown.filter(|u| u.n > 0) {
        let unknowable = n as f64 > P99_UNCOVERED_MAX * of as f64;
        check.passed &= !unknowable;
        check.note = Some(match unknowable {
            true => format!("{n} of {of} {what}: p99 unknown"),
            false => format!("lower bound: {n} {what}"),
        });
    }
    check
}

fn rate_check(min_ratio: f64, summary: &Summary) -> SloCheck {
    let p = &summary.produce;
    let has_target = p.target_rate_per_s > 0.0;
    let actual_ratio = has_target.then(|| p.achieved_rate_per_s / p.target_rate_per_s);
    SloCheck {
        name: "min_rate_ratio".into(),
        scope: Scope::Measured,
        objective: Objective::RateRatio {
            min_ratio,
            actual_ratio,
            achieved_rate_per_s: p.achieved_rate_per_s,
            target_rate_per_s: p.target_rate_per_s,
        },
        passed: actual_ratio.is_none_or(|r| r >= min_ratio),
        note: match (has_target, p.late) {
            (false, _) => Some("no target rate".into()),
            (true, Some(late)) if late > 0 => Some(format!(
                "acknowledged inside the window; {late} more came late"
            )),
            _ => None,
        },
    }
}

/// No read-back (Redis never came back, or it failed) cannot pass a
/// durability objective.
fn acked_but_gone_check(limit: u64, summary: &Summary) -> SloCheck {
    let gone = summary.durability.as_ref().map(|d| d.acked_but_gone);
    let mut check = count_check("acked_but_gone".into(), Scope::WholeRun, limit, gone);
    if gone.is_none() {
        check.note = Some(match &summary.durability_error {
            Some(why) => format!("not measured: read-back failed: {why}"),
            None => "not measured: no read-back".into(),
        });
    }
    check
}

/// Lost events, whole run. Events of unknown fate (the read-back failed)
/// might be lost: the objective cannot be confirmed.
fn lost_check(limit: u64, g: &GroupSummary) -> SloCheck {
    let name = format!("lost[{}]", g.name);
    // Trimmed unread events are gone unprocessed too: a loss, split out
    // only to say why (docs/measurement.md, "Trimmed before read").
    let trimmed = g.whole_run(|p| p.trimmed_unread.unwrap_or(0));
    let lost = g.whole_run(|p| p.lost) + trimmed;
    let mut check = count_check(name, Scope::WholeRun, limit, Some(lost));
    if trimmed > 0 {
        check.note = Some(format!(
            "{trimmed} of them trimmed before the group read them"
        ));
    }
    let unknown = g.whole_run_opt(|p: &GroupPhase| p.unknown).unwrap_or(0);
    if unknown > 0 {
        check.passed = false;
        let why = g.readback_error.as_deref().unwrap_or("read-back failed");
        check.note = Some(format!("{unknown} events unknown: {why}"));
    }
    check
}

fn count_check(name: String, scope: Scope, max: u64, actual: Option<u64>) -> SloCheck {
    SloCheck {
        name,
        scope,
        objective: Objective::Count { max, actual },
        passed: actual.is_some_and(|n| n <= max),
        note: None,
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
        let report = evaluate(&slo, &summary);
        assert!(!report.passed, "no read-back cannot pass");
        assert_eq!(
            report.checks[0].note.as_deref(),
            Some("not measured: no read-back")
        );
        summary.durability_error = Some("connection refused".into());
        let c = &evaluate(&slo, &summary).checks[0];
        assert!(
            c.actual_with_note()
                .contains("read-back failed: connection refused")
        );
        summary.durability = Some(crate::metrics::Durability {
            acked: 10,
            ..Default::default()
        });
        assert!(evaluate(&slo, &summary).passed);
        summary.durability.as_mut().unwrap().acked_but_gone = 3;
        let report = evaluate(&slo, &summary);
        let c = check(&report, "acked_but_gone");
        assert_eq!(
            (c.objective.actual_text(), c.scope),
            ("3".into(), Scope::WholeRun)
        );
    }

    fn check<'a>(report: &'a SloReport, name: &str) -> &'a SloCheck {
        report.checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn generous_thresholds_pass() {
        let mut summary = test_summary();
        summary.groups[0].measured.duplicates = 0;
        let report = evaluate(&slo_all(100, 100), &summary);
        assert!(report.passed, "{report:#?}");
        assert_eq!(report.checks.len(), 6);
        let e2e = check(&report, "e2e_p99[billing]");
        assert_eq!(
            (e2e.objective.threshold_text(), e2e.objective.actual_text()),
            ("<= 100ms".into(), "10ms".into())
        );
        assert_eq!(
            e2e.objective,
            Objective::P99 {
                max_us: 100_000,
                actual_us: Some(10_007)
            }
        );
        assert_eq!(
            check(&report, "min_rate_ratio").objective.actual_text(),
            "1.0000 (100.0/s of 100.0/s)"
        );
        assert_eq!(check(&report, "lost[billing]").scope, Scope::WholeRun);
    }

    #[test]
    fn each_violation_fails_its_check() {
        let mut summary = test_summary();
        summary.groups[0].measured.duplicates = 2;
        summary.groups[0].warmup.as_mut().unwrap().lost = 1;
        summary.produce.achieved_rate_per_s = 90.0;
        summary.produce.errors = 1;
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
        assert_eq!(
            check(&report, "duplicates[billing]")
                .objective
                .actual_text(),
            "2"
        );
        // A warmup loss fails the whole-run objective.
        assert_eq!(check(&report, "lost[billing]").objective.actual_text(), "1");
    }

    #[test]
    fn unknown_fates_and_uncovered_events_cannot_pass() {
        let mut summary = test_summary();
        let slo = Slo {
            lost: Some(0),
            e2e_p99: Some(Dur::from_secs(1)),
            ..Default::default()
        };
        summary.groups[0].measured.unknown = Some(4);
        summary.groups[0].readback_error = Some("XPENDING refused".into());
        // 4 of 6000 unprocessed: the p99 is a lower bound, still judged.
        summary.groups[0].measured.processed = Some(5_996);
        let report = evaluate(&slo, &summary);
        let lost = check(&report, "lost[billing]");
        assert!(!lost.passed);
        assert_eq!(
            lost.note.as_deref(),
            Some("4 events unknown: XPENDING refused")
        );
        let e2e = check(&report, "e2e_p99[billing]");
        assert!(e2e.passed);
        assert_eq!(
            e2e.note.as_deref(),
            Some("lower bound: 4 events not processed")
        );
        // 100 of 6000 (over 1 %): the p99 is unknown.
        summary.groups[0].measured.processed = Some(5_900);
        let e2e = check(&evaluate(&slo, &summary), "e2e_p99[billing]").clone();
        assert!(!e2e.passed, "{e2e:?}");
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
        assert_eq!(
            check(&report, "faults_not_applied").objective,
            Objective::Count {
                max: 0,
                actual: Some(0)
            }
        );
        summary.faults.push(crate::metrics::FaultWindow {
            applied: false,
            error: Some("consumer billing/0 is already down".into()),
            ..applied
        });
        let report = evaluate(&Slo::default(), &summary);
        assert!(!report.passed);
        let failed = check(&report, "faults_not_applied");
        assert_eq!(
            (
                failed.objective.threshold_text(),
                failed.objective.actual_text()
            ),
            ("<= 0".into(), "1".into())
        );
        assert!(!failed.passed);
    }

    #[test]
    fn never_acknowledged_xadds_bound_the_produce_p99_and_dead_letters_do_not_count() {
        let mut summary = test_summary();
        let slo = Slo {
            produce_p99: Some(Dur::from_secs(1)),
            e2e_p99: Some(Dur::from_secs(1)),
            ..Default::default()
        };
        // 6000 values, 30 of them lower bounds (0.5 %): judged, noted.
        summary.produce.latency_lower_bounds = Some(30);
        let report = evaluate(&slo, &summary);
        let produce = check(&report, "produce_p99");
        assert!(produce.passed, "{produce:?}");
        assert_eq!(
            produce.note.as_deref(),
            Some("lower bound: 30 XADDs never acknowledged")
        );
        // 120 (2 %): an outage's tail the p99 cannot know.
        summary.produce.latency_lower_bounds = Some(120);
        assert!(!check(&evaluate(&slo, &summary), "produce_p99").passed);
        // 100 of 6000 unprocessed, all dead-lettered poison: the e2e p99 is known.
        let m = &mut summary.groups[0].measured;
        (m.processed, m.dead_lettered) = (Some(5_900), 100);
        let e2e = check(&evaluate(&slo, &summary), "e2e_p99[billing]").clone();
        assert!(e2e.passed && e2e.note.is_none(), "{e2e:?}");
    }

    #[test]
    fn empty_slo_passes_and_empty_latency_fails() {
        let mut summary = test_summary();
        assert_eq!(evaluate(&Slo::default(), &summary), SloReport::default());
        summary.groups[0].measured.e2e_latency_us = Percentiles::default();
        let slo = Slo {
            e2e_p99: Some(Dur::from_secs(1)),
            ..Default::default()
        };
        let report = evaluate(&slo, &summary);
        assert!(!report.passed);
        assert_eq!(report.checks[0].note.as_deref(), Some("no measured events"));
        assert_eq!(report.checks[0].objective.actual_text(), "-");
    }

    #[test]
    fn checks_serialize_as_numbers() {
        let summary = test_summary();
        let report = evaluate(&slo_all(100, 100), &summary);
        let json = serde_json::to_value(&report).unwrap();
        let e2e = &json["checks"][0];
        assert_eq!(e2e["kind"], "p99");
        assert_eq!(e2e["max_us"], 100_000);
        assert_eq!(e2e["scope"], "measured");
        let back: SloReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
