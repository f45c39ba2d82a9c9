//! The fault timeline of a failure drill. A fault is `{ at, kind }`: when it
//! begins, and what it is ([`FaultKind`]), written as one flat `[[faults]]`
//! table: `action` names the kind, `at` and the kind's own fields sit beside it.
//!
//! Each kind says once, in `kinds.rs`, what it targets and needs (its
//! [`Spec`]: a consumer, a producer, the server's process or commands, a
//! network link; a managed Redis, a replica, the proxy, a read-back of the
//! streams) and which checks only it has. `checks.rs` applies the rules every
//! spec implies (the target exists, the window fits the run, what it needs is
//! there), `targets.rs` resolves consumer and producer names. The plan
//! resolves each fault's target; the chaos actor, or the consumer or producer
//! it targets, applies it.

mod checks;
mod kinds;
mod targets;
#[cfg(test)]
mod tests;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Dur, ProducerRef};

pub(super) use checks::check;
pub use kinds::FaultKind;
pub use targets::{resolve_consumer, resolve_producer};

/// One entry of the fault timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// When it begins, from the start of the run.
    pub at: Dur,
    pub kind: FaultKind,
}

/// What a fault kind acts on, and so who applies it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target<'a> {
    /// A consumer, "<group>/<index>": the consumer applies the fault itself.
    Consumer(&'a str),
    /// A producer, "<label>/<n>" or an index: the producer applies it itself.
    Producer(&'a ProducerRef),
    /// The managed server's process: signals, shutdown, restart, promotion.
    ServerProcess,
    /// A command to the server, on a connection of the chaos actor's own.
    ServerCommand,
    /// The connections on one link, through that link's fault proxy; in a
    /// cluster, the clients' connections to one shard's nodes, or to every
    /// shard's without one.
    Network { link: Link, shard: Option<u16> },
    /// The cluster slot a stream's key (one partition's) lives in.
    Slot { stream: &'a str, partition: u32 },
    /// A cluster shard's primary process, by the shard's place in slot order.
    Shard(u16),
}

impl Target<'_> {
    /// As a report names it: the consumer or producer as the scenario
    /// writes it, or the link; None for the server.
    pub fn name(&self) -> Option<String> {
        match self {
            Target::Consumer(c) => Some(c.to_string()),
            Target::Producer(p) => Some(p.to_string()),
            Target::Network {
                shard: Some(shard), ..
            } => Some(format!("shard {shard}")),
            Target::Network { link, .. } => Some(link.name().to_string()),
            Target::Slot { stream, partition } => Some(format!("{stream}/{partition}")),
            Target::Shard(shard) => Some(format!("shard {shard}")),
            Target::ServerProcess | Target::ServerCommand => None,
        }
    }
}

/// How long a fault lasts: what validation checks of its window, and when
/// the chaos actor ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lasts {
    /// Over once applied (a reset, CLIENT KILL, a promotion).
    Once,
    /// `duration` (more than 0), then ended, or over by itself. With
    /// `in_run` it must end while producers run, so the run measures the recovery.
    For { duration: Dur, in_run: bool },
    /// Down until restarted this long after it began (for the rest of the
    /// run without one).
    UntilRestart(Option<Dur>),
}

impl Lasts {
    /// A window that must end while producers run.
    pub(crate) fn within_run(duration: Dur) -> Lasts {
        Lasts::For {
            duration,
            in_run: true,
        }
    }

    /// When its end is due, from its start; None when nothing ends it.
    pub fn ends_after(self) -> Option<Dur> {
        match self {
            Lasts::Once | Lasts::UntilRestart(None) => None,
            Lasts::For { duration, .. } | Lasts::UntilRestart(Some(duration)) => Some(duration),
        }
    }
}

/// Whether the streams are read back at the end because of a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBack {
    /// Nothing written is lost or cut off.
    No,
    /// Writes in flight may be cut off (their replies lost): the streams are
    /// read back to judge them, unless one is trimmed.
    IfUntrimmed,
    /// Acknowledged writes may be gone: the streams are always read back,
    /// so trimming, which removes entries too, is refused.
    Always,
}

/// What a fault kind targets and needs, said once per kind
/// ([`FaultKind::spec`]) and read by validation, the plan, the runner and
/// the chaos actor.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec<'a> {
    pub target: Target<'a>,
    pub lasts: Lasts,
    /// It signals the server's process, or uses a command hosted Redis
    /// refuse, so it needs a Redis that streamdrill started.
    pub managed_redis: bool,
    /// It needs the managed replica (a failover promotes it).
    pub replica: bool,
    /// The harness reaches Redis through the fault proxy, even without a
    /// network fault (a failover moves the proxy to the promoted replica).
    pub proxy: bool,
    /// The managed server must allow DEBUG.
    pub debug_command: bool,
    /// The managed server's data directory sits on streamdrill's power-loss
    /// file system (docs/faults.md, "Power loss").
    pub power_fs: bool,
    pub read_back: ReadBack,
    /// Replies reach the harness up to this much later (on the clients'
    /// link): its timeouts allow for it.
    pub reply_delay: Dur,
    /// One at a time per target: two faults of this kind on one target may
    /// not overlap.
    pub exclusive: bool,
    /// Shown after the action and target in reports, e.g. "x5" or "1s".
    pub detail: Option<String>,
}

impl<'a> Spec<'a> {
    /// A spec that needs nothing beyond its target. Network faults on the
    /// clients' link cut writes off, so they read the streams back.
    pub(crate) fn on(target: Target<'a>, lasts: Lasts) -> Spec<'a> {
        let read_back = match target {
            Target::Network {
                link: Link::Clients,
                ..
            } => ReadBack::IfUntrimmed,
            _ => ReadBack::No,
        };
        Spec {
            target,
            lasts,
            managed_redis: false,
            replica: false,
            proxy: false,
            debug_command: false,
            power_fs: false,
            read_back,
            reply_delay: Dur::ZERO,
            exclusive: false,
            detail: None,
        }
    }
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

impl FaultKind {
    /// The action's name as written in the scenario, e.g. "freeze_redis".
    pub fn action(&self) -> String {
        toml::Value::try_from(self)
            .ok()
            .and_then(|v| v.get("action")?.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// A plain label for reports: the action, its consumer or producer, its
    /// detail, and the link when it is not the clients' one, e.g.
    /// "slow_consumer billing/0 x5", "network_blackhole shard 1",
    /// "network_blackhole (replication)".
    pub fn label(&self) -> String {
        let spec = self.spec();
        let mut label = self.action();
        if let Target::Consumer(_)
        | Target::Producer(_)
        | Target::Slot { .. }
        | Target::Shard(_)
        | Target::Network { shard: Some(_), .. } = spec.target
        {
            label += &format!(" {}", spec.target.name().unwrap_or_default());
        }
        if let Some(detail) = &spec.detail {
            label += &format!(" {detail}");
        }
        if let Target::Network {
            link: Link::Replication,
            ..
        } = spec.target
        {
            label += " (replication)";
        }
        label
    }
}

/// The table a scenario writes: the kind's fields (`action` first) and `at`,
/// all flat.
#[derive(Serialize)]
struct Flat<'a> {
    #[serde(flatten)]
    kind: &'a FaultKind,
    at: Dur,
}

impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Flat {
            kind: &self.kind,
            at: self.at,
        }
        .serialize(s)
    }
}

// Hand-written because serde's `flatten` ignores `deny_unknown_fields`:
// `at` is taken out of the table and the rest must be exactly one kind's
// fields. Errors inside the kind come out at the fault's table (serde's
// tagged enums lose the span), so their texts name the field.
impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fault, D::Error> {
        d.deserialize_map(FaultTable)
    }
}

struct FaultTable;

impl<'de> Visitor<'de> for FaultTable {
    type Value = Fault;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a fault table: action = \"...\", at = \"...\" and the action's own fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fault, A::Error> {
        let mut at = None;
        let mut rest = toml::Table::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "at" {
                at = Some(map.next_value::<Dur>()?);
            } else if let Some(value) = map.next_value::<Option<toml::Value>>()? {
                // A JSON null (an absent option in summary.json) is left out.
                rest.insert(key, value);
            }
        }
        let kind = FaultKind::deserialize(toml::Value::Table(rest))
            .map_err(|e| de::Error::custom(e.message()))?;
        let at = at.ok_or_else(|| de::Error::missing_field("at"))?;
        Ok(Fault { at, kind })
    }
}
