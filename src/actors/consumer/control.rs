//! What the coordinator and the chaos actor tell a consumer: faults (crash,
//! restart, stall, slow down) and the final stop.

use std::time::Duration;

use actix::prelude::*;

use super::{Consumer, Slowdown};
use crate::metrics::EventKey;

/// A fault the chaos actor injects.
#[derive(Message, Debug, Clone, Copy, PartialEq)]
#[rtype(result = "()")]
pub enum ConsumerFault {
    /// Die abruptly: the read or batch in hand is abandoned, unprocessed and
    /// unacknowledged, and stays in the group's PEL.
    Crash,
    /// Come back under the same name, working through the own PEL first.
    Restart,
    /// Stop reading for a while after the batch in hand.
    Stall(Duration),
    /// For `duration` from now, multiply each sampled processing time by `factor`.
    Slow { factor: f64, duration: Duration },
}

impl Handler<ConsumerFault> for Consumer {
    type Result = ();

    fn handle(&mut self, fault: ConsumerFault, ctx: &mut Context<Self>) {
        match fault {
            ConsumerFault::Crash => {
                self.crashed = true;
                // Abandoned, not in progress: it stays pending (or, read with
                // NOACK, is lost with the consumer).
                self.release();
                // A read already sent is left to return (see `read_in_flight`).
                if let Some(h) = self.in_flight.take().filter(|_| !self.read_in_flight) {
                    ctx.cancel_future(h);
                }
            }
            ConsumerFault::Restart if self.crashed => {
                self.crashed = false;
                self.reread_own_pending();
                // A read still out from before the crash resumes the loop when
                // it returns; otherwise a retry the dead read scheduled is
                // replaced, so that one loop runs, not two.
                if !self.read_in_flight {
                    if let Some(retry) = self.in_flight.take() {
                        ctx.cancel_future(retry);
                    }
                    self.poll(ctx);
                }
            }
            ConsumerFault::Restart => {}
            ConsumerFault::Stall(d) => {
                self.stalled_until_ns = self.clock.now_ns() + d.as_nanos() as u64;
            }
            ConsumerFault::Slow { factor, duration } => {
                let from_ns = self.clock.now_ns();
                self.slowdown = Some(Slowdown {
                    factor,
                    from_ns,
                    until_ns: from_ns + duration.as_nanos() as u64,
                });
            }
        }
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
        } else if self.clock.now_ns() < self.stalled_until_ns {
            // A stalled consumer has nothing in flight: stop it now.
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
