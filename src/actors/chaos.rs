//! Chaos actor: plays the drill's fault timeline. At each fault's time it
//! sends the target consumer a `ConsumerFault` (and later the restart or the
//! end of a stall), and records when each fault was active for the report.

use std::time::Duration;

use actix::prelude::*;

use super::consumer::ConsumerFault;
use crate::clock::RunClock;
use crate::plan::{FaultAction, FaultPlan};
use crate::report::FaultWindow;

pub struct Chaos {
    clock: RunClock,
    faults: Vec<FaultPlan>,
    /// Consumers by group, then index.
    consumers: Vec<Vec<Recipient<ConsumerFault>>>,
    windows: Vec<FaultWindow>,
}

impl Chaos {
    pub fn new(
        clock: RunClock,
        faults: Vec<FaultPlan>,
        consumers: Vec<Vec<Recipient<ConsumerFault>>>,
    ) -> Chaos {
        Chaos {
            clock,
            faults,
            consumers,
            windows: Vec::new(),
        }
    }

    fn at(&self, offset: Duration) -> Duration {
        offset.saturating_sub(Duration::from_nanos(self.clock.now_ns()))
    }

    fn now_s(&self) -> f64 {
        self.clock.now_ns() as f64 / 1e9
    }

    fn inject(&mut self, index: usize, ctx: &mut Context<Self>) {
        let fault = self.faults[index].clone();
        let Some(target) = self
            .consumers
            .get(fault.group)
            .and_then(|g| g.get(fault.consumer as usize))
            .cloned()
        else {
            return;
        };
        let start_s = self.now_s();
        let (message, end) = match fault.action {
            FaultAction::CrashConsumer { restart_after } => (ConsumerFault::Crash, restart_after),
            FaultAction::StallConsumer { duration } => {
                (ConsumerFault::Stall(duration), Some(duration))
            }
        };
        target.do_send(message);
        let window = self.windows.len();
        // Open until it ends; a crash without restart lasts to the end of the run.
        self.windows.push(FaultWindow {
            name: fault.label.clone(),
            start_s,
            end_s: f64::NAN,
        });
        if let Some(after) = end {
            ctx.run_later(after, move |act, _| {
                if matches!(fault.action, FaultAction::CrashConsumer { .. }) {
                    target.do_send(ConsumerFault::Restart);
                }
                act.windows[window].end_s = act.now_s();
            });
        }
    }
}

impl Actor for Chaos {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for i in 0..self.faults.len() {
            let wait = self.at(self.faults[i].at);
            ctx.run_later(wait, move |act, ctx| act.inject(i, ctx));
        }
    }
}

/// The fault windows so far; open ones end now.
#[derive(Message)]
#[rtype(result = "Vec<FaultWindow>")]
pub struct Windows;

impl Handler<Windows> for Chaos {
    type Result = MessageResult<Windows>;

    fn handle(&mut self, _: Windows, ctx: &mut Context<Self>) -> Self::Result {
        let now_s = self.now_s();
        let windows = self
            .windows
            .iter()
            .map(|w| FaultWindow {
                end_s: if w.end_s.is_nan() { now_s } else { w.end_s },
                ..w.clone()
            })
            .collect();
        ctx.stop();
        MessageResult(windows)
    }
}
