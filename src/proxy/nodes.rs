//! One fault proxy in front of each node of a cluster, grouped by shard, so
//! a network fault can act on one shard's traffic and leave the others'
//! alone (docs/cluster.md, "Network faults on one shard"). The harness
//! dials each node through its proxy ([`NodeProxies::dials`]); the nodes
//! never learn of the proxies, so replication and the cluster bus go
//! straight.

use std::net::SocketAddr;
use std::sync::Arc;

use super::FaultProxy;
use crate::error::Result;

/// Every node's proxy, shard by shard in the order the shards were given.
#[derive(Debug)]
pub struct NodeProxies {
    shards: Vec<Vec<Arc<FaultProxy>>>,
}

impl NodeProxies {
    /// A proxy for each node of each shard (`shards[n]`: shard n's primary,
    /// then its replicas), on the current tokio runtime. Node i's jitter
    /// draws are seeded by `seed` and i.
    pub async fn start(shards: &[Vec<SocketAddr>], seed: u64) -> Result<NodeProxies> {
        let mut proxies = Vec::with_capacity(shards.len());
        let mut node = 0u64;
        for nodes in shards {
            let mut shard = Vec::with_capacity(nodes.len());
            for &upstream in nodes {
                let seeded = seed ^ node.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                shard.push(Arc::new(FaultProxy::start_seeded(upstream, seeded).await?));
                node += 1;
            }
            proxies.push(shard);
        }
        Ok(NodeProxies { shards: proxies })
    }

    /// Shard `n`'s proxies (its primary's first); None past the last shard.
    pub fn shard(&self, n: u16) -> Option<&[Arc<FaultProxy>]> {
        self.shards.get(usize::from(n)).map(Vec::as_slice)
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Every proxy, shard by shard.
    pub fn all(&self) -> impl Iterator<Item = &Arc<FaultProxy>> {
        self.shards.iter().flatten()
    }

    /// Each node's address (`host:port`, as a cluster names it) and its
    /// proxy's: where to dial it instead.
    pub fn dials(&self) -> Vec<(String, SocketAddr)> {
        (self.all())
            .map(|p| (p.upstream().to_string(), p.addr()))
            .collect()
    }

    /// Clears every proxy's faults (bytes a blackhole held are delivered).
    pub fn clear(&self) {
        self.all().for_each(|p| p.clear());
    }

    /// Closes every proxy whose last handle this is; the rest close when
    /// their last handle is dropped.
    pub async fn stop(self) {
        for proxy in self.shards.into_iter().flatten() {
            if let Ok(proxy) = Arc::try_unwrap(proxy) {
                proxy.stop().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::Toxics;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn each_node_has_its_own_proxy_by_shard() {
        let mut upstreams = Vec::new();
        let mut held = Vec::new();
        for _ in 0..3 {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            upstreams.push(l.local_addr().unwrap());
            held.push(l);
        }
        let shards = vec![vec![upstreams[0], upstreams[1]], vec![upstreams[2]]];
        let proxies = NodeProxies::start(&shards, 7).await.unwrap();
        assert_eq!(proxies.shard_count(), 2);
        assert_eq!(proxies.shard(0).unwrap().len(), 2);
        assert!(proxies.shard(2).is_none());
        let dials = proxies.dials();
        assert_eq!(dials.len(), 3);
        for ((node, proxy), upstream) in dials.iter().zip(&upstreams) {
            assert_eq!(node, &upstream.to_string());
            assert_ne!(proxy, upstream);
        }
        proxies.shard(1).unwrap()[0].set(Toxics::blackhole());
        assert_eq!(proxies.shard(0).unwrap()[0].toxics(), Toxics::default());
        proxies.clear();
        assert_eq!(proxies.shard(1).unwrap()[0].toxics(), Toxics::default());
        proxies.stop().await;
    }
}
