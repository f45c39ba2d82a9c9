//! One whole run: pick the Redis (start a managed server, with a replica if
//! asked, or use the given URL), run the coordinator inside an actix System,
//! then build the summary, judge the SLOs and write the report directory.
//! Tests call this directly.

mod segment;

pub use segment::SegmentOptions;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use crate::actors::chaos::Replica;
use crate::connect::Target;
use crate::coordinator::{self, Managed, Measured};
use crate::cpu_idle::{CpuIdle, IdleHold};
use crate::error::{Error, Result};
use crate::live::{FaultSpan, Live, RunLabels};
use crate::metrics::Progress;
use crate::metrics::{IdleState, PowerFsUse};
use crate::plan::{Plan, SeedKind, Segment, derive_seed};
use crate::proxy::ThreadedProxy;
use crate::report::{self, RedisInfo, Summary, SummaryContext, TlsUse};
use crate::scenario::{Appendfsync, RedisConfig, RedisMode, Scenario};
use crate::server::cluster::{ClusterSpec, DEFAULT_NODE_TIMEOUT, ManagedCluster};
use crate::server::{Fsync, RedisServer, ServerConfig, ServerTls};
use crate::tls::{ClientTls, TlsOptions};

pub struct RunOptions {
    /// Parent of the run directory (`reports/` by default).
    pub out_dir: PathBuf,
    /// Called once per interval with live figures (the CLI prints a line).
    pub on_progress: Option<ProgressSink>,
    /// Threads producers and consumers run on (1: the coordinator's own);
    /// None: one for a small run, one per core for many actors.
    pub workers: Option<usize>,
    /// How idle CPUs wait while the run lasts (see `cpu_idle`).
    pub cpu_idle: CpuIdle,
    /// The run directory's name and the run's id (its Redis keys' prefix);
    /// None: both `<scenario>-<UTC time>`.
    pub named: Option<(String, String)>,
    /// Leave the run's keys on an external server rather than deleting
    /// them, so another tool (redis-cli, a test) can read them afterwards.
    pub keep_keys: bool,
    /// The live metrics endpoint's board, told the run's figures each
    /// second (docs/metrics-endpoint.md); None: no endpoint.
    pub live: Option<Live>,
    /// Run one segment of the scenario, meeting the others through Redis
    /// (docs/segments.md); None: the whole scenario.
    pub segment: Option<SegmentOptions>,
}

impl RunOptions {
    /// Run directories under `out_dir`; no progress callback, worker threads
    /// chosen by the run's size, idle CPUs left to the OS.
    pub fn new(out_dir: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            out_dir: out_dir.into(),
            on_progress: None,
            workers: None,
            cpu_idle: CpuIdle::default(),
            named: None,
            keep_keys: false,
            live: None,
            segment: None,
        }
    }

    /// Run one segment of the scenario (docs/segments.md).
    pub fn segment(mut self, segment: SegmentOptions) -> RunOptions {
        self.segment = Some(segment);
        self
    }

    /// Show the run's figures on a live metrics endpoint's board.
    pub fn live(mut self, live: Live) -> RunOptions {
        self.live = Some(live);
        self
    }

    /// Leave the run's keys on an external server for inspection.
    pub fn keep_keys(mut self) -> RunOptions {
        self.keep_keys = true;
        self
    }

    /// Write the run into `<out_dir>/<dir_name>` (which must not exist yet)
    /// under `run_id`, e.g. a capacity search's steps.
    pub fn named(mut self, dir_name: impl Into<String>, run_id: impl Into<String>) -> RunOptions {
        self.named = Some((dir_name.into(), run_id.into()));
        self
    }

    pub fn workers(mut self, workers: usize) -> RunOptions {
        self.workers = Some(workers);
        self
    }

    pub fn on_progress(mut self, sink: impl Fn(&Progress) + 'static) -> RunOptions {
        self.on_progress = Some(Box::new(sink));
        self
    }

    pub fn cpu_idle(mut self, cpu_idle: CpuIdle) -> RunOptions {
        self.cpu_idle = cpu_idle;
        self
    }
}

/// Receives the live figures once per interval.
pub type ProgressSink = Box<dyn Fn(&Progress)>;

pub struct RunReport {
    pub dir: PathBuf,
    pub summary: Summary,
}

/// Run a validated scenario end to end and write `<out_dir>/<run_id>/`.
/// The report is written even when SLOs fail; `summary.slo.passed` says so.
pub fn run_scenario(scenario: Scenario, options: RunOptions) -> Result<RunReport> {
    let system = actix::System::new();
    let (run_id, dir, meeting) = match (&options.segment, &options.named) {
        (Some(segment), _) => {
            let (meeting, run_id) = system.block_on(segment::join_meeting(&scenario, segment))?;
            let name = format!(
                "{run_id}-seg{}of{}",
                segment.segment.index, segment.segment.count
            );
            let dir = create_dir(&options.out_dir.join(name))?;
            (run_id, dir, Some(meeting))
        }
        (None, Some((dir_name, run_id))) => {
            let dir = create_dir(&options.out_dir.join(dir_name))?;
            (run_id.clone(), dir, None)
        }
        (None, None) => {
            let (run_id, dir) = create_run_dir(&options.out_dir, &scenario.name)?;
            (run_id, dir, None)
        }
    };
    let segment = meeting.as_ref().map_or(Segment::WHOLE, |m| m.segment);
    let plan = Plan::new(scenario, run_id).in_segment(segment);
    let idle = IdleHold::acquire(options.cpu_idle);
    // A cluster is thrown away whole when the run is over, like a managed server.
    let mut cluster = None;
    let (server, target) = match plan.redis.mode {
        RedisMode::Managed if plan.redis.cluster.is_some() => {
            let started = start_cluster(&plan)?;
            let target = Target::new(started.seed_urls()[0].clone(), None)?.in_cluster();
            cluster = Some(Arc::new(Mutex::new(started)));
            (None, target)
        }
        RedisMode::Managed => {
            let server = RedisServer::start(server_config(&plan))?;
            let target = Target::new(server.url(), server.client_tls())?;
            (Some(Arc::new(Mutex::new(server))), target)
        }
        RedisMode::External => (None, external_target(&plan.redis)?),
    };

    let (replica, link) = match (&server, plan.redis.replica) {
        (Some(primary), true) => {
            let (replica, link) = start_replica(&plan, primary)?;
            (Some(replica), link)
        }
        _ => (None, None),
    };

    let keep_keys = options.keep_keys;
    let on_progress: coordinator::OnProgress = match (options.on_progress, options.live.clone()) {
        (Some(f), None) => Rc::from(f),
        (None, None) => Rc::new(|_: &Progress| {}),
        (f, Some(live)) => {
            live.begin_run(live_labels(&plan));
            Rc::new(move |p: &Progress| {
                live.publish(p);
                if let Some(f) = &f {
                    f(p);
                }
            })
        }
    };
    let measured = system.block_on(async {
        let managed = Managed {
            server: server.clone(),
            replica: replica.clone(),
            cluster: cluster.clone(),
        };
        let external = managed.is_external();
        let measured = coordinator::execute(
            &plan,
            &target,
            managed,
            on_progress,
            options.workers,
            meeting.as_ref(),
        )
        .await;
        if let (Err(_), Some(m)) = (&measured, &meeting)
            && let Ok(mut conn) = target.connect(crate::plan::RESPONSE_TIMEOUT).await
        {
            m.abandon(&mut conn).await;
        }
        // A segment's keys go when the last segment has read them back, or
        // when the segments could not start together (none is using them).
        let last_out = match &measured {
            Ok(m) => m.last_out,
            Err(e) => matches!(e, Error::Segment(_)),
        };
        if external && !keep_keys && (meeting.is_none() || last_out) {
            // Never leave our keys behind on someone else's server, unless asked to.
            coordinator::delete_run_keys(&plan, &target).await;
        }
        measured
    })?;
    if let Some(live) = &options.live {
        live.finish_run(&measured.metrics.progress_at_end);
    }
    let power_fs = (server.as_ref())
        .and_then(|s| s.lock().ok()?.power_fs_stats())
        .map(|s| {
            let mean_us = |ns: u64, n: u64| ns as f64 / 1e3 / n.max(1) as f64;
            PowerFsUse {
                writes: s.writes,
                written_bytes: s.written_bytes,
                write_mean_us: mean_us(s.write_ns, s.writes),
                fsyncs: s.fsyncs,
                fsync_mean_us: mean_us(s.fsync_ns, s.fsyncs),
                cuts: s.cuts,
            }
        });
    drop(server);
    drop(cluster);
    drop(replica);
    drop(link);
    let cpu_idle = idle.state().clone();
    drop(idle);

    let mut summary = summarize(&plan, &target, &measured, cpu_idle);
    summary.power_fs = power_fs;
    summary.cluster = measured.cluster.clone().map(|mut c| {
        let from_s = summary.scenario.warmup.as_secs_f64();
        c.measure_shards(
            &measured.metrics.series,
            from_s,
            from_s + summary.measured_duration_s,
        );
        c
    });
    summary.segment = measured.segment.clone();
    if summary.segment.is_some() {
        // A segment's ledger is a share: the merge judges the run.
        summary.slo = report::SloReport::default();
    }
    report::write_run(&dir, &summary, &measured.metrics.series)?;
    if let Some(ledgers) = &measured.metrics.ledger_file {
        report::write_ledger_file(&dir, ledgers)?;
    }
    Ok(RunReport { dir, summary })
}

/// How long a managed cluster may take to form, its replicas in sync.
const CLUSTER_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `[redis] cluster`: the managed cluster, formed, `cluster_state:ok` on
/// every node and every replica in sync (docs/cluster.md, "Managed clusters").
fn start_cluster(plan: &Plan) -> Result<ManagedCluster> {
    let Some(c) = plan.redis.cluster else {
        return Err(Error::Internal(
            "start_cluster without [redis] cluster".into(),
        ));
    };
    let spec = ClusterSpec {
        shards: c.shard_count(),
        replicas: c.replicas,
        node_timeout: (c.node_timeout).map_or(DEFAULT_NODE_TIMEOUT, |t| t.0),
    };
    ManagedCluster::start(spec, &server_config(plan), CLUSTER_READY_TIMEOUT)
}

/// What the live endpoint labels the run with: its id, scenario, phases
/// and planned fault windows.
fn live_labels(plan: &Plan) -> RunLabels {
    RunLabels {
        run_id: plan.run_id.clone(),
        scenario: plan.scenario.name.clone(),
        warmup_s: plan.warmup.as_secs_f64(),
        schedule_s: plan.duration.as_secs_f64(),
        faults: (plan.faults.iter())
            .map(|f| {
                let spec = f.spec();
                let start_s = f.at.as_secs_f64();
                FaultSpan {
                    kind: f.kind.action(),
                    target: spec.target.name().unwrap_or_else(|| "server".into()),
                    start_s,
                    end_s: match spec.lasts {
                        crate::scenario::Lasts::UntilRestart(None) => None,
                        lasts => {
                            Some(start_s + lasts.ends_after().map_or(0.0, |d| d.0.as_secs_f64()))
                        }
                    },
                }
            })
            .collect(),
    }
}

/// How long a new replica may take to finish its first sync with the primary.
const REPLICA_SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `[redis] replica = true`: a second managed server, same settings, following
/// the primary; the run starts once it is in sync and a write reaches it, so
/// it measures replication and not the initial full sync. When a network fault targets the
/// replication link, the replica follows the primary through a fault proxy of
/// its own, on its own thread: it must forward the initial sync, which is
/// waited for here, before the run's actix System exists.
fn start_replica(
    plan: &Plan,
    primary: &Arc<Mutex<RedisServer>>,
) -> Result<(Replica, Option<ThreadedProxy>)> {
    let port = primary
        .lock()
        .map_err(|_| Error::Internal("server lock poisoned".into()))?
        .port();
    let link = match plan.has_replication_faults() {
        true => Some(ThreadedProxy::start(
            "replication-link",
            std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)),
            derive_seed(plan.scenario.seed, SeedKind::ReplicationLink, 0, 0),
        )?),
        false => None,
    };
    let follows = link.as_ref().map_or(port, |l| l.proxy().addr().port());
    // The primary's settings, DEBUG included: after a failover the replica
    // is the server that server faults act on. Over TLS, the primary's CA
    // and certificate, which it shows the primary as a client too.
    let mut config = server_config(plan).replica_of(follows);
    if let Some(tls) = &mut config.tls {
        tls.files = (primary.lock())
            .map_err(|_| Error::Internal("server lock poisoned".into()))?
            .tls_files()
            .cloned();
    }
    let replica = RedisServer::start(config)?;
    replica.wait_in_sync(REPLICA_SYNC_TIMEOUT)?;
    (primary.lock())
        .map_err(|_| Error::Internal("server lock poisoned".into()))?
        .wait_replicating(REPLICA_SYNC_TIMEOUT)?;
    let replica = Replica {
        server: Arc::new(Mutex::new(replica)),
        link: link.as_ref().map(|l| l.proxy().clone()),
    };
    Ok((replica, link))
}

/// An external server's target: its URL, and for `rediss://` the CA and
/// client certificate the scenario names (docs/tls.md, "Settings").
pub fn external_target(r: &RedisConfig) -> Result<Target> {
    let url = r.url.clone().unwrap_or_default();
    let tls = match r.uses_tls() {
        true => Some(ClientTls::new(&TlsOptions {
            ca: r.tls_ca.as_deref(),
            cert: r.tls_cert.as_deref(),
            key: r.tls_key.as_deref(),
            insecure: r.tls_insecure,
        })?),
        false => None,
    };
    let target = Target::new(url, tls)?;
    // `cluster = {}` with an external URL: the URL names a seed node
    // (docs/cluster.md, "External clusters").
    Ok(match r.cluster {
        Some(_) => target.in_cluster(),
        None => target,
    })
}

fn summarize(plan: &Plan, target: &Target, m: &Measured, cpu_idle: IdleState) -> Summary {
    let ctx = SummaryContext {
        scenario: plan.scenario.clone(),
        run_id: plan.run_id.clone(),
        started_unix_ns: m.started_unix_ns,
        measured_duration_s: m.measured_duration_s,
        // Over the window measured: all of it, or up to a Ctrl-C.
        target_rate_per_s: match m.interrupted {
            true => plan.target_rate_until(plan.warmup.as_secs_f64() + m.measured_duration_s),
            false => plan.target_rate_per_s(),
        },
        redis: RedisInfo {
            mode: format!("{:?}", plan.redis.mode).to_lowercase(),
            url: target.to_string(),
            tls: target.tls().map(|tls| TlsUse {
                version: m.tls.as_ref().map(|n| n.version.clone()),
                cipher: m.tls.as_ref().map(|n| n.cipher.clone()),
                insecure: tls.insecure(),
                client_certificate: tls.has_client_cert(),
                own_ca: plan.redis.mode == RedisMode::Managed,
            }),
            version: m.redis_version.clone(),
            config: m.redis_config.clone(),
            server: Some(m.server.clone()),
        },
        verify: m.verify.clone(),
        faults: m.faults.clone(),
        durability: m.durability.clone(),
        interrupted: m.interrupted,
        cpu_idle,
        harness_cpu_s: m.harness_cpu_s,
        harness_threads: m.harness_threads,
        streams: m.streams.clone(),
    };
    let mut summary = Summary::build(ctx, &m.metrics);
    summary.produce.unreplicated = m.unreplicated;
    summary
}

/// The managed server's settings; a debug_sleep drill needs DEBUG, which
/// Redis 7 refuses unless `enable-debug-command` allows it.
fn server_config(plan: &Plan) -> ServerConfig {
    let mut config = server_settings(&plan.redis);
    if plan.redis.replica {
        // A primary waits 5 s (the default) for more replicas before a
        // diskless full sync; the run would wait with it. Before the
        // scenario's own `config` lines, so they can set it back.
        config.extra.insert(0, "repl-diskless-sync-delay 0".into());
    }
    config.power_fs = plan.redis.power_fs || plan.needs_power_fs();
    match plan.needs_debug_command() {
        true => config.line("enable-debug-command local"),
        false => config,
    }
}

/// The managed-mode settings of a scenario's `[redis]` table; the replica
/// gets the same, binary included.
pub fn server_settings(c: &RedisConfig) -> ServerConfig {
    let default = ServerConfig::default();
    ServerConfig {
        binary: c.server.clone().unwrap_or(default.binary),
        appendonly: c.appendonly,
        appendfsync: match c.appendfsync {
            Appendfsync::Always => Fsync::Always,
            Appendfsync::Everysec => Fsync::Everysec,
            Appendfsync::No => Fsync::No,
        },
        save: c.save.clone(),
        maxmemory: c.maxmemory.clone(),
        extra: c.config.clone(),
        tls: c.tls.then_some(ServerTls {
            files: None,
            auth_clients: c.tls_auth_clients,
        }),
        ..default
    }
}

/// A new directory (its parents made as needed); an existing one is an error.
fn create_dir(dir: &Path) -> Result<PathBuf> {
    let made = match dir.parent() {
        Some(parent) => std::fs::create_dir_all(parent).and_then(|()| std::fs::create_dir(dir)),
        None => std::fs::create_dir(dir),
    };
    made.map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(dir.to_path_buf())
}

/// `<out>/<name>-<UTC timestamp>`, made unique with a suffix if two runs start
/// in the same second; the directory name doubles as the run id.
pub fn create_run_dir(out: &Path, name: &str) -> Result<(String, PathBuf)> {
    std::fs::create_dir_all(out).map_err(|source| Error::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let base = format!(
        "{name}-{}",
        report::utc::basic_stamp(crate::clock::unix_now_ns())
    );
    for n in 1..1000 {
        let id = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = out.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(Error::Write { path: dir, source }),
        }
    }
    Err(Error::Write {
        path: out.join(base),
        source: std::io::Error::other("too many runs in one second"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dirs_are_unique() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, _) = create_run_dir(tmp.path(), "x").unwrap();
        let (b, dir_b) = create_run_dir(tmp.path(), "x").unwrap();
        assert_ne!(a, b);
        assert!(dir_b.is_dir());
        assert!(a.starts_with("x-20"), "{a}");
        let stamp = a.strip_prefix("x-").unwrap();
        assert!(
            stamp.len() == 15
                && stamp.chars().enumerate().all(|(i, c)| match i {
                    8 => c == 'T',
                    _ => c.is_ascii_digit(),
                }),
            "{a}: yyyymmddThhmmss"
        );
    }
}
