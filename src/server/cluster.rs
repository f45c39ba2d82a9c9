//! A managed Redis Cluster: `shards` primaries with `replicas` replicas
//! each, every node a managed server on loopback ports of its own, formed
//! with CLUSTER MEET, ADDSLOTSRANGE and REPLICATE rather than `redis-cli
//! --cluster create`, so that no second binary has to match the server's
//! version (docs/cluster.md, "Managed clusters").

use std::collections::HashMap;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{POLL_INTERVAL, RedisServer, ServerConfig};
use crate::error::{Error, Result};
use crate::slot::SLOTS;

/// Default `cluster-node-timeout`: short, so that a killed primary's
/// replica takes over within seconds (Redis's own default is 15 s).
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_millis(2000);

/// Timeout of one management command's connect, read and write.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// How many shards and replicas, and how fast failures are detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterSpec {
    pub shards: u16,
    pub replicas: u16,
    pub node_timeout: Duration,
}

/// One primary, its replicas, and the slots it was given.
#[derive(Debug)]
pub struct Shard {
    pub primary: RedisServer,
    pub replicas: Vec<RedisServer>,
    /// First and last slot, inclusive.
    pub slots: (u16, u16),
}

/// A running cluster of managed servers; dropping it kills every node.
#[derive(Debug)]
pub struct ManagedCluster {
    shards: Vec<Shard>,
}

impl ManagedCluster {
    /// Starts every node with `base`'s settings (persistence, binary) as a
    /// cluster node, forms the cluster, and returns once every node reports
    /// `cluster_state:ok` and every replica is in sync, or `ready` has passed.
    pub fn start(
        spec: ClusterSpec,
        base: &ServerConfig,
        ready: Duration,
    ) -> Result<ManagedCluster> {
        if spec.shards == 0 || spec.shards > SLOTS {
            return Err(Error::Internal(format!(
                "a cluster needs 1 to {SLOTS} shards, not {}",
                spec.shards
            )));
        }
        if base.tls.is_some() {
            return Err(Error::Internal(
                "a managed cluster over TLS is not supported yet".to_string(),
            ));
        }
        let mut config = base.clone();
        config.cluster_node_timeout = Some(spec.node_timeout);
        let mut shards = Vec::with_capacity(spec.shards as usize);
        for slots in slot_ranges(spec.shards) {
            let primary = RedisServer::start(config.clone())?;
            let replicas = (0..spec.replicas)
                .map(|_| RedisServer::start(config.clone()))
                .collect::<Result<Vec<_>>>()?;
            shards.push(Shard {
                primary,
                replicas,
                slots,
            });
        }
        let cluster = ManagedCluster { shards };
        cluster.form(Instant::now() + ready)?;
        Ok(cluster)
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    pub fn shards_mut(&mut self) -> &mut [Shard] {
        &mut self.shards
    }

    /// Every node, primaries first in shard order, then each shard's replicas.
    pub fn nodes(&self) -> impl Iterator<Item = &RedisServer> {
        let primaries = self.shards.iter().map(|s| &s.primary);
        primaries.chain(self.shards.iter().flat_map(|s| &s.replicas))
    }

    /// `redis://127.0.0.1:<port>` of every primary: the seeds a client starts from.
    pub fn seed_urls(&self) -> Vec<String> {
        self.shards.iter().map(|s| s.primary.url()).collect()
    }

    /// Waits until every running node reports `cluster_state:ok`.
    pub fn wait_ok(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut nodes: Vec<&mut RedisServer> = (self.shards.iter_mut())
            .flat_map(|s| std::iter::once(&mut s.primary).chain(s.replicas.iter_mut()))
            .collect();
        nodes.retain_mut(|n| n.is_running());
        let nodes: Vec<&RedisServer> = nodes.into_iter().map(|n| &*n).collect();
        wait_for(deadline, "every node to report cluster_state:ok", || {
            all_ok(&nodes)
        })
    }

    fn form(&self, deadline: Instant) -> Result<()> {
        let nodes: Vec<&RedisServer> = self.nodes().collect();
        let first = &nodes[0];
        for node in &nodes[1..] {
            let bus = bus_port(node)?;
            query::<()>(
                first,
                redis::cmd("CLUSTER")
                    .arg("MEET")
                    .arg("127.0.0.1")
                    .arg(node.port())
                    .arg(bus),
            )?;
        }
        for shard in &self.shards {
            let (from, to) = shard.slots;
            query::<()>(
                &shard.primary,
                redis::cmd("CLUSTER").arg("ADDSLOTSRANGE").arg(from).arg(to),
            )?;
        }
        let total = nodes.len();
        wait_for(deadline, "every node to know every other", || {
            nodes.iter().all(|n| knows_all(n, total))
        })?;
        for shard in &self.shards {
            let id = query::<String>(&shard.primary, redis::cmd("CLUSTER").arg("MYID"))?;
            for replica in &shard.replicas {
                query::<()>(replica, redis::cmd("CLUSTER").arg("REPLICATE").arg(&id))?;
            }
        }
        wait_for(deadline, "every node to report cluster_state:ok", || {
            all_ok(&nodes)
        })?;
        for replica in self.shards.iter().flat_map(|s| &s.replicas) {
            replica.wait_in_sync(deadline.saturating_duration_since(Instant::now()))?;
        }
        Ok(())
    }
}

/// Slots split as evenly as they go, in order: shard i gets
/// `[i·16384/n, (i+1)·16384/n − 1]`.
pub fn slot_ranges(shards: u16) -> Vec<(u16, u16)> {
    let n = u32::from(shards);
    (0..n)
        .map(|i| {
            let from = i * u32::from(SLOTS) / n;
            let to = (i + 1) * u32::from(SLOTS) / n - 1;
            (from as u16, to as u16)
        })
        .collect()
}

/// The node's cluster bus port, from its own configuration.
fn bus_port(node: &RedisServer) -> Result<u16> {
    let pair: Vec<String> = query(node, redis::cmd("CONFIG").arg("GET").arg("cluster-port"))?;
    (pair.get(1).and_then(|p| p.parse().ok())).ok_or_else(|| {
        Error::Internal(format!(
            "node 127.0.0.1:{} answered CONFIG GET cluster-port with {pair:?}",
            node.port()
        ))
    })
}

/// Whether CLUSTER NODES on `node` lists `total` nodes, none still in the
/// handshake (which has not learnt the node's id yet).
fn knows_all(node: &RedisServer, total: usize) -> bool {
    let Ok(text) = query::<String>(node, redis::cmd("CLUSTER").arg("NODES")) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines.len() == total && !lines.iter().any(|l| l.contains("handshake"))
}

fn all_ok(nodes: &[&RedisServer]) -> bool {
    nodes.iter().all(|n| {
        query::<String>(n, redis::cmd("CLUSTER").arg("INFO"))
            .map(|info| cluster_info(&info).get("cluster_state") == Some(&"ok"))
            .unwrap_or(false)
    })
}

/// CLUSTER INFO's `field:value` lines.
pub fn cluster_info(text: &str) -> HashMap<&str, &str> {
    (text.lines())
        .filter_map(|l| l.trim().split_once(':'))
        .collect()
}

fn wait_for(deadline: Instant, what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    loop {
        if done() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Internal(format!(
                "the managed cluster did not form: timed out waiting for {what}"
            )));
        }
        sleep(POLL_INTERVAL * 5);
    }
}

/// One management command on a short connection of its own.
pub fn query<T: redis::FromRedisValue>(node: &RedisServer, cmd: &redis::Cmd) -> Result<T> {
    let url = node.url();
    let failed = |e: redis::RedisError| Error::Redis {
        url: url.clone(),
        doing: "managing the cluster".to_string(),
        source: e,
    };
    let client = redis::Client::open(url.as_str()).map_err(failed)?;
    let mut conn = client
        .get_connection_with_timeout(COMMAND_TIMEOUT)
        .map_err(failed)?;
    conn.set_read_timeout(Some(COMMAND_TIMEOUT))
        .map_err(failed)?;
    cmd.query(&mut conn).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_split_evenly_and_cover_all() {
        assert_eq!(slot_ranges(1), [(0, 16383)]);
        assert_eq!(slot_ranges(3), [(0, 5460), (5461, 10921), (10922, 16383)]);
        for n in [2, 5, 7, 100] {
            let r = slot_ranges(n);
            assert_eq!(r[0].0, 0);
            assert_eq!(r.last().unwrap().1, SLOTS - 1);
            assert!(r.windows(2).all(|w| w[1].0 == w[0].1 + 1));
        }
    }
}
