//! `[redis] cluster`: a Redis Cluster instead of one server, managed (its
//! size given here) or external (`mode = "external"`, the URL a seed node),
//! and what a scenario may ask of one
//! (docs/cluster.md, "Running against a cluster"). Every key a command
//! names must live in one slot, so what a run keys beside its streams
//! (dead letters, projections, replay checkpoints) and what needs one
//! server (its process, its proxy) is refused here until the harness
//! routes it. Pure; called by `validate`.

use serde::{Deserialize, Serialize};

use super::faults::{Link, Target};
use super::violation::Violation;
use super::{Dur, RedisMode, Scenario};

/// Most shards a managed cluster may have: every node is a process on this
/// host, and more than this only measures how the processes share its cores.
pub const MAX_SHARDS: u16 = 16;
/// Most replicas per shard.
pub const MAX_REPLICAS: u16 = 4;

/// `cluster = { shards = 3, replicas = 1, node_timeout = "2s" }` for a
/// managed cluster; `cluster = {}` with mode = "external", whose shape is
/// read from its nodes (docs/cluster.md, "External clusters").
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Managed only, and needed there: how many primaries to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u16>,
    /// Managed only.
    #[serde(default)]
    pub replicas: u16,
    /// `cluster-node-timeout`: how long a node may be unreachable before
    /// it is failed over; none takes the managed cluster's short default,
    /// so failovers take seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_timeout: Option<Dur>,
}

impl ClusterConfig {
    /// A managed cluster's shards; 0 when not given (refused there), and
    /// for an external cluster, whose faults name no shard.
    pub fn shard_count(&self) -> u16 {
        self.shards.unwrap_or(0)
    }
}

pub(super) fn check(s: &Scenario) -> Vec<Violation> {
    let mut v = Vec::new();
    let Some(c) = &s.redis.cluster else {
        for (i, f) in s.faults.iter().enumerate() {
            let (field, what, fix) = match f.kind.spec().target {
                Target::Slot { .. } | Target::Shard(_) => ("action", "", ""),
                Target::Network { shard: Some(_), .. } => {
                    ("shard", " with `shard`", ", or remove `shard`")
                }
                _ => continue,
            };
            v.push(Violation {
                field: format!("faults[{i}].{field}"),
                problem: format!(
                    "{}{what} acts on the shards of a cluster: add \
                     [redis] cluster = {{ shards = 3, replicas = 1 }}{fix}",
                    f.kind.action()
                ),
            });
        }
        return v;
    };
    let mut add = |field: String, problem: &str| {
        v.push(Violation {
            field,
            problem: problem.to_string(),
        })
    };
    if s.redis.mode == RedisMode::External {
        check_external(s, c, &mut add);
        return v;
    }
    match c.shards {
        None => add(
            "redis.cluster.shards".into(),
            "a managed cluster needs its size: shards = 3 (or, for a cluster of yours, \
             mode = \"external\", url = \"redis://NODE:PORT\" and cluster = {})",
        ),
        Some(n) if n == 0 || n > MAX_SHARDS => add(
            "redis.cluster.shards".into(),
            &format!("must be 1 to {MAX_SHARDS} (every node runs on this host)"),
        ),
        Some(_) => {}
    }
    if c.replicas > MAX_REPLICAS {
        add(
            "redis.cluster.replicas".into(),
            &format!("must be 0 to {MAX_REPLICAS}"),
        );
    }
    if c.node_timeout.is_some_and(|t| t.0.as_millis() < 100) {
        add(
            "redis.cluster.node_timeout".into(),
            "must be at least 100ms: shorter, nodes fail each other over on a busy host",
        );
    }
    let single = |r: &super::RedisConfig| {
        [
            (r.replica, "replica", "use cluster.replicas"),
            (r.tls, "tls", "remove it"),
            (r.power_fs, "power_fs", "remove it"),
        ]
    };
    for (set, field, fix) in single(&s.redis) {
        if set {
            add(
                format!("redis.{field}"),
                &format!("applies to a single server, not a cluster: {fix}"),
            );
        }
    }
    check_groups(s, &mut add);
    for (i, f) in s.faults.iter().enumerate() {
        if let Target::Slot { stream, partition } = f.kind.spec().target {
            check_slot(s, c, i, stream, partition, &f.kind, &mut add);
        } else if let Target::Shard(shard) = f.kind.spec().target {
            check_shard(c, i, shard, &mut add);
        } else if let Target::Network { link, shard } = f.kind.spec().target {
            check_network(c, i, link, shard, &mut add);
        } else if !matches!(
            f.kind.spec().target,
            Target::Consumer(_) | Target::Producer(_)
        ) {
            add(
                format!("faults[{i}]"),
                "server faults act on one server; cluster runs take consumer, producer, \
                 network and shard faults (kill_primary, failover_shard, reshard) only for now",
            );
        }
    }
    v
}

/// An external cluster: its nodes are someone else's processes, its size
/// is read from them, and its slots are where its owner put them. So the
/// managed cluster's fields, and every fault that acts on the nodes or
/// moves slots, are refused; clients' faults act on the harness alone.
fn check_external(s: &Scenario, c: &ClusterConfig, add: &mut impl FnMut(String, &str)) {
    let managed = [
        (c.shards.is_some(), "shards"),
        (c.replicas != 0, "replicas"),
        (c.node_timeout.is_some(), "node_timeout"),
    ];
    for (set, field) in managed {
        if set {
            add(
                format!("redis.cluster.{field}"),
                "sizes a managed cluster that streamdrill starts; an external cluster's \
                 shape is read from its nodes (CLUSTER SLOTS): remove it, leaving \
                 cluster = {} (on the command line: --set 'redis.cluster={}')",
            );
        }
    }
    check_groups(s, add);
    for (i, f) in s.faults.iter().enumerate() {
        let why = match f.kind.spec().target {
            Target::Consumer(_) | Target::Producer(_) => continue,
            Target::Slot { .. } => {
                "moves a slot of the cluster, which would change how a cluster that is not \
                 streamdrill's own is laid out: reshard only a managed cluster"
            }
            Target::Shard(_) => {
                "kills or fails over a node, which needs the node's process or would hand \
                 your cluster's primary over: run it on a managed cluster"
            }
            Target::Network { .. } => {
                "needs a fault proxy in front of every node, which streamdrill starts only \
                 for a managed cluster's nodes: run it on a managed cluster"
            }
            _ => {
                "acts on one server's process or settings; an external cluster takes \
                 consumer and producer faults only"
            }
        };
        add(
            format!("faults[{i}].action"),
            &format!("{} {why}", f.kind.action()),
        );
    }
}

/// What every cluster run asks of its groups.
fn check_groups(s: &Scenario, add: &mut impl FnMut(String, &str)) {
    for (i, g) in s.groups.iter().enumerate() {
        let keyed = [
            (g.projection.is_some(), "projection"),
            (g.max_deliveries.is_some(), "max_deliveries"),
            (!g.understands.is_empty(), "understands"),
            (g.replay.is_some(), "replay"),
        ];
        for (set, field) in keyed {
            if set {
                add(
                    format!("groups[{i}].{field}"),
                    "writes keys beside the stream, which a cluster may keep on another \
                     shard; not routed in cluster runs yet: remove it, or run without \
                     `cluster`",
                );
            }
        }
        check_consumers(s, i, add);
    }
}

/// A reshard names a partition of a stream that is written, and a shard
/// the cluster has.
fn check_slot(
    s: &Scenario,
    c: &ClusterConfig,
    i: usize,
    stream: &str,
    partition: u32,
    kind: &super::FaultKind,
    add: &mut impl FnMut(String, &str),
) {
    if !s.producers.iter().any(|p| p.stream == stream) {
        add(
            format!("faults[{i}].stream"),
            &format!("no producer writes {stream:?}: name a stream of [[producers]]"),
        );
        return;
    }
    let partitions = s.partitions_of(stream);
    if partition >= partitions {
        add(
            format!("faults[{i}].partition"),
            &format!("{stream} has partitions 0 to {}", partitions - 1),
        );
    }
    if let super::FaultKind::Reshard {
        to_shard: Some(to), ..
    } = kind
        && *to >= c.shard_count()
    {
        add(
            format!("faults[{i}].to_shard"),
            &format!(
                "the cluster has shards 0 to {}",
                c.shard_count().saturating_sub(1)
            ),
        );
    }
    if c.shard_count() < 2 {
        add(
            format!("faults[{i}].action"),
            "a slot moves between shards: the cluster needs at least 2",
        );
    }
}

/// A shard's primary is killed or handed over for its replica to take
/// over: the shard exists, has a replica, and the primaries are enough for
/// a majority to vote.
fn check_shard(c: &ClusterConfig, i: usize, shard: u16, add: &mut impl FnMut(String, &str)) {
    if shard >= c.shard_count() {
        add(
            format!("faults[{i}].shard"),
            &format!(
                "the cluster has shards 0 to {}",
                c.shard_count().saturating_sub(1)
            ),
        );
    }
    if c.replicas == 0 {
        add(
            format!("faults[{i}].action"),
            "a killed primary is replaced by one of its replicas: set \
             redis.cluster.replicas = 1 (without one its slots stay down)",
        );
    }
    if c.shard_count() < 3 {
        add(
            format!("faults[{i}].action"),
            "a failover needs a majority of the primaries to vote, and one of two is no \
             majority: set redis.cluster.shards = 3 or more",
        );
    }
}

/// A network fault in a cluster acts on the clients' connections to one
/// shard's nodes, or every shard's, through each node's proxy
/// (docs/cluster.md, "Network faults on one shard"); replicas follow
/// their primaries over no proxy of streamdrill's.
fn check_network(
    c: &ClusterConfig,
    i: usize,
    link: Link,
    shard: Option<u16>,
    add: &mut impl FnMut(String, &str),
) {
    if link != Link::Clients {
        add(
            format!("faults[{i}].link"),
            &format!(
                "a cluster's replicas follow their primaries straight, not through a proxy: \
                 remove link = \"{}\" (the clients' link, the default, is the one a cluster \
                 run proxies), and name a shard with `shard`",
                link.name()
            ),
        );
    }
    if let Some(shard) = shard.filter(|&s| s >= c.shard_count()) {
        add(
            format!("faults[{i}].shard"),
            &format!(
                "there is no shard {shard}: the cluster has shards 0 to {}",
                c.shard_count().saturating_sub(1)
            ),
        );
    }
}

/// One XREADGROUP names every key a consumer reads, and a cluster refuses a
/// command whose keys are in different slots: a consumer may own several
/// partitions only when the stream's key has a hash tag, which puts them
/// all in one slot (docs/cluster.md, "Slots and hash tags").
fn check_consumers(s: &Scenario, i: usize, add: &mut impl FnMut(String, &str)) {
    let g = &s.groups[i];
    let partitions = (s.streams.iter())
        .find(|st| st.key == g.stream)
        .map_or(1, |st| st.partitions);
    let tagged = crate::slot::has_hash_tag(g.stream.as_bytes());
    if partitions > 1 && g.consumers < partitions && !tagged {
        add(
            format!("groups[{i}].consumers"),
            &format!(
                "{} consumers share {partitions} partitions, so some read several keys in one \
                 XREADGROUP, which a cluster refuses across slots: set consumers = \
                 {partitions}, or give the stream a hash tag (key = \"{{{}}}\") to keep its \
                 partitions in one slot",
                g.consumers, g.stream
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::{Overrides, load_str};

    const BASE: &str = r#"
name = "sharded"
duration = "10s"
[redis]
cluster = { shards = 3 }
[[streams]]
key = "orders"
partitions = 4
[[producers]]
stream = "orders"
rate = 100
[[groups]]
stream = "orders"
name = "billing"
consumers = 4
"#;

    fn load(edits: &[&str]) -> Result<crate::scenario::Scenario, String> {
        let edits: Vec<String> = edits.iter().map(|e| e.to_string()).collect();
        let o = Overrides::parse(&edits).unwrap();
        load_str(BASE, "sharded.toml", &o).map_err(|e| e.to_string())
    }

    #[test]
    fn a_cluster_with_one_consumer_per_partition_loads() {
        let s = load(&[]).unwrap();
        let c = s.redis.cluster.unwrap();
        assert_eq!((c.shards, c.replicas, c.node_timeout), (Some(3), 0, None));
    }

    #[test]
    fn consumers_reading_several_slots_are_refused_unless_the_key_is_tagged() {
        let e = load(&["groups.0.consumers=2"]).unwrap_err();
        assert!(
            e.contains("groups[0].consumers") && e.contains("hash tag"),
            "{e}"
        );
        let tagged = [
            "streams.0.key={orders}",
            "producers.0.stream={orders}",
            "groups.0.stream={orders}",
            "groups.0.consumers=2",
        ];
        assert!(load(&tagged).is_ok());
    }

    #[test]
    fn what_a_cluster_run_cannot_route_yet_is_refused_by_field() {
        for (edit, field) in [
            ("redis.cluster.shards=0", "redis.cluster.shards"),
            ("redis.cluster.replicas=9", "redis.cluster.replicas"),
            (
                "redis.cluster.node_timeout=10ms",
                "redis.cluster.node_timeout",
            ),
            ("redis.replica=true", "redis.replica"),
            ("groups.0.projection=naive", "groups[0].projection"),
            ("faults=[{at=\"1s\",action=\"kill_redis\"}]", "faults[0]"),
        ] {
            let e = load(&[edit]).unwrap_err();
            assert!(e.contains(field), "{edit}: {e}");
        }
        let crash = "faults=[{at=\"1s\",action=\"crash_consumer\",consumer=\"billing/0\"}]";
        let ok = load(&[crash]);
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn network_faults_act_on_a_shard_or_every_shard_of_the_clients_link() {
        let fault = |fields: &str| {
            format!("faults=[{{at=\"1s\",action=\"network_blackhole\",duration=\"1s\"{fields}}}]")
        };
        for fields in ["", ",shard=2"] {
            let ok = load(&[&fault(fields)]);
            assert!(ok.is_ok(), "{fields}: {ok:?}");
        }
        let s = load(&[&fault(",shard=1")]).unwrap();
        assert_eq!(s.faults[0].kind.label(), "network_blackhole shard 1");
        for (fields, field, says) in [
            (",shard=3", "faults[0].shard", "shards 0 to 2"),
            (",link=\"replication\"", "faults[0].link", "remove link"),
        ] {
            let e = load(&[&fault(fields)]).unwrap_err();
            assert!(e.contains(field) && e.contains(says), "{fields}: {e}");
        }
        // Two blackholes at once: on two shards they may, but one on every
        // shard overlaps one on any.
        let two = |a: &str, b: &str| {
            format!(
                "faults=[{{at=\"1s\",action=\"network_blackhole\",duration=\"1s\"{a}}},\
                 {{at=\"1500ms\",action=\"network_blackhole\",duration=\"1s\"{b}}}]"
            )
        };
        assert!(load(&[&two(",shard=0", ",shard=1")]).is_ok());
        let e = load(&[&two("", ",shard=1")]).unwrap_err();
        assert!(e.contains("faults[1].at") && e.contains("overlaps"), "{e}");
    }

    const EXTERNAL: [&str; 2] = ["redis.mode=external", "redis.url=redis://10.0.0.1:7000"];

    #[test]
    fn an_external_cluster_is_an_empty_cluster_table_with_a_seed_url() {
        // The file's managed cluster, pointed at a cluster of one's own as
        // the refusal says (what `--redis URL` does, then `--set`).
        let e = load(&EXTERNAL).unwrap_err();
        assert!(
            e.contains("redis.cluster.shards") && e.contains("--set 'redis.cluster={}'"),
            "{e}"
        );
        let s = load(&[EXTERNAL[0], EXTERNAL[1], "redis.cluster={}"]).unwrap();
        assert_eq!(s.redis.cluster, Some(Default::default()));
        // What every cluster run asks still holds.
        let e = load(&[
            EXTERNAL[0],
            EXTERNAL[1],
            "redis.cluster={}",
            "groups.0.consumers=2",
        ]);
        assert!(e.unwrap_err().contains("groups[0].consumers"));
        let e = load(&["redis.cluster={}"]).unwrap_err();
        assert!(
            e.contains("redis.cluster.shards") && e.contains("external"),
            "{e}"
        );
    }

    #[test]
    fn an_external_cluster_refuses_managed_fields_and_faults_on_its_nodes() {
        for (edit, field, says) in [
            (
                "redis.cluster={replicas=1}",
                "redis.cluster.replicas",
                "managed",
            ),
            (
                "redis.cluster={node_timeout=\"1s\"}",
                "redis.cluster.node_timeout",
                "managed",
            ),
            (
                "faults=[{at=\"1s\",action=\"kill_primary\",shard=0}]",
                "faults[0].action",
                "process",
            ),
            (
                "faults=[{at=\"1s\",action=\"reshard\",stream=\"orders\",partition=0}]",
                "faults[0].action",
                "moves a slot",
            ),
            (
                "faults=[{at=\"1s\",action=\"network_blackhole\",duration=\"1s\"}]",
                "faults[0].action",
                "fault proxy",
            ),
            (
                "faults=[{at=\"1s\",action=\"kill_redis\"}]",
                "faults[0].action",
                "process",
            ),
        ] {
            let e = load(&[EXTERNAL[0], EXTERNAL[1], edit]).unwrap_err();
            assert!(e.contains(field) && e.contains(says), "{edit}: {e}");
        }
        let crash = "faults=[{at=\"1s\",action=\"crash_consumer\",consumer=\"billing/0\"}]";
        let ok = load(&[EXTERNAL[0], EXTERNAL[1], "redis.cluster={}", crash]);
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn a_shard_needs_a_cluster() {
        let toml = BASE.replace("[redis]\ncluster = { shards = 3 }\n", "");
        let toml =
            format!("{toml}[[faults]]\nat = \"1s\"\naction = \"network_reset\"\nshard = 0\n");
        let e = load_str(&toml, "x.toml", &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("faults[0].shard") && e.contains("remove `shard`"),
            "{e}"
        );
    }
}
