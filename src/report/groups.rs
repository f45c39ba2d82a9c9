//! One consumer group in `summary.json`: its headline figures (the measured
//! phase: events intended after the warmup, wherever they were processed,
//! the drain included), the same for the warmup beside them, and what only
//! the whole run has (docs/measurement.md, "Accounting").

use serde::{Deserialize, Serialize};

use crate::metrics::projection::ProjectionCheck;
use crate::metrics::{
    ConsumeStats, DeliveryCounts, EventKey, GroupMetrics, LedgerOutcome, OrderStats, Percentiles,
    TrimSafety,
};

/// One group. The flattened `GroupPhase` is the measured phase.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct GroupSummary {
    pub name: String,
    pub stream: String,
    pub consumers: u32,
    /// The measured phase (headline figures).
    #[serde(flatten)]
    pub measured: GroupPhase,
    /// The same figures for events intended in the warmup (absent in
    /// schema-1 files, whose group figures cover the whole run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<GroupPhase>,
    /// Whole run: processed entries that were never sent, or not
    /// streamdrill events (entries, not events).
    pub unexpected: u64,
    /// Whole run: the first lost events (producer, sequence).
    pub lost_sample: Vec<EventKey>,
    /// Whole run: events delivered more than once, from their first delivery
    /// to the end of the batch that first processed them. Histogram
    /// `redelivery.<group>`.
    #[serde(default)]
    pub redelivery_latency_us: Percentiles,
    /// Whole run: redelivered events processed whose first delivery the
    /// harness never saw (a read cut off by a crash or a timeout): not in
    /// `redelivery_latency_us`.
    #[serde(default)]
    pub redelivery_unmeasured: u64,
    /// XPENDING count once the drain ended; None when Redis could not be
    /// read back (`readback_error` says why).
    pub pending_at_end: Option<u64>,
    /// Before the drain timeout, Redis held nothing unread or pending for the
    /// group and no consumer held an unfinished event.
    pub drained: bool,
    /// Why the group's backlog and pending list could not be read back
    /// after the drain: its unprocessed events are then `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readback_error: Option<String>,
    /// Whole run: the group's read model checked against the stream, for a
    /// group with a projection (docs/event-sourcing.md, "Projections").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<ProjectionCheck>,
    /// Whole run, in a run that writes a versioned type: per kind of its
    /// stream what the group processed, upcast and dead-lettered
    /// (docs/event-sourcing.md, "Schema versions").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<super::schema_versions::GroupVersions>,
    /// Whole run: the projection rebuilt from the stream after the drain,
    /// for a group with `replay` (docs/event-sourcing.md, "Replay and snapshots").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<crate::metrics::replay::ReplayReport>,
    /// Whole run: how close the group came to the trimmed head, for a group
    /// on a trimmed stream (docs/event-sourcing.md, "Safe trimming").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim: Option<TrimSafety>,
}

/// One phase of one group. The ledger's outcomes partition the acknowledged
/// events: `produced_acked = processed + dead_lettered + in_progress +
/// unread + stranded + unknown + trimmed_unread + lost`. Fields marked "(schema 2)" are absent
/// in schema-1 files, which did not record them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct GroupPhase {
    /// Events of the group's stream Redis acknowledged to producers (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub produced_acked: Option<u64>,
    /// Acknowledged events processed at least once: distinct events (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed: Option<u64>,
    /// Acknowledged, moved to the dead-letter stream after `max_deliveries`,
    /// or as a schema version the group does not understand.
    #[serde(default)]
    pub dead_lettered: u64,
    /// Acknowledged, still unfinished in a live consumer's hands when the
    /// run ended: not lost (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<u64>,
    /// Acknowledged, never delivered, still in the stream after the drain.
    #[serde(default)]
    pub unread: u64,
    /// Acknowledged, delivered, never processed, still pending at the end.
    #[serde(default)]
    pub stranded: u64,
    /// Acknowledged and unprocessed while Redis could not be read back:
    /// unread, stranded or lost, nobody can tell (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<u64>,
    /// Acknowledged, never delivered to the group, removed by trimming
    /// before it read them; only for a group on a trimmed stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trimmed_unread: Option<u64>,
    /// Acknowledged, never processed, and gone from Redis.
    pub lost: u64,
    /// Events processed more than once.
    pub duplicates: u64,
    /// Events delivered more than once.
    pub redelivered: u64,
    /// Distinct events by how often the group saw them delivered ("1" …
    /// "6", "7+"); "2" and up sum to `redelivered`.
    #[serde(default)]
    pub delivery_counts: DeliveryCounts,
    /// XADDs that got an error or no reply, yet the group processed or
    /// dead-lettered them: they landed after all (outside the partition).
    #[serde(default)]
    pub unacked_landed: u64,
    /// Reads of an event, redeliveries included.
    pub deliveries: u64,
    /// Processings, duplicates included.
    pub processings: u64,
    /// Entries the group XACKed, as Redis counted them.
    pub acked: u64,
    /// Failed consumer commands (XREADGROUP, XACK, XAUTOCLAIM, …), by when
    /// they failed.
    pub errors: u64,
    /// Intended send time -> processing finished, per processing. Covers no
    /// event the group did not process (`unprocessed`): then a lower bound.
    pub e2e_latency_us: Percentiles,
    /// Intended send time -> read by a consumer, per delivery.
    pub delivery_latency_us: Percentiles,
    /// Per-aggregate order of the processed events; only for a group with
    /// `check_order` (docs/event-sourcing.md, "Per-aggregate ordering").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderStats>,
    /// A batch's projection writes sent -> answered, per event; only for a
    /// group with a projection (docs/event-sourcing.md, "What a projection costs").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection_latency_us: Option<Percentiles>,
}

impl GroupPhase {
    /// `checks_order`: the group's consumers checked per-aggregate order;
    /// `projects`: they kept a projection.
    pub fn of(
        ledger: &LedgerOutcome,
        stats: &ConsumeStats,
        checks_order: bool,
        projects: bool,
    ) -> GroupPhase {
        GroupPhase {
            produced_acked: Some(ledger.produced_acked),
            processed: Some(ledger.processed),
            dead_lettered: ledger.dead_lettered,
            in_progress: Some(ledger.in_progress),
            unread: ledger.unread,
            stranded: ledger.stranded,
            unknown: Some(ledger.unknown),
            trimmed_unread: None,
            lost: ledger.lost,
            duplicates: ledger.duplicates,
            redelivered: ledger.redelivered,
            delivery_counts: ledger.delivery_counts,
            unacked_landed: ledger.unacked_landed,
            deliveries: stats.delivered,
            processings: stats.processed,
            acked: stats.acked,
            errors: stats.errors,
            e2e_latency_us: stats.e2e.percentiles(),
            delivery_latency_us: stats.delivery.percentiles(),
            order: checks_order.then_some(stats.order),
            projection_latency_us: projects.then(|| stats.projection.percentiles()),
        }
    }

    /// Acknowledged events the group never processed, which its end-to-end
    /// latency does not cover (None in schema-1 files).
    pub fn unprocessed(&self) -> Option<u64> {
        let (acked, processed) = (self.produced_acked?, self.processed?);
        Some(acked.saturating_sub(processed))
    }

    /// The partition's sum, `produced_acked` when the ledger adds up (None
    /// in schema-1 files).
    pub fn outcomes_total(&self) -> Option<u64> {
        Some(
            self.processed?
                + self.dead_lettered
                + self.in_progress?
                + self.unread
                + self.stranded
                + self.unknown?
                + self.trimmed_unread.unwrap_or(0)
                + self.lost,
        )
    }
}

impl GroupSummary {
    pub fn of(g: &GroupMetrics) -> GroupSummary {
        let mut summary = GroupSummary {
            name: g.name.clone(),
            stream: g.stream.clone(),
            consumers: g.consumers,
            measured: GroupPhase::of(
                &g.ledger.phases.measured,
                &g.stats.measured,
                g.checks_order,
                g.projects,
            ),
            warmup: Some(GroupPhase::of(
                &g.ledger.phases.warmup,
                &g.stats.warmup,
                g.checks_order,
                g.projects,
            )),
            unexpected: g.ledger.unexpected,
            lost_sample: g.ledger.lost_sample.clone(),
            redelivery_latency_us: g.redelivery.latency.percentiles(),
            redelivery_unmeasured: g.redelivery.unmeasured,
            pending_at_end: g.pending_at_end,
            drained: g.drained,
            readback_error: g.ledger.readback_failed.clone(),
            projection: g.projection.clone(),
            versions: None,
            replay: g.replay.clone(),
            trim: g.trim.clone(),
        };
        // Reported on a trimmed stream, 0 included; elsewhere absent.
        if g.trim.is_some() {
            summary.measured.trimmed_unread = Some(g.ledger.phases.measured.trimmed_unread);
            if let Some(w) = &mut summary.warmup {
                w.trimmed_unread = Some(g.ledger.phases.warmup.trimmed_unread);
            }
        }
        summary
    }

    /// A count over the whole run: measured plus warmup (loss is never
    /// excused by phase). Schema-1 files hold only whole-run figures.
    pub fn whole_run(&self, count: impl Fn(&GroupPhase) -> u64) -> u64 {
        count(&self.measured) + self.warmup.as_ref().map_or(0, count)
    }

    /// The per-aggregate order figures by phase, measured first; empty
    /// unless the group checked order (`check_order`).
    pub fn order_by_phase(&self) -> Vec<(&'static str, OrderStats)> {
        let warmup = self.warmup.as_ref().and_then(|w| w.order);
        [("measured", self.measured.order), ("warmup", warmup)]
            .into_iter()
            .filter_map(|(phase, order)| Some((phase, order?)))
            .collect()
    }

    /// Distinct events by delivery count, whole run.
    pub fn delivery_counts(&self) -> DeliveryCounts {
        let mut counts = self.measured.delivery_counts;
        if let Some(w) = &self.warmup {
            (counts.0.iter_mut().zip(w.delivery_counts.0)).for_each(|(a, b)| *a += b);
        }
        counts
    }

    /// Like `whole_run`, for figures schema-1 files lack.
    pub fn whole_run_opt(&self, count: impl Fn(&GroupPhase) -> Option<u64>) -> Option<u64> {
        let warmup = match &self.warmup {
            Some(w) => count(w)?,
            None => 0,
        };
        Some(count(&self.measured)? + warmup)
    }
}
