//! Chaos actor: plays the drill's fault timeline. Consumer faults go to the
//! target consumer as a `ConsumerFault`; Redis faults act on the managed
//! server process (SIGKILL, then a restart from the same data directory, on a
//! blocking thread so the actors keep measuring meanwhile); network faults
//! set and clear toxics on the fault proxy every harness connection goes
//! through. It records when each fault was active for the report.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;

use super::consumer::ConsumerFault;
use crate::clock::RunClock;
use crate::plan::{FaultAction, FaultPlan};
use crate::proxy::{FaultProxy, Latency, Toxics};
use crate::report::FaultWindow;
use crate::server::RedisServer;

/// The managed server, shared with the runner that started it.
pub type SharedServer = Arc<Mutex<RedisServer>>;

pub struct Chaos {
    clock: RunClock,
    faults: Vec<FaultPlan>,
    /// Consumers by group, then index.
    consumers: Vec<Vec<Recipient<ConsumerFault>>>,
    server: Option<SharedServer>,
    /// The proxy of a run with network faults.
    proxy: Option<Arc<FaultProxy>>,
    /// The toxics in force: one of each kind, so overlapping faults of
    /// different kinds combine and each one's end clears only its own.
    toxics: Toxics,
    windows: Vec<FaultWindow>,
}

impl Chaos {
    pub fn new(
        clock: RunClock,
        faults: Vec<FaultPlan>,
        consumers: Vec<Vec<Recipient<ConsumerFault>>>,
        server: Option<SharedServer>,
    ) -> Chaos {
        Chaos {
            clock,
            faults,
            consumers,
            server,
            proxy: None,
            toxics: Toxics::default(),
            windows: Vec::new(),
        }
    }

    /// Network faults act on this proxy; without one they are skipped.
    pub fn with_proxy(mut self, proxy: Option<Arc<FaultProxy>>) -> Chaos {
        self.proxy = proxy;
        self
    }

    fn now_s(&self) -> f64 {
        self.clock.now_ns() as f64 / 1e9
    }

    fn consumer(&self, group: usize, index: u32) -> Option<Recipient<ConsumerFault>> {
        self.consumers.get(group)?.get(index as usize).cloned()
    }

    /// Opens a window; it stays open (end NaN) until `close`, or the run's end.
    fn open(&mut self, label: &str) -> usize {
        self.windows.push(FaultWindow {
            name: label.to_string(),
            start_s: self.now_s(),
            end_s: f64::NAN,
        });
        self.windows.len() - 1
    }

    fn close(&mut self, window: usize) {
        self.windows[window].end_s = self.now_s();
    }

    fn inject(&mut self, index: usize, ctx: &mut Context<Self>) {
        let fault = self.faults[index].clone();
        match fault.action {
            FaultAction::CrashConsumer {
                group,
                consumer,
                restart_after,
            } => {
                let Some(target) = self.consumer(group, consumer) else {
                    return;
                };
                target.do_send(ConsumerFault::Crash);
                let window = self.open(&fault.label);
                if let Some(after) = restart_after {
                    ctx.run_later(after, move |act, _| {
                        target.do_send(ConsumerFault::Restart);
                        act.close(window);
                    });
                }
            }
            FaultAction::StallConsumer {
                group,
                consumer,
                duration,
            } => {
                let Some(target) = self.consumer(group, consumer) else {
                    return;
                };
                target.do_send(ConsumerFault::Stall(duration));
                let window = self.open(&fault.label);
                ctx.run_later(duration, move |act, _| act.close(window));
            }
            FaultAction::KillRedis { restart_after } => {
                self.kill_redis(&fault.label, restart_after, ctx)
            }
            FaultAction::NetworkReset => {
                if let Some(proxy) = &self.proxy {
                    proxy.reset_all();
                    let window = self.open(&fault.label);
                    self.close(window);
                }
            }
            FaultAction::NetworkLatency {
                delay,
                jitter,
                duration,
            } => {
                let latency = Some(Latency { delay, jitter });
                self.network(&fault.label, duration, ctx, move |t| t.latency = latency);
            }
            FaultAction::NetworkBlackhole { duration } => {
                self.network(&fault.label, duration, ctx, |t| t.blackhole = true)
            }
            FaultAction::NetworkBandwidth {
                bytes_per_s,
                duration,
            } => self.network(&fault.label, duration, ctx, move |t| {
                t.bandwidth_bytes_per_s = Some(bytes_per_s)
            }),
        }
    }

    /// Applies one toxic for `duration`, then takes that toxic (only) off again.
    fn network(
        &mut self,
        label: &str,
        duration: Duration,
        ctx: &mut Context<Self>,
        apply: impl Fn(&mut Toxics),
    ) {
        let Some(proxy) = self.proxy.clone() else {
            return;
        };
        let mut toxic = Toxics::default();
        apply(&mut toxic);
        apply(&mut self.toxics);
        proxy.set(self.toxics.clone());
        let window = self.open(label);
        ctx.run_later(duration, move |act, _| {
            let t = &mut act.toxics;
            if toxic.latency.is_some() {
                t.latency = None;
            }
            if toxic.bandwidth_bytes_per_s.is_some() {
                t.bandwidth_bytes_per_s = None;
            }
            t.blackhole &= !toxic.blackhole;
            proxy.set(act.toxics.clone());
            act.close(window);
        });
    }

    fn kill_redis(&mut self, label: &str, restart_after: Duration, ctx: &mut Context<Self>) {
        let Some(server) = self.server.clone() else {
            return;
        };
        let window = self.open(label);
        let kill = blocking(server.clone(), RedisServer::kill9);
        let restart = async move {
            let killed = kill.await;
            tokio::time::sleep(restart_after).await;
            // The window ends when the server answers again, not when it was asked to start.
            killed.and(blocking(server, RedisServer::restart).await)
        };
        ctx.spawn(restart.into_actor(self).map(move |outcome, act, _| {
            act.close(window);
            if let Err(e) = outcome {
                act.windows[window].name =
                    format!("{} (restart failed: {e})", act.windows[window].name);
            }
        }));
    }
}

/// Runs a server operation on the blocking pool: a restart waits for Redis to
/// load its data, which must not stall the actors measuring the outage.
async fn blocking(
    server: SharedServer,
    op: fn(&mut RedisServer) -> crate::Result<()>,
) -> Result<(), String> {
    let joined = tokio::task::spawn_blocking(move || {
        let mut server = server
            .lock()
            .map_err(|_| "server lock poisoned".to_string())?;
        op(&mut server).map_err(|e| e.to_string())
    })
    .await;
    joined.map_err(|e| e.to_string())?
}

impl Actor for Chaos {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for i in 0..self.faults.len() {
            let wait = self.faults[i]
                .at
                .saturating_sub(Duration::from_nanos(self.clock.now_ns()));
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
        let windows = (self.windows.iter())
            .map(|w| FaultWindow {
                end_s: if w.end_s.is_nan() { now_s } else { w.end_s },
                ..w.clone()
            })
            .collect();
        ctx.stop();
        MessageResult(windows)
    }
}
