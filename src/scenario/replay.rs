//! A group's replay (docs/event-sourcing.md, "Replay and snapshots"): after
//! the run, its projection is rebuilt from the stream as fast as it goes,
//! optionally with snapshots and compaction. The table and its checks;
//! pure, `validate` calls `check`.

use serde::{Deserialize, Serialize};

use super::Scenario;
use super::violation::Violation;

/// `[[groups]] replay = { batch = 500, checkpoint_every = 1000, snapshot_every = 10, compact = true }`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// Entries per XRANGE.
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// Save the position (SET of the last id) after this many events.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Write a snapshot of an aggregate every this many of its events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_every: Option<u64>,
    /// After the snapshots, trim the stream below the oldest one still
    /// needed (XTRIM MINID), never below a group's position.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compact: bool,
}

fn default_batch() -> u32 {
    500
}
fn default_checkpoint_every() -> u64 {
    1000
}

/// Larger XRANGE replies than this gain nothing and hold the server longer.
const MAX_BATCH: u32 = 100_000;

pub(super) fn check(s: &Scenario) -> Vec<Violation> {
    let mut v = Vec::new();
    for (i, g) in s.groups.iter().enumerate() {
        let Some(r) = g.replay else { continue };
        let mut add = |field: &str, problem: String| {
            v.push(Violation {
                field: format!("groups[{i}].replay{field}"),
                problem,
            })
        };
        if g.projection.is_none() {
            add(
                "",
                "a replay rebuilds the group's projection: add projection = \"idempotent\" \
                 (or \"naive\") to the group, or remove replay"
                    .into(),
            );
        }
        if r.batch == 0 || r.batch > MAX_BATCH {
            add(
                ".batch",
                format!("must be 1 to {MAX_BATCH} entries per XRANGE, e.g. batch = 500"),
            );
        }
        if r.checkpoint_every == 0 {
            add(
                ".checkpoint_every",
                "must be at least 1 (1 saves the position after every event), e.g. 1000".into(),
            );
        }
        if r.snapshot_every == Some(0) {
            add(
                ".snapshot_every",
                "must be at least 1 event per aggregate, e.g. snapshot_every = 10".into(),
            );
        }
        if r.compact && r.snapshot_every.is_none() {
            add(
                ".compact",
                "compaction trims below the oldest snapshot still needed, so it needs \
                 snapshots: add snapshot_every = 10, or remove compact"
                    .into(),
            );
        }
        let shared = (s.groups.iter().enumerate())
            .any(|(j, o)| j != i && o.stream == g.stream && o.replay.is_some());
        if r.compact && shared {
            add(
                ".compact",
                "another group replays this stream, and would read it compacted: compact \
                 in one group per stream, or give the groups streams of their own"
                    .into(),
            );
        }
    }
    v
}
