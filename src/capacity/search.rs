//! Which rate to try next, from the verdicts so far (docs/capacity.md,
//! "The search"): geometric steps up from the start rate until one fails
//! (down, if the start itself fails), bisection between the highest pass
//! and the lowest failure to the resolution, then a longer confirmation at
//! the highest pass; a failed confirmation narrows the bracket and the
//! search goes on, at most three confirmations in all. Pure: the driver
//! runs the steps, this only decides.

use crate::report::capacity::{Bound, CapacityResult, Criterion, SearchSettings, Step, StepKind};

/// Probes below the start rate before the search gives up (start / growth^4).
const MAX_PROBES_DOWN: u32 = 4;
/// Confirmation runs before the search settles for an unconfirmed result.
const MAX_CONFIRMS: u32 = 3;

/// One finished step, as the search sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub rate_per_s: f64,
    pub kind: StepKind,
    pub passed: bool,
    pub harness_limited: bool,
}

impl Outcome {
    pub fn of(step: &Step) -> Outcome {
        Outcome {
            rate_per_s: step.offered_rate_per_s,
            kind: step.kind,
            passed: step.verdict.passed,
            harness_limited: step.verdict.harness_limited,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    Run { rate_per_s: f64, kind: StepKind },
    Done,
}

/// Decides the next step from the outcomes so far. Every step it asks for
/// is a rate it has not judged in that role: rounding to whole events/s
/// never makes it repeat itself.
pub fn next(settings: &SearchSettings, done: &[Outcome]) -> Next {
    let run = |rate_per_s: f64, kind| Next::Run { rate_per_s, kind };
    let confirms: Vec<&Outcome> = (done.iter())
        .filter(|o| o.kind == StepKind::Confirm)
        .collect();
    let confirmed = confirms.last().is_some_and(|c| c.passed);
    if confirmed || confirms.len() as u32 >= MAX_CONFIRMS {
        return Next::Done;
    }
    if done.is_empty() {
        return run(settings.start_rate_per_s.round().max(1.0), StepKind::Probe);
    }
    match (highest_pass(done), lowest_fail(done)) {
        // Nothing passed (below the lowest failure) yet: probe down.
        (None, fail) => {
            let fail = fail.map_or(settings.start_rate_per_s, |f| f.rate_per_s);
            let floor = settings.start_rate_per_s / settings.growth.powi(MAX_PROBES_DOWN as i32);
            let below = (fail / settings.growth).round().min(fail - 1.0);
            match below < floor.round().max(1.0) {
                true => Next::Done,
                false => run(below, StepKind::Probe),
            }
        }
        // Nothing failed yet: probe up, to the ceiling, then confirm there.
        (Some(pass), None) => {
            let ceiling = settings.max_rate_per_s.round();
            match pass.rate_per_s >= ceiling {
                true => run(pass.rate_per_s, StepKind::Confirm),
                false => {
                    let up = (pass.rate_per_s * settings.growth).round();
                    run(up.max(pass.rate_per_s + 1.0).min(ceiling), StepKind::Probe)
                }
            }
        }
        // Bracketed: bisect to the resolution, then confirm the highest pass.
        // A failed confirmation is a failure like any other: the bracket
        // narrows below it and the search goes on.
        (Some(pass), Some(fail)) => {
            let gap = (fail.rate_per_s - pass.rate_per_s) / pass.rate_per_s;
            let mid = ((pass.rate_per_s + fail.rate_per_s) / 2.0).round();
            // Rounding to whole events/s ends a bisection that can no longer move.
            let stuck = mid <= pass.rate_per_s || mid >= fail.rate_per_s;
            match gap > settings.resolution && !stuck {
                true => run(mid, StepKind::Bisect),
                false => run(pass.rate_per_s, StepKind::Confirm),
            }
        }
    }
}

/// The highest pass below the lowest failure (a pass above a failure, from
/// noise, does not count: the search brackets from below).
fn highest_pass(done: &[Outcome]) -> Option<&Outcome> {
    let ceiling = lowest_fail(done).map_or(f64::INFINITY, |f| f.rate_per_s);
    (done.iter())
        .filter(|o| o.passed && o.rate_per_s < ceiling)
        .max_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s))
}

fn lowest_fail(done: &[Outcome]) -> Option<&Outcome> {
    (done.iter())
        .filter(|o| !o.passed)
        .min_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s))
}

/// What the steps found. `incomplete`: the search was stopped (Ctrl-C, or
/// a step that could not run) before it was done. A step stopped by Ctrl-C
/// is no verdict on its rate and is left out.
pub fn result(settings: &SearchSettings, steps: &[Step], incomplete: bool) -> CapacityResult {
    let judged: Vec<&Step> = (steps.iter())
        .filter(|s| !matches!(s.verdict.failed, Some(Criterion::Incomplete { .. })))
        .collect();
    let done: Vec<Outcome> = judged.iter().map(|s| Outcome::of(s)).collect();
    let pass = highest_pass(&done).copied();
    let fail = lowest_fail(&done).copied();
    let confirmed = (done.iter()).any(|o| {
        o.kind == StepKind::Confirm && o.passed && Some(o.rate_per_s) == pass.map(|p| p.rate_per_s)
    });
    let start_failed = done.first().is_some_and(|o| !o.passed);
    let bound = match (pass, fail) {
        _ if incomplete && next(settings, &done) != Next::Done => Bound::Incomplete,
        (None, _) if start_failed => Bound::BelowStart,
        _ if !confirmed => Bound::Unconfirmed,
        (Some(_), None) => Bound::Ceiling,
        (Some(_), Some(f)) if f.harness_limited => Bound::HarnessLimited,
        (Some(_), Some(_)) => Bound::Found,
        (None, _) => Bound::Unconfirmed,
    };
    let step_at = |rate: Option<f64>, passed: bool| {
        (judged.iter().rev())
            .find(|s| Some(s.offered_rate_per_s) == rate && s.verdict.passed == passed)
    };
    let max = pass.map_or(0.0, |p| p.rate_per_s);
    CapacityResult {
        max_sustainable_rate_per_s: max,
        bound,
        first_failing_rate_per_s: fail.map(|f| f.rate_per_s),
        resolution_reached: match (pass, fail) {
            (Some(p), Some(f)) => Some((f.rate_per_s - p.rate_per_s) / p.rate_per_s),
            _ => None,
        },
        confirmed,
        limit: step_at(fail.map(|f| f.rate_per_s), false).map(|s| s.verdict.clone()),
        knee_step: step_at(pass.map(|p| p.rate_per_s), true).map(|s| s.index),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SearchSettings {
        SearchSettings {
            start_rate_per_s: 1000.0,
            max_rate_per_s: 1_000_000.0,
            growth: 2.0,
            resolution: 0.05,
            step_warmup_s: 1.0,
            step_duration_s: 4.0,
            confirm_duration_s: 8.0,
            min_achieved_ratio: 0.99,
            scenario_rate_per_s: Some(1000.0),
        }
    }

    /// Runs the search against a setup that sustains exactly `limit`.
    fn search(s: &SearchSettings, limit: f64) -> Vec<Outcome> {
        let mut done = Vec::new();
        while let Next::Run { rate_per_s, kind } = next(s, &done) {
            done.push(Outcome {
                rate_per_s,
                kind,
                passed: rate_per_s <= limit,
                harness_limited: false,
            });
            assert!(done.len() < 60, "runs away: {done:?}");
        }
        done
    }

    #[test]
    fn brackets_the_limit_to_the_resolution_then_confirms() {
        let s = settings();
        let done = search(&s, 23_456.0);
        let probes: Vec<f64> = (done.iter())
            .filter(|o| o.kind == StepKind::Probe)
            .map(|o| o.rate_per_s)
            .collect();
        assert_eq!(probes, [1e3, 2e3, 4e3, 8e3, 16e3, 32e3]);
        let last = done.last().unwrap();
        assert_eq!(last.kind, StepKind::Confirm);
        assert!(last.passed);
        let fail = lowest_fail(&done).unwrap().rate_per_s;
        assert!(last.rate_per_s <= 23_456.0 && fail > 23_456.0);
        assert!(
            (fail - last.rate_per_s) / last.rate_per_s <= 0.05,
            "{done:?}"
        );
        assert!(done.len() <= 13, "{} steps", done.len());
    }

    #[test]
    fn a_failing_start_probes_down_and_gives_up_eventually() {
        let s = settings();
        let done = search(&s, 300.0);
        assert_eq!(done[1].rate_per_s, 500.0);
        assert_eq!(done[2].rate_per_s, 250.0);
        assert!(done.last().unwrap().passed && done.last().unwrap().rate_per_s <= 300.0);
        let nothing = search(&s, 1.0);
        assert!(nothing.iter().all(|o| !o.passed));
        assert_eq!(nothing.len(), 1 + MAX_PROBES_DOWN as usize);
    }

    #[test]
    fn the_ceiling_ends_the_probes() {
        let s = SearchSettings {
            max_rate_per_s: 5000.0,
            ..settings()
        };
        let done = search(&s, 1e9);
        let rates: Vec<f64> = done.iter().map(|o| o.rate_per_s).collect();
        assert_eq!(rates, [1e3, 2e3, 4e3, 5e3, 5e3]);
        assert_eq!(done.last().unwrap().kind, StepKind::Confirm);
    }

    #[test]
    fn a_failed_confirmation_narrows_the_bracket_and_the_search_goes_on() {
        let s = settings();
        let outcome = |rate_per_s, kind, passed| Outcome {
            rate_per_s,
            kind,
            passed,
            harness_limited: false,
        };
        let mut done = vec![
            outcome(4000.0, StepKind::Probe, true),
            outcome(5000.0, StepKind::Probe, false),
            outcome(4500.0, StepKind::Bisect, true),
            outcome(4800.0, StepKind::Bisect, true),
        ];
        let confirm = |rate_per_s| Next::Run {
            rate_per_s,
            kind: StepKind::Confirm,
        };
        assert_eq!(next(&s, &done), confirm(4800.0));
        done.push(outcome(4800.0, StepKind::Confirm, false));
        // 4500 .. 4800 is 6.7 % apart: bisect again, then confirm below.
        assert_eq!(
            next(&s, &done),
            Next::Run {
                rate_per_s: 4650.0,
                kind: StepKind::Bisect
            }
        );
        done.push(outcome(4650.0, StepKind::Bisect, true));
        assert_eq!(next(&s, &done), confirm(4650.0));
        done.push(outcome(4650.0, StepKind::Confirm, true));
        assert_eq!(next(&s, &done), Next::Done);
    }

    #[test]
    fn rounding_never_repeats_a_step() {
        let tiny = SearchSettings {
            start_rate_per_s: 10.0,
            max_rate_per_s: 30.0,
            growth: 1.04,
            ..settings()
        };
        for limit in [5.0, 10.0, 14.0, 1e9] {
            let done = search(&tiny, limit);
            let mut seen: Vec<(u64, bool)> = (done.iter())
                .filter(|o| o.kind != StepKind::Confirm)
                .map(|o| (o.rate_per_s as u64, o.passed))
                .collect();
            let n = seen.len();
            seen.dedup();
            assert_eq!(seen.len(), n, "repeated a step: {done:?}");
        }
    }
}
