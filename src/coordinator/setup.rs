//! Before the run clock starts: the fault proxy a drill needs, what the
//! server is (name, version, the settings that shape results, the stream
//! features it has, and whether the scenario's needs are among them), the
//! consumer groups, and every actor's connection, so that connecting a
//! thousand actors never lands in the first latencies.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use super::placement::Placement;
use crate::actors::chaos::SharedCluster;
use crate::actors::workers::Workers;
use crate::connect::{CONNECT_TIMEOUT, Conn, Target};
use crate::error::{Error, Result};
use crate::metrics::{ServerInfo, StreamFeature};
use crate::plan::Plan;
use crate::proxy::{FaultProxy, NodeProxies};
use crate::tls::Negotiated;
use crate::wire::{Endpoint, Opened};

/// The fault proxy of a run with network faults, forwarding to the Redis at
/// `target` (TLS bytes too: the proxy never reads what it forwards).
pub(super) async fn start_proxy(plan: &Plan, target: &Target) -> Result<Option<Arc<FaultProxy>>> {
    if !plan.proxied() {
        return Ok(None);
    }
    let upstream = crate::connect::proxy_upstream(target.url()).await?;
    // The proxy answers even when Redis does not: check Redis first, so an
    // unreachable one is named as such rather than as a reset proxy connection.
    let reach = tokio::time::timeout(
        crate::connect::CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(upstream),
    );
    let reached = match reach.await {
        Ok(connected) => connected.map(drop),
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    };
    reached.map_err(|source| Error::proxy(format!("reach Redis at {upstream}"), source))?;
    let proxy = FaultProxy::start_seeded(upstream, plan.scenario.seed).await?;
    Ok(Some(Arc::new(proxy)))
}

/// A cluster run with network faults: a proxy in front of each node of
/// the managed cluster, which the actors dial instead of the node
/// (docs/cluster.md, "Network faults on one shard").
pub(super) async fn start_node_proxies(
    plan: &Plan,
    cluster: Option<&SharedCluster>,
) -> Result<Option<Arc<NodeProxies>>> {
    let Some(cluster) = cluster.filter(|_| plan.has_network_faults()) else {
        return Ok(None);
    };
    let shards: Vec<Vec<SocketAddr>> = {
        let cluster =
            (cluster.lock()).map_err(|_| Error::Internal("cluster lock poisoned".into()))?;
        let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        (cluster.shards().iter())
            .map(|s| {
                let replicas = s.replicas.iter().map(|r| at(r.port()));
                std::iter::once(at(s.primary.port()))
                    .chain(replicas)
                    .collect()
            })
            .collect()
    };
    let nodes = NodeProxies::start(&shards, plan.scenario.seed).await?;
    Ok(Some(Arc::new(nodes)))
}

/// Closes the proxy and its connections. The chaos actor has stopped by now,
/// so this is the last handle; if not, dropping it closes the proxy as well.
pub(super) async fn stop_proxy(proxy: Option<Arc<FaultProxy>>) {
    if let Some(Ok(proxy)) = proxy.map(Arc::try_unwrap) {
        proxy.stop().await;
    }
}

/// What the server is and has, and the settings that shape what a run measures.
pub(super) struct Described {
    /// `redis_version` from INFO (Valkey's is the Redis it is compatible with).
    pub redis_version: String,
    pub config: std::collections::BTreeMap<String, String>,
    pub server: ServerInfo,
}

/// Reads what the server says it is and the settings that shape what a run
/// measures, and probes its stream features on a key of the run's own.
/// `binary`: what a managed server runs.
pub(super) async fn describe_server(
    plan: &Plan,
    conn: &mut Conn,
    url: &str,
    binary: Option<String>,
) -> Result<Described> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(conn)
        .await
        .map_err(|e| Error::redis(url, "reading INFO server", e))?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let server = ServerInfo {
        binary,
        features: probe_features(conn, &probe_key(plan)).await,
        ..ServerInfo::from_info(&info)
    };
    let mut config = std::collections::BTreeMap::new();
    for key in [
        "appendonly",
        "appendfsync",
        "save",
        "maxmemory",
        "maxmemory-policy",
    ] {
        // Managed servers answer; a hosted Redis may forbid CONFIG, which is fine.
        if let Ok((_, value)) = redis::cmd("CONFIG")
            .arg("GET")
            .arg(key)
            .query_async::<(String, String)>(conn)
            .await
        {
            config.insert(key.to_string(), value);
        }
    }
    Ok(Described {
        redis_version: version,
        config,
        server,
    })
}

/// The key the feature probe makes and deletes again: one of the run's own,
/// and each segment's own, as they probe at once.
pub(super) fn probe_key(plan: &Plan) -> String {
    let key = match plan.streams.first() {
        Some(s) => format!("{}:feature-probe", s.key),
        None => format!("{}{}:feature-probe", crate::plan::KEY_PREFIX, plan.run_id),
    };
    match plan.segment.is_whole() {
        true => key,
        false => format!("{key}:{}", plan.segment.index),
    }
}

/// The group the feature probe makes on its key.
pub(super) const PROBE_GROUP: &str = "streamdrill-probe";

/// The stream features that answer when tried on `key` (a stream and group
/// made for the purpose and deleted again), never inferred from a version
/// string. A feature whose probe fails for any reason counts as absent.
async fn probe_features(conn: &mut Conn, key: &str) -> Vec<StreamFeature> {
    let mut features = Vec::new();
    let created = create_group(key, PROBE_GROUP, "$")
        .query_async::<()>(conn)
        .await;
    if created.is_ok() {
        // An unknown command is an error; Redis 6.2+ answers [cursor, entries, ...].
        let claimed = redis::cmd("XAUTOCLAIM")
            .arg(key)
            .arg(PROBE_GROUP)
            .arg(PROBE_GROUP)
            .arg(0)
            .arg("0-0")
            .query_async::<redis::Value>(conn)
            .await;
        if claimed.is_ok() {
            features.push(StreamFeature::Xautoclaim);
        }
        let groups = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(key)
            .query_async::<Vec<std::collections::HashMap<String, redis::Value>>>(conn)
            .await;
        if groups.is_ok_and(|g| g.iter().any(|g| g.contains_key("lag"))) {
            features.push(StreamFeature::GroupLag);
        }
        // A server without the option reads ACKED as the entry id and
        // refuses it; the entry made on the probe key goes with it.
        let acked = redis::cmd("XADD")
            .arg(key)
            .arg("ACKED")
            .arg("MAXLEN")
            .arg("=")
            .arg(1)
            .arg("*")
            .arg("sd")
            .arg("probe")
            .query_async::<redis::Value>(conn)
            .await;
        if acked.is_ok() {
            features.push(StreamFeature::TrimPolicy);
        }
    }
    let _ = redis::cmd("DEL").arg(key).query_async::<()>(conn).await;
    features
}

/// Refuses, before anything starts, a scenario that needs a stream feature
/// the server lacks. (A missing group lag only leaves the sampler's lag
/// unknown, which every view already shows as such.)
pub(super) fn check_features(plan: &Plan, server: &ServerInfo, url: &str) -> Result<()> {
    super::trim_policy::check_server(plan, server, url)?;
    let feature = StreamFeature::Xautoclaim;
    let Some(group) = plan.groups.iter().find(|g| g.reclaim.is_some()) else {
        return Ok(());
    };
    if server.has(feature) {
        return Ok(());
    }
    Err(Error::ServerLacks {
        url: url.to_string(),
        server: server.label(),
        problem: format!(
            "it has no {}, which group `{}`'s `reclaim` needs: run against a server that \
             has it (`[redis] server` or `--server` for a managed one), or remove `reclaim`",
            feature.describe(),
            group.name
        ),
    })
}

pub(super) async fn create_groups(plan: &Plan, conn: &mut Conn, url: &str) -> Result<()> {
    for g in &plan.groups {
        for key in plan.partitions(g.stream).iter().map(|s| &s.key) {
            let created = create_group(key, &g.name, &g.start_id)
                .query_async::<()>(conn)
                .await;
            match created {
                // Another segment of the run created it first (docs/segments.md, "Segments").
                Err(e) if e.code() == Some("BUSYGROUP") && !plan.segment.is_whole() => {}
                created => created.map_err(|e| {
                    Error::redis(url, format!("creating group {} on {key}", g.name), e)
                })?,
            }
        }
    }
    Ok(())
}

/// `XGROUP CREATE key group start MKSTREAM`: the stream is made if need be.
pub(super) fn create_group(key: &str, group: &str, start: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("XGROUP");
    cmd.arg("CREATE")
        .arg(key)
        .arg(group)
        .arg(start)
        .arg("MKSTREAM");
    cmd
}

/// Each actor's own connections, opened before the run clock starts.
pub(super) struct Connections {
    /// Per group, per consumer.
    pub consumers: Vec<Vec<ConsumerLink>>,
    /// Per producer connection: one per node its stream's keys live on,
    /// and per key the index of its node's.
    pub producers: Vec<ProducerLinks>,
}

/// A consumer's connection to the node of its keys, and where else it may ask.
pub(super) struct ConsumerLink {
    pub endpoint: Arc<Endpoint>,
    pub conn: Opened,
    /// A cluster's primaries (`Placement::fallbacks`).
    pub fallbacks: Vec<Arc<Endpoint>>,
}

pub(super) struct ProducerLinks {
    pub links: Vec<(Arc<Endpoint>, Option<Opened>)>,
    pub key_links: Vec<usize>,
}

/// Over TLS, one connection of the actors' own kind before any other: a
/// certificate problem is named in the harness's words (which file to
/// set), and what the handshake settled on is recorded. A TLS 1.3 server
/// refuses a missing client certificate only after the handshake, so a
/// PING must come back too.
pub(super) async fn handshake(target: &Target) -> Result<Option<Negotiated>> {
    if target.tls().is_none() {
        return Ok(None);
    }
    let shown = target.to_string();
    let endpoint = Endpoint::parse(target.url(), target.tls())?;
    let refused = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
            let e = e.to_string();
            Error::Tls(format!("{shown}: {}", e.trim_start_matches("TLS: ")))
        }
        _ => Error::redis(
            &shown,
            crate::connect::UNREACHABLE,
            redis::RedisError::from(e),
        ),
    };
    let (mut replies, mut writer, negotiated) = endpoint
        .open_negotiated(CONNECT_TIMEOUT)
        .await
        .map_err(refused)?;
    let ping = async {
        if !writer.write(b"*1\r\n$4\r\nPING\r\n")? {
            while !writer.flush()? {
                writer.writable().await?;
            }
        }
        replies.next_chunk().await
    };
    tokio::time::timeout(CONNECT_TIMEOUT, ping)
        .await
        .map_err(|_| refused(std::io::ErrorKind::TimedOut.into()))?
        .map_err(refused)?;
    Ok(negotiated)
}

pub(super) async fn open_connections(
    plan: &Plan,
    target: &Target,
    placement: &Placement,
    workers: &Workers,
) -> Result<Connections> {
    // Producers and consumers speak RESP themselves (see `wire`).
    let url = target.to_string();
    let open = move |endpoint: Arc<Endpoint>| {
        let url = url.clone();
        async move {
            (endpoint.open(CONNECT_TIMEOUT).await).map_err(|e| {
                let e = redis::RedisError::from(e);
                Error::redis(&url, crate::connect::UNREACHABLE, e)
            })
        }
    };
    // Actors are numbered across the run, consumers first, then producer
    // connections: that number picks the worker (see `Workers::of`).
    let mut consumers = Vec::with_capacity(plan.groups.len());
    let mut actor = 0;
    for group in &plan.groups {
        // A consumer's keys share a slot (`scenario::cluster`), hence a node.
        let nodes: Vec<Arc<Endpoint>> = (plan.consumers_run(group))
            .map(|c| {
                let keys = plan.consumer_keys(group, c);
                placement.node(placement.node_of(&keys[0])).clone()
            })
            .collect();
        let n = nodes.len();
        let (open, fallbacks) = (open.clone(), placement.fallbacks());
        let opened = workers.open_each(actor, n, move |c| {
            let (endpoint, open) = (nodes[c].clone(), open.clone());
            let fallbacks = fallbacks.clone();
            async move {
                let conn = open(endpoint.clone()).await?;
                Ok(ConsumerLink {
                    endpoint,
                    conn,
                    fallbacks,
                })
            }
        });
        consumers.push(opened.await?);
        actor += n;
    }
    let wanted: Vec<(Vec<Arc<Endpoint>>, Vec<usize>)> = (plan.producers_by_connection().iter())
        .map(|p| {
            let keys: Vec<String> = (plan.partitions(p[0].stream).iter())
                .map(|s| s.key.clone())
                .collect();
            placement.links_of(&keys)
        })
        .collect();
    let opened = workers.open_each(actor, wanted.len(), move |i| {
        let (endpoints, key_links) = wanted[i].clone();
        let open = open.clone();
        async move {
            let mut links = Vec::with_capacity(endpoints.len());
            for endpoint in endpoints {
                let conn = open(endpoint.clone()).await?;
                links.push((endpoint, Some(conn)));
            }
            Ok(ProducerLinks { links, key_links })
        }
    });
    Ok(Connections {
        consumers,
        producers: opened.await?,
    })
}
