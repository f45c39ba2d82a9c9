//! The chaos actor's network family: toxics set and lifted on a link's fault
//! proxy (the clients' one every harness connection goes through, or the
//! replication link's own), and resets of every connection through it. One
//! toxic of each kind is in force per link, so overlapping faults of
//! different kinds combine and each one's end lifts only its own.
//!
//! In a cluster run the clients' link is a proxy per node: a fault with a
//! shard acts on that shard's nodes' proxies, its primary's and its
//! replicas' (so it still holds once a replica took over), one without on
//! every shard's (docs/cluster.md, "Network faults on one shard"). Each
//! shard keeps its own toxics.

use super::Chaos;
use crate::actors::FaultStep;
use crate::proxy::{FaultProxy, NodeProxies, Toxics};
use crate::scenario::{FaultKind, Link};

use std::sync::Arc;

impl Chaos {
    /// A step of a network fault on `link` (in a cluster, on `shard`, or on
    /// every shard without one): at the start its toxic goes on (or every
    /// connection is reset), at the end its toxic comes off.
    pub(super) fn network(
        &mut self,
        kind: &FaultKind,
        link: Link,
        shard: Option<u16>,
        step: FaultStep,
    ) -> Result<(), String> {
        if let Some(nodes) = self.nodes.clone() {
            return self.on_shards(&nodes, kind, shard, step);
        }
        if let Some(shard) = shard {
            return Err(format!("there is no cluster with a shard {shard}"));
        }
        let Some(proxy) = self.proxy_of(link) else {
            return Err(format!(
                "there is no fault proxy on the {} link",
                link.name()
            ));
        };
        if let (FaultKind::NetworkReset { .. }, FaultStep::Begin) = (kind, step) {
            proxy.reset_all();
            return Ok(());
        }
        let Some(toxic) = toxic(kind) else {
            return Err(format!("{} is no network fault", kind.action()));
        };
        let toxics = self.toxics_of(link);
        match step {
            FaultStep::Begin => add(toxics, &toxic),
            FaultStep::End => lift(toxics, &toxic),
        }
        proxy.set(toxics.clone());
        Ok(())
    }

    /// A step on the clients' link of a cluster: on shard `shard`'s node
    /// proxies, or every shard's.
    fn on_shards(
        &mut self,
        nodes: &NodeProxies,
        kind: &FaultKind,
        shard: Option<u16>,
        step: FaultStep,
    ) -> Result<(), String> {
        let shards = match shard {
            Some(s) if usize::from(s) < nodes.shard_count() => s..s + 1,
            Some(s) => {
                return Err(format!(
                    "there is no shard {s}: the cluster has {}",
                    nodes.shard_count()
                ));
            }
            None => 0..nodes.shard_count() as u16,
        };
        if let FaultKind::NetworkReset { .. } = kind {
            if step == FaultStep::Begin {
                let proxies = shards.flat_map(|s| nodes.shard(s).unwrap_or_default());
                proxies.for_each(|p| p.reset_all());
            }
            return Ok(());
        }
        let Some(toxic) = toxic(kind) else {
            return Err(format!("{} is no network fault", kind.action()));
        };
        for s in shards {
            let toxics = &mut self.node_toxics[usize::from(s)];
            match step {
                FaultStep::Begin => add(toxics, &toxic),
                FaultStep::End => lift(toxics, &toxic),
            }
            for proxy in nodes.shard(s).unwrap_or_default() {
                proxy.set(toxics.clone());
            }
        }
        Ok(())
    }

    /// The proxy a network fault on `link` acts on.
    fn proxy_of(&self, link: Link) -> Option<Arc<FaultProxy>> {
        match link {
            Link::Clients => self.proxy.clone(),
            Link::Replication => self.replication_link.clone(),
        }
    }

    fn toxics_of(&mut self, link: Link) -> &mut Toxics {
        match link {
            Link::Clients => &mut self.toxics,
            Link::Replication => &mut self.link_toxics,
        }
    }
}

/// The toxic a timed network fault puts on its link.
fn toxic(kind: &FaultKind) -> Option<Toxics> {
    match kind {
        FaultKind::NetworkLatency { delay, jitter, .. } => {
            Some(Toxics::latency(delay.as_duration(), jitter.as_duration()))
        }
        FaultKind::NetworkBlackhole { .. } => Some(Toxics::blackhole()),
        FaultKind::NetworkBandwidth { bytes_per_s, .. } => Some(Toxics::bandwidth(bytes_per_s.0)),
        _ => None,
    }
}

fn add(toxics: &mut Toxics, toxic: &Toxics) {
    toxics.latency = toxic.latency.or(toxics.latency);
    toxics.bandwidth_bytes_per_s = toxic.bandwidth_bytes_per_s.or(toxics.bandwidth_bytes_per_s);
    toxics.blackhole |= toxic.blackhole;
}

fn lift(toxics: &mut Toxics, toxic: &Toxics) {
    if toxic.latency.is_some() {
        toxics.latency = None;
    }
    if toxic.bandwidth_bytes_per_s.is_some() {
        toxics.bandwidth_bytes_per_s = None;
    }
    toxics.blackhole &= !toxic.blackhole;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_fault_lifts_only_its_own_toxic() {
        let mut toxics = Toxics::default();
        let latency = Toxics::latency(Duration::from_millis(20), Duration::ZERO);
        add(&mut toxics, &latency);
        add(&mut toxics, &Toxics::blackhole());
        lift(&mut toxics, &latency);
        assert_eq!(toxics, Toxics::blackhole());
        lift(&mut toxics, &Toxics::blackhole());
        assert_eq!(toxics, Toxics::default());
    }
}
