//! Starting the run's actors once the clock runs: the sampler, the
//! consumers (each with its own connection, on its worker thread), the
//! producers, and the progress line's ticker.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use actix::prelude::*;

use super::OnProgress;
use super::finish::BLOCK_MARGIN;
use super::setup::{Connections, ConsumerLink};
use crate::actors::collector::{Collector, GetProgress};
use crate::actors::consumer::{Consumer, ConsumerFault, ConsumerSetup};
use crate::actors::producer::{AggregateVersions, Producer, ProducerSetup};
use crate::actors::sampler::Sampler;
use crate::actors::workers::Workers;
use crate::clock::RunClock;
use crate::connect::Conn;
use crate::event::PayloadPool;
use crate::metrics::OrderCheck;
use crate::plan::Plan;

pub(super) fn start_sampler(plan: &Plan, conn: Conn, clock: RunClock, collector: &Addr<Collector>) {
    let stream_keys = plan.streams.iter().map(|s| s.key.clone()).collect();
    let group_keys = (plan.groups.iter())
        .map(|g| {
            let keys = plan.partitions(g.stream).iter().map(|s| s.key.clone());
            (g.name.clone(), keys.collect())
        })
        .collect();
    Sampler::new(
        conn,
        clock,
        stream_keys,
        group_keys,
        plan.streams.iter().map(|s| s.trim.is_some()).collect(),
        collector.clone().recipient(),
    )
    .start();
}

/// Per group, per consumer index, the consumer this process runs (a
/// segment runs some: docs/segments.md, "Segments").
pub(super) type ConsumerTargets = Vec<Vec<Option<Recipient<ConsumerFault>>>>;

/// The consumers, and the same again by group as fault targets.
pub(super) fn start_consumers(
    plan: &Plan,
    clock: RunClock,
    conns: Vec<Vec<ConsumerLink>>,
    collector: &Addr<Collector>,
    workers: &Workers,
    busy: &[Arc<AtomicU64>],
    moved: &Arc<AtomicU64>,
) -> (Vec<Addr<Consumer>>, ConsumerTargets) {
    let mut consumers = Vec::new();
    let mut targets = Vec::new();
    // Numbered as `open_connections` numbered their connections.
    let mut actor = 0;
    for (group, conns) in plan.groups.iter().zip(conns) {
        let order = (group.check_order)
            .then(|| Arc::new(OrderCheck::new(plan.aggregates_of(group.stream))));
        let group = Arc::new(group.clone());
        // A blocking read is not a dead connection: the timeout allows for BLOCK.
        let response_timeout = group.block + BLOCK_MARGIN + plan.added_latency_max();
        // By index in the group: a segment runs some (docs/segments.md, "Segments").
        let mut group_targets = vec![None; group.consumers as usize];
        for (index, link) in plan.consumers_run(&group).zip(conns) {
            let setup = ConsumerSetup {
                index,
                stream_keys: plan.consumer_keys(&group, index),
                endpoint: link.endpoint,
                conn: link.conn,
                fallbacks: link.fallbacks,
                response_timeout,
                clock,
                measure_from: plan.warmup,
                collector: collector.clone().recipient(),
                ledger: collector.clone().recipient(),
                busy: busy[group.index].clone(),
                order: order.clone(),
                moved: moved.clone(),
            };
            let group = group.clone();
            let worker = workers.of(actor);
            actor += 1;
            let consumer =
                Consumer::start_in_arbiter(&worker, move |_| Consumer::new(group, setup));
            group_targets[index as usize] = Some(consumer.clone().recipient());
            consumers.push(consumer);
        }
        targets.push(group_targets);
    }
    (consumers, targets)
}

pub(super) fn start_producers(
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
    // One version table per stream, whichever connections write it.
    let versions: Vec<Arc<AggregateVersions>> = (0..plan.streams.len())
        .map(|s| Arc::new(AggregateVersions::new(plan.aggregates_of(s))))
        .collect();
    // After the consumers, as `open_connections` numbered them.
    let first: usize = plan
        .groups
        .iter()
        .map(|g| plan.consumers_run(g).count())
        .sum();
    (plan.producers_by_connection().into_iter())
        .zip(conns.producers)
        .enumerate()
        .map(|(i, (p, links))| {
            // Producers share a connection only within their entry: one stream.
            let stream = &plan.streams[p[0].stream];
            let setup = ProducerSetup {
                stream_keys: (plan.partitions(p[0].stream).iter())
                    .map(|s| s.key.clone())
                    .collect(),
                trim: stream.trim,
                trim_policy: stream.trim_policy,
                links: links.links,
                key_links: links.key_links,
                response_timeout: plan.response_timeout(),
                clock,
                end: plan.duration,
                measure_from: plan.warmup,
                payloads: payloads.clone(),
                versions: versions[p[0].stream].clone(),
                collector: collector.clone().recipient(),
            };
            Producer::start_in_arbiter(&workers.of(first + i), move |_| Producer::new(p, setup))
        })
        .collect()
}

/// Call `on_progress` every interval with the collector's latest figures.
pub(super) fn report_progress(
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
