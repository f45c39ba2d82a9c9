//! The fault timeline of a failure drill, as the scenario file writes it:
//! one `[[faults]]` table per fault, its kind named by `action`. Checked by
//! `fault_checks`, resolved into targets by the plan, played by the chaos actor.

use serde::{Deserialize, Deserializer, Serialize};

use super::{Bytes, Dur, ProducerRef};

/// One entry of the fault timeline. `consumer` names a consumer as
/// "<group>/<index>", e.g. "billing/0".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The consumer dies abruptly at `at`: what it was processing is neither
    /// processed nor acknowledged and stays in the group's PEL. With
    /// `restart_after` it comes back under the same name and first works
    /// through its own pending entries.
    CrashConsumer {
        at: Dur,
        consumer: String,
        #[serde(default)]
        restart_after: Option<Dur>,
    },
    /// The consumer stops reading for `duration` (a GC pause), then resumes.
    StallConsumer {
        at: Dur,
        consumer: String,
        duration: Dur,
    },
    /// From `at` for `duration`, every processing time the consumer samples
    /// is multiplied by `factor` (a slow dependency, a noisy neighbour). A
    /// batch already in processing when the window opens keeps its times.
    SlowConsumer {
        at: Dur,
        consumer: String,
        duration: Dur,
        #[serde(deserialize_with = "factor")]
        factor: f64,
    },
    /// Managed Redis only: SIGKILL at `at`, restarted `restart_after` later
    /// from the same data directory, so AOF/RDB recovery is real. The streams
    /// are read back at the end to count acknowledged writes that are gone.
    KillRedis {
        at: Dur,
        #[serde(default = "default_restart_after")]
        restart_after: Dur,
    },
    /// Every reply from Redis reaches the harness `delay` (± `jitter`) late
    /// through the fault proxy, from `at` for `duration`.
    NetworkLatency {
        at: Dur,
        duration: Dur,
        delay: Dur,
        #[serde(default)]
        jitter: Dur,
        #[serde(default, skip_serializing_if = "Link::is_clients")]
        link: Link,
    },
    /// No byte passes between the harness and Redis for `duration`; held bytes
    /// are delivered when it ends (a partition that heals before TCP gives up).
    NetworkBlackhole {
        at: Dur,
        duration: Dur,
        #[serde(default, skip_serializing_if = "Link::is_clients")]
        link: Link,
    },
    /// Each direction of each connection limited to `bytes_per_s` for `duration`.
    NetworkBandwidth {
        at: Dur,
        duration: Dur,
        bytes_per_s: Bytes,
        #[serde(default, skip_serializing_if = "Link::is_clients")]
        link: Link,
    },
    /// Every open harness connection is reset (TCP RST) once, at `at`.
    NetworkReset {
        at: Dur,
        #[serde(default, skip_serializing_if = "Link::is_clients")]
        link: Link,
    },
    /// Managed Redis only: SIGSTOP at `at`, SIGCONT `duration` later. The
    /// server holds its connections but answers nothing meanwhile.
    FreezeRedis { at: Dur, duration: Dur },
    /// Managed Redis only: graceful SHUTDOWN (persisting what its settings
    /// persist) and a restart from the same data directory.
    RestartRedis { at: Dur },
    /// `CLIENT KILL TYPE normal SKIPME yes`: every client connection is
    /// closed by Redis; the harness reconnects. Works against external Redis.
    ClientKill { at: Dur },
    /// `CLIENT PAUSE <duration> ALL`: Redis holds every client's commands.
    ClientPause { at: Dur, duration: Dur },
    /// Managed Redis only (hosted Redis often forbid DEBUG): `DEBUG SLEEP`,
    /// the server's main thread blocked for `duration`.
    DebugSleep { at: Dur, duration: Dur },
    /// Managed Redis with `replica = true` only: SIGKILL the primary, promote
    /// the replica (REPLICAOF NO ONE), and point the harness at it.
    Failover { at: Dur },
    /// The producer stops abruptly: replies of pipelines in flight are
    /// ignored (indeterminate writes). With `restart_after` it resumes its
    /// schedule; events intended while it was dead are never sent.
    CrashProducer {
        at: Dur,
        producer: ProducerRef,
        #[serde(default)]
        restart_after: Option<Dur>,
    },
}

/// The connections a network fault acts on, each through a fault proxy of
/// its own.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// Every harness connection to Redis (producers, consumers, the admin one).
    #[default]
    Clients,
    /// The managed replica's link to its primary: a blackhole or latency here
    /// holds the replication stream back, so a failover then loses every write
    /// acknowledged meanwhile (and WAIT sees no replica).
    Replication,
}

impl Link {
    pub fn is_clients(&self) -> bool {
        *self == Link::Clients
    }

    /// As the scenario writes it.
    pub fn name(self) -> &'static str {
        match self {
            Link::Clients => "clients",
            Link::Replication => "replication",
        }
    }
}

/// A slowdown's `factor`, any TOML number. Inside the tagged `Fault` serde
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

impl Fault {
    pub fn at(&self) -> Dur {
        match self {
            Fault::CrashConsumer { at, .. }
            | Fault::StallConsumer { at, .. }
            | Fault::SlowConsumer { at, .. }
            | Fault::KillRedis { at, .. }
            | Fault::NetworkLatency { at, .. }
            | Fault::NetworkBlackhole { at, .. }
            | Fault::NetworkBandwidth { at, .. }
            | Fault::NetworkReset { at, .. }
            | Fault::FreezeRedis { at, .. }
            | Fault::RestartRedis { at }
            | Fault::ClientKill { at }
            | Fault::ClientPause { at, .. }
            | Fault::DebugSleep { at, .. }
            | Fault::Failover { at }
            | Fault::CrashProducer { at, .. } => *at,
        }
    }

    /// The consumer a consumer fault targets.
    pub fn consumer(&self) -> Option<&str> {
        match self {
            Fault::CrashConsumer { consumer, .. }
            | Fault::StallConsumer { consumer, .. }
            | Fault::SlowConsumer { consumer, .. } => Some(consumer),
            _ => None,
        }
    }

    /// Whether the fault acts on the network, through a fault proxy.
    pub fn is_network(&self) -> bool {
        self.link().is_some()
    }

    /// Which connections a network fault acts on (None for other faults).
    pub fn link(&self) -> Option<Link> {
        match self {
            Fault::NetworkLatency { link, .. }
            | Fault::NetworkBlackhole { link, .. }
            | Fault::NetworkBandwidth { link, .. }
            | Fault::NetworkReset { link, .. } => Some(*link),
            _ => None,
        }
    }

    /// How long a network fault with a duration lasts.
    pub fn network_duration(&self) -> Option<Dur> {
        match self {
            Fault::NetworkLatency { duration, .. }
            | Fault::NetworkBlackhole { duration, .. }
            | Fault::NetworkBandwidth { duration, .. } => Some(*duration),
            _ => None,
        }
    }

    /// Whether the fault takes down the Redis server itself.
    pub fn kills_redis(&self) -> bool {
        matches!(
            self,
            Fault::KillRedis { .. } | Fault::RestartRedis { .. } | Fault::Failover { .. }
        )
    }

    /// Whether the fault acts on the server process (or forbidden-on-hosted
    /// commands), so it needs a managed Redis.
    pub fn needs_managed_redis(&self) -> bool {
        self.kills_redis() || matches!(self, Fault::FreezeRedis { .. } | Fault::DebugSleep { .. })
    }

    /// How long a server fault with a duration lasts (freeze, pause, sleep).
    pub fn server_duration(&self) -> Option<Dur> {
        match self {
            Fault::FreezeRedis { duration, .. }
            | Fault::ClientPause { duration, .. }
            | Fault::DebugSleep { duration, .. } => Some(*duration),
            _ => None,
        }
    }

    /// The action's name as written in the scenario, e.g. "freeze_redis".
    pub fn action_name(&self) -> String {
        toml::Value::try_from(self)
            .ok()
            .and_then(|v| v.get("action")?.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}
