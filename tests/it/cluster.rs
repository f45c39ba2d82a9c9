//! A managed Redis Cluster of real servers: it forms, its slot map is the
//! one `streamdrill::slot` computes, and a killed primary's replica takes over.

use std::time::Duration;

use streamdrill::server::ServerConfig;
use streamdrill::server::cluster::{ClusterSpec, ManagedCluster, cluster_info, query};
use streamdrill::slot::key_slot;
use streamdrill::wire::slots::{Redirect, SlotMap};

use crate::support::wait_until;

fn start(shards: u16, replicas: u16) -> ManagedCluster {
    let spec = ClusterSpec {
        shards,
        replicas,
        node_timeout: Duration::from_millis(1000),
    };
    ManagedCluster::start(spec, &ServerConfig::default(), Duration::from_secs(20)).unwrap()
}

#[test]
fn three_shards_form_and_route_keys_by_the_slot_we_compute() {
    let cluster = start(3, 1);
    for node in cluster.nodes() {
        let text: String = query(node, redis::cmd("CLUSTER").arg("INFO")).unwrap();
        let info = cluster_info(&text);
        assert_eq!(info["cluster_state"], "ok", "{text}");
        assert_eq!(info["cluster_slots_assigned"], "16384");
        assert_eq!(info["cluster_known_nodes"], "6");
        assert_eq!(info["cluster_size"], "3");
    }
    let primary = &cluster.shards()[0].primary;
    let keys = [
        "",
        "a",
        "orders",
        "{orders}:p0",
        "sd:run:orders:p17",
        "x{}y",
        "{a}{b}",
    ];
    let numbered = (0..200).map(|i| format!("sd:r{i}:s:p{}", i % 7));
    for key in keys.iter().map(|k| k.to_string()).chain(numbered) {
        let theirs: u16 = query(primary, redis::cmd("CLUSTER").arg("KEYSLOT").arg(&key)).unwrap();
        assert_eq!(key_slot(key.as_bytes()), theirs, "{key:?}");
    }
    // The slot map read from any node names each shard's primary.
    let reply: redis::Value = query(primary, redis::cmd("CLUSTER").arg("SLOTS")).unwrap();
    let map = SlotMap::from_cluster_slots(&reply, "127.0.0.1").unwrap();
    assert_eq!(map.uncovered(), 0);
    for shard in cluster.shards() {
        let addr = format!("127.0.0.1:{}", shard.primary.port());
        for slot in [shard.slots.0, shard.slots.1] {
            assert_eq!(map.owner(slot), Some(addr.as_str()));
        }
    }
    // The shard owning a key's slot takes it; another answers MOVED.
    let key = "sd:run:orders";
    let slot = key_slot(key.as_bytes());
    for shard in cluster.shards() {
        let owns = (shard.slots.0..=shard.slots.1).contains(&slot);
        let mut conn = crate::support::client(&shard.primary);
        let reply = redis::cmd("XLEN").arg(key).query::<redis::Value>(&mut conn);
        match owns {
            true => assert!(reply.is_ok(), "{reply:?}"),
            false => {
                let Err(e) = reply else { panic!("{reply:?}") };
                let owner = map.owner(slot).unwrap().to_string();
                let (code, detail) = (e.code().unwrap_or_default(), e.detail().unwrap_or_default());
                let redirect = Redirect::parse(&format!("{code} {detail}"));
                assert_eq!(
                    redirect,
                    Some(Redirect::Moved { slot, addr: owner }),
                    "{e:?}"
                );
            }
        }
    }
}

#[test]
fn a_killed_primary_is_replaced_by_its_replica() {
    // A failover needs a majority of primaries to vote: three shards.
    let mut cluster = start(3, 1);
    cluster.shards_mut()[0].primary.kill9().unwrap();
    wait_until(Duration::from_secs(15), "the replica to take over", || {
        let replica = &cluster.shards()[0].replicas[0];
        replica
            .info("replication")
            .is_ok_and(|i| i.contains("role:master"))
    });
    cluster.wait_ok(Duration::from_secs(15)).unwrap();
    let replica = &cluster.shards()[0].replicas[0];
    let slot_owner: String = query(replica, redis::cmd("CLUSTER").arg("NODES")).unwrap();
    let me = slot_owner.lines().find(|l| l.contains("myself")).unwrap();
    assert!(me.contains("master") && me.ends_with("0-5460"), "{me}");
}
