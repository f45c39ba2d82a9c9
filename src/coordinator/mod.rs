//! The coordinator: runs a plan against a Redis through its phases
//! preflight (`preflight`: may the run send every command it will?) > setup
//! (`setup`) > warmup + measure (`start`) > reply grace > drain (`finish`) >
//! verify, and returns what was measured.
//!
//! It is an async function rather than an actor: the phases are sequential,
//! and awaiting each one reads plainer than a state machine of messages.
//! It owns the actors' addresses and nothing else; all measurement state
//! lives in the actors and the collector.

mod finish;
pub mod meeting;
mod placement;
mod preflight;
mod replay;
mod setup;
mod start;
mod trim_policy;

pub use self::preflight::check as check_permissions;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use actix::prelude::*;

use self::finish::{drain_unless_interrupted, finish_producers, stop_consumers};
use self::meeting::Meeting;
use self::placement::Placement;
use self::setup::{
    check_features, create_groups, describe_server, handshake, open_connections,
    start_node_proxies, start_proxy, stop_proxy,
};
use self::start::{report_progress, start_consumers, start_producers, start_sampler};
use crate::actors::chaos::{Chaos, Replica, SharedCluster, SharedServer, Windows};
use crate::actors::collector::{Collector, Finish as FinishCollector};
use crate::actors::workers::Workers;
use crate::clock::RunClock;
use crate::connect::{Conn, Target};
use crate::error::{Error, Result};
use crate::metrics::cluster::ClusterRun;
use crate::metrics::commandstats::CommandStats;
use crate::metrics::projection::ProjectionCheck;
use crate::metrics::{
    Durability, FaultWindow, ProduceLedger, Progress, RunMetrics, ServerInfo, StreamUsage,
    VerifySummary,
};
use crate::plan::{Plan, RESPONSE_TIMEOUT};
use crate::verify;

/// What a run measured, for the report.
pub struct Measured {
    pub metrics: RunMetrics,
    /// When each fault of the drill was active.
    pub faults: Vec<FaultWindow>,
    /// After a Redis kill: what survived (None when no fault asked for a
    /// read-back; Err: why Redis could not be read back).
    pub durability: Option<std::result::Result<Durability, String>>,
    pub verify: VerifySummary,
    pub redis_version: String,
    pub redis_config: std::collections::BTreeMap<String, String>,
    /// What the server says it is, its binary (managed) and stream features.
    pub server: ServerInfo,
    pub started_unix_ns: u64,
    pub measured_duration_s: f64,
    /// Ctrl-C stopped the run early; the figures cover what ran.
    pub interrupted: bool,
    /// With producer `wait`: measured XADDs acknowledged although WAIT saw
    /// too few replicas (None when no producer waits).
    pub unreplicated: Option<u64>,
    /// What TLS settled on with the server (None over plain TCP).
    pub tls: Option<crate::tls::Negotiated>,
    /// CPU seconds this process spent from the clock's start to the end of
    /// the drain: the harness's own cost, without setup, read-back or report.
    pub harness_cpu_s: f64,
    /// Threads producers and consumers ran on.
    pub harness_threads: u32,
    /// Each stream's length and memory once the run was over.
    pub streams: Vec<StreamUsage>,
    /// A cluster run's cluster: where its keys lived, what was redirected.
    pub cluster: Option<ClusterRun>,
    /// In a segment of a run: its place, clock and the segments that had
    /// not finished when it read back (docs/segments.md, "One report").
    pub segment: Option<crate::metrics::SegmentRun>,
    /// No segment of the run still reads its keys (always, in a
    /// whole run): an external run's keys may go.
    pub last_out: bool,
}

/// The servers streamdrill started for a run, which server faults act on;
/// all None for an external Redis.
#[derive(Default, Clone)]
pub struct Managed {
    pub server: Option<SharedServer>,
    pub replica: Option<Replica>,
    pub cluster: Option<SharedCluster>,
}

impl Managed {
    /// Whether the Redis is someone else's: its keys must be cleaned up.
    pub fn is_external(&self) -> bool {
        self.server.is_none() && self.cluster.is_none()
    }
}

/// Run `plan` against the Redis at `target`. Must be called inside an actix System.
pub async fn execute(
    plan: &Plan,
    target: &Target,
    managed: Managed,
    on_progress: OnProgress,
    workers: Option<usize>,
    meeting: Option<&Meeting>,
) -> Result<Measured> {
    let interrupt = watch_ctrl_c();
    let direct = target;
    // Under network faults every connection goes through the proxy, the
    // admin one too: the sampler sees Redis as the actors do.
    let proxy = match plan.redis.cluster {
        None => start_proxy(plan, target).await?,
        // A cluster has a proxy per node instead, for the actors only: the
        // admin connection follows CLUSTER SLOTS straight to the nodes.
        Some(_) => None,
    };
    let nodes = start_node_proxies(plan, managed.cluster.as_ref()).await?;
    let proxied = match &proxy {
        Some(p) => target.redirect(p.addr())?,
        None => target.clone(),
    };
    let target = &proxied;
    let shown = target.to_string();
    let url = shown.as_str();
    let conns_tls = handshake(target).await?;
    let mut admin = target.connect(plan.response_timeout()).await?;
    // Before anything is written, the feature probe's key included. A
    // managed cluster's nodes, started here, let the default user do
    // anything; an external cluster's are checked a transaction per slot.
    if managed.cluster.is_none() {
        preflight::check(plan, direct).await?;
    }
    let Managed {
        server,
        replica,
        cluster: managed_cluster,
    } = managed;
    let binary =
        (server.as_ref()).and_then(|s| Some(s.lock().ok()?.binary().display().to_string()));
    let described = describe_server(plan, &mut admin, url, binary).await?;
    check_features(plan, &described.server, &direct.to_string())?;
    create_groups(plan, &mut admin, url).await?;
    // Every connection is open before the clock starts: connecting a thousand
    // actors after it would put the connect time into the first latencies.
    let workers = Workers::start(workers.unwrap_or_else(|| Workers::auto(plan.actors())));
    let mut endpoint = crate::wire::Endpoint::parse(target.url(), target.tls())?;
    if let Some(nodes) = &nodes {
        endpoint = endpoint.dialing(Arc::new(nodes.dials().into_iter().collect()));
    }
    let endpoint = Arc::new(endpoint);
    let placement = match plan.redis.cluster {
        Some(_) => Placement::cluster(endpoint, &mut admin, url).await?,
        None => Placement::single(endpoint),
    };
    let mut conns = open_connections(plan, target, &placement, &workers).await?;

    // Before the clock: what the projections' commands cost is the
    // difference at the end (docs/event-sourcing.md, "What a projection costs").
    let commands_at_start = match plan.groups.iter().any(|g| g.projection.is_some()) {
        true => verify::command_stats(&mut admin).await.ok(),
        false => None,
    };
    // The segments of a run start together, at one instant of Redis's clock.
    let clock = match meeting {
        Some(m) => m.start(&mut admin).await?,
        None => RunClock::start(),
    };
    let cpu_at_start = crate::clock::process_cpu_s();
    let collector = Collector::new(plan, clock).start();
    start_sampler(plan, admin.clone(), clock, &collector);
    // Per group, the events its consumers hold unfinished: the drain waits for them.
    let busy: Vec<Arc<AtomicU64>> = (plan.groups.iter())
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let reads_moved = Arc::new(AtomicU64::new(0));
    let (consumers, fault_targets) = start_consumers(
        plan,
        clock,
        std::mem::take(&mut conns.consumers),
        &collector,
        &workers,
        &busy,
        &reads_moved,
    );
    let producers = start_producers(plan, clock, conns, &collector, &workers);
    // Chaos addresses producers by id; each id's actor is its connection's
    // (a segment runs some connections: docs/segments.md, "Segments").
    let mut producer_targets = vec![None; plan.producers.len()];
    for (actor, group) in producers.iter().zip(plan.producers_by_connection()) {
        for p in group {
            producer_targets[p.id as usize] = Some(actor.clone().recipient());
        }
    }
    let chaos = Chaos::new(clock, plan.faults.clone(), fault_targets, server)
        .with_proxy(proxy.clone())
        .with_target(direct.clone())
        .with_failover_targets(replica, producer_targets)
        .with_cluster(managed_cluster)
        .with_node_proxies(nodes.clone())
        .start();

    let progress = report_progress(collector.clone(), on_progress);
    let finished = finish_producers(plan, clock, &producers, &interrupt).await?;
    let (ledgers, unreplicated) = (finished.ledgers, finished.unreplicated);
    let mut cluster = placement.report(plan);
    let interrupted = *interrupt.borrow();
    // The measured window is what the schedule covered, not how long the last replies took.
    // Ctrl-C during the reply grace still measured the whole schedule.
    let measured_end_s = match interrupted {
        true => (clock.now_ns() as f64 / 1e9).min(plan.duration.as_secs_f64()),
        false => plan.duration.as_secs_f64(),
    };
    let measured_duration_s = (measured_end_s - plan.warmup.as_secs_f64()).max(1e-9);
    // No segment drains while another still writes: its consumers would
    // stop before the last events of keys only they read.
    if let Some(m) = meeting.filter(|_| !interrupted) {
        m.barrier(&mut admin, "sent:").await;
    }
    let drain_ends = Instant::now() + plan.drain_timeout;
    let drained = drain_unless_interrupted(plan, &mut admin, &busy, interrupt.clone()).await;
    let interrupted = *interrupt.borrow();
    progress.abort();
    let mut faults = chaos.send(Windows).await.map_err(actor_gone)?;
    if let Some(p) = &proxy {
        // Validation ends every fault in time; this only guards the read-back.
        p.clear();
    }
    if let Some(n) = &nodes {
        n.clear();
    }
    // Work in hand may finish until the drain's deadline (or, at least,
    // within one blocking read); what is still unfinished then is in progress.
    let stop_within = drain_ends.saturating_duration_since(Instant::now());
    let in_progress = stop_consumers(plan, &consumers, stop_within).await?;
    let harness_cpu_s = crate::clock::process_cpu_s() - cpu_at_start;
    // Every segment reads back the same final state: once all have stopped.
    let unfinished = match meeting {
        Some(m) => m.barrier(&mut admin, "done:").await,
        None => Vec::new(),
    };
    if let Some(c) = &mut cluster {
        c.redirects = finished.redirects;
        c.redirects.read_moved = reads_moved.load(std::sync::atomic::Ordering::Relaxed);
        let seed = Arc::new(crate::wire::Endpoint::parse(target.url(), target.tls())?);
        let now = Placement::cluster(seed, &mut admin, url).await.ok();
        c.ended(|key| now.as_ref().map(|p| p.addr_of(key)));
    }

    let ReadBack {
        verify,
        marks,
        durability,
        streams,
        projections,
    } = read_back(plan, &mut admin, url, &ledgers, commands_at_start.as_ref()).await;
    // After the read-back: compaction must not change what the run is judged by,
    // and the projections' Redis cost was read before the replay's writes.
    let replays = replay::replays(plan, &mut admin, url, interrupted).await;
    let pending: Vec<Option<u64>> = (marks.iter())
        .map(|m| m.as_ref().ok().map(|m| m.pending_at_end))
        .collect();
    let mut last_out = true;
    let segment = match meeting {
        Some(m) => {
            last_out = m.read_back_done(&mut admin).await;
            Some(crate::metrics::SegmentRun {
                index: m.segment.index,
                count: m.segment.count,
                meeting: m.key.clone(),
                clock: m.clock,
                clock_end: m.clock_now(&mut admin).await,
                unfinished,
            })
        }
        None => None,
    };
    let mut metrics = collector
        .send(FinishCollector {
            ledgers,
            marks,
            in_progress,
        })
        .await
        .map_err(actor_gone)?;
    stop_proxy(proxy).await;
    if let Some(Ok(nodes)) = nodes.map(Arc::try_unwrap) {
        nodes.stop().await;
    }
    crate::metrics::recovery(&mut faults, &metrics);
    for ((m, pending), drained) in metrics.groups.iter_mut().zip(pending).zip(drained) {
        m.pending_at_end = pending;
        m.drained = drained;
    }
    for (m, mut projection) in metrics.groups.iter_mut().zip(projections) {
        let processings = m.stats.measured.processed + m.stats.warmup.processed;
        if let Some(cost) = projection.as_mut().and_then(|p| p.redis_cost.as_mut()) {
            cost.usec_per_event = (processings > 0).then(|| cost.usec as f64 / processings as f64);
        }
        m.projection = projection;
    }
    for (m, replay) in metrics.groups.iter_mut().zip(replays) {
        m.replay = replay;
    }
    Ok(Measured {
        metrics,
        verify,
        redis_version: described.redis_version,
        redis_config: described.config,
        server: described.server,
        started_unix_ns: clock.start_unix_ns(),
        measured_duration_s,
        faults,
        durability,
        interrupted,
        unreplicated,
        harness_cpu_s,
        harness_threads: workers.threads() as u32,
        streams,
        tls: conns_tls,
        cluster,
        segment,
        last_out,
    })
}

/// What Redis itself holds once the run is over.
struct ReadBack {
    verify: VerifySummary,
    /// Per group: its backlog and pending list, or why they could not be read.
    marks: Vec<std::result::Result<verify::GroupMarks, String>>,
    /// None: no read-back was needed; Err: why it failed.
    durability: Option<std::result::Result<Durability, String>>,
    streams: Vec<StreamUsage>,
    /// Per group, its projection checked, for a group with one.
    projections: Vec<Option<ProjectionCheck>>,
}

/// Reads back what Redis holds. A Redis that died during a drill must not
/// cost the run its report: what could not be read back is said so, with
/// the reason, and events whose fate hangs on it are "unknown", never "lost".
async fn read_back(
    plan: &Plan,
    admin: &mut Conn,
    url: &str,
    ledgers: &[ProduceLedger],
    commands_at_start: Option<&CommandStats>,
) -> ReadBack {
    let verify = match verify::streams(plan, admin, url, ledgers).await {
        Ok(v) => v,
        Err(e) => VerifySummary::unavailable(ledgers, e.to_string()),
    };
    let marks = verify::group_marks(plan, admin, url).await;
    // A drill that may lose writes reads every stream back; so does any run
    // that left writes of unknown fate, whose landing only Redis can tell.
    let unknown_fates = ledgers.iter().any(|l| l.indeterminate_count() > 0);
    let durability = match plan.reads_back() || (unknown_fates && plan.untrimmed()) {
        true => {
            Some((verify::durability(plan, admin, url, ledgers).await).map_err(|e| e.to_string()))
        }
        false => None,
    };
    let mut projections = verify::projections(plan, admin, url).await;
    verify::projection_costs(plan, admin, commands_at_start, &mut projections).await;
    ReadBack {
        verify,
        marks,
        durability,
        streams: verify::stream_usage(plan, admin).await,
        projections,
    }
}

/// Turns true on the first Ctrl-C (SIGINT) from now on. Listening starts at
/// once, on a task of its own, so a Ctrl-C during setup is not missed; the
/// process then no longer dies of SIGINT, and the run winds down instead.
fn watch_ctrl_c() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    actix::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = tx.send(true);
        }
        // Keep the sender: a dropped one would end every wait_for with an error.
        std::future::pending::<()>().await;
    });
    rx
}

fn actor_gone(e: MailboxError) -> Error {
    Error::Internal(format!("an actor stopped before answering: {e}"))
}

/// The progress callback; called on the run's thread once per interval.
pub type OnProgress = std::rc::Rc<dyn Fn(&Progress)>;

/// Delete the streams this run created (external servers only; a managed
/// server is thrown away whole). Best effort: the run's result stands.
pub async fn delete_run_keys(plan: &Plan, target: &Target) {
    let Ok(mut conn) = target.connect(RESPONSE_TIMEOUT).await else {
        return;
    };
    let _ = delete_keys(plan).query_async::<u64>(&mut conn).await;
}

/// DEL of the run's streams, dead-letter streams and projection models too (their lengths are in
/// the summary's `verify`).
fn delete_keys(plan: &Plan) -> redis::Cmd {
    let mut keys: Vec<&str> = plan.streams.iter().map(|s| s.key.as_str()).collect();
    for g in &plan.groups {
        // Groups of one stream share its dead-letter stream.
        if !keys.contains(&g.dead_letter_key.as_str()) {
            keys.push(&g.dead_letter_key);
        }
        if g.projection.is_some() {
            keys.push(&g.projection_key);
        }
        if let Some(r) = &g.replay {
            keys.extend(r.keys());
        }
    }
    let mut cmd = redis::cmd("DEL");
    cmd.arg(&keys);
    cmd
}
