//! A group's replay as the run performs it: its settings and the keys it
//! writes, all under the run's prefix so `~sd:*` and the run's DEL cover
//! them (docs/event-sourcing.md, "Replay and snapshots").

use crate::scenario::ReplayConfig;

#[derive(Debug, Clone, PartialEq)]
pub struct ReplayPlan {
    pub batch: u32,
    pub checkpoint_every: u64,
    pub snapshot_every: Option<u64>,
    pub compact: bool,
    /// The model rebuilt from the beginning: `<stream key>:replay:<group>`.
    pub model_key: String,
    /// The model rebuilt from the snapshots and the tail after them.
    pub tail_model_key: String,
    /// The saved position (SET of the last id replayed).
    pub checkpoint_key: String,
    /// One hash of every aggregate's latest snapshot.
    pub snapshot_key: String,
}

impl ReplayPlan {
    /// `prefix` is the run's key prefix, `stream` the stream's name.
    pub fn new(r: &ReplayConfig, prefix: &str, stream: &str, group: &str) -> ReplayPlan {
        let base = format!("{prefix}{stream}:replay:{group}");
        ReplayPlan {
            batch: r.batch,
            checkpoint_every: r.checkpoint_every,
            snapshot_every: r.snapshot_every,
            compact: r.compact,
            tail_model_key: format!("{base}:tail"),
            checkpoint_key: format!("{base}:pos"),
            snapshot_key: format!("{base}:snap"),
            model_key: base,
        }
    }

    /// Every key the replay may write.
    pub fn keys(&self) -> [&str; 4] {
        [
            &self.model_key,
            &self.tail_model_key,
            &self.checkpoint_key,
            &self.snapshot_key,
        ]
    }
}
