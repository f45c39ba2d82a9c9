//! Chaos actor: plays the drill's fault timeline and records each fault as
//! a `FaultWindow`: when it was active, and whether it was applied.
//!
//! A fault is applied in steps: `Begin` at its `at`, and, for one that lasts
//! (a window, or until a restart), `End` when its spec says. Each step goes
//! to the family of the fault's resolved target, which answers whether it
//! took effect: consumers and producers apply their own faults
//! (`ConsumerFault`, `ProducerFault`); the server-process family signals,
//! stops, restarts or promotes the managed servers and the server-command
//! family sends CLIENT/DEBUG commands (`server.rs`); the network family sets
//! and lifts toxics on a link's fault proxy, or a cluster shard's
//! (`network.rs`); the cluster
//! family moves a slot between shards (`cluster.rs`). A step that did
//! not take effect becomes the window's `error`, and the report fails the
//! run on it. Nothing here is per fault kind but the families' own matches.

mod cluster;
mod network;
mod server;
#[cfg(test)]
mod tests;

pub use server::command;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;

use super::consumer::ConsumerFault;
use super::producer::ProducerFault;
use super::{FaultStep, Refused};
use crate::clock::RunClock;
use crate::connect::Target;
use crate::metrics::FaultWindow;
use crate::plan::{FaultPlan, FaultTarget};
use crate::proxy::{FaultProxy, NodeProxies, Toxics};
use crate::scenario::Lasts;
use crate::server::RedisServer;
use crate::server::cluster::ManagedCluster;

/// The managed server, shared with the runner that started it.
pub type SharedServer = Arc<Mutex<RedisServer>>;

/// The managed cluster, shared with the runner that started it.
pub type SharedCluster = Arc<Mutex<ManagedCluster>>;

/// The managed replica a failover promotes, and the proxy its replication
/// link goes through when a network fault targets that link.
#[derive(Clone, Debug)]
pub struct Replica {
    pub server: SharedServer,
    pub link: Option<Arc<FaultProxy>>,
}

pub struct Chaos {
    clock: RunClock,
    faults: Vec<FaultPlan>,
    /// Consumers by group, then index.
    consumers: Vec<Vec<Option<Recipient<ConsumerFault>>>>,
    /// Producers by id, for crash_producer.
    producers: Vec<Option<Recipient<ProducerFault>>>,
    /// The managed primary: the one started first, the promoted replica
    /// after a failover.
    server: Option<SharedServer>,
    /// The managed replica a failover promotes (gone once promoted).
    replica: Option<SharedServer>,
    /// The primary itself (not through the proxy), for CLIENT KILL, CLIENT
    /// PAUSE and DEBUG SLEEP, each sent on a connection of its own; the
    /// promoted replica's after a failover.
    target: Option<Target>,
    /// The proxy of a run with network faults (or a failover).
    proxy: Option<Arc<FaultProxy>>,
    /// The proxy the replica's link to its primary goes through.
    replication_link: Option<Arc<FaultProxy>>,
    /// The toxics in force on the clients' proxy: one of each kind, so
    /// overlapping faults of different kinds combine and each one's end
    /// clears only its own.
    toxics: Toxics,
    /// The same for the replication link's proxy.
    link_toxics: Toxics,
    /// One per fault begun, in the order they began.
    windows: Vec<Opened>,
    /// The managed cluster whose primaries shard faults kill.
    cluster: Option<SharedCluster>,
    /// A cluster run's proxy in front of each node, by shard, and the
    /// toxics in force on each shard's (`network.rs`).
    nodes: Option<Arc<NodeProxies>>,
    node_toxics: Vec<Toxics>,
}

/// A fault's record while the run lasts, and when its window opened on the
/// run clock (its end is due from then).
struct Opened {
    record: FaultWindow,
    at_ns: u64,
}

/// What one step of a fault did: why it did not take effect, if it did not,
/// and what it counted.
#[derive(Debug, Default)]
struct Stepped {
    error: Option<String>,
    clients_killed: Option<u64>,
    /// When it acted, on the run clock, for a step done on the blocking
    /// pool: under load that can be well after the step began, and the
    /// window of a fault that began starts then, so recovery is timed from
    /// the fault itself.
    acted_ns: Option<u64>,
}

impl Stepped {
    fn of(outcome: Result<(), String>) -> Stepped {
        Stepped {
            error: outcome.err(),
            clients_killed: None,
            acted_ns: None,
        }
    }

    /// A step done on the blocking pool: when it acted, or why it did not.
    fn acted(outcome: Result<u64, String>) -> Stepped {
        Stepped {
            acted_ns: outcome.as_ref().ok().copied(),
            ..Stepped::of(outcome.map(drop))
        }
    }
}

/// A step under way: one may take a while (a restart waits for Redis to
/// load its data, DEBUG SLEEP answers when the sleep is over).
type Applying = Pin<Box<dyn Future<Output = Stepped>>>;

fn ready(outcome: Result<(), String>) -> Applying {
    Box::pin(std::future::ready(Stepped::of(outcome)))
}

impl Chaos {
    pub fn new(
        clock: RunClock,
        faults: Vec<FaultPlan>,
        consumers: Vec<Vec<Option<Recipient<ConsumerFault>>>>,
        server: Option<SharedServer>,
    ) -> Chaos {
        Chaos {
            clock,
            faults,
            consumers,
            producers: Vec::new(),
            server,
            replica: None,
            target: None,
            proxy: None,
            replication_link: None,
            toxics: Toxics::default(),
            link_toxics: Toxics::default(),
            windows: Vec::new(),
            cluster: None,
            nodes: None,
            node_toxics: Vec::new(),
        }
    }

    /// The replica `failover` promotes (and its link's proxy, which
    /// replication-link faults act on), and the producers `crash_producer` targets.
    pub fn with_failover_targets(
        mut self,
        replica: Option<Replica>,
        producers: Vec<Option<Recipient<ProducerFault>>>,
    ) -> Chaos {
        self.replication_link = replica.as_ref().and_then(|r| r.link.clone());
        self.replica = replica.map(|r| r.server);
        self.producers = producers;
        self
    }

    /// Network faults act on this proxy; without one they fail.
    pub fn with_proxy(mut self, proxy: Option<Arc<FaultProxy>>) -> Chaos {
        self.proxy = proxy;
        self
    }

    /// Shard faults act on this cluster's nodes; without one they fail.
    pub fn with_cluster(mut self, cluster: Option<SharedCluster>) -> Chaos {
        self.cluster = cluster;
        self
    }

    /// In a cluster run, network faults act on these proxies, one per node.
    pub fn with_node_proxies(mut self, nodes: Option<Arc<NodeProxies>>) -> Chaos {
        self.node_toxics = vec![Toxics::default(); nodes.as_ref().map_or(0, |n| n.shard_count())];
        self.nodes = nodes;
        self
    }

    /// Command faults go to Redis at `target`; without one they fail.
    pub fn with_target(mut self, target: Target) -> Chaos {
        self.target = Some(target);
        self
    }

    fn now_s(&self) -> f64 {
        self.clock.now_ns() as f64 / 1e9
    }

    /// Opens fault `index`'s window (it stays open, end NaN, until closed or
    /// the run ends) and applies its first step.
    fn inject(&mut self, index: usize, ctx: &mut Context<Self>) {
        let fault = &self.faults[index];
        let record = FaultWindow {
            name: fault.label.clone(),
            kind: fault.kind.action(),
            target: fault.spec().target.name(),
            applied: false,
            start_s: self.now_s(),
            end_s: f64::NAN,
            ..Default::default()
        };
        let at_ns = self.clock.now_ns();
        self.windows.push(Opened { record, at_ns });
        self.step(index, self.windows.len() - 1, FaultStep::Begin, ctx);
    }

    /// Applies one step and, when it is answered, records what it did.
    fn step(&mut self, index: usize, window: usize, step: FaultStep, ctx: &mut Context<Self>) {
        let applying = self.apply(index, step);
        ctx.spawn(applying.into_actor(self).map(move |did, act, ctx| {
            act.stepped(index, window, step, did, ctx);
        }));
    }

    /// Records a step's outcome. A fault that began lasts as its spec says:
    /// its end is due that long after its window opened (at once if the
    /// start took longer); one that did not begin is over, not applied.
    fn stepped(
        &mut self,
        index: usize,
        window: usize,
        step: FaultStep,
        did: Stepped,
        ctx: &mut Context<Self>,
    ) {
        let lasts = self.faults[index].spec().lasts;
        let opened = &mut self.windows[window];
        let w = &mut opened.record;
        w.clients_killed = did.clients_killed.or(w.clients_killed);
        match (step, did.error) {
            (FaultStep::Begin, None) => {
                w.applied = true;
                if let Some(acted_ns) = did.acted_ns {
                    opened.at_ns = acted_ns;
                    w.start_s = acted_ns as f64 / 1e9;
                }
            }
            (FaultStep::Begin, Some(e)) => {
                w.error = Some(e);
                return self.close(window);
            }
            (FaultStep::End, error) => {
                if let Some(e) = error {
                    w.applied = false;
                    w.error = Some(format!("ending it failed: {e}"));
                }
                return self.close(window);
            }
        }
        let due_ns = match lasts {
            Lasts::Once => return self.close(window),
            // Down for the rest of the run: the window ends with it.
            Lasts::UntilRestart(None) => return,
            Lasts::For { duration, .. } | Lasts::UntilRestart(Some(duration)) => {
                opened.at_ns + duration.as_nanos()
            }
        };
        let wait = Duration::from_nanos(due_ns.saturating_sub(self.clock.now_ns()));
        ctx.run_later(wait, move |act, ctx| {
            act.step(index, window, FaultStep::End, ctx)
        });
    }

    fn close(&mut self, window: usize) {
        self.windows[window].record.end_s = self.now_s();
    }

    /// One step of fault `index`, applied by the family of its target.
    fn apply(&mut self, index: usize, step: FaultStep) -> Applying {
        let fault = self.faults[index].clone();
        let name = fault.spec().target.name().unwrap_or_default();
        let ending = step == FaultStep::End;
        match fault.target {
            FaultTarget::Consumer { group, index } => {
                let target =
                    (self.consumers.get(group)).and_then(|g| g.get(index as usize)?.as_ref());
                let fault = ConsumerFault {
                    kind: fault.kind,
                    step,
                };
                ask(target.cloned(), format!("consumer {name}"), fault, ending)
            }
            FaultTarget::Producer(producer) => {
                let target = self.producers.get(producer as usize).cloned().flatten();
                let fault = ProducerFault {
                    producer,
                    kind: fault.kind,
                    step,
                };
                ask(target, format!("producer {name}"), fault, ending)
            }
            FaultTarget::ServerProcess => self.server_process(&fault.kind, step),
            FaultTarget::ServerCommand => self.server_command(&fault.kind, step),
            FaultTarget::Network { link, shard } => {
                ready(self.network(&fault.kind, link, shard, step))
            }
            FaultTarget::Slot(key) => self.cluster(&fault.kind, key),
            FaultTarget::Shard(shard) => self.shard(&fault.kind, shard, step),
            FaultTarget::Unresolved(why) => ready(Err(why)),
        }
    }
}

/// Sends a step to the consumer or producer `who` names; its answer is the
/// step's outcome. An end that finds its target stopped came after the run
/// was over for it (a producer stops when its schedule ends): the fault
/// lasted as long as the run, which is no failure.
fn ask<M>(target: Option<Recipient<M>>, who: String, step: M, ending: bool) -> Applying
where
    M: Message<Result = Result<(), Refused>> + Send + 'static,
{
    let Some(target) = target else {
        return ready(Err(format!("{who} is not in this run")));
    };
    let answer = target.send(step);
    Box::pin(async move {
        Stepped::of(match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Refused::Stopped)) | Err(_) if ending => Ok(()),
            Ok(Err(refused)) => Err(format!("{who} {refused}")),
            Err(_) => Err(format!("{who} {}", Refused::Stopped)),
        })
    })
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
            .map(|opened| {
                let mut w = opened.record.clone();
                if w.end_s.is_nan() {
                    w.end_s = now_s;
                }
                if !w.applied && w.error.is_none() {
                    w.error = Some("still being applied when the run ended".into());
                }
                w
            })
            .collect();
        // A run cut short (Ctrl-C) may end inside a freeze, whose SIGCONT
        // dies with this actor: never hand back a stopped server.
        let signals = (self.faults.iter()).any(|f| f.target == FaultTarget::ServerProcess);
        if let Some(server) = self.server.as_ref().filter(|_| signals)
            && let Ok(mut server) = server.try_lock()
        {
            let _ = server.thaw();
        }
        ctx.stop();
        MessageResult(windows)
    }
}
