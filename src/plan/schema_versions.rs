//! Which schema version of a versioned event type a producer writes at a
//! given moment: the type's step schedule as weighted draws, one per step,
//! picked by the event's intended time, so a scenario + seed writes the
//! same versions every run (docs/event-sourcing.md, "Schema versions").

use rand::Rng;
use rand_distr::Distribution;
use rand_distr::weighted::WeightedIndex;

use crate::scenario::{EventKind, GroupConfig, Handling, VersionStep, handling};

#[derive(Debug, Clone)]
pub struct VersionPick {
    /// From each step's start (ns on the run clock), its weights over v1, v2 …
    steps: Vec<(u64, WeightedIndex<f64>)>,
    /// Versions 1 to this are the type's kinds.
    highest: u32,
}

impl VersionPick {
    /// None for an unversioned type (no steps). Validation has refused
    /// steps with no weight above 0; one that still cannot be built is left
    /// out, so the step before it goes on.
    pub fn new(steps: &[VersionStep]) -> Option<VersionPick> {
        let highest = steps.iter().map(VersionStep::highest).max()?.max(1);
        let steps = (steps.iter())
            .filter_map(|s| Some((s.at.as_nanos(), WeightedIndex::new(&s.weights).ok()?)))
            .collect();
        Some(VersionPick { steps, highest })
    }

    /// How many versions (kinds) the type has: 1 to the highest drawn.
    pub fn versions(&self) -> u32 {
        self.highest
    }

    /// The version (from 1) of an event intended `at_ns` into the run: the
    /// last step started by then decides (the first before any has).
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R, at_ns: u64) -> u32 {
        let started = self.steps.partition_point(|(from, _)| *from <= at_ns);
        match self.steps.get(started.saturating_sub(1)) {
            Some((_, weights)) => weights.sample(rng) as u32 + 1,
            None => 1,
        }
    }
}

/// What a group does with each kind of event its stream carries, looked up
/// by the entry's `type` field. Only in runs that write versioned types.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSchema {
    /// The `type` fields of the stream's kinds; an entry's `kind` indexes it.
    pub fields: Vec<Vec<u8>>,
    /// Per field: its index in the run's kind table (`Plan::kinds`), and
    /// what the group does with it.
    pub kinds: Vec<(u32, Handling)>,
}

impl GroupSchema {
    /// None when the run writes no versioned type (`kinds` is empty).
    pub fn new(g: &GroupConfig, kinds: &[EventKind]) -> Option<GroupSchema> {
        let of_stream = (kinds.iter().enumerate()).filter(|(_, k)| k.stream == g.stream);
        let (mut fields, mut handled) = (Vec::new(), Vec::new());
        for (id, k) in of_stream {
            fields.push(k.field.as_bytes().to_vec());
            handled.push((
                id as u32,
                handling(&g.understands, g.upcast, &k.kind, k.version),
            ));
        }
        (!kinds.is_empty()).then_some(GroupSchema {
            fields,
            kinds: handled,
        })
    }
}

impl GroupSchema {
    /// Whether some kind of its stream goes to the dead-letter stream.
    pub fn dead_letters(&self) -> bool {
        (self.kinds.iter()).any(|(_, h)| *h == Handling::DeadLetter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Dur;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn step(at_s: u64, weights: &[f64]) -> VersionStep {
        VersionStep {
            at: Dur::from_secs(at_s),
            weights: weights.to_vec(),
            bad_keys: Vec::new(),
        }
    }

    #[test]
    fn each_step_draws_its_own_versions() {
        let pick = VersionPick::new(&[step(0, &[1.0]), step(5, &[1.0, 1.0]), step(8, &[0.0, 1.0])])
            .unwrap();
        assert_eq!(pick.versions(), 2);
        let mut rng = SmallRng::seed_from_u64(7);
        let s = 1_000_000_000;
        assert!((0..1000).all(|i| pick.draw(&mut rng, i * s / 1000 * 4) == 1));
        let mid: Vec<u32> = (0..10_000).map(|_| pick.draw(&mut rng, 6 * s)).collect();
        let v2 = mid.iter().filter(|&&v| v == 2).count();
        assert!((4_500..5_500).contains(&v2), "{v2}");
        assert!((0..1000).all(|_| pick.draw(&mut rng, 8 * s) == 2));
        assert!((0..1000).all(|_| pick.draw(&mut rng, 100 * s) == 2));
    }

    #[test]
    fn the_same_seed_draws_the_same_versions() {
        let pick = VersionPick::new(&[step(0, &[1.0, 3.0])]).unwrap();
        let draws = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..100).map(|_| pick.draw(&mut rng, 0)).collect::<Vec<_>>()
        };
        assert_eq!(draws(1), draws(1));
        assert_ne!(draws(1), draws(2));
        assert!(VersionPick::new(&[]).is_none());
    }
}
