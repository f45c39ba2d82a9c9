//! One producer as the scenario counts them: its own id, schedule, sequence
//! numbers and ledger. Several may share a producer actor, and with it one
//! connection (`connections` in the scenario).

use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::metrics::{ProduceLedger, StallTracker};
use crate::plan::{ProducerPlan, Schedule};

pub(super) struct Source {
    pub plan: ProducerPlan,
    /// Intended send times; None in saturation mode.
    pub schedule: Option<Schedule>,
    /// The next intended send time; None once the schedule is over.
    pub next_due_ns: Option<u64>,
    pub seq: u64,
    pub rng: SmallRng,
    pub ledger: ProduceLedger,
    /// Crashed: sends nothing, skips what falls due.
    pub dead: bool,
    /// Events intended before this (while it was dead) are never sent.
    pub revived_ns: u64,
    /// When it last crashed: events due before it and not sent yet were
    /// left behind (unsent), those due after it skipped.
    pub died_ns: Option<u64>,
    /// Bumped by each crash; replies to XADDs sent before it are ignored.
    pub epoch: u64,
    /// Long waits for an acknowledgement: write outages, for fault recovery.
    pub stalls: StallTracker,
}

impl Source {
    pub fn new(plan: ProducerPlan, schedule: Option<Schedule>) -> Source {
        let mut source = Source {
            rng: SmallRng::seed_from_u64(plan.seed ^ 0x5eed),
            stalls: StallTracker::new(plan.id),
            schedule,
            next_due_ns: Some(0),
            seq: 0,
            ledger: ProduceLedger::new(),
            dead: false,
            revived_ns: 0,
            died_ns: None,
            epoch: 0,
            plan,
        };
        if source.schedule.is_some() {
            source.advance();
        }
        source
    }

    /// Moves on to the next intended send time.
    pub fn advance(&mut self) {
        self.next_due_ns = self.schedule.as_mut().and_then(Iterator::next);
    }

    /// Whether an event intended at `due_ns` is sent: not while dead, and
    /// not if it fell due while the producer was dead (a dead process sends
    /// nothing, and catching up later would be a burst no real client makes).
    pub fn sends(&self, due_ns: u64) -> bool {
        !self.dead && due_ns >= self.revived_ns
    }

    /// Whether an event due at `due_ns` fell due while the producer was
    /// down (a crash before it, and no restart by then).
    pub fn down_since(&self, due_ns: u64) -> bool {
        self.died_ns
            .is_some_and(|died| due_ns >= died && (self.dead || due_ns < self.revived_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source {
        let scenario = crate::scenario::load_str(
            "name = \"p\"\nduration = \"1s\"\n[[producers]]\nstream = \"s\"\nrate = 10\n",
            "p.toml",
            &Default::default(),
        )
        .unwrap();
        let plan = crate::plan::Plan::new(scenario, "r".into());
        Source::new(plan.producers[0].clone(), None)
    }

    /// What a crash does to the events it leaves unsent: those due before it
    /// were left behind (unsent), those due while down are skipped, and
    /// those due after a restart are sent.
    #[test]
    fn a_crash_splits_unsent_skipped_and_sent() {
        let mut s = source();
        assert!(s.sends(5) && !s.down_since(5), "never crashed");
        (s.dead, s.died_ns) = (true, Some(100));
        assert!(
            !s.sends(50) && !s.down_since(50),
            "due before the crash: unsent"
        );
        assert!(
            !s.sends(150) && s.down_since(150),
            "due while down: skipped"
        );
        (s.dead, s.revived_ns) = (false, 200);
        assert!(!s.sends(150) && s.down_since(150));
        assert!(!s.sends(50) && !s.down_since(50));
        assert!(
            s.sends(250) && !s.down_since(250),
            "after the restart: sent"
        );
    }
}
