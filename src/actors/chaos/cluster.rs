//! The chaos actor's cluster family: a slot moved, keys and all, from one
//! shard to another while the run goes on
//! (docs/cluster.md, "Live resharding"), the way `redis-cli --cluster reshard` moves one: the
//! target shard IMPORTING it, the source MIGRATING it, every key of the
//! slot sent over with MIGRATE, then the slot given to the target on every
//! primary. Meanwhile a command for a key already gone is answered `-ASK`,
//! and once the slot is given away `-MOVED`; the actors follow both. A
//! stream moves whole, its groups and pending entries with it.
//!
//! And a shard's primary killed (SIGKILL), for the cluster to promote a
//! replica by itself, or handed over to its replica with CLUSTER FAILOVER
//! (docs/cluster.md, "Shard failover"), on the blocking pool as the server
//! family acts; a killed primary restarted from its data directory rejoins
//! as a replica.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Applying, Chaos, SharedCluster, Stepped, ready};
use crate::actors::FaultStep;
use crate::clock::RunClock;
use crate::connect::{Conn, Target};
use crate::scenario::FaultKind;
use crate::server::cluster::{Shard, query};
use crate::slot::key_slot;

/// Each command of the move, MIGRATE included: a stream of a few hundred
/// thousand entries takes a while to serialize and load.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Keys MIGRATEd per command.
const KEYS_PER_MIGRATE: usize = 100;

impl Chaos {
    /// A step of a cluster fault on the slot of `key`.
    pub(super) fn cluster(&mut self, kind: &FaultKind, key: String) -> Applying {
        let FaultKind::Reshard { to_shard, .. } = kind else {
            return ready(Err(format!("{} is no cluster fault", kind.action())));
        };
        let Some(seed) = self.target.clone() else {
            return ready(Err("there is no cluster to reshard".into()));
        };
        let to_shard = *to_shard;
        Box::pin(async move { Stepped::of(reshard(&seed, &key, to_shard).await) })
    }
}

impl Chaos {
    /// A step of a shard fault on the nodes started as shard `shard`.
    pub(super) fn shard(&mut self, kind: &FaultKind, shard: u16, step: FaultStep) -> Applying {
        let op: ShardOp = match (kind, step) {
            (FaultKind::KillPrimary { .. }, FaultStep::Begin) => kill_primary,
            (FaultKind::KillPrimary { .. }, FaultStep::End) => restart_primary,
            (FaultKind::FailoverShard { .. }, FaultStep::Begin) => hand_over,
            _ => return ready(Err(format!("{} is no shard fault", kind.action()))),
        };
        let Some(cluster) = self.cluster.clone() else {
            return ready(Err("there is no managed cluster to act on".into()));
        };
        let clock = self.clock;
        Box::pin(on_shard(cluster, shard, op, clock))
    }
}

/// A synchronous operation on one shard's nodes.
type ShardOp = fn(&mut Shard) -> Result<(), String>;

/// `op` on shard `shard`, on the blocking pool: a restart waits for the
/// node to load its data, a handover for the replica to take over. The
/// step acted when `op` began (`Stepped::acted_ns`).
async fn on_shard(cluster: SharedCluster, shard: u16, op: ShardOp, clock: RunClock) -> Stepped {
    let joined = tokio::task::spawn_blocking(move || {
        let mut cluster = (cluster.lock()).map_err(|_| "cluster lock poisoned".to_string())?;
        let shards = cluster.shards_mut();
        let count = shards.len();
        let began = clock.now_ns();
        match shards.get_mut(usize::from(shard)) {
            Some(s) => op(s).map(|()| began),
            None => Err(format!(
                "there is no shard {shard}: the cluster has {count}"
            )),
        }
    });
    let outcome = (joined.await).map_err(|e| format!("the shard fault's task: {e}"));
    Stepped::acted(outcome.and_then(|acted| acted))
}

fn kill_primary(shard: &mut Shard) -> Result<(), String> {
    if !shard.primary.is_running() {
        return Err("its primary is already down".into());
    }
    shard.primary.kill9().map_err(|e| e.to_string())
}

fn restart_primary(shard: &mut Shard) -> Result<(), String> {
    shard.primary.restart().map_err(|e| e.to_string())
}

/// How long a handover may take: the primary stops writes, the replica
/// catches up and wins the vote of the other primaries.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// `CLUSTER FAILOVER` on the shard's first replica, answered once that
/// replica says it is a primary (ROLE).
fn hand_over(shard: &mut Shard) -> Result<(), String> {
    let Some(replica) = shard.replicas.first() else {
        return Err("it has no replica to hand over to".into());
    };
    let failover = redis::cmd("CLUSTER").arg("FAILOVER").clone();
    query::<()>(replica, &failover).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + HANDOVER_TIMEOUT;
    loop {
        let role: Vec<redis::Value> =
            query(replica, &redis::cmd("ROLE")).map_err(|e| e.to_string())?;
        if matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master") {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "the replica was still no primary after {HANDOVER_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A primary as CLUSTER NODES lists it.
#[derive(Debug, Clone, PartialEq)]
struct Primary {
    id: String,
    addr: SocketAddr,
    /// Slot ranges it serves, inclusive; migrations in brackets left out.
    slots: Vec<(u16, u16)>,
}

impl Primary {
    fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
    }
}

/// Moves `key`'s slot to shard `to_shard` (primaries in slot order), or to
/// the shard after the one serving it.
async fn reshard(seed: &Target, key: &str, to_shard: Option<u16>) -> Result<(), String> {
    let mut conn = connect(seed).await?;
    let nodes: String = (redis::cmd("CLUSTER").arg("NODES"))
        .query_async(&mut conn)
        .await
        .map_err(|e| format!("CLUSTER NODES: {e}"))?;
    let primaries = primaries(&nodes)?;
    let slot = key_slot(key.as_bytes());
    let from = (primaries.iter().position(|p| p.serves(slot)))
        .ok_or_else(|| format!("no primary serves slot {slot} of {key}"))?;
    let to = to_shard.map_or((from + 1) % primaries.len(), usize::from);
    match to {
        _ if to >= primaries.len() => {
            return Err(format!(
                "there is no shard {to}: the cluster has {}",
                primaries.len()
            ));
        }
        _ if to == from => return Err(format!("slot {slot} of {key} is on shard {to} already")),
        _ => {}
    }
    let (source, target) = (&primaries[from], &primaries[to]);
    let mut src = connect(&node(seed, source)?).await?;
    let mut dst = connect(&node(seed, target)?).await?;
    // The target first: a key MIGRATEd before it imports would be refused there.
    setslot(&mut dst, slot, "IMPORTING", &source.id).await?;
    setslot(&mut src, slot, "MIGRATING", &target.id).await?;
    loop {
        let keys: Vec<String> = (redis::cmd("CLUSTER").arg("GETKEYSINSLOT"))
            .arg(slot)
            .arg(KEYS_PER_MIGRATE)
            .query_async(&mut src)
            .await
            .map_err(|e| format!("CLUSTER GETKEYSINSLOT {slot}: {e}"))?;
        if keys.is_empty() {
            break;
        }
        let mut migrate = redis::cmd("MIGRATE");
        migrate
            .arg(target.addr.ip().to_string())
            .arg(target.addr.port());
        migrate.arg("").arg(0).arg(TIMEOUT.as_millis() as u64);
        migrate.arg("KEYS").arg(&keys);
        (migrate.query_async::<()>(&mut src).await)
            .map_err(|e| format!("MIGRATE of slot {slot} to {}: {e}", target.addr))?;
    }
    // The target, then the source, then the rest: the order redis-cli uses,
    // so no primary ever sends a client back to the source.
    setslot(&mut dst, slot, "NODE", &target.id).await?;
    setslot(&mut src, slot, "NODE", &target.id).await?;
    for other in primaries
        .iter()
        .filter(|p| p.id != source.id && p.id != target.id)
    {
        // The cluster bus spreads it anyway; telling them saves a round of MOVED.
        if let Ok(mut conn) = connect(&node(seed, other)?).await {
            let _ = setslot(&mut conn, slot, "NODE", &target.id).await;
        }
    }
    Ok(())
}

async fn connect(target: &Target) -> Result<Conn, String> {
    (target.connect(TIMEOUT).await).map_err(|e| e.to_string())
}

/// The seed's URL (user, password) pointed at `primary`, spoken to alone.
fn node(seed: &Target, primary: &Primary) -> Result<Target, String> {
    (seed.at_node(&primary.addr.to_string())).map_err(|e| e.to_string())
}

async fn setslot(conn: &mut Conn, slot: u16, state: &str, id: &str) -> Result<(), String> {
    (redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg(state)
        .arg(id))
    .query_async::<()>(conn)
    .await
    .map_err(|e| format!("CLUSTER SETSLOT {slot} {state}: {e}"))
}

/// The primaries of a CLUSTER NODES reply, in slot order (the shards'
/// numbering in the report); a primary with no slots comes last.
fn primaries(nodes: &str) -> Result<Vec<Primary>, String> {
    let mut primaries = Vec::new();
    for line in nodes.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(id), Some(addr), Some(flags)) = (fields.first(), fields.get(1), fields.get(2))
        else {
            return Err(format!("CLUSTER NODES line {line:?}"));
        };
        if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
            continue;
        }
        let addr = addr.split(['@', ',']).next().unwrap_or_default();
        let addr: SocketAddr =
            (addr.parse()).map_err(|_| format!("CLUSTER NODES names a node at {addr:?}"))?;
        let slots = (fields.iter().skip(8))
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| match s.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => s.parse().ok().map(|a| (a, a)),
            })
            .collect();
        primaries.push(Primary {
            id: id.to_string(),
            addr,
            slots,
        });
    }
    primaries.sort_by_key(|p| p.slots.iter().map(|s| s.0).min().unwrap_or(u16::MAX));
    Ok(primaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primaries_in_slot_order_without_replicas_or_migrations() {
        let nodes = "\
c2 127.0.0.1:7002@17002 master - 0 1 3 connected 10923-16383
r1 127.0.0.1:7004@17004 slave c1 0 1 2 connected
c1 127.0.0.1:7001@17001 master - 0 1 2 connected 5461-10922 [5461->-c2]
c0 127.0.0.1:7000@17000,host myself,master - 0 1 1 connected 0-5460 16000
";
        let p = primaries(nodes).unwrap();
        let ids: Vec<&str> = p.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["c0", "c1", "c2"]);
        assert_eq!(p[0].slots, [(0, 5460), (16000, 16000)]);
        assert_eq!(p[1].slots, [(5461, 10922)]);
        assert_eq!(p[0].addr.port(), 7000);
        assert!(p[0].serves(16000) && !p[0].serves(16001) && p[2].serves(16001));
    }
}
