//! What a cluster run reports of the cluster: which shard held each stream
//! key, and how often Redis sent a command on to another node
//! (docs/cluster.md, "Running against a cluster").

use serde::{Deserialize, Serialize};

/// A cluster run's cluster: where its keys lived when it started, and
/// how often Redis sent an XADD on to another node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterRun {
    /// Each shard's primary, `host:port`, in slot order.
    pub primaries: Vec<String>,
    pub keys: Vec<KeyPlace>,
    pub redirects: Redirects,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyPlace {
    pub key: String,
    pub slot: u16,
    /// Index into `primaries`.
    pub shard: usize,
    pub node: String,
    /// Where it was once the run was over, when that could be read: its
    /// primary, and that primary's index in `primaries` if it was one then
    /// (a reshard moves keys; a failover promotes a replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_at_end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_at_end: Option<usize>,
}

impl ClusterRun {
    /// Records where each key is now, as `node_of` (key → `host:port`) says.
    pub fn ended(&mut self, node_of: impl Fn(&str) -> Option<String>) {
        for k in &mut self.keys {
            k.node_at_end = node_of(&k.key);
            let end = k.node_at_end.as_ref();
            k.shard_at_end = end.and_then(|n| self.primaries.iter().position(|p| p == n));
        }
    }
}

/// Redirections the actors were answered with.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Redirects {
    /// XADDs answered `-MOVED` (the slot lives elsewhere now), sent on.
    pub xadd_moved: u64,
    /// XADDs answered `-ASK` (the slot is migrating and this key has gone), sent on after ASKING.
    pub xadd_ask: u64,
    /// Consumer reads answered `-MOVED`: the consumer went on at the new primary.
    pub read_moved: u64,
}

impl std::ops::AddAssign for Redirects {
    fn add_assign(&mut self, other: Redirects) {
        self.xadd_moved += other.xadd_moved;
        self.xadd_ask += other.xadd_ask;
        self.read_moved += other.read_moved;
    }
}
