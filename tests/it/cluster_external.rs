//! A cluster of real servers that the run did not start, driven as an
//! external one from a seed URL (docs/cluster.md, "External clusters"):
//! keys on the shards their slots belong to, the ledger exact, the run's
//! keys deleted afterwards; and a user refused one command on every node
//! stops the run before the clock starts (docs/acl.md, "The preflight").

use std::time::Duration;

use streamdrill::Error;
use streamdrill::connect::Target;
use streamdrill::coordinator::check_permissions;
use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::scenario::{Overrides, load_str};
use streamdrill::server::ServerConfig;
use streamdrill::server::cluster::{ClusterSpec, ManagedCluster, query, slot_ranges};

use crate::support::run_loaded;

fn start() -> ManagedCluster {
    let spec = ClusterSpec {
        shards: 3,
        replicas: 0,
        node_timeout: Duration::from_millis(2000),
    };
    ManagedCluster::start(spec, &ServerConfig::default(), Duration::from_secs(20)).unwrap()
}

fn scenario(url: &str) -> String {
    format!(
        r#"
name = "ext-cluster"
duration = "2s"
warmup = "500ms"
drain_timeout = "5s"
[redis]
mode = "external"
url = "{url}"
cluster = {{}}
[[streams]]
key = "orders"
partitions = 3
[[producers]]
stream = "orders"
rate = 600
[[groups]]
stream = "orders"
name = "billing"
consumers = 3
block = "50ms"
"#
    )
}

/// `command`'s calls on every node, from INFO commandstats.
fn calls(cluster: &ManagedCluster, command: &str) -> u64 {
    let line = format!("cmdstat_{command}:calls=");
    (cluster.nodes())
        .map(|node| {
            let info: String = query(node, redis::cmd("INFO").arg("commandstats")).unwrap();
            (info.lines())
                .find_map(|l| l.strip_prefix(line.as_str()))
                .and_then(|rest| rest.split(',').next()?.parse().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// The error of a run expected to stop before it starts.
fn refused(scenario: streamdrill::scenario::Scenario, out: &std::path::Path) -> Error {
    match run_scenario(scenario, RunOptions::new(out).workers(1)) {
        Ok(_) => panic!("the run was expected to be refused"),
        Err(e) => e,
    }
}

fn keys_on(cluster: &ManagedCluster) -> u64 {
    let dbsize = |node| query::<u64>(node, &redis::cmd("DBSIZE")).unwrap();
    cluster.nodes().map(dbsize).sum()
}

#[test]
fn an_external_cluster_runs_from_its_seed_and_is_left_without_the_runs_keys() {
    let cluster = start();
    let seed = &cluster.seed_urls()[1];
    let loaded = load_str(&scenario(seed), "ext.toml", &Overrides::default()).unwrap();
    let (s, _dir) = run_loaded(loaded);

    let c = s
        .cluster
        .as_ref()
        .expect("an external cluster run reports its cluster");
    assert_eq!(c.primaries.len(), 3);
    assert_eq!(c.keys.len(), 3);
    // Each key on the shard that serves its slot: the slot as a node
    // computes it, the shard as the cluster was formed.
    let ranges = slot_ranges(3);
    for k in &c.keys {
        let slot: u16 = query(
            cluster.nodes().next().unwrap(),
            redis::cmd("CLUSTER").arg("KEYSLOT").arg(&k.key),
        )
        .unwrap();
        assert_eq!(slot, k.slot, "{k:?}");
        let shard = ranges
            .iter()
            .position(|(a, b)| (*a..=*b).contains(&slot))
            .unwrap();
        let port = cluster.shards()[shard].primary.port();
        assert!(
            k.node.ends_with(&format!(":{port}")),
            "{k:?}: shard {shard} is :{port}"
        );
        assert_eq!(k.shard_at_end, Some(k.shard), "{k:?}");
    }
    let g = &s.groups[0];
    for p in [Some(&g.measured), g.warmup.as_ref()].into_iter().flatten() {
        assert_eq!((p.lost, p.duplicates), (0, 0), "{p:?}");
        assert_eq!(p.processed, p.produced_acked, "{p:?}");
    }
    assert!(
        s.produce.acked > 0 && s.produce.acked == s.produce.sent,
        "{:?}",
        s.produce
    );
    // What the shards counted: the entries on the keys, and each XADD.
    let added: u64 = s.verify.streams.iter().map(|v| v.entries_added).sum();
    assert_eq!(added, s.verify.produce_acked);
    // Every XADD the producers sent, warmup and measured, and the feature
    // probe's one (XADD ACKED on its own key, which tells whether the
    // server takes trim policies).
    let sent = s.produce.sent + s.warmup.produce_sent;
    assert_eq!(calls(&cluster, "xadd"), sent + 1);
    println!(
        "external cluster: {sent} XADDs sent, {} acked, {added} entries on the shards, \
         keys on shards {:?}",
        s.produce.acked + s.warmup.produce_acked,
        c.keys.iter().map(|k| k.shard).collect::<Vec<_>>()
    );
    assert_eq!(
        keys_on(&cluster),
        0,
        "the run deletes its keys on every shard"
    );
}

#[test]
fn a_command_refused_on_every_node_stops_the_run_before_the_clock_starts() {
    let cluster = start();
    let rule = "drill on >pw resetkeys ~sd:* resetchannels -@all +info +cluster|slots +xadd \
                +xgroup|create +xreadgroup +xpending +xrange +xlen +xinfo|stream \
                +xinfo|groups +del +multi +discard";
    for node in cluster.nodes() {
        let mut setuser = redis::cmd("ACL");
        setuser
            .arg("SETUSER")
            .arg(rule.split_whitespace().collect::<Vec<_>>());
        query::<()>(node, &setuser).unwrap();
    }
    let seed = cluster.seed_urls()[0].replace("redis://", "redis://drill:pw@");
    let loaded = load_str(&scenario(&seed), "ext.toml", &Overrides::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = refused(loaded, out.path());
    let text = err.to_string();
    let Error::Refused { refusals, .. } = &err else {
        panic!("{err:?}")
    };
    // Each partition's XACK, once: the three keys are on three nodes.
    assert_eq!(refusals.len(), 3, "{text}");
    for r in refusals {
        assert!(r.command.starts_with("XACK sd:"), "{text}");
        assert!(r.reply.starts_with("NOPERM"), "{text}");
    }
    assert!(text.contains("ACL SETUSER drill +xack"), "{text}");
    assert_eq!(keys_on(&cluster), 0, "nothing was written: {text}");
    assert_eq!(calls(&cluster, "xgroup|create"), 0, "{text}");
}

/// A cluster node run as one server answers MOVED for keys it does not
/// serve, and a single server has no slot map: either mark, wrong, is told
/// before anything is written, with the fix.
#[test]
fn a_cluster_not_marked_as_one_or_a_server_marked_as_one_is_told_apart() {
    let cluster = start();
    let seed = &cluster.seed_urls()[0];
    let unmarked = scenario(seed).replace("cluster = {}\n", "");
    let loaded = load_str(&unmarked, "ext.toml", &Overrides::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = refused(loaded, out.path());
    let text = err.to_string();
    assert!(matches!(err, Error::Refused { .. }), "{text}");
    assert!(
        text.contains("MOVED") && text.contains("add cluster = {}"),
        "{text}"
    );
    assert_eq!(keys_on(&cluster), 0, "{text}");

    let server = crate::support::server();
    let loaded = load_str(&scenario(&server.url()), "ext.toml", &Overrides::default()).unwrap();
    let err = refused(loaded, out.path());
    let text = err.to_string();
    assert!(
        text.contains("not a Redis Cluster node") && text.contains("remove `cluster`"),
        "{text}"
    );
}

/// docs/acl.md's rule for the quickstart (its second `ACL SETUSER` line),
/// with `+cluster|slots`, lets the shipped cluster scenario run on a
/// cluster of one's own, as docs/acl.md, "Shipped scenarios" says.
#[test]
fn the_cluster_quickstart_passes_the_preflight_per_slot_as_the_documented_user() {
    let cluster = start();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/acl.md")).unwrap();
    let line = (doc.lines())
        .filter(|l| l.starts_with("ACL SETUSER "))
        .nth(1)
        .unwrap();
    let mut rule: Vec<&str> = line.split_whitespace().skip(2).collect();
    rule.push("+cluster|slots");
    for node in cluster.nodes() {
        query::<()>(node, redis::cmd("ACL").arg("SETUSER").arg(&rule)).unwrap();
    }
    let seed = cluster.seed_urls()[2].replace("redis://", "redis://drill:CHANGE-ME@");
    let mut overrides = Overrides::default();
    for (path, value) in [
        ("redis.mode", "external"),
        ("redis.url", seed.as_str()),
        ("redis.cluster", "{}"),
    ] {
        overrides.push(path, value);
    }
    let file = root.join("scenarios/cluster-quickstart.toml");
    let scenario = streamdrill::scenario::load_file(&file, &overrides).unwrap();
    let plan = streamdrill::plan::Plan::new(scenario, "acl-check".into());
    let target = Target::new(seed.clone(), None).unwrap().in_cluster();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let checked = runtime.block_on(check_permissions(&plan, &target));
    checked.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys_on(&cluster), 0, "the preflight writes nothing");
}
