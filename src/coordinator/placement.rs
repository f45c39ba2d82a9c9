//! Where the run's stream keys live: on the one server, or, in a cluster,
//! on the primary serving each key's slot, read with CLUSTER SLOTS before
//! any actor connects (docs/cluster.md, "Running against a cluster").
//! Producers get a connection to every node their stream's keys live on,
//! consumers one to the node of the keys they read.

use std::sync::Arc;

use crate::connect::{Conn, read_slot_map};
use crate::error::{Error, Result};
use crate::metrics::cluster::{ClusterRun, KeyPlace};
use crate::plan::Plan;
use crate::slot::key_slot;
use crate::wire::Endpoint;
use crate::wire::slots::SlotMap;

/// The nodes the actors connect to, and which serves each key.
pub(super) struct Placement {
    /// The server's endpoint, or each primary's, in the slot map's order.
    nodes: Vec<Arc<Endpoint>>,
    /// None for a single server.
    map: Option<SlotMap>,
}

impl Placement {
    /// Everything on the one server at `endpoint`.
    pub fn single(endpoint: Arc<Endpoint>) -> Placement {
        Placement {
            nodes: vec![endpoint],
            map: None,
        }
    }

    /// The cluster `seed` belongs to, as `admin` (connected to it) reads it.
    pub async fn cluster(seed: Arc<Endpoint>, admin: &mut Conn, url: &str) -> Result<Placement> {
        let host = seed.addr();
        let host = host.rsplit_once(':').map_or("", |(h, _)| h);
        let map = (read_slot_map(admin, host).await)
            .map_err(|e| Error::redis(url, "reading the slot map (CLUSTER SLOTS)", e))?;
        if map.uncovered() > 0 {
            return Err(Error::Internal(format!(
                "{url}: {} slots are served by no node; the cluster is not ready",
                map.uncovered()
            )));
        }
        let nodes = (map.nodes().iter())
            .map(|addr| {
                let node = seed.at(addr).ok_or_else(|| {
                    Error::Internal(format!("CLUSTER SLOTS names a node at {addr:?}"))
                })?;
                Ok(Arc::new(node))
            })
            .collect::<Result<_>>()?;
        Ok(Placement {
            nodes,
            map: Some(map),
        })
    }

    /// The index in `nodes` of the node serving `key`.
    pub fn node_of(&self, key: &str) -> usize {
        let Some(map) = &self.map else {
            return 0;
        };
        map.owner_index(key_slot(key.as_bytes())).unwrap_or(0)
    }

    /// `host:port` of the node serving `key`.
    pub fn addr_of(&self, key: &str) -> String {
        self.nodes[self.node_of(key)].addr()
    }

    pub fn node(&self, index: usize) -> &Arc<Endpoint> {
        &self.nodes[index]
    }

    /// Where a consumer whose node is unreachable asks next: every primary
    /// of a cluster (none for one server, which has nowhere else to go).
    pub fn fallbacks(&self) -> Vec<Arc<Endpoint>> {
        match self.map {
            Some(_) => self.nodes.clone(),
            None => Vec::new(),
        }
    }

    /// For a producer writing `keys`: the nodes it connects to and, per
    /// key, the index of its node among them. In a cluster that is every
    /// primary: when one dies, its keys go out on another, whose `-MOVED`
    /// names the replica promoted in its place (docs/cluster.md, "Shard failover").
    pub fn links_of(&self, keys: &[String]) -> (Vec<Arc<Endpoint>>, Vec<usize>) {
        if self.map.is_some() {
            let key_links = keys.iter().map(|k| self.node_of(k)).collect();
            return (self.nodes.clone(), key_links);
        }
        let mut nodes: Vec<usize> = Vec::new();
        let key_links = (keys.iter())
            .map(|k| {
                let node = self.node_of(k);
                match nodes.iter().position(|&n| n == node) {
                    Some(i) => i,
                    None => {
                        nodes.push(node);
                        nodes.len() - 1
                    }
                }
            })
            .collect();
        let endpoints = nodes.iter().map(|&n| self.nodes[n].clone()).collect();
        (endpoints, key_links)
    }

    /// Which shard (primary, as `host:port`) holds each stream key, for the
    /// report; None for a single server.
    pub fn report(&self, plan: &Plan) -> Option<ClusterRun> {
        self.map.as_ref()?;
        let keys = (plan.streams.iter())
            .map(|s| {
                let node = self.node_of(&s.key);
                KeyPlace {
                    key: s.key.clone(),
                    slot: key_slot(s.key.as_bytes()),
                    shard: node,
                    node: self.nodes[node].addr(),
                    node_at_end: None,
                    shard_at_end: None,
                }
            })
            .collect();
        Some(ClusterRun {
            primaries: self.nodes.iter().map(|n| n.addr()).collect(),
            keys,
            redirects: Default::default(),
            shards: Vec::new(),
        })
    }
}
