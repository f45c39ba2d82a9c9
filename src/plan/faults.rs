//! The drill's fault timeline made concrete: each fault with its target
//! resolved to a consumer or producer index (or the server, or a link), and
//! what the faults ask of the rest of the run (a read-back, the proxy, longer
//! timeouts, DEBUG), read from each kind's `Spec`: nothing here is per kind.

use std::time::Duration;

use super::{Plan, StreamPlan};
use crate::scenario::{
    Fault, FaultKind, Link, ReadBack, Scenario, Spec, Target, resolve_consumer, resolve_producer,
};

/// One fault of the drill's timeline, with its target resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    pub at: Duration,
    /// As the scenario wrote it; its `spec()` says what it needs.
    pub kind: FaultKind,
    pub target: FaultTarget,
    /// For reports, e.g. "crash_consumer billing/0".
    pub label: String,
}

impl FaultPlan {
    pub fn spec(&self) -> Spec<'_> {
        self.kind.spec()
    }
}

/// Where a fault is applied, resolved; also the family that applies it.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultTarget {
    Consumer {
        group: usize,
        index: u32,
    },
    /// A producer, by id (`ProducerPlan::id`).
    Producer(u32),
    ServerProcess,
    ServerCommand,
    /// A link's proxy; in a cluster, one shard's node proxies (every
    /// shard's without one).
    Network {
        link: Link,
        shard: Option<u16>,
    },
    /// The cluster slot of this stream key.
    Slot(String),
    /// A cluster shard's primary, by the shard's place in slot order.
    Shard(u16),
    /// A name that matches nothing: validation refuses it, and a plan made
    /// without validation carries the reason to the fault's report, where
    /// it fails the run.
    Unresolved(String),
}

impl FaultTarget {
    /// The link a network fault acts on; None for any other fault.
    pub fn link(&self) -> Option<Link> {
        match self {
            FaultTarget::Network { link, .. } => Some(*link),
            _ => None,
        }
    }
}

/// `streams`: the run's stream keys, which a slot fault names.
pub(super) fn fault_plan(scenario: &Scenario, fault: &Fault, streams: &[StreamPlan]) -> FaultPlan {
    let target = match fault.kind.spec().target {
        Target::Consumer(name) => resolve_consumer(scenario, name)
            .map(|(group, index)| FaultTarget::Consumer { group, index }),
        Target::Producer(producer) => {
            resolve_producer(scenario, producer).map(FaultTarget::Producer)
        }
        Target::ServerProcess => Ok(FaultTarget::ServerProcess),
        Target::ServerCommand => Ok(FaultTarget::ServerCommand),
        Target::Network { link, shard } => Ok(FaultTarget::Network { link, shard }),
        Target::Slot { stream, partition } => (streams.iter())
            .find(|s| s.name == stream && s.partition.map_or(0, |p| p.index) == partition)
            .map(|s| FaultTarget::Slot(s.key.clone()))
            .ok_or_else(|| format!("stream {stream} has no partition {partition}")),
        Target::Shard(shard) => Ok(FaultTarget::Shard(shard)),
    };
    FaultPlan {
        at: fault.at.as_duration(),
        target: target.unwrap_or_else(FaultTarget::Unresolved),
        label: fault.kind.label(),
        kind: fault.kind.clone(),
    }
}

impl Plan {
    /// Whether every harness connection goes through the fault proxy:
    /// for network faults, and as a failover's virtual IP.
    pub fn proxied(&self) -> bool {
        self.has_network_faults() || (self.faults.iter()).any(|f| f.spec().proxy)
    }

    /// Whether the run needs the fault proxy between the harness and Redis
    /// (network faults on the clients' link; the replication link has its own).
    pub fn has_network_faults(&self) -> bool {
        self.on_link(Link::Clients)
    }

    /// Whether the replica follows its primary through a fault proxy of its own.
    pub fn has_replication_faults(&self) -> bool {
        self.on_link(Link::Replication)
    }

    fn on_link(&self, link: Link) -> bool {
        (self.faults.iter()).any(|f| f.target.link() == Some(link))
    }

    /// Whether the managed server's data directory must sit on the power-loss
    /// file system.
    pub fn needs_power_fs(&self) -> bool {
        (self.faults.iter()).any(|f| f.spec().power_fs)
    }

    /// Whether the managed server must allow DEBUG.
    pub fn needs_debug_command(&self) -> bool {
        (self.faults.iter()).any(|f| f.spec().debug_command)
    }

    /// Whether the streams are read back whole at the end to judge every XADD
    /// (`verify::durability`): after a fault that may lose acknowledged
    /// writes (a Redis kill), and after one that cuts writes off (network
    /// faults, CLIENT KILL, a producer crash), whose lost replies may have
    /// landed. Trimmed streams cannot be judged.
    pub fn reads_back(&self) -> bool {
        let asked = |read_back| (self.faults.iter()).any(|f| f.spec().read_back == read_back);
        asked(ReadBack::Always) || (asked(ReadBack::IfUntrimmed) && self.untrimmed())
    }

    /// Whether no stream is trimmed, so a read-back can judge every XADD.
    pub fn untrimmed(&self) -> bool {
        self.streams.iter().all(|s| s.trim.is_none())
    }
}
