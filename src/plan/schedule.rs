//! Open-loop arrival schedules: when each event is *intended* to be sent.
//!
//! A rate profile is piecewise linear (k6-style stages). Its integral N(t) is
//! the expected number of events by time t; event k is due at N⁻¹(T_k), where
//! T_k = k + phase for uniform arrivals and a unit-rate Poisson process for
//! Poisson arrivals (time rescaling turns it into a Poisson process of the
//! profile's rate). Both arrival kinds therefore share one exact inversion,
//! and the schedule never depends on how fast Redis answers.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp1};

use crate::scenario::Arrival;

/// One linear piece of a rate profile: rate goes from `from_per_s` to `to_per_s`
/// over `len_s` seconds starting at `start_s`, having produced `before` events.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start_s: f64,
    len_s: f64,
    from_per_s: f64,
    to_per_s: f64,
    before: f64,
}

impl Segment {
    fn events(&self) -> f64 {
        (self.from_per_s + self.to_per_s) / 2.0 * self.len_s
    }

    /// Seconds into this segment at which the cumulative count reaches `before + c`.
    fn solve(&self, c: f64) -> f64 {
        // N(τ) = r0 τ + a τ² with a = (r1 - r0) / 2len; the rationalised root stays
        // accurate when a is tiny (constant rates) and handles a < 0 (ramps down).
        let a = if self.len_s > 0.0 {
            (self.to_per_s - self.from_per_s) / (2.0 * self.len_s)
        } else {
            0.0
        };
        let b = self.from_per_s;
        let denom = b + (b * b + 4.0 * a * c).max(0.0).sqrt();
        if denom > 0.0 { 2.0 * c / denom } else { 0.0 }
    }
}

/// A piecewise-linear rate over time; after the last stage its rate holds.
#[derive(Debug, Clone, PartialEq)]
pub struct RateProfile {
    segments: Vec<Segment>,
    /// Rate after the last stage.
    tail_per_s: f64,
}

impl RateProfile {
    /// A constant rate.
    pub fn constant(rate_per_s: f64) -> Self {
        RateProfile::stages(rate_per_s, &[])
    }

    /// Stages as `(duration_s, rate_per_s)`: each ramps linearly from the previous
    /// rate (initially `start_per_s`) to its own; a zero duration is a step.
    pub fn stages(start_per_s: f64, stages: &[(f64, f64)]) -> Self {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut t, mut rate, mut before) = (0.0, start_per_s, 0.0);
        for &(len_s, to_per_s) in stages {
            let seg = Segment {
                start_s: t,
                len_s,
                from_per_s: rate,
                to_per_s,
                before,
            };
            before += seg.events();
            t += len_s;
            rate = to_per_s;
            if len_s > 0.0 {
                segments.push(seg);
            }
        }
        RateProfile {
            segments,
            tail_per_s: rate,
        }
    }

    /// The same shape with every rate multiplied (splits a total rate across producers).
    pub fn scaled(&self, factor: f64) -> Self {
        let mut p = self.clone();
        for s in &mut p.segments {
            s.from_per_s *= factor;
            s.to_per_s *= factor;
            s.before *= factor;
        }
        p.tail_per_s *= factor;
        p
    }

    fn tail(&self) -> Segment {
        let (start_s, before) = self
            .segments
            .last()
            .map_or((0.0, 0.0), |s| (s.start_s + s.len_s, s.before + s.events()));
        Segment {
            start_s,
            len_s: f64::INFINITY,
            from_per_s: self.tail_per_s,
            to_per_s: self.tail_per_s,
            before,
        }
    }

    /// Expected number of events in [0, t).
    pub fn events_until(&self, t_s: f64) -> f64 {
        let seg = self.segment_at_time(t_s);
        let tau = (t_s - seg.start_s).max(0.0);
        let slope = if seg.len_s.is_finite() && seg.len_s > 0.0 {
            (seg.to_per_s - seg.from_per_s) / seg.len_s
        } else {
            0.0
        };
        seg.before + seg.from_per_s * tau + slope * tau * tau / 2.0
    }

    /// Rate at time t.
    pub fn rate_at(&self, t_s: f64) -> f64 {
        let seg = self.segment_at_time(t_s);
        if !seg.len_s.is_finite() || seg.len_s <= 0.0 {
            return seg.from_per_s;
        }
        let f = ((t_s - seg.start_s) / seg.len_s).clamp(0.0, 1.0);
        seg.from_per_s + (seg.to_per_s - seg.from_per_s) * f
    }

    fn segment_at_time(&self, t_s: f64) -> Segment {
        self.segments
            .iter()
            .copied()
            .find(|s| t_s < s.start_s + s.len_s)
            .unwrap_or_else(|| self.tail())
    }

    /// Time at which the cumulative count reaches `n`, or None if it never does.
    fn time_of(&self, n: f64, hint: &mut usize) -> Option<f64> {
        while *hint < self.segments.len() {
            let s = self.segments[*hint];
            if n < s.before + s.events() {
                return Some(s.start_s + s.solve(n - s.before));
            }
            *hint += 1;
        }
        let tail = self.tail();
        (tail.from_per_s > 0.0).then(|| tail.start_s + (n - tail.before) / tail.from_per_s)
    }
}

/// The intended send times of one producer, in nanoseconds since the run start.
pub struct Schedule {
    profile: RateProfile,
    arrival: Arrival,
    rng: SmallRng,
    /// Operational time of the next event (its index on the unit-rate clock).
    next_t: f64,
    segment_hint: usize,
    end_ns: u64,
}

impl Schedule {
    /// `phase` in [0, 1) staggers uniform producers that share a rate, so that
    /// N producers at r/N do not all fire at the same instant.
    pub fn new(profile: RateProfile, arrival: Arrival, phase: f64, seed: u64, end_s: f64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let next_t = match arrival {
            Arrival::Uniform => phase,
            Arrival::Poisson => Exp1.sample(&mut rng),
        };
        Schedule {
            profile,
            arrival,
            rng,
            next_t,
            segment_hint: 0,
            end_ns: (end_s * 1e9) as u64,
        }
    }
}

impl Iterator for Schedule {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let t_s = self.profile.time_of(self.next_t, &mut self.segment_hint)?;
        let t_ns = (t_s * 1e9).round() as u64;
        if t_ns >= self.end_ns {
            return None;
        }
        self.next_t += match self.arrival {
            Arrival::Uniform => 1.0,
            Arrival::Poisson => Exp1.sample(&mut self.rng),
        };
        Some(t_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(profile: RateProfile, end_s: f64) -> Vec<u64> {
        Schedule::new(profile, Arrival::Uniform, 0.0, 1, end_s).collect()
    }

    #[test]
    fn constant_rate_is_evenly_spaced_from_zero() {
        let times = uniform(RateProfile::constant(1000.0), 1.0);
        assert_eq!(times.len(), 1000);
        assert_eq!(times[0], 0);
        assert_eq!(times[1], 1_000_000);
        assert_eq!(times[999], 999_000_000);
    }

    #[test]
    fn one_per_second_is_due_at_whole_seconds() {
        // The off-by-one to avoid: event 0 is due at t = 0, not t = 1 s (docs/measurement.md, "Open-loop schedule").
        assert_eq!(
            uniform(RateProfile::constant(1.0), 3.0),
            vec![0, 1_000_000_000, 2_000_000_000]
        );
    }

    #[test]
    fn ramp_produces_its_integral() {
        // 0 -> 1000/s over 10 s: 5000 events, denser at the end.
        let p = RateProfile::stages(0.0, &[(10.0, 1000.0)]);
        let times = uniform(p.clone(), 10.0);
        assert_eq!(times.len(), 5000);
        assert!((p.events_until(5.0) - 1250.0).abs() < 1e-9);
        let first_half = times.iter().filter(|&&t| t < 5_000_000_000).count();
        assert_eq!(first_half, 1250);
    }

    #[test]
    fn ramp_down_and_step() {
        let p = RateProfile::stages(
            100.0,
            &[(2.0, 100.0), (0.0, 300.0), (1.0, 300.0), (2.0, 0.0)],
        );
        assert!((p.events_until(8.0) - (200.0 + 300.0 + 300.0)).abs() < 1e-9);
        assert_eq!(p.rate_at(2.5), 300.0);
        assert_eq!(uniform(p, 8.0).len(), 800);
    }

    #[test]
    fn zero_rate_gap_is_skipped() {
        let p = RateProfile::stages(
            10.0,
            &[
                (1.0, 10.0),
                (0.0, 0.0),
                (1.0, 0.0),
                (0.0, 10.0),
                (1.0, 10.0),
            ],
        );
        let times = uniform(p, 3.0);
        assert_eq!(times.len(), 20);
        assert!(
            times
                .iter()
                .all(|&t| !(1_000_000_000..2_000_000_000).contains(&t))
        );
    }

    #[test]
    fn zero_rate_forever_ends_the_schedule() {
        assert!(uniform(RateProfile::constant(0.0), 5.0).is_empty());
    }

    #[test]
    fn scaled_splits_a_total_rate() {
        let p = RateProfile::stages(0.0, &[(10.0, 1000.0)]).scaled(0.25);
        assert!((p.events_until(10.0) - 1250.0).abs() < 1e-9);
    }

    #[test]
    fn poisson_matches_the_rate_and_replays_with_its_seed() {
        let make = |seed| {
            Schedule::new(
                RateProfile::constant(10_000.0),
                Arrival::Poisson,
                0.0,
                seed,
                10.0,
            )
        };
        let a: Vec<u64> = make(7).collect();
        assert_eq!(a, make(7).collect::<Vec<_>>());
        assert_ne!(a, make(8).collect::<Vec<_>>());
        // 100k expected, sd ~316: 5 sd bounds.
        assert!((98_400..=101_600).contains(&a.len()), "{}", a.len());
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn phase_staggers_uniform_producers() {
        let s = Schedule::new(RateProfile::constant(100.0), Arrival::Uniform, 0.5, 1, 1.0);
        assert_eq!(s.take(2).collect::<Vec<_>>(), vec![5_000_000, 15_000_000]);
    }
}
