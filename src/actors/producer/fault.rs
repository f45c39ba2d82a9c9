//! Producer faults the chaos actor applies: a crash, after which replies in
//! flight are never read (those XADDs turn indeterminate) and nothing is
//! sent, and a restart, after which the schedule goes on from now.

use actix::prelude::*;

use super::Producer;
use crate::actors::{FaultStep, Refused};
use crate::scenario::FaultKind;

impl Producer {
    /// A crashed source's XADDs still in flight will never have their
    /// replies read: indeterminate from now on.
    fn orphan_in_flight(&mut self, source: usize, epoch: u64, now_ns: u64) {
        self.roll(now_ns);
        let orphans: Vec<u64> = (self.links.iter())
            .flat_map(|l| l.in_flight.requests())
            .flat_map(|p| &p.batch)
            .filter(|s| s.source == source && s.epoch == epoch)
            .map(|s| s.intended_ns)
            .collect();
        for intended_ns in orphans {
            let stats = self.stats.get_mut(self.phase(intended_ns));
            stats.indeterminate += 1;
            stats.waited_at_least(now_ns.saturating_sub(intended_ns));
        }
    }
}

/// A step of a producer fault the chaos actor applies to one producer (by
/// id): a crash, or its restart; answered with whether it took effect.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), Refused>")]
pub struct ProducerFault {
    pub producer: u32,
    pub kind: FaultKind,
    pub step: FaultStep,
}

impl Handler<ProducerFault> for Producer {
    type Result = Result<(), Refused>;

    /// A crash: replies in flight are never read (their XADDs turn
    /// indeterminate), nothing more is sent. A restart: go on with the
    /// schedule from now.
    fn handle(&mut self, fault: ProducerFault, ctx: &mut Context<Self>) -> Self::Result {
        let now_ns = self.clock.now_ns();
        let Some(index) = (self.sources.iter()).position(|s| s.plan.id == fault.producer) else {
            return Err(Refused::NotItsFault);
        };
        let source = &mut self.sources[index];
        match (fault.kind, fault.step) {
            (FaultKind::CrashProducer { .. }, FaultStep::Begin) if source.dead => {
                return Err(Refused::AlreadyDown);
            }
            (FaultKind::CrashProducer { .. }, FaultStep::Begin) => {
                source.stalls.interrupted(now_ns);
                source.dead = true;
                source.died_ns = Some(now_ns);
                let epoch = source.epoch;
                source.epoch += 1;
                self.orphan_in_flight(index, epoch, now_ns);
            }
            (FaultKind::CrashProducer { .. }, FaultStep::End) if !source.dead => {
                return Err(Refused::NotDown);
            }
            (FaultKind::CrashProducer { .. }, FaultStep::End) => {
                source.dead = false;
                source.revived_ns = now_ns;
            }
            _ => return Err(Refused::NotItsFault),
        }
        self.blocked = false;
        // Keeps the schedule (or the saturating poll) running, so the
        // producer still finishes when its run ends.
        self.tick(ctx);
        Ok(())
    }
}
