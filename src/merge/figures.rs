//! The merged `summary.json`, figure by figure: counts add up, latencies
//! come from the segments' histograms merged, the ledger is settled again
//! from every segment's raw ledgers, and what every segment read off the
//! same Redis is the first's (docs/segments.md, "One report").

use crate::error::{Error, Result};
use crate::metrics::segment::{SegmentFigures, merged_group};
use crate::metrics::{Latency, Percentiles, ProduceLedger, tags};
use crate::plan::{Plan, Segment};
use crate::report::{self, GroupPhase, Summary};

use super::{Part, figures_of};

pub(super) fn merge(parts: &[Part], missing: &[u32]) -> Result<Summary> {
    let first = &parts[0];
    let mut s = first.summary.clone();
    let count = first.ledgers.count;
    let plan = Plan::new(s.scenario.clone(), s.run_id.clone());
    s.segment = None;
    s.histograms = merged_histograms(parts);
    let latency = |tag: &str| decode(s.histograms.get(tag));

    // The producers: each ran in exactly one segment.
    let p = &mut s.produce;
    let others = || parts[1..].iter().map(|x| &x.summary);
    for o in others() {
        let q = &o.produce;
        p.target_rate_per_s += q.target_rate_per_s;
        p.achieved_rate_per_s += q.achieved_rate_per_s;
        p.intended = add_opt(p.intended, q.intended);
        p.sent += q.sent;
        p.acked += q.acked;
        p.late = add_opt(p.late, q.late);
        p.errors += q.errors;
        p.failed = add_opt(p.failed, q.failed);
        p.indeterminate = add_opt(p.indeterminate, q.indeterminate);
        p.unanswered = add_opt(p.unanswered, q.unanswered);
        p.unsent = add_opt(p.unsent, q.unsent);
        p.skipped = add_opt(p.skipped, q.skipped);
        p.latency_lower_bounds = add_opt(p.latency_lower_bounds, q.latency_lower_bounds);
        p.unreplicated = add_opt(p.unreplicated, q.unreplicated);
        let w = &mut s.warmup;
        w.produce_sent += o.warmup.produce_sent;
        w.produce_acked += o.warmup.produce_acked;
        w.produce_errors += o.warmup.produce_errors;
        // No raw histogram is kept for the warmup: the highest segment's
        // figures bound the merged ones from above.
        w.produce_latency_us = upper(&w.produce_latency_us, &o.warmup.produce_latency_us);
    }
    p.latency_us = latency(tags::PRODUCE_LATENCY);
    p.service_time_us = latency(tags::PRODUCE_SERVICE);
    p.schedule_lag_us = latency(tags::PRODUCE_SCHEDULE_LAG);

    // The ledger, settled again over every producer and every consumer.
    let mut produced = vec![None; plan.producers.len()];
    for part in parts {
        for r in &part.ledgers.producers {
            let slot = (produced.get_mut(r.id as usize))
                .ok_or_else(|| bad(part, &format!("producer {} is not in the scenario", r.id)))?;
            if slot.is_some() {
                return Err(bad(part, &format!("producer {} ran in two segments", r.id)));
            }
            *slot = Some(r.ledger().map_err(|e| bad(part, &e))?);
        }
    }
    for (g, group) in s.groups.iter_mut().enumerate() {
        let records = (parts.iter())
            .map(|part| {
                (part.ledgers.groups.get(g))
                    .ok_or_else(|| bad(part, &format!("no ledger of group {}", group.name)))
            })
            .collect::<Result<Vec<_>>>()?;
        let unreported = |p: u32| {
            let connection = plan.producers[p as usize].connection;
            (missing.iter()).any(|&index| Segment { index, count }.owns_connection(connection))
        };
        let mut ledger =
            merged_group(&records, plan.producers.len(), unreported).map_err(|e| bad(first, &e))?;
        // A missing segment's consumers may have processed (and
        // acknowledged) what the others never saw; a segment that read back
        // before another had stopped read a state that was still changing:
        // what is unprocessed is then unknown, never lost.
        let unfinished: Vec<u32> = (parts.iter())
            .flat_map(|x| x.summary.segment.iter().flat_map(|s| s.unfinished.clone()))
            .filter(|i| !missing.contains(i))
            .collect();
        if !missing.is_empty() {
            ledger.readback_failed(format!(
                "segment(s) {missing:?} did not report: what their consumers processed is unknown"
            ));
        } else if !unfinished.is_empty() {
            ledger.readback_failed(format!(
                "segment(s) {unfinished:?} had not finished when another read Redis back"
            ));
        }
        let stream = plan.groups[g].stream;
        let mine: Vec<Option<&ProduceLedger>> = (plan.producers.iter())
            .zip(&produced)
            .map(|(p, l)| l.as_ref().filter(|_| p.stream == stream))
            .collect();
        let outcome = ledger.outcome(&mine);
        let summed = |phase: fn(&report::GroupSummary) -> Option<&GroupPhase>| {
            let mut total = GroupPhase::default();
            for part in parts {
                if let Some(x) = part.summary.groups.get(g).and_then(phase) {
                    total.deliveries += x.deliveries;
                    total.processings += x.processings;
                    total.acked += x.acked;
                    total.errors += x.errors;
                    total.e2e_latency_us = upper(&total.e2e_latency_us, &x.e2e_latency_us);
                    total.delivery_latency_us =
                        upper(&total.delivery_latency_us, &x.delivery_latency_us);
                }
            }
            total
        };
        let trimmed = group.trim.is_some();
        let measured = summed(|x| Some(&x.measured));
        group.measured = GroupPhase {
            e2e_latency_us: latency(&tags::e2e(&group.name)),
            delivery_latency_us: latency(&tags::delivery(&group.name)),
            ..phase_of(&outcome.phases.measured, &measured, trimmed)
        };
        if group.warmup.is_some() {
            let warm = summed(|x| x.warmup.as_ref());
            group.warmup = Some(phase_of(&outcome.phases.warmup, &warm, trimmed));
        }
        group.unexpected = outcome.unexpected;
        group.lost_sample = outcome.lost_sample;
        group.readback_error = outcome.readback_failed;
        group.redelivery_latency_us = latency(&tags::redelivery(&group.name));
        group.redelivery_unmeasured = (parts.iter())
            .filter_map(|x| x.summary.groups.get(g))
            .map(|x| x.redelivery_unmeasured)
            .sum();
        group.drained = (parts.iter()).all(|x| x.summary.groups.get(g).is_some_and(|x| x.drained));
    }

    // Each segment applied its own faults.
    s.faults = (parts.iter())
        .flat_map(|x| {
            let index = x.ledgers.index;
            (x.summary.faults.iter()).map(move |f| crate::metrics::FaultWindow {
                segment: Some(index),
                ..f.clone()
            })
        })
        .collect();
    s.faults.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    // Each segment's actors were redirected on their own.
    if let Some(c) = &mut s.cluster {
        for o in others() {
            c.redirects += o.cluster.as_ref().map(|c| c.redirects).unwrap_or_default();
        }
    }
    let v = &mut s.verify;
    for o in others() {
        v.produce_acked += o.verify.produce_acked;
        v.landed_unacked += o.verify.landed_unacked;
        v.indeterminate += o.verify.indeterminate;
    }
    let added: u64 = v.streams.iter().map(|x| x.entries_added).sum();
    let least = v.produce_acked + v.landed_unacked;
    v.consistent = v.unavailable.is_none() && added >= least && added <= least + v.indeterminate;
    let mut durability = None;
    for d in parts.iter().filter_map(|x| x.summary.durability.as_ref()) {
        let total = durability.get_or_insert_with(|| {
            let mut zero = d.clone();
            zero.acked = 0;
            zero.acked_but_gone = 0;
            zero.gone_sample.clear();
            zero.gone_ranges.clear();
            zero
        });
        total.acked += d.acked;
        total.acked_but_gone += d.acked_but_gone;
        total.gone_sample.extend(d.gone_sample.iter().copied());
        total.gone_ranges.extend(d.gone_ranges.iter().cloned());
    }
    if durability.is_some() {
        s.durability = durability;
    }
    // Each process's own cost, added: the harness's CPU over every segment.
    let costs: Vec<&report::HarnessCost> = parts
        .iter()
        .filter_map(|x| x.summary.harness.as_ref())
        .collect();
    s.harness = (costs.len() == parts.len()).then(|| {
        let sent = s.produce.sent + s.warmup.produce_sent;
        let cost = report::HarnessCost::of(costs.iter().map(|c| c.cpu_s).sum(), sent);
        match costs.iter().map(|c| c.threads).sum::<Option<u32>>() {
            Some(threads) => cost.on_threads(threads),
            None => cost,
        }
    });
    if let Some(load) = &mut s.load {
        load.harness_cpu_cores = (parts.iter())
            .map(|x| x.summary.load.as_ref().and_then(|l| l.harness_cpu_cores))
            .sum();
    }
    s.segments = Some(segment_table(parts, missing, &plan, count));
    s.slo = report::evaluate(&s.scenario.slo, &s);
    Ok(s)
}

/// Per segment its own figures; a missing one's planned events, unaccounted for.
fn segment_table(parts: &[Part], missing: &[u32], plan: &Plan, count: u32) -> Vec<SegmentFigures> {
    let end = plan.duration.as_secs_f64();
    let planned = |index: u32| -> u64 {
        let segment = Segment { index, count };
        (plan.producers.iter())
            .filter(|p| segment.owns_connection(p.connection))
            .map(|p| p.profile.events_until(end).round() as u64)
            .sum()
    };
    let mut rows: Vec<SegmentFigures> = (parts.iter())
        .map(|p| SegmentFigures {
            planned_events: planned(p.ledgers.index),
            ..figures_of(p)
        })
        .collect();
    rows.extend(missing.iter().map(|&index| SegmentFigures {
        index,
        planned_events: planned(index),
        ..Default::default()
    }));
    rows.sort_by_key(|r| r.index);
    rows
}

/// The merged phase: the ledger's outcome, and the consumers' counts and
/// latency bounds summed (`summed`). `trimmed`: the group's stream is
/// trimmed, so `trimmed_unread` is reported, 0 included.
fn phase_of(
    ledger: &crate::metrics::LedgerOutcome,
    summed: &GroupPhase,
    trimmed: bool,
) -> GroupPhase {
    GroupPhase {
        trimmed_unread: trimmed.then_some(ledger.trimmed_unread),
        deliveries: summed.deliveries,
        processings: summed.processings,
        acked: summed.acked,
        errors: summed.errors,
        e2e_latency_us: summed.e2e_latency_us,
        delivery_latency_us: summed.delivery_latency_us,
        ..GroupPhase::of(ledger, &Default::default(), false, false)
    }
}

/// Every tag's histogram, the segments' added together.
fn merged_histograms(parts: &[Part]) -> std::collections::BTreeMap<String, String> {
    let mut merged: std::collections::BTreeMap<String, Latency> = Default::default();
    for (tag, encoded) in parts.iter().flat_map(|p| &p.summary.histograms) {
        if let Some(h) = Latency::decode(encoded) {
            merged.entry(tag.clone()).or_default().add(&h);
        }
    }
    merged.into_iter().map(|(t, h)| (t, h.encode())).collect()
}

fn decode(encoded: Option<&String>) -> Percentiles {
    encoded
        .and_then(|e| Latency::decode(e))
        .map(|h| h.percentiles())
        .unwrap_or_default()
}

/// The higher of two sets of percentiles, field by field, and the counts
/// added: an upper bound where no histogram was kept.
fn upper(a: &Percentiles, b: &Percentiles) -> Percentiles {
    let count = a.count + b.count;
    Percentiles {
        count,
        mean: match count {
            0 => 0.0,
            n => (a.mean * a.count as f64 + b.mean * b.count as f64) / n as f64,
        },
        p50: a.p50.max(b.p50),
        p90: a.p90.max(b.p90),
        p99: a.p99.max(b.p99),
        p999: a.p999.max(b.p999),
        p9999: a.p9999.max(b.p9999),
        max: a.max.max(b.max),
    }
}

fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

fn bad(part: &Part, why: &str) -> Error {
    Error::Usage(format!(
        "merge: {}: {}: {why}",
        part.dir.display(),
        report::LEDGER_FILE
    ))
}
