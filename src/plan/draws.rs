//! Random draws a scenario asks for: which event type, how big, which aggregate,
//! how long processing takes. Built once from the scenario, drawn from on the hot
//! path with the caller's seeded RNG, so a scenario + seed replays exactly.

use rand::{Rng, RngExt};
use rand_distr::weighted::WeightedIndex;
use rand_distr::{Distribution, Exp, LogNormal, Normal, Zipf};

use super::schema_versions::VersionPick;
use crate::scenario::{
    Aggregates, Bytes, Dur, EventType, MAX_EVENT_SIZE, Popularity, SizeDist, TimeDist,
    versioned_name,
};

/// A non-negative real distribution, shared by sizes (bytes) and times (ns).
#[derive(Debug, Clone)]
pub struct Real {
    shape: Shape,
    mean: f64,
}

#[derive(Debug, Clone)]
enum Shape {
    Fixed(f64),
    Uniform(f64, f64),
    Normal(Normal<f64>),
    Exponential(Exp<f64>),
    LogNormal(LogNormal<f64>),
}

impl Real {
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let x = match &self.shape {
            Shape::Fixed(v) => *v,
            Shape::Uniform(lo, hi) if lo < hi => rng.random_range(*lo..*hi),
            Shape::Uniform(lo, _) => *lo,
            Shape::Normal(d) => d.sample(rng),
            Shape::Exponential(d) => d.sample(rng),
            Shape::LogNormal(d) => d.sample(rng),
        };
        x.max(0.0)
    }

    /// The mean (before clamping negative draws of a normal to zero).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// An upper bound that draws exceed rarely, for sizing buffers.
    pub fn high(&self) -> f64 {
        match &self.shape {
            Shape::Fixed(v) => *v,
            Shape::Uniform(_, hi) => *hi,
            _ => self.mean * 20.0,
        }
    }

    fn fixed(v: f64) -> Real {
        Real {
            shape: Shape::Fixed(v),
            mean: v,
        }
    }

    fn uniform(lo: f64, hi: f64) -> Real {
        Real {
            shape: Shape::Uniform(lo, hi),
            mean: (lo + hi) / 2.0,
        }
    }

    fn exponential(mean: f64) -> Real {
        let shape = Exp::new(1.0 / mean.max(1e-9)).map_or(Shape::Fixed(mean), Shape::Exponential);
        Real { shape, mean }
    }

    fn lognormal(mean: f64, stddev: f64) -> Real {
        // Parameters of the underlying normal that give this mean and stddev.
        let sigma2 = (1.0 + (stddev * stddev) / (mean * mean)).ln();
        let mu = mean.ln() - sigma2 / 2.0;
        let shape = LogNormal::new(mu, sigma2.sqrt()).map_or(Shape::Fixed(mean), Shape::LogNormal);
        Real { shape, mean }
    }

    fn normal(mean: f64, stddev: f64) -> Real {
        Real {
            shape: Normal::new(mean, stddev).map_or(Shape::Fixed(mean), Shape::Normal),
            mean,
        }
    }
}

impl From<&SizeDist> for Real {
    fn from(d: &SizeDist) -> Real {
        let b = |x: &Bytes| x.get() as f64;
        match d {
            SizeDist::Fixed { value } => Real::fixed(b(value)),
            SizeDist::Uniform { min, max } => Real::uniform(b(min), b(max)),
            SizeDist::Normal { mean, stddev } => Real::normal(b(mean), b(stddev)),
            SizeDist::Lognormal { mean, stddev } => Real::lognormal(b(mean), b(stddev)),
        }
    }
}

impl From<&TimeDist> for Real {
    fn from(d: &TimeDist) -> Real {
        let ns = |x: &Dur| x.as_nanos() as f64;
        match d {
            TimeDist::Fixed { value } => Real::fixed(ns(value)),
            TimeDist::Uniform { min, max } => Real::uniform(ns(min), ns(max)),
            TimeDist::Exponential { mean } => Real::exponential(ns(mean)),
            TimeDist::Lognormal { mean, stddev } => Real::lognormal(ns(mean), ns(stddev)),
        }
    }
}

/// What one event looks like, drawn per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventDraw {
    /// Index into `EventMix::names`: a type, or a version of a versioned type.
    pub kind: usize,
    pub size_bytes: usize,
    pub aggregate: u64,
}

/// The event mix of a producer: types by weight, payload sizes, aggregate popularity.
#[derive(Debug, Clone)]
pub struct EventMix {
    /// What each kind's `type` field holds: a type's name, or for a
    /// versioned type one `<type>.v<N>` per version, in order.
    pub names: Vec<String>,
    pick: Option<WeightedIndex<f64>>,
    sizes: Vec<Real>,
    /// Per type: its first kind in `names`, and its versions if it has any.
    kinds: Vec<(usize, Option<VersionPick>)>,
    aggregates: AggregatePick,
    aggregate_count: u64,
}

#[derive(Debug, Clone)]
enum AggregatePick {
    Uniform(u64),
    Zipf(Zipf<f64>),
}

impl EventMix {
    /// Validation has already rejected zero total weights; a mix that still
    /// cannot be built falls back to the first type rather than panicking.
    pub fn new(types: &[EventType], aggregates: &Aggregates) -> EventMix {
        let default = [EventType {
            kind: "Event".into(),
            weight: 1.0,
            size: SizeDist::Fixed { value: Bytes(128) },
            versions: Vec::new(),
        }];
        let types = if types.is_empty() {
            &default[..]
        } else {
            types
        };
        let count = aggregates.count.max(1);
        let aggregates = match aggregates.popularity {
            Popularity::Uniform => AggregatePick::Uniform(count),
            Popularity::Zipf => Zipf::new(count as f64, aggregates.exponent)
                .map_or(AggregatePick::Uniform(count), AggregatePick::Zipf),
        };
        let mut names = Vec::new();
        let kinds = (types.iter())
            .map(|t| {
                let first = names.len();
                let versions = VersionPick::new(&t.versions);
                match &versions {
                    Some(v) => names.extend((1..=v.versions()).map(|n| versioned_name(&t.kind, n))),
                    None => names.push(t.kind.clone()),
                }
                (first, versions)
            })
            .collect();
        EventMix {
            names,
            kinds,
            pick: WeightedIndex::new(types.iter().map(|t| t.weight)).ok(),
            sizes: types.iter().map(|t| Real::from(&t.size)).collect(),
            aggregates,
            aggregate_count: count,
        }
    }

    /// An event intended at the run's start (or of a mix without versions).
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> EventDraw {
        self.draw_at(rng, 0)
    }

    /// An event intended `at_ns` into the run, which picks a versioned
    /// type's version. Unversioned types draw exactly what they drew before
    /// versions existed: the version is one more draw, of versioned types only.
    pub fn draw_at<R: Rng + ?Sized>(&self, rng: &mut R, at_ns: u64) -> EventDraw {
        let ty = self.pick.as_ref().map_or(0, |w| w.sample(rng));
        let size = self.sizes[ty].draw(rng).round() as u64;
        let aggregate = match &self.aggregates {
            AggregatePick::Uniform(n) => rng.random_range(0..*n),
            // Zipf draws 1..=n; rank 1 is the most popular aggregate.
            AggregatePick::Zipf(z) => z.sample(rng) as u64 - 1,
        };
        let kind = match &self.kinds[ty] {
            (first, Some(versions)) => first + versions.draw(rng, at_ns) as usize - 1,
            (first, None) => *first,
        };
        EventDraw {
            kind,
            size_bytes: size.min(MAX_EVENT_SIZE.get()) as usize,
            aggregate,
        }
    }

    /// Aggregate ids are drawn from `0..` this.
    pub fn aggregate_count(&self) -> u64 {
        self.aggregate_count
    }

    /// Largest payload this mix can draw, bounded, to size the payload pool.
    pub fn max_size_bytes(&self) -> usize {
        self.sizes
            .iter()
            .map(Real::high)
            .fold(0.0, f64::max)
            .min(MAX_EVENT_SIZE.get() as f64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn ty(kind: &str, weight: f64, size: SizeDist) -> EventType {
        EventType {
            kind: kind.into(),
            weight,
            size,
            versions: Vec::new(),
        }
    }

    #[test]
    fn weights_and_sizes_are_respected() {
        let mix = EventMix::new(
            &[
                ty("A", 3.0, SizeDist::Fixed { value: Bytes(10) }),
                ty(
                    "B",
                    1.0,
                    SizeDist::Uniform {
                        min: Bytes(100),
                        max: Bytes(200),
                    },
                ),
            ],
            &Aggregates::default(),
        );
        let mut rng = SmallRng::seed_from_u64(3);
        let draws: Vec<EventDraw> = (0..40_000).map(|_| mix.draw(&mut rng)).collect();
        let a = draws.iter().filter(|d| d.kind == 0).count();
        assert!((29_000..31_000).contains(&a), "{a}");
        assert!(
            draws
                .iter()
                .filter(|d| d.kind == 0)
                .all(|d| d.size_bytes == 10)
        );
        assert!(
            draws
                .iter()
                .filter(|d| d.kind == 1)
                .all(|d| (100..=200).contains(&d.size_bytes))
        );
        assert!(draws.iter().all(|d| d.aggregate < 1000));
    }

    #[test]
    fn versioned_types_draw_their_version_by_time_and_others_as_before() {
        use crate::scenario::VersionStep;
        let step = |at_s, weights: &[f64]| VersionStep {
            at: Dur::from_secs(at_s),
            weights: weights.to_vec(),
            bad_keys: Vec::new(),
        };
        let mut a = ty("A", 1.0, SizeDist::Fixed { value: Bytes(10) });
        a.versions = vec![step(0, &[1.0]), step(5, &[0.0, 1.0])];
        let b = ty("B", 1.0, SizeDist::Fixed { value: Bytes(20) });
        let mix = EventMix::new(&[a, b.clone()], &Aggregates::default());
        assert_eq!(mix.names, ["A.v1", "A.v2", "B"]);
        let mut rng = SmallRng::seed_from_u64(11);
        let early: Vec<usize> = (0..1000).map(|_| mix.draw_at(&mut rng, 0).kind).collect();
        assert!(
            early.iter().all(|&k| k == 0 || k == 2),
            "only v1 before 5 s"
        );
        let late: Vec<usize> = (0..1000)
            .map(|_| mix.draw_at(&mut rng, 6_000_000_000).kind)
            .collect();
        assert!(late.iter().all(|&k| k == 1 || k == 2), "only v2 from 5 s");
        // Without versioned types the time is never asked and the draws are
        // the ones a mix drew before versions existed.
        let plain = EventMix::new(&[b.clone(), b], &Aggregates::default());
        let (mut r1, mut r2) = (SmallRng::seed_from_u64(3), SmallRng::seed_from_u64(3));
        for _ in 0..100 {
            assert_eq!(plain.draw(&mut r1), plain.draw_at(&mut r2, 9_000_000_000));
        }
    }

    #[test]
    fn zipf_prefers_the_first_aggregates() {
        let aggs = Aggregates {
            count: 1000,
            popularity: Popularity::Zipf,
            exponent: 1.2,
        };
        let mix = EventMix::new(&[], &aggs);
        let mut rng = SmallRng::seed_from_u64(5);
        let hits = (0..10_000)
            .filter(|_| mix.draw(&mut rng).aggregate < 10)
            .count();
        assert!(hits > 5_000, "{hits}");
    }

    #[test]
    fn lognormal_has_the_requested_mean() {
        let d = Real::lognormal(1000.0, 500.0);
        assert!((d.mean() - 1000.0).abs() < 1e-6);
        let mut rng = SmallRng::seed_from_u64(9);
        let mean = (0..100_000).map(|_| d.draw(&mut rng)).sum::<f64>() / 100_000.0;
        assert!((mean - 1000.0).abs() < 20.0, "{mean}");
    }

    #[test]
    fn exponential_time_in_nanoseconds() {
        let d = Real::from(&TimeDist::Exponential {
            mean: Dur::from_millis(2),
        });
        assert!((d.mean() - 2e6).abs() < 1.0);
    }
}
