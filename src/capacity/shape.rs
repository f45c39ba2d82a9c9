//! The scenario as a workload shape, what a capacity search keeps of it
//! (docs/capacity.md, "The workload shape"): event mix, producers,
//! groups, processing, persistence, SLO; and how a step scales it. Each
//! producer entry keeps its share of the total rate; a ramp's shape is
//! replaced by its peak, because a step measures a steady rate.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::scenario::{Dur, Rate, Scenario, validate};

/// How long a step's producers wait for their last replies, and its
/// consumers to catch up: short, because a failing step's backlog need not
/// drain to be judged (what is left is reported unread, never lost).
const STEP_GRACE: Duration = Duration::from_secs(2);

/// A scenario checked as a shape: each producer entry's share of the total.
#[derive(Clone, Debug)]
pub struct Shape {
    pub scenario: Scenario,
    /// The entries' peak rates (events/s), in scenario order.
    peaks: Vec<f64>,
}

impl Shape {
    /// `origin` names the file in errors.
    pub fn of(scenario: Scenario, origin: &str) -> Result<Shape> {
        let err = |field: String, problem: &str| Error::Scenario {
            file: origin.to_string(),
            line: None,
            field,
            problem: problem.to_string(),
        };
        if !scenario.faults.is_empty() {
            return Err(err(
                "faults".into(),
                "capacity measures the steady state; remove the [[faults]] (run the drill with `streamdrill run`)",
            ));
        }
        let mut peaks = Vec::with_capacity(scenario.producers.len());
        for (i, p) in scenario.producers.iter().enumerate() {
            let peak = match p.rate {
                Some(Rate::Max) => {
                    return Err(err(
                        format!("producers[{i}].rate"),
                        "a closed-loop \"max\" producer has no rate to scale; give it a rate in events/s",
                    ));
                }
                Some(Rate::PerSecond(r)) => r,
                None => (p.stages.iter().map(|s| s.rate))
                    .chain(p.start_rate)
                    .fold(0.0, f64::max),
            };
            peaks.push(peak);
        }
        if peaks.iter().sum::<f64>() <= 0.0 {
            return Err(err(
                "producers".into(),
                "no producer entry has a rate above 0 to scale; give one a rate in events/s",
            ));
        }
        Ok(Shape { scenario, peaks })
    }

    /// The scenario's own total rate when every entry is constant: its
    /// operating point. None when one ramps.
    pub fn own_rate_per_s(&self) -> Option<f64> {
        let constant = (self.scenario.producers.iter()).all(|p| p.stages.is_empty());
        constant.then(|| self.peaks.iter().sum())
    }

    /// The scenario of one step: every entry at its share of `total_per_s`,
    /// constant, for `warmup` then `measured`; no ramps.
    pub fn step(&self, total_per_s: f64, warmup: Duration, measured: Duration) -> Result<Scenario> {
        let sum: f64 = self.peaks.iter().sum();
        let mut s = self.scenario.clone();
        s.warmup = Dur(warmup);
        s.duration = Dur(warmup + measured);
        s.drain_timeout = Dur(STEP_GRACE);
        s.reply_grace = Dur(STEP_GRACE);
        for (p, peak) in s.producers.iter_mut().zip(&self.peaks) {
            p.rate = Some(Rate::PerSecond(total_per_s * peak / sum));
            p.stages.clear();
            p.start_rate = None;
        }
        match validate(&s).into_iter().next() {
            None => Ok(s),
            Some(v) => Err(Error::Scenario {
                file: format!("{} at {total_per_s:.0} events/s", s.name),
                line: None,
                field: v.field,
                problem: v.problem,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Overrides, load_str};

    const TWO_ENTRIES: &str = r#"
name = "shape"
duration = "10s"
[[streams]]
key = "a"
[[producers]]
stream = "a"
rate = 300
[[producers]]
stream = "a"
start_rate = 100
stages = [{ duration = "5s", rate = 100 }]
[[groups]]
stream = "a"
name = "g"
"#;

    fn shape(text: &str) -> Result<Shape> {
        Shape::of(load_str(text, "t.toml", &Overrides::default())?, "t.toml")
    }

    #[test]
    fn a_step_keeps_each_entrys_share_at_a_steady_rate() {
        let shape = shape(TWO_ENTRIES).unwrap();
        assert_eq!(shape.own_rate_per_s(), None, "one entry ramps");
        let s = shape
            .step(4000.0, Duration::from_secs(1), Duration::from_secs(4))
            .unwrap();
        let rates: Vec<_> = s.producers.iter().map(|p| p.rate).collect();
        assert_eq!(
            rates,
            [Some(Rate::PerSecond(3000.0)), Some(Rate::PerSecond(1000.0))]
        );
        assert!(s.producers.iter().all(|p| p.stages.is_empty()));
        assert_eq!(s.duration, Dur(Duration::from_secs(5)));
        assert_eq!(s.warmup, Dur(Duration::from_secs(1)));
    }

    #[test]
    fn faults_and_closed_loop_producers_are_refused_by_name() {
        let faulty = format!("{TWO_ENTRIES}\n[[faults]]\naction = \"kill_redis\"\nat = \"2s\"\n");
        let e = shape(&faulty).unwrap_err().to_string();
        assert!(e.contains("`faults`") && e.contains("steady state"), "{e}");
        let max = TWO_ENTRIES.replacen("rate = 300", "rate = \"max\"", 1);
        let e = shape(&max).unwrap_err().to_string();
        assert!(
            e.contains("t.toml: `producers[0].rate`") && e.contains("events/s"),
            "{e}"
        );
    }
}
