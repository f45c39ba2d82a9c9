//! Chaos actor: plays the drill's fault timeline. Consumer faults (crash,
//! stall, slowdown) go to the target consumer as a `ConsumerFault`; Redis
//! faults act on the managed server process (SIGKILL, then a restart from
//! the same data directory, on a blocking thread so the actors keep
//! measuring meanwhile); network faults
//! set and clear toxics on the fault proxy every harness connection goes
//! through, or on the replication link's own proxy (`link = "replication"`);
//! freeze, graceful restart, CLIENT KILL/PAUSE and DEBUG SLEEP act on the
//! server or on a connection of their own; a failover kills the primary,
//! promotes the replica and moves the proxy to it, and from then on every
//! server fault acts on the promoted replica; a producer crash goes to the
//! producer as a `ProducerFault`. It records when each fault was active for
//! the report.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;

use super::consumer::ConsumerFault;
use super::producer::ProducerFault;
use crate::clock::RunClock;
use crate::metrics::FaultWindow;
use crate::plan::{FaultAction, FaultPlan};
use crate::proxy::{FaultProxy, Latency, Toxics};
use crate::scenario::Link;
use crate::server::RedisServer;

/// The managed server, shared with the runner that started it.
pub type SharedServer = Arc<Mutex<RedisServer>>;

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
    consumers: Vec<Vec<Recipient<ConsumerFault>>>,
    /// The managed primary: the one started first, the promoted replica
    /// after a failover.
    server: Option<SharedServer>,
    /// The proxy of a run with network faults.
    proxy: Option<Arc<FaultProxy>>,
    /// The primary itself (not through the proxy), for CLIENT KILL, CLIENT
    /// PAUSE and DEBUG SLEEP, each sent on a connection of its own; the
    /// promoted replica's after a failover.
    url: Option<String>,
    /// The toxics in force on the clients' proxy: one of each kind, so
    /// overlapping faults of different kinds combine and each one's end
    /// clears only its own.
    toxics: Toxics,
    /// The same for the replication link's proxy.
    link_toxics: Toxics,
    windows: Vec<FaultWindow>,
    /// The managed replica a failover promotes (gone once promoted).
    replica: Option<SharedServer>,
    /// The proxy the replica's link to its primary goes through.
    replication_link: Option<Arc<FaultProxy>>,
    /// Producers by id, for crash_producer.
    producers: Vec<Recipient<ProducerFault>>,
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
            url: None,
            toxics: Toxics::default(),
            link_toxics: Toxics::default(),
            windows: Vec::new(),
            replica: None,
            replication_link: None,
            producers: Vec::new(),
        }
    }

    /// The replica `failover` promotes (and its link's proxy, which
    /// replication-link faults act on), and the producers `crash_producer` targets.
    pub fn with_failover_targets(
        mut self,
        replica: Option<Replica>,
        producers: Vec<Recipient<ProducerFault>>,
    ) -> Chaos {
        self.replication_link = replica.as_ref().and_then(|r| r.link.clone());
        self.replica = replica.map(|r| r.server);
        self.producers = producers;
        self
    }

    /// Network faults act on this proxy; without one they are skipped.
    pub fn with_proxy(mut self, proxy: Option<Arc<FaultProxy>>) -> Chaos {
        self.proxy = proxy;
        self
    }

    /// Command faults go to Redis at `url`; without one they are skipped.
    pub fn with_url(mut self, url: &str) -> Chaos {
        self.url = Some(url.to_string());
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
            ..Default::default()
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
            FaultAction::SlowConsumer {
                group,
                consumer,
                duration,
                factor,
            } => {
                let Some(target) = self.consumer(group, consumer) else {
                    return;
                };
                // The consumer times the slowdown itself; this window mirrors it.
                target.do_send(ConsumerFault::Slow { factor, duration });
                let window = self.open(&fault.label);
                ctx.run_later(duration, move |act, _| act.close(window));
            }
            FaultAction::KillRedis { restart_after } => {
                self.kill_redis(&fault.label, restart_after, ctx)
            }
            FaultAction::Failover => self.failover(&fault.label, ctx),
            FaultAction::CrashProducer {
                producer,
                restart_after,
            } => {
                let Some(target) = self.producers.get(producer as usize).cloned() else {
                    return;
                };
                target.do_send(ProducerFault::Crash(producer));
                let window = self.open(&fault.label);
                if let Some(after) = restart_after {
                    ctx.run_later(after, move |act, _| {
                        target.do_send(ProducerFault::Restart(producer));
                        act.close(window);
                    });
                }
            }
            FaultAction::NetworkReset => {
                if let Some(proxy) = self.proxy_of(fault.link) {
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
                self.network(&fault, duration, ctx, move |t| t.latency = latency);
            }
            FaultAction::NetworkBlackhole { duration } => {
                self.network(&fault, duration, ctx, |t| t.blackhole = true)
            }
            FaultAction::NetworkBandwidth {
                bytes_per_s,
                duration,
            } => self.network(&fault, duration, ctx, move |t| {
                t.bandwidth_bytes_per_s = Some(bytes_per_s)
            }),
            FaultAction::FreezeRedis { duration } => self.server_ops(
                &fault.label,
                RedisServer::freeze,
                duration,
                RedisServer::thaw,
                ctx,
            ),
            FaultAction::RestartRedis => self.server_ops(
                &fault.label,
                RedisServer::stop,
                Duration::ZERO,
                RedisServer::restart,
                ctx,
            ),
            FaultAction::ClientKill => {
                let mut cmd = redis::cmd("CLIENT");
                cmd.arg("KILL")
                    .arg("TYPE")
                    .arg("normal")
                    .arg("SKIPME")
                    .arg("yes");
                self.command(&fault.label, cmd, None, ctx)
            }
            FaultAction::ClientPause { duration } => {
                let mut cmd = redis::cmd("CLIENT");
                cmd.arg("PAUSE").arg(duration.as_millis() as u64).arg("ALL");
                self.command(&fault.label, cmd, Some(duration), ctx)
            }
            FaultAction::DebugSleep { duration } => {
                let mut cmd = redis::cmd("DEBUG");
                cmd.arg("SLEEP")
                    .arg(format!("{:.3}", duration.as_secs_f64()));
                // The reply comes when the sleep is over: that ends the window.
                self.command(&fault.label, cmd, None, ctx)
            }
        }
    }

    /// `first` on the managed server, `then` after `pause`, on the blocking
    /// pool; the window ends when `then` returns (a restarted server answers).
    fn server_ops(
        &mut self,
        label: &str,
        first: ServerOp,
        pause: Duration,
        then: ServerOp,
        ctx: &mut Context<Self>,
    ) {
        let Some(server) = self.server.clone() else {
            return;
        };
        let window = self.open(label);
        let ops = async move {
            let done = blocking(server.clone(), first).await;
            tokio::time::sleep(pause).await;
            // Always `then`, so a failed freeze never leaves a stopped server.
            done.and(blocking(server, then).await)
        };
        ctx.spawn(ops.into_actor(self).map(move |outcome, act, _| {
            act.close_with(window, outcome);
        }));
    }

    /// Sends `cmd` to Redis on a connection of its own, so neither the fault
    /// (CLIENT KILL skips its sender) nor a slow reply (DEBUG SLEEP) touches
    /// the actors' connections or this actor. The window lasts `lasts`, or
    /// until the reply when `None`.
    fn command(
        &mut self,
        label: &str,
        cmd: redis::Cmd,
        lasts: Option<Duration>,
        ctx: &mut Context<Self>,
    ) {
        let Some(url) = self.url.clone() else {
            return;
        };
        let window = self.open(label);
        let timeout = crate::connect::RESPONSE_TIMEOUT + self.longest_fault();
        let request = async move {
            let client = crate::connect::client(&url).map_err(|e| e.to_string())?;
            let mut conn = crate::connect::connect(&client, &url, timeout)
                .await
                .map_err(|e| e.to_string())?;
            cmd.query_async::<redis::Value>(&mut conn)
                .await
                .map_err(|e| format!("{e}"))
        };
        ctx.spawn(request.into_actor(self).map(move |outcome, act, _| {
            // CLIENT KILL answers how many connections it closed: the window
            // says so, so a kill that hit nothing (or another server) shows.
            if let Ok(redis::Value::Int(n)) = outcome {
                act.windows[window].name += &format!(" ({n} killed)");
            }
            match (lasts, outcome.map(drop)) {
                (None, outcome) => act.close_with(window, outcome),
                (Some(_), Err(e)) => act.name_failure(window, &e),
                (Some(_), Ok(())) => {}
            }
        }));
        if let Some(lasts) = lasts {
            ctx.run_later(lasts, move |act, _| act.close(window));
        }
    }

    /// The longest timed fault of the drill, so a DEBUG SLEEP's reply is waited for.
    fn longest_fault(&self) -> Duration {
        (self.faults.iter())
            .filter_map(|f| match f.action {
                FaultAction::DebugSleep { duration } | FaultAction::ClientPause { duration } => {
                    Some(duration)
                }
                _ => None,
            })
            .max()
            .unwrap_or_default()
    }

    fn close_with(&mut self, window: usize, outcome: Result<(), String>) {
        self.close(window);
        if let Err(e) = outcome {
            self.name_failure(window, &e);
        }
    }

    /// A fault that could not be applied says so in its report name.
    fn name_failure(&mut self, window: usize, problem: &str) {
        let w = &mut self.windows[window];
        w.name = format!("{} (failed: {problem})", w.name);
    }

    /// The proxy a network fault on `link` acts on.
    fn proxy_of(&self, link: Link) -> Option<Arc<FaultProxy>> {
        match link {
            Link::Clients => self.proxy.clone(),
            Link::Replication => self.replication_link.clone(),
        }
    }

    fn toxics_of(&mut self, link: Link) -> &mut Toxics {
        match link {
            Link::Clients => &mut self.toxics,
            Link::Replication => &mut self.link_toxics,
        }
    }

    /// Applies one toxic to the fault's link for `duration`, then takes that
    /// toxic (only) off again.
    fn network(
        &mut self,
        fault: &FaultPlan,
        duration: Duration,
        ctx: &mut Context<Self>,
        apply: impl Fn(&mut Toxics),
    ) {
        let link = fault.link;
        let Some(proxy) = self.proxy_of(link) else {
            return;
        };
        let mut toxic = Toxics::default();
        apply(&mut toxic);
        let toxics = self.toxics_of(link);
        apply(toxics);
        proxy.set(toxics.clone());
        let window = self.open(&fault.label);
        ctx.run_later(duration, move |act, _| {
            let t = act.toxics_of(link);
            if toxic.latency.is_some() {
                t.latency = None;
            }
            if toxic.bandwidth_bytes_per_s.is_some() {
                t.bandwidth_bytes_per_s = None;
            }
            t.blackhole &= !toxic.blackhole;
            proxy.set(t.clone());
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

impl Chaos {
    /// SIGKILL the primary, promote the replica (REPLICAOF NO ONE) and point
    /// the proxy, the harness's only address for Redis, at it; connections
    /// still open are reset so every ConnectionManager reconnects there.
    /// The window ends when the replica has accepted the promotion. From
    /// the start of the window on, server faults (kill, freeze, restart,
    /// CLIENT KILL/PAUSE, DEBUG SLEEP) act on the replica: the old primary
    /// is dead, and the replica is the primary once the promotion is done.
    fn failover(&mut self, label: &str, ctx: &mut Context<Self>) {
        let (Some(primary), Some(replica)) = (self.server.clone(), self.replica.take()) else {
            return;
        };
        let Ok((port, url)) = replica.lock().map(|r| (r.port(), r.url())) else {
            return;
        };
        self.server = Some(replica.clone());
        self.url = Some(url);
        let proxy = self.proxy.clone();
        let window = self.open(label);
        let promote = async move {
            blocking(primary, RedisServer::kill9).await?;
            blocking(replica, RedisServer::promote).await?;
            if let Some(proxy) = proxy {
                proxy.set_upstream(std::net::SocketAddr::from((
                    std::net::Ipv4Addr::LOCALHOST,
                    port,
                )));
                proxy.reset_all();
            }
            Ok::<(), String>(())
        };
        ctx.spawn(promote.into_actor(self).map(move |outcome, act, _| {
            act.close(window);
            if let Err(e) = outcome {
                act.windows[window].name = format!("{} (failed: {e})", act.windows[window].name);
            }
        }));
    }
}

/// A synchronous operation on the managed server.
type ServerOp = fn(&mut RedisServer) -> crate::Result<()>;

/// Runs a server operation on the blocking pool: a restart waits for Redis to
/// load its data, which must not stall the actors measuring the outage.
async fn blocking(server: SharedServer, op: ServerOp) -> Result<(), String> {
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
        // A run cut short (Ctrl-C) may end inside a freeze, whose SIGCONT
        // dies with this actor: never hand back a stopped server.
        let freezes =
            (self.faults.iter()).any(|f| matches!(f.action, FaultAction::FreezeRedis { .. }));
        if let Some(server) = self.server.as_ref().filter(|_| freezes)
            && let Ok(mut server) = server.try_lock()
        {
            let _ = server.thaw();
        }
        ctx.stop();
        MessageResult(windows)
    }
}
