//! The end of a producer actor's run: it waits for its schedules and
//! replies until the coordinator's deadline, then gives up on what is
//! still out (docs/measurement.md, "Accounting") and hands back its ledgers.

use std::cmp::Reverse;
use std::time::Duration;

use actix::prelude::*;

use super::{Outcome, Producer};
use crate::metrics::ProduceLedger;

impl Producer {
    /// Gives up at the end of the run: XADDs still awaiting replies are
    /// indeterminate and unanswered, events due but never sent are unsent;
    /// both get the wait so far as a lower bound of their latency.
    fn give_up(&mut self, ctx: &mut Context<Self>) {
        self.giving_up = true;
        self.roll(self.clock.now_ns());
        for l in 0..self.links.len() {
            for (pipeline, replies) in self.links[l].in_flight.drain() {
                self.on_reply(ctx, pipeline, &replies, Some(Outcome::GaveUp));
            }
        }
        let now_ns = self.clock.now_ns();
        while let Some(Reverse((due, i))) = self.due.pop() {
            // Not due yet: a run stopped early (Ctrl-C) never intended them.
            if due > now_ns {
                continue;
            }
            self.not_sent(i, due, now_ns);
            self.sources[i].advance();
            if let Some(next) = self.sources[i].next_due_ns {
                self.due.push(Reverse((next, i)));
            }
        }
    }
}

/// Wait until the schedules have ended and every reply is in (or `deadline`
/// passes: replies still missing then stay unacknowledged in the ledger),
/// flush the last interval and hand back the ledgers.
#[derive(Message)]
#[rtype(result = "Finished")]
pub struct Finish {
    pub deadline: Duration,
}

/// What a producer actor hands back at the end.
#[derive(Debug, Default)]
pub struct Finished {
    /// Each producer's ledger, with its id.
    pub ledgers: Vec<(u32, ProduceLedger)>,
    /// Measured-phase XADDs acknowledged although WAIT saw too few replicas
    /// (0 without `wait`).
    pub unreplicated: u64,
    /// What a cluster sent on to another node.
    pub redirects: crate::metrics::cluster::Redirects,
}

impl Handler<Finish> for Producer {
    type Result = ResponseActFuture<Self, Finished>;

    fn handle(&mut self, msg: Finish, _: &mut Context<Self>) -> Self::Result {
        let mut done = self.done.subscribe();
        let wait = async move {
            let _ = tokio::time::timeout(msg.deadline, done.wait_for(|d| *d)).await;
        };
        Box::pin(wait.into_actor(self).map(|_, act, ctx| {
            act.give_up(ctx);
            act.flush(act.interval.index());
            ctx.stop();
            let ledgers = (act.sources.iter_mut())
                .map(|s| (s.plan.id, std::mem::take(&mut s.ledger)))
                .collect();
            Finished {
                ledgers,
                unreplicated: act.unreplicated,
                redirects: act.routes.redirects,
            }
        }))
    }
}
