//! What the coordinator and the chaos actor tell a consumer: the steps of
//! consumer faults (crash and restart, stall, slow down), each answered with
//! whether it took effect, and the final stop.

use std::time::Duration;

use actix::prelude::*;

use super::{Consumer, Slowdown};
use crate::actors::{FaultStep, Refused};
use crate::metrics::EventKey;
use crate::scenario::FaultKind;

/// A step of a consumer fault the chaos actor applies (crash, stall, slow
/// down; a crash's restart), answered with whether it took effect.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), Refused>")]
pub struct ConsumerFault {
    pub kind: FaultKind,
    pub step: FaultStep,
}

impl Handler<ConsumerFault> for Consumer {
    type Result = Result<(), Refused>;

    fn handle(&mut self, fault: ConsumerFault, ctx: &mut Context<Self>) -> Self::Result {
        use FaultKind::{CrashConsumer, SlowConsumer, StallConsumer};
        if self.stopping {
            return Err(Refused::Stopped);
        }
        match (fault.kind, fault.step) {
            (CrashConsumer { .. }, FaultStep::Begin) => self.crash(ctx),
            (CrashConsumer { .. }, FaultStep::End) => self.restart(ctx),
            (StallConsumer { .. } | SlowConsumer { .. }, FaultStep::Begin) if self.crashed => {
                Err(Refused::Down)
            }
            (StallConsumer { duration, .. }, FaultStep::Begin) => {
                self.stalled_until_ns = self.clock.now_ns() + duration.as_nanos();
                Ok(())
            }
            (
                SlowConsumer {
                    factor, duration, ..
                },
                FaultStep::Begin,
            ) => {
                let from_ns = self.clock.now_ns();
                self.slowdown = Some(Slowdown {
                    factor,
                    from_ns,
                    until_ns: from_ns + duration.as_nanos(),
                });
                Ok(())
            }
            // They time themselves: their window's end asks nothing more.
            (StallConsumer { .. } | SlowConsumer { .. }, FaultStep::End) => Ok(()),
            _ => Err(Refused::NotItsFault),
        }
    }
}

impl Consumer {
    /// Die abruptly: the read or batch in hand is abandoned, unprocessed and
    /// unacknowledged, and stays in the group's PEL.
    fn crash(&mut self, ctx: &mut Context<Self>) -> Result<(), Refused> {
        if self.crashed {
            return Err(Refused::AlreadyDown);
        }
        self.crashed = true;
        // Abandoned, not in progress: it stays pending (or, read with
        // NOACK, is lost with the consumer).
        self.release();
        // A read already sent is left to return (see `read_in_flight`).
        if let Some(h) = self.in_flight.take().filter(|_| !self.read_in_flight) {
            ctx.cancel_future(h);
        }
        Ok(())
    }

    /// Come back under the same name, working through the own PEL first.
    fn restart(&mut self, ctx: &mut Context<Self>) -> Result<(), Refused> {
        if !self.crashed {
            return Err(Refused::NotDown);
        }
        self.crashed = false;
        self.cursors.start_over();
        // A read still out from before the crash resumes the loop when
        // it returns; otherwise a retry the dead read scheduled is
        // replaced, so that one loop runs, not two.
        if !self.read_in_flight {
            if let Some(retry) = self.in_flight.take() {
                ctx.cancel_future(retry);
            }
            self.poll(ctx);
        }
        Ok(())
    }
}

/// Stop reading: finish the batch in hand (or give up after `deadline`),
/// flush the last interval and stop. Answers with the events still in hand
/// then: in progress, not lost.
#[derive(Message)]
#[rtype(result = "Vec<EventKey>")]
pub struct Stop {
    pub deadline: Duration,
}

impl Handler<Stop> for Consumer {
    type Result = ResponseActFuture<Self, Vec<EventKey>>;

    fn handle(&mut self, msg: Stop, ctx: &mut Context<Self>) -> Self::Result {
        self.stopping = true;
        if !self.reading || self.crashed {
            self.idle.send_replace(true);
        } else if self.waiting_out_stall {
            // A stalled consumer has nothing in flight: stop it now. (A read
            // or batch begun before the stall is still out: it finishes.)
            if let Some(h) = self.in_flight.take() {
                ctx.cancel_future(h);
            }
            self.idle.send_replace(true);
        }
        let mut idle = self.idle.subscribe();
        let wait = async move {
            let _ = tokio::time::timeout(msg.deadline, idle.wait_for(|i| *i)).await;
        };
        Box::pin(wait.into_actor(self).map(|_, act, ctx| {
            act.flush(act.interval.index());
            ctx.stop();
            let in_hand = act.in_hand.clone();
            act.release();
            in_hand
        }))
    }
}
