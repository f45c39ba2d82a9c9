//! What the coordinator and the chaos actor tell a consumer: the steps of
//! consumer faults (crash and restart, stall, slow down), each answered with
//! whether it took effect, and the final stop. Whether a step applies is the
//! state machine's to say (machine.rs); what it changes besides the state
//! (the windows, the events in hand, the own PEL) is done here.

use std::time::Duration;

use actix::prelude::*;

use super::Consumer;
use super::machine::{Action, Event};
use super::work::Slowdown;
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
        debug_assert_eq!(self.cancellable.is_some(), self.state.cancellable());
        let now_ns = self.clock.now_ns();
        let event = match (&fault.kind, fault.step) {
            (CrashConsumer { .. }, FaultStep::Begin) => Event::Crash,
            (CrashConsumer { .. }, FaultStep::End) => Event::Restart {
                stalled: self.stalled(now_ns),
            },
            (StallConsumer { .. } | SlowConsumer { .. }, FaultStep::Begin) => Event::Hinder,
            // They time themselves: their window's end asks nothing more.
            (StallConsumer { .. } | SlowConsumer { .. }, FaultStep::End) => Event::WindowEnds,
            _ if self.state.stopping() => return Err(Refused::Stopped),
            _ => return Err(Refused::NotItsFault),
        };
        let action = self.on(event);
        if let Action::Refuse(why) = action {
            return Err(why);
        }
        match (event, &fault.kind) {
            // Die abruptly: the batch in hand is abandoned, unacknowledged
            // and unprocessed (but for a projection's applied effects), and stays in the group's PEL (or, read with
            // NOACK, is lost with the consumer); not in progress.
            (Event::Crash, _) => {
                self.crashes += 1;
                self.in_hand.release();
                self.crashed_after_effects();
            }
            // Come back under the same name, working through the own PEL first.
            (Event::Restart { .. }, _) => self.cursors.start_over(),
            (Event::Hinder, StallConsumer { duration, .. }) => {
                self.stalled_until_ns = now_ns + duration.as_nanos();
            }
            (
                Event::Hinder,
                SlowConsumer {
                    factor, duration, ..
                },
            ) => {
                self.slowdown = Some(Slowdown {
                    factor: *factor,
                    from_ns: now_ns,
                    until_ns: now_ns + duration.as_nanos(),
                });
            }
            _ => {}
        }
        self.act(action, ctx);
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
        debug_assert_eq!(self.cancellable.is_some(), self.state.cancellable());
        let action = self.on(Event::Stop);
        self.act(action, ctx);
        let mut idle = self.idle.subscribe();
        let wait = async move {
            let _ = tokio::time::timeout(msg.deadline, idle.wait_for(|i| *i)).await;
        };
        Box::pin(wait.into_actor(self).map(|_, act, ctx| {
            act.flush(act.interval.index());
            ctx.stop();
            act.in_hand.take()
        }))
    }
}
