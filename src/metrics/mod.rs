//! Pure measurement data: HdrHistograms, counters, the exact event ledger and
//! the per-second time series, with their merge logic.
//!
//! Actors fill `stats` types on the hot path and the ledgers once per batch
//! (`inflight` follows delivered-but-unprocessed events beside the ledger,
//! `stalls` the producers' long waits for acknowledgements);
//! the collector merges what they ship into a `RunMetrics`, which the report
//! turns into `summary.json` and its views. The chaos actor records each
//! fault as a `FaultWindow` (`faults`), and `recovery` fills in how fast the
//! run recovered from it. Nothing here knows actix or redis,
//! so it is unit-tested and benchmarked without either.

pub mod cluster;
pub mod commandstats;
pub mod deliveries;
pub mod durability;
pub mod faults;
pub mod idle;
pub mod inflight;
pub mod latency;
pub mod ledger;
pub mod load;
pub mod order;
pub mod outcome;
pub mod progress;
pub mod projection;
pub mod recovery;
pub mod replay;
pub mod schema_versions;
pub mod segment;
pub mod series;
pub mod server;
pub mod spill;
pub mod stalls;
pub mod stats;
pub mod tags;
pub mod trim;
pub mod verify;

pub use deliveries::DeliveryCounts;
pub use durability::Durability;
pub use faults::FaultWindow;
pub use idle::IdleState;
pub use inflight::{InFlight, InFlightAtFault, Redelivery};
pub use latency::{Latency, Percentiles};
pub use ledger::{EventKey, GroupLedger, ProduceLedger};
pub use load::{BacklogTrend, StreamUsage, WindowLoad};
pub use order::{FinishedEvent, OrderCheck, OrderStats};
pub use outcome::{GroupOutcome, LedgerOutcome};
pub use progress::{GroupProgress, GroupTotals, LatencyTotal, ProduceTotals, Progress, Totals};
pub use recovery::recovery;
pub use schema_versions::{Kinds, VersionCounts};
pub use segment::{ClockOffset, LedgerFile, SegmentRun};
pub use series::{GroupReading, Reading, Row, Series, StreamReading};
pub use server::{PowerFsUse, SUMMED_INFO_FIELDS, ServerInfo, StreamFeature, info_field, info_sum};
pub use stalls::{StallReport, StallTracker, WriteStalls};
pub use stats::{ConsumeStats, Merge, Phase, Phased, ProduceStats};
pub use trim::TrimSafety;
pub use verify::{PartitionOf, PartitionSpread, StreamVerify, VerifySummary};

/// Everything the collector ends a run with.
#[derive(Default)]
pub struct RunMetrics {
    /// All producers together.
    pub produce: Phased<ProduceStats>,
    /// One per consumer group, in scenario order.
    pub groups: Vec<GroupMetrics>,
    /// Closed with `Series::finish` before it is handed over.
    pub series: Series,
    /// Producers' waits for acknowledgements (empty in a run without faults).
    pub write_stalls: WriteStalls,
    /// Per planned fault start, what every group had in flight then.
    pub in_flight_at_faults: Vec<InFlightAtFault>,
    /// The progress figures once every report is in: the live endpoint's last.
    pub progress_at_end: Progress,
    /// In a segment of a run: its raw ledgers, for the merge.
    pub ledger_file: Option<LedgerFile>,
}

/// One consumer group's totals and ledger verdict.
#[derive(Clone, Debug, Default)]
pub struct GroupMetrics {
    pub name: String,
    pub stream: String,
    pub consumers: u32,
    /// Whether its consumers checked per-aggregate order (`check_order`):
    /// only then do `stats`' order figures mean anything.
    pub checks_order: bool,
    /// Whether its consumers kept a projection (`projection`): only then do
    /// `stats`' projection latencies mean anything.
    pub projects: bool,
    /// All consumers of the group together.
    pub stats: Phased<ConsumeStats>,
    pub ledger: GroupOutcome,
    /// Redelivered events: first delivery -> processing, whole run.
    pub redelivery: Redelivery,
    /// XPENDING count once the drain phase ended (None: Redis could not be read back).
    pub pending_at_end: Option<u64>,
    /// Whether, before the drain timeout, Redis held nothing unread or
    /// pending for the group and no consumer held an unfinished event.
    pub drained: bool,
    /// Its read model checked against the stream, for a group with a projection.
    pub projection: Option<projection::ProjectionCheck>,
    /// Its projection rebuilt after the run, for a group with `replay`.
    pub replay: Option<replay::ReplayReport>,
    /// How close it came to the trimmed head, for a group on a trimmed stream.
    pub trim: Option<trim::TrimSafety>,
}
