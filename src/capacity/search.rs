//! Which rate to try next, from the verdicts so far (docs/capacity.md,
//! "The search"): geometric steps up from the start rate until one fails
//! (down, if the start itself fails), bisection between the highest pass
//! and the lowest failure to the resolution, then a longer confirmation at
//! the highest pass, stepping down by the resolution if it fails. Pure: the
//! driver runs the steps, this only decides.

use crate::report::capacity::{Bound, CapacityResult, SearchSettings, Step, StepKind};

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

/// Decides the next step from the outcomes so far.
pub fn next(settings: &SearchSettings, done: &[Outcome]) -> Next {
    let run = |rate: f64, kind| Next::Run {
        rate_per_s: rate.round().max(1.0),
        kind,
    };
    let confirms: Vec<&Outcome> = done
        .iter()
        .filter(|o| o.kind == StepKind::Confirm)
        .collect();
    if confirms.last().is_some_and(|c| c.passed) {
        return Next::Done;
    }
    if let Some(failed) = confirms.last() {
        if confirms.len() as u32 >= MAX_CONFIRMS {
            return Next::Done;
        }
        // The highest pass still below every failure, else a step down.
        let below = highest_pass(done).map(|p| p.rate_per_s);
        let rate = below.unwrap_or(failed.rate_per_s * (1.0 - settings.resolution));
        return run(rate, StepKind::Confirm);
    }
    if done.is_empty() {
        return run(settings.start_rate_per_s, StepKind::Probe);
    }
    match (highest_pass(done), lowest_fail(done)) {
        // Nothing passed yet: probe down.
        (None, fail) => {
            let floor = settings.start_rate_per_s / settings.growth.powi(MAX_PROBES_DOWN as i32);
            let below = fail.map_or(settings.start_rate_per_s, |f| f.rate_per_s) / settings.growth;
            match below < floor || below < 1.0 {
                true => Next::Done,
                false => run(below, StepKind::Probe),
            }
        }
        // Nothing failed yet: probe up, to the ceiling.
        (Some(pass), None) => match pass.rate_per_s >= settings.max_rate_per_s {
            true => run(pass.rate_per_s, StepKind::Confirm),
            false => run(
                (pass.rate_per_s * settings.growth).min(settings.max_rate_per_s),
                StepKind::Probe,
            ),
        },
        (Some(pass), Some(fail)) => {
            let gap = (fail.rate_per_s - pass.rate_per_s) / pass.rate_per_s;
            let mid = (pass.rate_per_s + fail.rate_per_s) / 2.0;
            // Rounding to whole events/s ends a bisection that can no longer move.
            let stuck = mid.round() <= pass.rate_per_s || mid.round() >= fail.rate_per_s;
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

/// What the steps found. `interrupted`: the search was stopped before it
/// was done.
pub fn result(settings: &SearchSettings, steps: &[Step], interrupted: bool) -> CapacityResult {
    let done: Vec<Outcome> = steps.iter().map(Outcome::of).collect();
    let pass = highest_pass(&done).copied();
    let fail = lowest_fail(&done).copied();
    let confirmed = (done.iter()).any(|o| {
        o.kind == StepKind::Confirm && o.passed && Some(o.rate_per_s) == pass.map(|p| p.rate_per_s)
    });
    let bound = match (pass, fail) {
        _ if interrupted && next(settings, &done) != Next::Done => Bound::Incomplete,
        (None, _) => Bound::BelowStart,
        (Some(_), None) => Bound::Ceiling,
        (Some(_), Some(f)) if f.harness_limited => Bound::HarnessLimited,
        (Some(_), Some(_)) => Bound::Found,
    };
    let step_at = |rate: Option<f64>, passed: bool| {
        steps
            .iter()
            .rev()
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
    fn a_failed_confirmation_steps_down_by_the_resolution() {
        let s = settings();
        let mut done = vec![
            Outcome {
                rate_per_s: 1000.0,
                kind: StepKind::Probe,
                passed: true,
                harness_limited: false,
            },
            Outcome {
                rate_per_s: 1040.0,
                kind: StepKind::Probe,
                passed: false,
                harness_limited: false,
            },
        ];
        assert_eq!(
            next(&s, &done),
            Next::Run {
                rate_per_s: 1000.0,
                kind: StepKind::Confirm
            }
        );
        done.push(Outcome {
            rate_per_s: 1000.0,
            kind: StepKind::Confirm,
            passed: false,
            harness_limited: false,
        });
        assert_eq!(
            next(&s, &done),
            Next::Run {
                rate_per_s: 950.0,
                kind: StepKind::Confirm
            }
        );
        // A pass below the failed confirmation is confirmed next, not skipped.
        done.insert(
            0,
            Outcome {
                rate_per_s: 980.0,
                kind: StepKind::Bisect,
                passed: true,
                harness_limited: false,
            },
        );
        assert_eq!(
            next(&s, &done),
            Next::Run {
                rate_per_s: 980.0,
                kind: StepKind::Confirm
            }
        );
    }
}
