//! Every fault kind a drill can use, each defined here once: its fields as a
//! `[[faults]]` table writes them (beside `action` and `at`), what it targets
//! and needs ([`FaultKind::spec`]), and the checks only it has
//! ([`FaultKind::checks`]). A new kind is a variant here with an arm in both,
//! plus its application where its target's family is applied (see the chaos
//! actor) and its entry in the docs.

use serde::{Deserialize, Deserializer, Serialize};

use super::{Lasts, Link, ReadBack, Spec, Target};
use crate::scenario::{Bytes, Dur, GroupConfig, ProducerRef, Scenario, TimeDist};

/// What a fault does. `consumer` names a consumer as "<group>/<index>",
/// e.g. "billing/0".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// The consumer dies abruptly: what it was processing is neither
    /// processed nor acknowledged and stays in the group's PEL. With
    /// `restart_after` it comes back under the same name and first works
    /// through its own pending entries.
    CrashConsumer {
        consumer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restart_after: Option<Dur>,
    },
    /// The consumer stops reading for `duration` (a GC pause), then resumes.
    StallConsumer { consumer: String, duration: Dur },
    /// For `duration`, every processing time the consumer samples is
    /// multiplied by `factor` (a slow dependency, a noisy neighbour). A
    /// batch already in processing when the window opens keeps its times.
    SlowConsumer {
        consumer: String,
        duration: Dur,
        #[serde(deserialize_with = "factor")]
        factor: f64,
    },
    /// Managed Redis only: SIGKILL, restarted `restart_after` later from the
    /// same data directory, so AOF/RDB recovery is real. The streams are
    /// read back at the end to count acknowledged writes that are gone.
    KillRedis {
        #[serde(default = "default_restart_after")]
        restart_after: Dur,
    },
    /// Managed Redis only: the server and its data directory lose power
    /// (docs/faults.md, "Power loss"): SIGKILL, and every byte written to
    /// its data files since their last fsync is gone, as if the page cache
    /// vanished. Restarted `restart_after` later from what survived.
    PowerLoss {
        #[serde(default = "default_restart_after")]
        restart_after: Dur,
    },
    /// Every reply from Redis reaches the harness `delay` (± `jitter`) late
    /// through the fault proxy, for `duration`.
    NetworkLatency {
        duration: Dur,
        delay: Dur,
        #[serde(default)]
        jitter: Dur,
        #[serde(default, skip_serializing_if = "Link::is_clients")]
        link: Link,
        /// Cluster runs: only this shard's traffic (by default every shard's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shard: Option<u16>,
    },
    /// No byte passes between the harness and Redis for `duration`; held bytes
    /// are delivered when it ends (a partition that heals before TCP gives up).
    NetworkBlackhole {
        duration: Dur,
        #[serde(default, skip_serializing_if = "Link::is_clients")]
        link: Link,
        /// Cluster runs: only this shard's traffic (by default every shard's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shard: Option<u16>,
    },
    /// Each direction of each connection limited to `bytes_per_s` for `duration`.
    NetworkBandwidth {
        duration: Dur,
        bytes_per_s: Bytes,
        #[serde(default, skip_serializing_if = "Link::is_clients")]
        link: Link,
        /// Cluster runs: only this shard's traffic (by default every shard's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shard: Option<u16>,
    },
    /// Every open harness connection is reset (TCP RST) once.
    NetworkReset {
        #[serde(default, skip_serializing_if = "Link::is_clients")]
        link: Link,
        /// Cluster runs: only this shard's traffic (by default every shard's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shard: Option<u16>,
    },
    /// Managed Redis only: SIGSTOP, SIGCONT `duration` later. The server
    /// holds its connections but answers nothing meanwhile.
    FreezeRedis { duration: Dur },
    /// Managed Redis only: graceful SHUTDOWN (persisting what its settings
    /// persist) and a restart from the same data directory.
    RestartRedis {},
    /// `CLIENT KILL TYPE normal SKIPME yes`: every client connection is
    /// closed by Redis; the harness reconnects. Works against external Redis.
    ClientKill {},
    /// `CLIENT PAUSE <duration> ALL`: Redis holds every client's commands.
    ClientPause { duration: Dur },
    /// Managed Redis only (hosted Redis often forbid DEBUG): `DEBUG SLEEP`,
    /// the server's main thread blocked for `duration`.
    DebugSleep { duration: Dur },
    /// Managed Redis with `replica = true` only: SIGKILL the primary, promote
    /// the replica (REPLICAOF NO ONE), and point the harness at it.
    Failover {},
    /// The producer stops abruptly: replies of pipelines in flight are
    /// ignored (indeterminate writes). With `restart_after` it resumes its
    /// schedule; events intended while it was dead are never sent.
    CrashProducer {
        producer: ProducerRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restart_after: Option<Dur>,
    },
    /// Cluster runs: the slot holding partition `partition` of `stream` (0
    /// for an unpartitioned one) moves, keys and all, to shard `to_shard`
    /// (by default the next one) while the run goes on (docs/cluster.md,
    /// "Live resharding").
    Reshard {
        stream: String,
        #[serde(default)]
        partition: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_shard: Option<u16>,
    },
    /// Cluster runs with replicas: SIGKILL shard `shard`'s primary; the
    /// cluster promotes a replica by itself. With `restart_after` the
    /// killed node comes back from its data directory, as a replica
    /// (docs/cluster.md, "Shard failover").
    KillPrimary {
        shard: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restart_after: Option<Dur>,
    },
    /// Cluster runs with replicas: `CLUSTER FAILOVER` on shard `shard`'s
    /// replica, a handover in which the primary first stops taking writes
    /// until the replica has them all (docs/cluster.md, "Shard failover").
    FailoverShard { shard: u16 },
}

impl FaultKind {
    /// What this kind targets and needs: the one place each kind says so.
    pub fn spec(&self) -> Spec<'_> {
        use FaultKind::*;
        use Target::{Consumer, Producer, ServerCommand, ServerProcess, Shard, Slot};
        let timed = |d: &Dur| Some(d.to_string());
        let net = |link: &Link, shard: &Option<u16>| Target::Network {
            link: *link,
            shard: *shard,
        };
        match self {
            CrashConsumer {
                consumer,
                restart_after,
            } => Spec::on(Consumer(consumer), Lasts::UntilRestart(*restart_after)),
            StallConsumer { consumer, duration } => Spec::on(
                Consumer(consumer),
                Lasts::For {
                    duration: *duration,
                    in_run: false,
                },
            ),
            SlowConsumer {
                consumer,
                duration,
                factor,
            } => Spec {
                exclusive: true,
                detail: Some(format!("x{factor}")),
                ..Spec::on(Consumer(consumer), Lasts::within_run(*duration))
            },
            KillRedis { restart_after } => Spec {
                managed_redis: true,
                read_back: ReadBack::Always,
                ..Spec::on(ServerProcess, Lasts::UntilRestart(Some(*restart_after)))
            },
            PowerLoss { restart_after } => Spec {
                managed_redis: true,
                power_fs: true,
                read_back: ReadBack::Always,
                ..Spec::on(ServerProcess, Lasts::UntilRestart(Some(*restart_after)))
            },
            NetworkLatency {
                duration,
                delay,
                jitter,
                link,
                shard,
            } => Spec {
                reply_delay: Dur(delay.as_duration() + jitter.as_duration()),
                exclusive: true,
                detail: Some(match jitter.is_zero() {
                    true => delay.to_string(),
                    false => format!("{delay} ±{jitter}"),
                }),
                ..Spec::on(net(link, shard), Lasts::within_run(*duration))
            },
            NetworkBlackhole {
                duration,
                link,
                shard,
            } => Spec {
                exclusive: true,
                ..Spec::on(net(link, shard), Lasts::within_run(*duration))
            },
            NetworkBandwidth {
                duration,
                bytes_per_s,
                link,
                shard,
            } => Spec {
                exclusive: true,
                detail: Some(format!("{bytes_per_s}/s")),
                ..Spec::on(net(link, shard), Lasts::within_run(*duration))
            },
            NetworkReset { link, shard } => Spec::on(net(link, shard), Lasts::Once),
            FreezeRedis { duration } => Spec {
                managed_redis: true,
                detail: timed(duration),
                ..Spec::on(ServerProcess, Lasts::within_run(*duration))
            },
            // Down until restarted at once: SHUTDOWN, then start again.
            RestartRedis {} => Spec {
                managed_redis: true,
                read_back: ReadBack::Always,
                ..Spec::on(ServerProcess, Lasts::UntilRestart(Some(Dur::ZERO)))
            },
            ClientKill {} => Spec {
                read_back: ReadBack::IfUntrimmed,
                ..Spec::on(ServerCommand, Lasts::Once)
            },
            ClientPause { duration } => Spec {
                detail: timed(duration),
                ..Spec::on(ServerCommand, Lasts::within_run(*duration))
            },
            DebugSleep { duration } => Spec {
                managed_redis: true,
                debug_command: true,
                detail: timed(duration),
                ..Spec::on(ServerCommand, Lasts::within_run(*duration))
            },
            Failover {} => Spec {
                managed_redis: true,
                replica: true,
                proxy: true,
                read_back: ReadBack::Always,
                ..Spec::on(ServerProcess, Lasts::Once)
            },
            Reshard {
                stream,
                partition,
                to_shard,
            } => Spec {
                read_back: ReadBack::IfUntrimmed,
                detail: to_shard.map(|s| format!("to shard {s}")),
                ..Spec::on(
                    Slot {
                        stream,
                        partition: *partition,
                    },
                    Lasts::Once,
                )
            },
            KillPrimary {
                shard,
                restart_after,
            } => Spec {
                managed_redis: true,
                read_back: ReadBack::Always,
                ..Spec::on(Shard(*shard), Lasts::UntilRestart(*restart_after))
            },
            FailoverShard { shard } => Spec {
                managed_redis: true,
                read_back: ReadBack::Always,
                ..Spec::on(Shard(*shard), Lasts::Once)
            },
            CrashProducer {
                producer,
                restart_after,
            } => Spec {
                read_back: ReadBack::IfUntrimmed,
                ..Spec::on(Producer(producer), Lasts::UntilRestart(*restart_after))
            },
        }
    }

    /// The problems only this kind can have, as (field, problem), beyond
    /// what its spec implies (`checks.rs`). `index` is its place in `s.faults`.
    pub(super) fn checks(&self, s: &Scenario, index: usize) -> Vec<(&'static str, String)> {
        use FaultKind::*;
        match self {
            SlowConsumer {
                consumer, factor, ..
            } => slow(s, consumer, *factor),
            NetworkLatency { delay, .. } if delay.is_zero() => vec![(
                "delay",
                "must be more than 0s, e.g. delay = \"20ms\"".into(),
            )],
            NetworkBandwidth { bytes_per_s, .. } if bytes_per_s.0 == 0 => vec![(
                "bytes_per_s",
                "must be more than 0 (use network_blackhole to stop all traffic)".into(),
            )],
            Failover {}
                if s.faults[..index]
                    .iter()
                    .any(|f| matches!(f.kind, Failover {})) =>
            {
                vec![(
                    "action",
                    "one failover per run: after it no replica is left to promote".into(),
                )]
            }
            _ => Vec::new(),
        }
    }
}

/// Largest `factor` of a slow_consumer: beyond it a window is a stall, and
/// `stall_consumer` says so plainly.
const MAX_SLOW_FACTOR: f64 = 1000.0;

/// A slowdown's factor slows (finite, more than 1, at most
/// [`MAX_SLOW_FACTOR`]), and its consumer has a processing time to multiply.
fn slow(s: &Scenario, consumer: &str, factor: f64) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if !factor.is_finite() || factor <= 1.0 || factor > MAX_SLOW_FACTOR {
        v.push((
            "factor",
            format!(
                "{factor} cannot be used: it multiplies each processing time, so it must be \
                 more than 1 and at most {MAX_SLOW_FACTOR}, e.g. factor = 5 for 5 times slower"
            ),
        ));
    }
    let idle =
        |g: &&GroupConfig| matches!(g.processing, TimeDist::Fixed { value } if value.is_zero());
    let group = super::resolve_consumer(s, consumer)
        .ok()
        .map(|(g, _)| &s.groups[g]);
    if let Some(g) = group.filter(idle) {
        v.push((
            "consumer",
            format!(
                "group {:?} has no processing time (processing = \"0s\"), which a factor \
                 leaves at 0: give it one, e.g. processing = \"1ms\"",
                g.name
            ),
        ));
    }
    v
}

/// A slowdown's `factor`, any TOML number. Inside the tagged kind serde
/// locates errors only to the fault's table, so the text names the field.
fn factor<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct Factor;
    impl serde::de::Visitor<'_> for Factor {
        type Value = f64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number for `factor` (how many times slower), e.g. factor = 5")
        }
        fn visit_f64<E>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
    }
    d.deserialize_f64(Factor)
}

fn default_restart_after() -> Dur {
    Dur::from_secs(1)
}
