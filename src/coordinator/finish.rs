//! Winding a run down: the producers' schedules end and their last replies
//! come in (or the reply grace runs out), the groups drain until Redis holds
//! nothing for them and no consumer holds an unfinished event, and the
//! consumers stop, handing back what they still held (docs/measurement.md,
//! "The drain").

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::actor_gone;
use crate::actors::consumer::{Consumer, Stop};
use crate::actors::producer::{Finish as FinishProducer, Finished, Producer};
use crate::clock::RunClock;
use crate::connect::Conn;
use crate::error::Result;
use crate::metrics::cluster::Redirects;
use crate::metrics::{EventKey, ProduceLedger};
use crate::plan::Plan;
use crate::verify;

/// Extra time a blocking read may take beyond its BLOCK before it is an error.
pub(super) const BLOCK_MARGIN: Duration = Duration::from_secs(2);

/// How often the drain phase asks Redis whether every group has caught up.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// Wait for every producer's schedule and replies; returns their ledgers and,
/// when producers WAIT for replicas, how many acks lacked the replication.
pub(super) async fn finish_producers(
    plan: &Plan,
    clock: RunClock,
    producers: &[Addr<Producer>],
    interrupt: &tokio::sync::watch::Receiver<bool>,
) -> Result<ProducersFinished> {
    let mut ledgers = vec![ProduceLedger::new(); plan.producers.len()];
    let mut unreplicated = 0;
    let mut redirects = Redirects::default();
    // One instant for every producer: each gives up `reply_grace` after the
    // schedule ends, whichever is asked first.
    let give_up_at = clock.instant_at(plan.duration.as_nanos() as u64) + plan.reply_grace;
    let finishing: Vec<_> = (producers.iter())
        .map(|p| actix::spawn(finish_one(p.clone(), give_up_at, interrupt.clone())))
        .collect();
    for finish in finishing {
        let ledger = finish
            .await
            .map_err(|e| crate::error::Error::Internal(format!("a producer's finish: {e}")))?;
        let finished = ledger.map_err(actor_gone)?;
        unreplicated += finished.unreplicated;
        redirects += finished.redirects;
        for (id, ledger) in finished.ledgers {
            ledgers[id as usize] = ledger;
        }
    }
    let waits = plan.producers.iter().any(|p| p.wait.is_some());
    Ok(ProducersFinished {
        ledgers,
        unreplicated: waits.then_some(unreplicated),
        redirects,
    })
}

/// What the producers hand back, summed over their actors.
pub(super) struct ProducersFinished {
    pub ledgers: Vec<ProduceLedger>,
    /// With producer `wait`: measured XADDs acknowledged although WAIT saw
    /// too few replicas (None when no producer waits).
    pub unreplicated: Option<u64>,
    pub redirects: Redirects,
}

/// Waits for one producer's schedule and replies until `give_up_at`. On
/// Ctrl-C a second Finish with no deadline stops the producer now; replies
/// still missing are unanswered in its ledger.
async fn finish_one(
    producer: Addr<Producer>,
    give_up_at: Instant,
    mut interrupt: tokio::sync::watch::Receiver<bool>,
) -> std::result::Result<Finished, MailboxError> {
    let finish = |deadline| producer.send(FinishProducer { deadline });
    // Copied out: a borrow held across the awaits would block the sender.
    let stopping = *interrupt.borrow();
    match stopping {
        true => finish(Duration::ZERO).await,
        false => tokio::select! {
            finished = finish(give_up_at.saturating_duration_since(Instant::now())) => finished,
            _ = interrupt.wait_for(|&stop| stop) => finish(Duration::ZERO).await,
        },
    }
}

/// The drain phase, skipped or cut short by Ctrl-C.
pub(super) async fn drain_unless_interrupted(
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
pub(super) async fn stop_consumers(
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
        .flat_map(|(g, group)| std::iter::repeat_n(g, plan.consumers_run(group).count()));
    let mut in_hand = vec![Vec::new(); plan.groups.len()];
    for (stop, g) in stops.into_iter().zip(group_of) {
        in_hand[g].extend(stop.await.map_err(actor_gone)?);
    }
    Ok(in_hand)
}

/// Wait until every group has read all of its stream and acknowledged it,
/// and no consumer holds an event it has not finished (whatever the ack
/// mode: with NOACK, Redis forgets an event as soon as it is read), or
/// `timeout` passes. Returns, per group, whether it drained.
pub(super) async fn drain(
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

/// A group is drained when, on each of its stream's keys, its last delivered
/// id is the key's last id and nothing is pending. (XINFO's `lag` is unknown
/// after XDEL, so ids are compared.)
pub(super) async fn drained_groups(plan: &Plan, conn: &mut Conn) -> redis::RedisResult<Vec<bool>> {
    let mut drained = Vec::with_capacity(plan.groups.len());
    for g in &plan.groups {
        let mut done = true;
        for key in plan.partitions(g.stream).iter().map(|s| &s.key) {
            let info = verify::stream_info(conn, key).await?;
            let last_id = info.get("last-generated-id").map_or("", String::as_str);
            done &= verify::group_info(conn, key, &g.name)
                .await?
                .is_some_and(|i| {
                    i.pending == 0
                        && verify::parse_id(&i.last_delivered_id) >= verify::parse_id(last_id)
                });
        }
        drained.push(done);
    }
    Ok(drained)
}
