//! The drill's fault timeline made concrete: each fault with its target
//! resolved to a consumer or producer index, and what the faults ask of the
//! rest of the run (a read-back, the proxy, longer timeouts).

use std::time::Duration;

use super::Plan;
use crate::scenario::{Dur, Fault, Link, Scenario, resolve_consumer, resolve_producer};

/// One fault of the drill's timeline, with its target resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    pub at: Duration,
    pub action: FaultAction,
    /// For reports, e.g. "crash_consumer billing/0".
    pub label: String,
    /// Which proxy a network fault acts on (`Clients` for other faults).
    pub link: Link,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultAction {
    CrashConsumer {
        group: usize,
        consumer: u32,
        restart_after: Option<Duration>,
    },
    StallConsumer {
        group: usize,
        consumer: u32,
        duration: Duration,
    },
    /// Processing times sampled during `duration` multiplied by `factor`.
    SlowConsumer {
        group: usize,
        consumer: u32,
        duration: Duration,
        factor: f64,
    },
    KillRedis {
        restart_after: Duration,
    },
    /// Replies delayed by `delay` ± `jitter` through the fault proxy.
    NetworkLatency {
        delay: Duration,
        jitter: Duration,
        duration: Duration,
    },
    NetworkBlackhole {
        duration: Duration,
    },
    NetworkBandwidth {
        bytes_per_s: u64,
        duration: Duration,
    },
    /// Every open connection through the proxy reset once.
    NetworkReset,
    /// SIGSTOP, then SIGCONT after `duration`.
    FreezeRedis {
        duration: Duration,
    },
    /// SHUTDOWN and a restart from the same data directory.
    RestartRedis,
    ClientKill,
    ClientPause {
        duration: Duration,
    },
    DebugSleep {
        duration: Duration,
    },
    /// SIGKILL the primary, promote the replica, move the proxy to it.
    Failover,
    /// The producer with this id dies; it resumes after `restart_after`.
    CrashProducer {
        producer: u32,
        restart_after: Option<Duration>,
    },
}

/// Validation has resolved every target; one that does not resolve is skipped.
pub(super) fn fault_plan(scenario: &Scenario, fault: &Fault) -> Option<FaultPlan> {
    let target = || resolve_consumer(scenario, fault.consumer()?).ok();
    let (action, label) = match *fault {
        Fault::CrashConsumer {
            ref consumer,
            restart_after,
            ..
        } => {
            let (group, index) = target()?;
            let restart_after = restart_after.map(Dur::as_duration);
            (
                FaultAction::CrashConsumer {
                    group,
                    consumer: index,
                    restart_after,
                },
                format!("crash_consumer {consumer}"),
            )
        }
        Fault::StallConsumer {
            ref consumer,
            duration,
            ..
        } => {
            let (group, index) = target()?;
            let duration = duration.as_duration();
            (
                FaultAction::StallConsumer {
                    group,
                    consumer: index,
                    duration,
                },
                format!("stall_consumer {consumer}"),
            )
        }
        Fault::SlowConsumer {
            ref consumer,
            duration,
            factor,
            ..
        } => {
            let (group, index) = target()?;
            (
                FaultAction::SlowConsumer {
                    group,
                    consumer: index,
                    duration: duration.as_duration(),
                    factor,
                },
                format!("slow_consumer {consumer} x{factor}"),
            )
        }
        Fault::KillRedis { restart_after, .. } => (
            FaultAction::KillRedis {
                restart_after: restart_after.as_duration(),
            },
            "kill_redis".to_string(),
        ),
        Fault::NetworkLatency {
            delay,
            jitter,
            duration,
            ..
        } => (
            FaultAction::NetworkLatency {
                delay: delay.as_duration(),
                jitter: jitter.as_duration(),
                duration: duration.as_duration(),
            },
            match jitter.is_zero() {
                true => format!("network_latency {delay}"),
                false => format!("network_latency {delay} ±{jitter}"),
            },
        ),
        Fault::NetworkBlackhole { duration, .. } => (
            FaultAction::NetworkBlackhole {
                duration: duration.as_duration(),
            },
            "network_blackhole".to_string(),
        ),
        Fault::NetworkBandwidth {
            duration,
            bytes_per_s,
            ..
        } => (
            FaultAction::NetworkBandwidth {
                bytes_per_s: bytes_per_s.0,
                duration: duration.as_duration(),
            },
            format!("network_bandwidth {bytes_per_s}/s"),
        ),
        Fault::NetworkReset { .. } => (FaultAction::NetworkReset, "network_reset".to_string()),
        Fault::FreezeRedis { duration, .. } => (
            FaultAction::FreezeRedis {
                duration: duration.as_duration(),
            },
            format!("freeze_redis {duration}"),
        ),
        Fault::RestartRedis { .. } => (FaultAction::RestartRedis, "restart_redis".to_string()),
        Fault::ClientKill { .. } => (FaultAction::ClientKill, "client_kill".to_string()),
        Fault::ClientPause { duration, .. } => (
            FaultAction::ClientPause {
                duration: duration.as_duration(),
            },
            format!("client_pause {duration}"),
        ),
        Fault::DebugSleep { duration, .. } => (
            FaultAction::DebugSleep {
                duration: duration.as_duration(),
            },
            format!("debug_sleep {duration}"),
        ),
        Fault::Failover { .. } => (FaultAction::Failover, "failover".to_string()),
        Fault::CrashProducer {
            ref producer,
            restart_after,
            ..
        } => (
            FaultAction::CrashProducer {
                producer: resolve_producer(scenario, producer).ok()?,
                restart_after: restart_after.map(Dur::as_duration),
            },
            format!("crash_producer {producer}"),
        ),
    };
    let link = fault.link().unwrap_or_default();
    Some(FaultPlan {
        at: fault.at().as_duration(),
        action,
        label: match link {
            Link::Clients => label,
            Link::Replication => format!("{label} (replication)"),
        },
        link,
    })
}

impl Plan {
    /// Whether a fault kills Redis, so the streams must be read back for durability.
    pub fn kills_redis(&self) -> bool {
        self.faults.iter().any(|f| {
            matches!(
                f.action,
                FaultAction::KillRedis { .. } | FaultAction::RestartRedis | FaultAction::Failover
            )
        })
    }

    /// Whether a fault moves the harness to the replica (the proxy is then
    /// the address the harness knows Redis by).
    pub fn has_failover(&self) -> bool {
        (self.faults.iter()).any(|f| f.action == FaultAction::Failover)
    }

    /// Whether every harness connection goes through the fault proxy:
    /// for network faults, and as a failover's virtual IP.
    pub fn proxied(&self) -> bool {
        self.has_network_faults() || self.has_failover()
    }

    /// Whether the run needs the fault proxy between the harness and Redis
    /// (network faults on the clients' link; the replication link has its own).
    pub fn has_network_faults(&self) -> bool {
        (self.scenario.faults.iter()).any(|f| f.link() == Some(Link::Clients))
    }

    /// Whether the replica follows its primary through a fault proxy of its own.
    pub fn has_replication_faults(&self) -> bool {
        (self.scenario.faults.iter()).any(|f| f.link() == Some(Link::Replication))
    }

    /// Whether the streams are read back whole at the end to judge every XADD
    /// (`verify::durability`): after a Redis kill, and after network faults
    /// or CLIENT KILL or a producer crash, whose cut-off writes may have landed. Trimmed streams
    /// cannot be judged.
    pub fn reads_back(&self) -> bool {
        let cuts = self.has_network_faults()
            || (self.faults.iter()).any(|f| {
                f.action == FaultAction::ClientKill
                    || matches!(f.action, FaultAction::CrashProducer { .. })
            });
        self.kills_redis() || (cuts && self.streams.iter().all(|s| s.trim.is_none()))
    }

    /// How long a non-blocking command may wait for its reply. Under network
    /// faults it is [`NETWORK_DRILL_RESPONSE_TIMEOUT`] beyond the largest added
    /// latency, so a blackhole of a few seconds turns XADDs into indeterminate
    /// writes instead of merely slow ones; otherwise `connect::RESPONSE_TIMEOUT`.
    pub fn response_timeout(&self) -> Duration {
        if !self.has_network_faults() {
            return crate::connect::RESPONSE_TIMEOUT;
        }
        NETWORK_DRILL_RESPONSE_TIMEOUT + self.added_latency_max()
    }

    /// The most reply delay a network_latency fault adds (delay + jitter).
    pub fn added_latency_max(&self) -> Duration {
        (self.faults.iter())
            .filter(|f| f.link == Link::Clients)
            .filter_map(|f| match f.action {
                FaultAction::NetworkLatency { delay, jitter, .. } => Some(delay + jitter),
                _ => None,
            })
            .max()
            .unwrap_or_default()
    }
}

/// Response timeout of non-blocking connections in a run with network faults
/// (plus the largest added latency): long enough for any live Redis, short
/// enough that a 5 s blackhole shows up as timed-out, indeterminate writes.
pub const NETWORK_DRILL_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
