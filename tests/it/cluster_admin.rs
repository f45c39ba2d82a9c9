//! The admin connection against a real 3-shard cluster: keyed commands land
//! on the shard of their slot, pipelines over several shards answer in
//! order, INFO commandstats adds up over the primaries, and MOVED and ASK
//! from a slot migrated behind its back are followed and counted
//! (docs/cluster.md, "The admin connection"). One cluster for those, its
//! checks in turn, each on keys of its own; a second one, with replicas,
//! loses a primary.

use std::time::{Duration, Instant};

use redis::Value;
use streamdrill::connect::{Conn, Target};
use streamdrill::metrics::commandstats::CommandStats;
use streamdrill::server::cluster::{ClusterSpec, ManagedCluster, Shard, query};
use streamdrill::server::{RedisServer, ServerConfig};
use streamdrill::slot::key_slot;
use streamdrill::verify;

use crate::support::wait_until;

const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

fn start(replicas: u16) -> ManagedCluster {
    let spec = ClusterSpec {
        shards: 3,
        replicas,
        node_timeout: Duration::from_millis(1000),
    };
    ManagedCluster::start(spec, &ServerConfig::default(), Duration::from_secs(20)).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_admin_connection_routes_over_a_cluster() {
    let cluster = start(0);
    runtime().block_on(async {
        let seed = Target::new(cluster.seed_urls()[1].clone(), None).unwrap();
        let mut conn = seed.in_cluster().connect(RESPONSE_TIMEOUT).await.unwrap();
        assert!(conn.is_cluster());
        let addrs: Vec<String> = conn.primaries().into_iter().map(|(a, _)| a).collect();
        let ports: Vec<String> = (cluster.shards().iter())
            .map(|s| format!("127.0.0.1:{}", s.primary.port()))
            .collect();
        assert_eq!(addrs, ports, "the primaries in slot order");

        let keys = one_key_per_shard(&cluster, "sd:admin:s");
        keyed_commands_land_on_their_shard(&cluster, &mut conn, &keys).await;
        pipelines_answer_in_order(&mut conn, &keys).await;
        commandstats_add_up_over_the_primaries(&cluster, &mut conn).await;
        assert_eq!(conn.redirects(), (0, 0), "the map was right so far");
        moved_is_followed_and_counted(&cluster, &mut conn).await;
        ask_is_followed_and_counted(&cluster, &mut conn).await;
    });
}

#[test]
fn a_dead_primarys_slots_are_found_on_its_replica() {
    let mut cluster = start(1);
    runtime().block_on(async {
        let seed = Target::new(cluster.seed_urls()[2].clone(), None).unwrap();
        let mut conn = seed.in_cluster().connect(RESPONSE_TIMEOUT).await.unwrap();
        let key = &one_key_per_shard(&cluster, "sd:admin:failover")[0];
        add(&mut conn, key, 2).await;
        let replica = &cluster.shards()[0].replicas[0];
        // A replica answers MOVED for a key; its keyspace counts it.
        let synced = || {
            replica
                .info("keyspace")
                .is_ok_and(|i| i.contains("keys=1,"))
        };
        wait_until(
            Duration::from_secs(5),
            "the replica to have the key",
            synced,
        );
        cluster.shards_mut()[0].primary.kill9().unwrap();
        // No node says MOVED for a dead one: the connection finds the
        // replica that took over by reading the map again after a failure.
        let deadline = Instant::now() + Duration::from_secs(20);
        let len = loop {
            match redis::cmd("XLEN")
                .arg(key)
                .query_async::<u64>(&mut conn)
                .await
            {
                Ok(len) => break len,
                Err(e) => assert!(Instant::now() < deadline, "still failing: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(len, 2);
        let replica = format!("127.0.0.1:{}", cluster.shards()[0].replicas[0].port());
        let addrs: Vec<String> = conn.primaries().into_iter().map(|(a, _)| a).collect();
        assert_eq!(addrs[0], replica, "{addrs:?}");
    });
}

/// For each shard, in order, the first `{prefix}{i}` whose slot it serves.
fn one_key_per_shard(cluster: &ManagedCluster, prefix: &str) -> Vec<String> {
    (cluster.shards().iter())
        .map(|shard| {
            (0..)
                .map(|i| format!("{prefix}{i}"))
                .find(|k| serves(shard, k))
                .unwrap()
        })
        .collect()
}

fn serves(shard: &Shard, key: &str) -> bool {
    (shard.slots.0..=shard.slots.1).contains(&key_slot(key.as_bytes()))
}

async fn keyed_commands_land_on_their_shard(
    cluster: &ManagedCluster,
    conn: &mut Conn,
    keys: &[String],
) {
    for (n, key) in keys.iter().enumerate() {
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg("g")
            .arg("$")
            .arg("MKSTREAM")
            .exec_async(conn)
            .await
            .unwrap();
        for _ in 0..=n {
            let _: String = redis::cmd("XADD")
                .arg(key)
                .arg("*")
                .arg("f")
                .arg("v")
                .query_async(conn)
                .await
                .unwrap();
        }
        let len: u64 = redis::cmd("XLEN").arg(key).query_async(conn).await.unwrap();
        assert_eq!(len, n as u64 + 1, "{key}");
    }
    // Each key where its slot says, and nothing anywhere else.
    for (shard, key) in cluster.shards().iter().zip(keys) {
        let theirs: u16 = query(
            &shard.primary,
            redis::cmd("CLUSTER").arg("KEYSLOT").arg(key),
        )
        .unwrap();
        assert_eq!(theirs, key_slot(key.as_bytes()));
        let size: u64 = query(&shard.primary, &redis::cmd("DBSIZE")).unwrap();
        assert_eq!(size, 1, "shard {:?} holds only {key}", shard.slots);
        let kind: String = query(&shard.primary, redis::cmd("TYPE").arg(key)).unwrap();
        assert_eq!(kind, "stream");
    }
}

async fn pipelines_answer_in_order(conn: &mut Conn, keys: &[String]) {
    let (a, b, c) = (&keys[0], &keys[1], &keys[2]);
    let mut pipe = redis::pipe();
    pipe.cmd("XLEN").arg(c);
    pipe.cmd("PING");
    pipe.cmd("XLEN").arg(a);
    pipe.cmd("XADD").arg(b).arg("*").arg("f").arg("v").ignore();
    pipe.cmd("XLEN").arg(b);
    pipe.cmd("MULTI");
    pipe.cmd("XADD").arg(c).arg("*").arg("f").arg("v");
    pipe.cmd("XLEN").arg(c);
    pipe.cmd("EXEC");
    pipe.cmd("XINFO").arg("GROUPS").arg(a);
    let replies: Vec<Value> = pipe.query_async(conn).await.unwrap();
    assert_eq!(replies.len(), 9, "{replies:?}");
    assert_eq!(replies[0], Value::Int(3));
    assert!(matches!(&replies[1], Value::SimpleString(s) if s == "PONG"));
    assert_eq!(replies[2], Value::Int(1));
    assert_eq!(replies[3], Value::Int(3));
    assert_eq!(replies[4], Value::Okay, "MULTI");
    let queued = |v: &Value| matches!(v, Value::SimpleString(s) if s == "QUEUED");
    assert!(queued(&replies[5]) && queued(&replies[6]), "{replies:?}");
    let Value::Array(exec) = &replies[7] else {
        panic!("EXEC answered {:?}", replies[7])
    };
    assert_eq!(
        exec[1],
        Value::Int(4),
        "the transaction ran on its key's shard"
    );
    assert!(matches!(&replies[8], Value::Array(groups) if groups.len() == 1));

    // An atomic pipeline, and DEL over three slots, split and summed.
    let (id, len): (String, u64) = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg(a)
        .arg("*")
        .arg("f")
        .arg("v")
        .cmd("XLEN")
        .arg(a)
        .query_async(conn)
        .await
        .unwrap();
    assert!(id.contains('-') && len == 2, "{id} {len}");
    let mut del = redis::cmd("DEL");
    for k in keys {
        del.arg(format!("{k}:gone")).arg(k);
    }
    let deleted: u64 = del.query_async(conn).await.unwrap();
    assert_eq!(deleted, 3);
    let exists: u64 = redis::cmd("EXISTS")
        .arg(keys)
        .query_async(conn)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

async fn commandstats_add_up_over_the_primaries(cluster: &ManagedCluster, conn: &mut Conn) {
    let summed = verify::command_stats(conn).await.unwrap();
    let mut each = CommandStats::default();
    for shard in cluster.shards() {
        let info: String = query(&shard.primary, redis::cmd("INFO").arg("commandstats")).unwrap();
        each.add(&CommandStats::parse(&info));
    }
    let none = CommandStats::default();
    for command in ["xlen", "xadd", "xgroup|create", "del"] {
        let (ours, theirs) = (
            summed.since(&none, &[command]),
            each.since(&none, &[command]),
        );
        assert_eq!(ours.map(|u| u.calls), theirs.map(|u| u.calls), "{command}");
        assert!(ours.is_some_and(|u| u.calls > 0), "{command}: {ours:?}");
    }
}

/// Moves `slot` from shard `from` to shard `to` and its keys with it,
/// behind the connection's back; `finish: false` stops with the keys moved
/// and the slot still migrating, where the source answers ASK.
fn migrate(cluster: &ManagedCluster, slot: u16, from: usize, to: usize, finish: bool) {
    let (source, target) = (
        &cluster.shards()[from].primary,
        &cluster.shards()[to].primary,
    );
    let id = |node: &RedisServer| {
        query::<String>(node, &redis::cmd("CLUSTER").arg("MYID").clone()).unwrap()
    };
    let (source_id, target_id) = (id(source), id(target));
    let setslot = |node: &RedisServer, how: &str, id: &str| {
        let cmd = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(how)
            .arg(id)
            .clone();
        query::<()>(node, &cmd).unwrap();
    };
    setslot(target, "IMPORTING", &source_id);
    setslot(source, "MIGRATING", &target_id);
    let keys: Vec<String> = query(
        source,
        redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(100),
    )
    .unwrap();
    assert!(!keys.is_empty(), "slot {slot} has keys to move");
    let migrate = redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(target.port())
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS")
        .arg(&keys)
        .clone();
    query::<()>(source, &migrate).unwrap();
    if finish {
        for shard in cluster.shards() {
            setslot(&shard.primary, "NODE", &target_id);
        }
    }
}

async fn moved_is_followed_and_counted(cluster: &ManagedCluster, conn: &mut Conn) {
    let key = &one_key_per_shard(cluster, "sd:admin:moved")[0];
    add(conn, key, 2).await;
    migrate(cluster, key_slot(key.as_bytes()), 0, 1, true);
    assert_eq!(xlen(conn, key).await, 2, "answered from the new owner");
    assert_eq!(conn.redirects(), (1, 0));
    // The map learnt it: no second redirect, in a pipeline too.
    let other = &one_key_per_shard(cluster, "sd:admin:moved")[2];
    add(conn, other, 1).await;
    let (a, b): (u64, u64) = redis::pipe()
        .cmd("XLEN")
        .arg(key)
        .cmd("XLEN")
        .arg(other)
        .query_async(conn)
        .await
        .unwrap();
    assert_eq!((a, b), (2, 1));
    assert_eq!(conn.redirects(), (1, 0));
    let moved_to = &cluster.shards()[1].primary;
    let there: u64 = query(moved_to, redis::cmd("EXISTS").arg(key)).unwrap();
    assert_eq!(there, 1);
}

async fn ask_is_followed_and_counted(cluster: &ManagedCluster, conn: &mut Conn) {
    let key = &one_key_per_shard(cluster, "sd:admin:ask")[2];
    add(conn, key, 3).await;
    let slot = key_slot(key.as_bytes());
    migrate(cluster, slot, 2, 0, false);
    let before = conn.redirects();
    assert_eq!(xlen(conn, key).await, 3, "answered by the importing node");
    assert_eq!(conn.redirects(), (before.0, before.1 + 1));
    // ASK leaves the map as it was: the next command is asked again, in a
    // pipeline beside a key that did not move.
    let stays = &one_key_per_shard(cluster, "sd:admin:ask")[1];
    add(conn, stays, 1).await;
    let (a, b): (u64, u64) = redis::pipe()
        .cmd("XLEN")
        .arg(stays)
        .cmd("XLEN")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap();
    assert_eq!((a, b), (1, 3));
    assert_eq!(conn.redirects(), (before.0, before.1 + 2));
}

async fn add(conn: &mut Conn, key: &str, entries: usize) {
    let mut pipe = redis::pipe();
    for _ in 0..entries {
        pipe.cmd("XADD")
            .arg(key)
            .arg("*")
            .arg("f")
            .arg("v")
            .ignore();
    }
    pipe.exec_async(conn).await.unwrap();
}

async fn xlen(conn: &mut Conn, key: &str) -> u64 {
    redis::cmd("XLEN").arg(key).query_async(conn).await.unwrap()
}
