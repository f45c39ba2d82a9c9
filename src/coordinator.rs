//! The coordinator: runs a plan against a Redis through its phases
//! setup > warmup + measure > drain > verify, and returns what was measured.
//!
//! It is an async function rather than an actor: the phases are sequential,
//! and awaiting each one reads plainer than a state machine of messages.
//! It owns the actors' addresses and nothing else; all measurement state
//! lives in the actors and the collector.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::connect::{CONNECT_TIMEOUT, Conn, client, connect};
use crate::plan::RESPONSE_TIMEOUT;
use crate::wire::{Endpoint, Replies, Writer};
use actix::prelude::*;

use crate::actors::chaos::{Chaos, Replica, SharedServer, Windows};
use crate::actors::collector::{Collector, Finish as FinishCollector, GetProgress};
use crate::actors::consumer::{Consumer, ConsumerFault, ConsumerSetup, Stop};
use crate::actors::producer::{Finish as FinishProducer, Producer, ProducerSetup};
use crate::actors::sampler::Sampler;
use crate::actors::workers::Workers;
use crate::clock::RunClock;
use crate::error::{Error, Result};
use crate::event::PayloadPool;
use crate::metrics::{
    Durability, EventKey, FaultWindow, ProduceLedger, Progress, RunMetrics, VerifySummary,
};
use crate::plan::Plan;
use crate::proxy::FaultProxy;
use crate::verify;

/// Extra time a blocking read may take beyond its BLOCK before it is an error.
const BLOCK_MARGIN: Duration = Duration::from_secs(2);
/// How often the drain phase asks Redis whether every group has caught up.
const DRAIN_POLL: Duration = Duration::from_millis(50);

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
    pub started_unix_ns: u64,
    pub measured_duration_s: f64,
    /// Ctrl-C stopped the run early; the figures cover what ran.
    pub interrupted: bool,
    /// With producer `wait`: measured XADDs acknowledged although WAIT saw
    /// too few replicas (None when no producer waits).
    pub unreplicated: Option<u64>,
    /// CPU seconds this process spent from the clock's start to the end of
    /// the drain: the harness's own cost, without setup, read-back or report.
    pub harness_cpu_s: f64,
}

/// Run `plan` against the Redis at `url`. Must be called inside an actix System.
pub async fn execute(
    plan: &Plan,
    url: &str,
    server: Option<SharedServer>,
    replica: Option<Replica>,
    on_progress: OnProgress,
    workers: Option<usize>,
) -> Result<Measured> {
    let interrupt = watch_ctrl_c();
    let direct_url = url;
    // Under network faults every connection goes through the proxy, the
    // admin one too: the sampler sees Redis as the actors do.
    let proxy = start_proxy(plan, url).await?;
    let proxied_url = match &proxy {
        Some(p) => crate::connect::redirect(url, p.addr())?,
        None => url.to_string(),
    };
    let url = proxied_url.as_str();
    let client = client(url)?;
    let mut admin = connect(&client, url, plan.response_timeout()).await?;
    let (redis_version, redis_config) = describe_server(&mut admin, url).await?;
    create_groups(plan, &mut admin, url).await?;
    // Every connection is open before the clock starts: connecting a thousand
    // actors after it would put the connect time into the first latencies.
    let workers = Workers::start(workers.unwrap_or_else(|| Workers::auto(plan.actors())));
    let mut conns = open_connections(plan, url, &workers).await?;

    let cpu_at_start = crate::clock::process_cpu_s();
    let clock = RunClock::start();
    let collector = Collector::new(plan, clock).start();
    start_sampler(plan, admin.clone(), clock, &collector);
    // Per group, the events its consumers hold unfinished: the drain waits for them.
    let busy: Vec<Arc<AtomicU64>> = (plan.groups.iter())
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let (consumers, fault_targets) = start_consumers(
        plan,
        clock,
        std::mem::take(&mut conns.consumers),
        &conns.endpoint,
        &collector,
        &workers,
        &busy,
    );
    let producers = start_producers(plan, clock, conns, &collector, &workers);
    // Chaos addresses producers by id; each id's actor is its connection's.
    let producer_targets = (plan.producers.iter())
        .map(|p| producers[p.connection as usize].clone().recipient())
        .collect();
    let chaos = Chaos::new(clock, plan.faults.clone(), fault_targets, server)
        .with_proxy(proxy.clone())
        .with_url(direct_url)
        .with_failover_targets(replica, producer_targets)
        .start();

    let progress = report_progress(collector.clone(), on_progress);
    let (ledgers, unreplicated) = finish_producers(plan, clock, &producers, &interrupt).await?;
    let interrupted = *interrupt.borrow();
    // The measured window is what the schedule covered, not how long the last replies took.
    let measured_duration_s = match interrupted {
        true => clock.now_ns() as f64 / 1e9 - plan.warmup.as_secs_f64(),
        false => plan.duration.as_secs_f64() - plan.warmup.as_secs_f64(),
    }
    .max(1e-9);
    let drain_ends = Instant::now() + plan.drain_timeout;
    let drained = drain_unless_interrupted(plan, &mut admin, &busy, interrupt.clone()).await;
    let interrupted = *interrupt.borrow();
    progress.abort();
    let mut faults = chaos.send(Windows).await.map_err(actor_gone)?;
    if let Some(p) = &proxy {
        // Validation ends every fault in time; this only guards the read-back.
        p.clear();
    }
    // Work in hand may finish until the drain's deadline (or, at least,
    // within one blocking read); what is still unfinished then is in progress.
    let stop_within = drain_ends.saturating_duration_since(Instant::now());
    let in_progress = stop_consumers(plan, &consumers, stop_within).await?;
    let harness_cpu_s = crate::clock::process_cpu_s() - cpu_at_start;

    // A Redis that died during a drill must not cost the run its report: what
    // could not be read back is said so, with the reason, and events whose
    // fate hangs on it are "unknown", never "lost".
    let verify = match verify::streams(plan, &mut admin, url, &ledgers).await {
        Ok(v) => v,
        Err(e) => VerifySummary::unavailable(&ledgers, e.to_string()),
    };
    let marks = verify::group_marks(plan, &mut admin, url).await;
    let durability = match plan.reads_back() {
        true => Some(
            (verify::durability(plan, &mut admin, url, &ledgers).await).map_err(|e| e.to_string()),
        ),
        false => None,
    };
    let pending: Vec<Option<u64>> = (marks.iter())
        .map(|m| m.as_ref().ok().map(|m| m.pending_at_end))
        .collect();
    let mut metrics = collector
        .send(FinishCollector {
            ledgers,
            marks,
            in_progress,
        })
        .await
        .map_err(actor_gone)?;
    stop_proxy(proxy).await;
    crate::metrics::recovery(&mut faults, &metrics);
    for ((m, pending), drained) in metrics.groups.iter_mut().zip(pending).zip(drained) {
        m.pending_at_end = pending;
        m.drained = drained;
    }
    Ok(Measured {
        metrics,
        verify,
        redis_version,
        redis_config,
        started_unix_ns: clock.start_unix_ns(),
        measured_duration_s,
        faults,
        durability,
        interrupted,
        unreplicated,
        harness_cpu_s,
    })
}

/// Each actor's own connection, opened before the run clock starts.
struct Connections {
    /// Per group, per consumer.
    /// Per group, per consumer.
    consumers: Vec<Vec<(Replies, Writer)>>,
    producers: Vec<(Replies, Writer)>,
    endpoint: Arc<Endpoint>,
}

async fn open_connections(plan: &Plan, url: &str, workers: &Workers) -> Result<Connections> {
    // Producers and consumers speak RESP themselves (see `wire`).
    let endpoint = Arc::new(Endpoint::parse(url)?);
    let open = {
        let (endpoint, url) = (endpoint.clone(), url.to_string());
        move || {
            let (endpoint, url) = (endpoint.clone(), url.clone());
            async move {
                (endpoint.open(CONNECT_TIMEOUT).await).map_err(|e| {
                    let e = redis::RedisError::from(e);
                    Error::redis(&url, "connecting (is the server running and reachable?)", e)
                })
            }
        }
    };
    // Actors are numbered across the run, consumers first, then producer
    // connections: that number picks the worker (see `Workers::of`).
    let mut consumers = Vec::with_capacity(plan.groups.len());
    let mut actor = 0;
    for group in &plan.groups {
        let n = group.consumers as usize;
        consumers.push(workers.open_each(actor, n, open.clone()).await?);
        actor += n;
    }
    let n = plan.producers_by_connection().len();
    let producers = workers.open_each(actor, n, open).await?;
    Ok(Connections {
        consumers,
        producers,
        endpoint,
    })
}

fn start_sampler(plan: &Plan, conn: Conn, clock: RunClock, collector: &Addr<Collector>) {
    let stream_keys = plan.streams.iter().map(|s| s.key.clone()).collect();
    let group_keys = (plan.groups.iter())
        .map(|g| (g.name.clone(), plan.streams[g.stream].key.clone()))
        .collect();
    Sampler::new(
        conn,
        clock,
        stream_keys,
        group_keys,
        collector.clone().recipient(),
    )
    .start();
}

/// The consumers, and the same again by group as fault targets.
fn start_consumers(
    plan: &Plan,
    clock: RunClock,
    conns: Vec<Vec<(Replies, Writer)>>,
    endpoint: &Arc<Endpoint>,
    collector: &Addr<Collector>,
    workers: &Workers,
    busy: &[Arc<AtomicU64>],
) -> (Vec<Addr<Consumer>>, Vec<Vec<Recipient<ConsumerFault>>>) {
    let mut consumers = Vec::new();
    let mut targets = Vec::new();
    // Numbered as `open_connections` numbered their connections.
    let mut actor = 0;
    for (group, conns) in plan.groups.iter().zip(conns) {
        let group = Arc::new(group.clone());
        // A blocking read is not a dead connection: the timeout allows for BLOCK.
        let response_timeout = group.block + BLOCK_MARGIN + plan.added_latency_max();
        let mut group_targets = Vec::new();
        for (index, conn) in (0..).zip(conns) {
            let setup = ConsumerSetup {
                index,
                stream_key: plan.streams[group.stream].key.clone(),
                conn,
                endpoint: endpoint.clone(),
                response_timeout,
                clock,
                measure_from: plan.warmup,
                collector: collector.clone().recipient(),
                ledger: collector.clone().recipient(),
                busy: busy[group.index].clone(),
            };
            let group = group.clone();
            let worker = workers.of(actor);
            actor += 1;
            let consumer =
                Consumer::start_in_arbiter(&worker, move |_| Consumer::new(group, setup));
            group_targets.push(consumer.clone().recipient());
            consumers.push(consumer);
        }
        targets.push(group_targets);
    }
    (consumers, targets)
}

fn start_producers(
    plan: &Plan,
    clock: RunClock,
    conns: Connections,
    collector: &Addr<Collector>,
    workers: &Workers,
) -> Vec<Addr<Producer>> {
    let max_size = plan
        .producers
        .iter()
        .map(|p| p.mix.max_size_bytes())
        .max()
        .unwrap_or(0);
    let payloads = Arc::new(PayloadPool::new(plan.scenario.seed, max_size));
    // After the consumers, as `open_connections` numbered them.
    let first: usize = plan.groups.iter().map(|g| g.consumers as usize).sum();
    (plan.producers_by_connection().into_iter())
        .zip(conns.producers)
        .enumerate()
        .map(|(i, (p, conn))| {
            // Producers share a connection only within their entry: one stream.
            let stream = &plan.streams[p[0].stream];
            let setup = ProducerSetup {
                stream_key: stream.key.clone(),
                trim: stream.trim,
                conn,
                endpoint: conns.endpoint.clone(),
                response_timeout: plan.response_timeout(),
                clock,
                end: plan.duration,
                measure_from: plan.warmup,
                payloads: payloads.clone(),
                collector: collector.clone().recipient(),
            };
            Producer::start_in_arbiter(&workers.of(first + i), move |_| Producer::new(p, setup))
        })
        .collect()
}

/// Wait for every producer's schedule and replies; returns their ledgers and,
/// when producers WAIT for replicas, how many acks lacked the replication.
async fn finish_producers(
    plan: &Plan,
    clock: RunClock,
    producers: &[Addr<Producer>],
    interrupt: &tokio::sync::watch::Receiver<bool>,
) -> Result<(Vec<ProduceLedger>, Option<u64>)> {
    let mut ledgers = vec![ProduceLedger::new(); plan.producers.len()];
    let mut unreplicated = 0;
    let mut stopped = interrupt.clone();
    for p in producers {
        let deadline = plan
            .duration
            .saturating_sub(Duration::from_nanos(clock.now_ns()))
            + plan.reply_grace;
        // On Ctrl-C a second Finish with no deadline stops the producer now;
        // replies still missing stay indeterminate in its ledger.
        let finish = |deadline| p.send(FinishProducer { deadline });
        // Copied out: a borrow held across the awaits would block the sender.
        let stopping = *interrupt.borrow();
        let ledger = match stopping {
            true => finish(Duration::ZERO).await,
            false => tokio::select! {
                ledger = finish(deadline) => ledger,
                _ = stopped.wait_for(|&stop| stop) => finish(Duration::ZERO).await,
            },
        };
        let finished = ledger.map_err(actor_gone)?;
        unreplicated += finished.unreplicated;
        for (id, ledger) in finished.ledgers {
            ledgers[id as usize] = ledger;
        }
    }
    let waits = plan.producers.iter().any(|p| p.wait.is_some());
    Ok((ledgers, waits.then_some(unreplicated)))
}

/// The drain phase, skipped or cut short by Ctrl-C.
async fn drain_unless_interrupted(
    plan: &Plan,
    admin: &mut Conn,
    busy: &[Arc<AtomicU64>],
    mut interrupt: tokio::sync::watch::Receiver<bool>,
) -> Vec<bool> {
    if *interrupt.borrow() {
        return drain(plan, admin, busy, Duration::ZERO).await;
    }
    tokio::select! {
        drained = drain(plan, admin, busy, plan.drain_timeout) => drained,
        _ = interrupt.wait_for(|&stop| stop) => vec![false; plan.groups.len()],
    }
}

/// Stops every consumer, letting each finish what it holds for up to
/// `within` (and at least one blocking read); returns, per group, the events
/// still in hand then.
async fn stop_consumers(
    plan: &Plan,
    consumers: &[Addr<Consumer>],
    within: Duration,
) -> Result<Vec<Vec<EventKey>>> {
    let block = plan
        .groups
        .iter()
        .map(|g| g.block)
        .max()
        .unwrap_or_default();
    let deadline = within.max(block + BLOCK_MARGIN);
    // All at once: each may wait out its BLOCK, and a thousand in turn took minutes.
    let stops: Vec<_> = consumers
        .iter()
        .map(|c| c.send(Stop { deadline }))
        .collect();
    // Consumers were started group by group, in plan order.
    let group_of = (plan.groups.iter().enumerate())
        .flat_map(|(g, group)| std::iter::repeat_n(g, group.consumers as usize));
    let mut in_hand = vec![Vec::new(); plan.groups.len()];
    for (stop, g) in stops.into_iter().zip(group_of) {
        in_hand[g].extend(stop.await.map_err(actor_gone)?);
    }
    Ok(in_hand)
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

/// The fault proxy of a run with network faults, forwarding to the Redis at `url`.
async fn start_proxy(plan: &Plan, url: &str) -> Result<Option<Arc<FaultProxy>>> {
    if !plan.proxied() {
        return Ok(None);
    }
    let upstream = crate::connect::proxy_upstream(url).await?;
    // The proxy answers even when Redis does not: check Redis first, so an
    // unreachable one is named as such rather than as a reset proxy connection.
    let reach = tokio::time::timeout(
        crate::connect::CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(upstream),
    );
    let reached = match reach.await {
        Ok(connected) => connected.map(drop),
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    };
    reached.map_err(|source| Error::proxy(format!("reach Redis at {upstream}"), source))?;
    let proxy = FaultProxy::start_seeded(upstream, plan.scenario.seed).await?;
    Ok(Some(Arc::new(proxy)))
}

/// Closes the proxy and its connections. The chaos actor has stopped by now,
/// so this is the last handle; if not, dropping it closes the proxy as well.
async fn stop_proxy(proxy: Option<Arc<FaultProxy>>) {
    if let Some(Ok(proxy)) = proxy.map(Arc::try_unwrap) {
        proxy.stop().await;
    }
}

fn actor_gone(e: MailboxError) -> Error {
    Error::Internal(format!("an actor stopped before answering: {e}"))
}

/// Redis version and the settings that shape what a run measures.
async fn describe_server(
    conn: &mut Conn,
    url: &str,
) -> Result<(String, std::collections::BTreeMap<String, String>)> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(conn)
        .await
        .map_err(|e| Error::redis(url, "reading INFO server", e))?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let mut config = std::collections::BTreeMap::new();
    for key in [
        "appendonly",
        "appendfsync",
        "save",
        "maxmemory",
        "maxmemory-policy",
    ] {
        // Managed servers answer; a hosted Redis may forbid CONFIG, which is fine.
        if let Ok((_, value)) = redis::cmd("CONFIG")
            .arg("GET")
            .arg(key)
            .query_async::<(String, String)>(conn)
            .await
        {
            config.insert(key.to_string(), value);
        }
    }
    Ok((version, config))
}

async fn create_groups(plan: &Plan, conn: &mut Conn, url: &str) -> Result<()> {
    for g in &plan.groups {
        let key = &plan.streams[g.stream].key;
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg(&g.name)
            .arg(&g.start_id)
            .arg("MKSTREAM")
            .query_async::<()>(conn)
            .await
            .map_err(|e| Error::redis(url, format!("creating group {} on {key}", g.name), e))?;
    }
    Ok(())
}

/// Call `on_progress` every interval with the collector's latest figures.
fn report_progress(
    collector: Addr<Collector>,
    on_progress: OnProgress,
) -> tokio::task::JoinHandle<()> {
    actix::spawn(async move {
        let mut ticker = tokio::time::interval(crate::actors::INTERVAL);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            match collector.send(GetProgress).await {
                Ok(p) => on_progress(&p),
                Err(_) => break,
            }
        }
    })
}

/// Wait until every group has read all of its stream and acknowledged it,
/// and no consumer holds an event it has not finished (whatever the ack
/// mode: with NOACK, Redis forgets an event as soon as it is read), or
/// `timeout` passes. Returns, per group, whether it drained.
async fn drain(
    plan: &Plan,
    conn: &mut Conn,
    busy: &[Arc<AtomicU64>],
    timeout: Duration,
) -> Vec<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let drained = match drained_groups(plan, conn).await {
            Ok(d) => (d.into_iter().zip(busy))
                .map(|(redis, busy)| redis && busy.load(Ordering::Relaxed) == 0)
                .collect(),
            Err(_) => vec![false; plan.groups.len()],
        };
        if drained.iter().all(|&d| d) || Instant::now() >= deadline {
            return drained;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// A group is drained when its last delivered id is the stream's last id and
/// nothing is pending. (XINFO's `lag` is unknown after XDEL, so ids are compared.)
async fn drained_groups(plan: &Plan, conn: &mut Conn) -> redis::RedisResult<Vec<bool>> {
    let mut drained = Vec::with_capacity(plan.groups.len());
    for g in &plan.groups {
        let key = &plan.streams[g.stream].key;
        let info = verify::stream_info(conn, key).await?;
        let last_id = info.get("last-generated-id").map_or("", String::as_str);
        let done = verify::group_info(conn, key, &g.name)
            .await?
            .is_some_and(|i| {
                i.pending == 0
                    && verify::parse_id(&i.last_delivered_id) >= verify::parse_id(last_id)
            });
        drained.push(done);
    }
    Ok(drained)
}

/// The progress callback; called on the run's thread once per interval.
pub type OnProgress = std::rc::Rc<dyn Fn(&Progress)>;

/// Delete the streams this run created (external servers only; a managed
/// server is thrown away whole). Best effort: the run's result stands.
pub async fn delete_run_keys(plan: &Plan, url: &str) {
    let Ok(client) = client(url) else { return };
    let Ok(mut conn) = connect(&client, url, RESPONSE_TIMEOUT).await else {
        return;
    };
    let mut keys: Vec<&str> = plan.streams.iter().map(|s| s.key.as_str()).collect();
    // Dead-letter streams too; their lengths are in the summary's `verify`.
    keys.extend(plan.groups.iter().map(|g| g.dead_letter_key.as_str()));
    let _ = redis::cmd("DEL")
        .arg(&keys)
        .query_async::<u64>(&mut conn)
        .await;
}
