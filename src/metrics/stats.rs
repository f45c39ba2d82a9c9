//! Per-interval counters and histograms, filled by actors on the hot path.
//!
//! A producer owns a `ProduceStats`, a consumer a `ConsumeStats`; each `take()`s
//! its stats once per interval and sends the snapshot to the collector, which
//! `merge`s snapshots into totals. `Phased` keeps warmup apart from the measured
//! part of the run so that warmup never pollutes the reported numbers.

use super::latency::Latency;
use super::order::OrderStats;
use super::schema_versions::{Kinds, VersionCounts};

/// Combines two measurements of the same kind (counters add, histograms merge).
pub trait Merge {
    fn merge(&mut self, other: &Self);
}

impl Merge for Latency {
    fn merge(&mut self, other: &Self) {
        self.add(other);
    }
}

impl Merge for u64 {
    fn merge(&mut self, other: &Self) {
        *self = self.saturating_add(*other);
    }
}

/// Which part of the run a measurement belongs to, decided by the event's intended send time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    Warmup,
    Measured,
}

/// One value per phase.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Phased<T> {
    pub warmup: T,
    pub measured: T,
}

impl<T> Phased<T> {
    pub fn get(&self, phase: Phase) -> &T {
        match phase {
            Phase::Warmup => &self.warmup,
            Phase::Measured => &self.measured,
        }
    }

    pub fn get_mut(&mut self, phase: Phase) -> &mut T {
        match phase {
            Phase::Warmup => &mut self.warmup,
            Phase::Measured => &mut self.measured,
        }
    }
}

impl<T: Merge + Clone> Phased<T> {
    /// Both phases together: the whole run.
    pub fn merged(&self) -> T {
        let mut all = self.warmup.clone();
        all.merge(&self.measured);
        all
    }
}

impl<T: Merge> Merge for Phased<T> {
    fn merge(&mut self, other: &Self) {
        self.warmup.merge(&other.warmup);
        self.measured.merge(&other.measured);
    }
}

/// What producers measured, counted by the events' phase. Latencies are in
/// microseconds. How the counts add up (docs/measurement.md, "Accounting"):
/// intended = sent + unsent + skipped; sent = acked + failed + indeterminate;
/// `late` is part of `acked`, `unanswered` part of `indeterminate`.
#[derive(Clone, Debug, Default)]
pub struct ProduceStats {
    /// XADDs sent.
    pub sent: u64,
    /// XADDs that got an entry id back.
    pub acked: u64,
    /// Of `acked`: the reply came after the schedule ended, in the reply
    /// grace: acknowledged, but not "achieved" inside the measured window.
    pub late: u64,
    /// XADDs certainly not written: an error reply, or never left the process.
    pub failed: u64,
    /// XADDs sent whose fate is unknown: the connection was lost, the
    /// producer crashed, or no reply came before producers gave up.
    pub indeterminate: u64,
    /// Of `indeterminate`: still awaiting their reply when producers gave up.
    pub unanswered: u64,
    /// Due (intended before producers gave up) but never sent: the producer
    /// was too far behind when the reply grace ended.
    pub unsent: u64,
    /// Intended while the producer was down (`crash_producer`): never sent, by design.
    pub skipped: u64,
    /// Intended send time -> XADD reply (corrected for coordinated omission),
    /// for every event but the skipped: for those never acknowledged
    /// (failed, indeterminate, unsent), intended -> when their fate was
    /// settled or producers gave up, a lower bound (`latency_lower_bounds`).
    pub latency: Latency,
    /// Values in `latency` that are lower bounds, not replies.
    pub latency_lower_bounds: u64,
    /// Actual send time -> XADD reply.
    pub service: Latency,
    /// Actual send time - intended send time: the harness's own delay.
    pub schedule_lag: Latency,
    /// Of `acked`, per kind of event (`Plan::kinds`: type and schema
    /// version); empty in runs without versioned types.
    pub kinds: Kinds,
}

impl Merge for ProduceStats {
    fn merge(&mut self, other: &Self) {
        self.sent.merge(&other.sent);
        self.acked.merge(&other.acked);
        self.late.merge(&other.late);
        self.failed.merge(&other.failed);
        self.indeterminate.merge(&other.indeterminate);
        self.unanswered.merge(&other.unanswered);
        self.unsent.merge(&other.unsent);
        self.skipped.merge(&other.skipped);
        self.latency.merge(&other.latency);
        self.latency_lower_bounds.merge(&other.latency_lower_bounds);
        self.service.merge(&other.service);
        self.schedule_lag.merge(&other.schedule_lag);
        self.kinds.merge(&other.kinds);
    }
}

impl ProduceStats {
    /// Returns the interval's stats and leaves `self` zeroed (histograms keep their size).
    pub fn take(&mut self) -> ProduceStats {
        ProduceStats {
            sent: std::mem::take(&mut self.sent),
            acked: std::mem::take(&mut self.acked),
            late: std::mem::take(&mut self.late),
            failed: std::mem::take(&mut self.failed),
            indeterminate: std::mem::take(&mut self.indeterminate),
            unanswered: std::mem::take(&mut self.unanswered),
            unsent: std::mem::take(&mut self.unsent),
            skipped: std::mem::take(&mut self.skipped),
            latency: self.latency.take(),
            latency_lower_bounds: std::mem::take(&mut self.latency_lower_bounds),
            service: self.service.take(),
            schedule_lag: self.schedule_lag.take(),
            kinds: std::mem::take(&mut self.kinds),
        }
    }

    /// An XADD never acknowledged (failed, indeterminate or unsent) whose
    /// fate was settled, or given up on, `waited_ns` after its intended
    /// time: a lower bound of its latency, kept so an outage's tail shows.
    pub fn waited_at_least(&mut self, waited_ns: u64) {
        self.latency.record_ns(waited_ns);
        self.latency_lower_bounds += 1;
    }

    /// XADDs that did not get an entry id: failed or indeterminate.
    pub fn errors(&self) -> u64 {
        self.failed + self.indeterminate
    }

    /// Acknowledged with the reply inside the measured window.
    pub fn acked_in_window(&self) -> u64 {
        self.acked - self.late.min(self.acked)
    }

    /// Events the schedule intended (saturating producers: what they sent).
    pub fn intended(&self) -> u64 {
        self.sent + self.unsent + self.skipped
    }
}

/// What the consumers of one group measured. Latencies are in microseconds.
#[derive(Clone, Debug, Default)]
pub struct ConsumeStats {
    /// Entries read (first deliveries and redeliveries alike).
    pub delivered: u64,
    /// Entries whose simulated processing finished.
    pub processed: u64,
    /// Entries XACKed (as Redis counted them).
    pub acked: u64,
    /// Failed XREADGROUP / XACK / XAUTOCLAIM commands (not events: phased by
    /// when they failed, warmup or after).
    pub errors: u64,
    /// Intended send time -> processing finished.
    pub e2e: Latency,
    /// Intended send time -> read by the consumer.
    pub delivery: Latency,
    /// Per-aggregate order of what was processed (groups with `check_order`).
    pub order: OrderStats,
    /// A batch's projection writes sent -> answered, once per event of the
    /// batch (groups with a `projection`).
    pub projection: Latency,
    /// Per kind of event: processed, upcast, dead-lettered as an unknown
    /// schema version (runs with versioned types only).
    pub versions: VersionCounts,
}

impl Merge for ConsumeStats {
    fn merge(&mut self, other: &Self) {
        self.delivered.merge(&other.delivered);
        self.processed.merge(&other.processed);
        self.acked.merge(&other.acked);
        self.errors.merge(&other.errors);
        self.e2e.merge(&other.e2e);
        self.delivery.merge(&other.delivery);
        self.order.merge(&other.order);
        self.projection.merge(&other.projection);
        self.versions.merge(&other.versions);
    }
}

impl ConsumeStats {
    /// Returns the interval's stats and leaves `self` zeroed (histograms keep their size).
    pub fn take(&mut self) -> ConsumeStats {
        ConsumeStats {
            delivered: std::mem::take(&mut self.delivered),
            processed: std::mem::take(&mut self.processed),
            acked: std::mem::take(&mut self.acked),
            errors: std::mem::take(&mut self.errors),
            e2e: self.e2e.take(),
            delivery: self.delivery.take(),
            order: std::mem::take(&mut self.order),
            projection: self.projection.take(),
            versions: std::mem::take(&mut self.versions),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produced(sent: u64, latency_us: u64) -> ProduceStats {
        let mut s = ProduceStats {
            sent,
            acked: sent - 1,
            failed: 1,
            ..Default::default()
        };
        s.latency.record_us(latency_us);
        s.service.record_us(latency_us / 2);
        s.schedule_lag.record_us(3);
        s
    }

    #[test]
    fn produce_stats_merge_and_take() {
        let mut total = produced(10, 100);
        total.merge(&produced(5, 900));
        assert_eq!((total.sent, total.acked, total.errors()), (15, 13, 2));
        assert_eq!(total.latency.count(), 2);
        assert_eq!(total.latency.percentiles().max, 900);
        assert_eq!(total.service.percentiles().max, 450);

        let taken = total.take();
        assert_eq!(taken.sent, 15);
        assert_eq!(taken.schedule_lag.count(), 2);
        assert_eq!(total.sent, 0);
        assert!(total.latency.is_empty() && total.schedule_lag.is_empty());
    }

    #[test]
    fn consume_stats_merge_and_take() {
        let mut a = ConsumeStats {
            delivered: 4,
            processed: 3,
            acked: 3,
            errors: 0,
            ..Default::default()
        };
        a.e2e.record_us(1_000);
        let mut b = a.clone();
        b.errors = 2;
        b.e2e.record_us(3_000);
        a.merge(&b);
        assert_eq!((a.delivered, a.processed, a.acked, a.errors), (8, 6, 6, 2));
        assert_eq!(a.e2e.count(), 3);
        let taken = a.take();
        // HdrHistogram reports the top of the max's bucket: 3000 and 3001 share one at 3 digits.
        assert_eq!(taken.e2e.percentiles().max, 3_001);
        assert_eq!(a.processed, 0);
        assert!(a.e2e.is_empty());
    }

    #[test]
    fn phased_keeps_phases_apart_and_merges() {
        let mut p: Phased<ProduceStats> = Phased::default();
        p.get_mut(Phase::Warmup).merge(&produced(2, 50));
        p.get_mut(Phase::Measured).merge(&produced(8, 70));
        assert_eq!(p.get(Phase::Warmup).sent, 2);
        assert_eq!(p.measured.sent, 8);
        let all = p.merged();
        assert_eq!((all.sent, all.latency.count()), (10, 2));
    }
}
