//! What the trimming of a run's streams means for its ledger
//! (docs/measurement.md, "Trimmed before read").

use super::{FaultPlan, Plan, StreamPlan};
use crate::scenario::{FaultKind, TrimPolicy};

impl StreamPlan {
    /// Trimmed with `trim_policy = "acked"`: only entries every group has
    /// acknowledged are removed, from anywhere in the stream.
    pub fn trims_acked_only(&self) -> bool {
        self.trim.is_some() && self.trim_policy == Some(TrimPolicy::Acked)
    }
}

impl Plan {
    /// The first fault that may cut a consumer's read off (anything but a
    /// slow consumer), leaving the harness blind to a delivery.
    pub fn fault_cutting_reads(&self) -> Option<&FaultPlan> {
        (self.faults.iter()).find(|f| !matches!(f.kind, FaultKind::SlowConsumer { .. }))
    }
}
