//! A valid scenario made concrete: one `ProducerPlan` per producer actor (the
//! `count` of a producer entry expanded, its total rate split), one `GroupPlan`
//! per consumer group, stream keys under the run's own prefix, and the seeds
//! every actor draws from. The run module starts actors from this and nothing else.

mod draws;
mod faults;
mod partitions;
mod replay;
mod schedule;
mod schema_versions;
mod segment;
mod timeouts;
mod trim;

pub use draws::{EventDraw, EventMix, Real};
pub use faults::{FaultPlan, FaultTarget};
pub use partitions::{Partition, partition_key, partition_of};
pub use replay::ReplayPlan;
pub use schedule::{RateProfile, Schedule};
pub use schema_versions::{GroupSchema, VersionPick};
pub use segment::{MAX_SEGMENTS, Segment};
pub use timeouts::{NETWORK_DRILL_RESPONSE_TIMEOUT, RESPONSE_TIMEOUT};

use faults::fault_plan;

use std::sync::Arc;
use std::time::Duration;

use crate::scenario::{
    AckMode, Arrival, EventKind, ProducerConfig, Projection, Rate, RedisConfig, RedisMode,
    Scenario, event_kinds, producer_kinds, versioned_name,
};

/// What every Redis key of a run starts with, before its run id: an ACL
/// key pattern `~sd:*` covers every run (docs/acl.md, "The rule a run needs").
pub const KEY_PREFIX: &str = "sd:";

#[derive(Debug, Clone)]
pub struct Plan {
    /// The resolved scenario (overrides applied), kept for the report.
    pub scenario: Scenario,
    pub run_id: String,
    pub redis: RedisConfig,
    pub duration: Duration,
    pub warmup: Duration,
    pub drain_timeout: Duration,
    /// How long producers wait past the schedule for the last replies.
    pub reply_grace: Duration,
    pub streams: Vec<StreamPlan>,
    pub producers: Vec<ProducerPlan>,
    pub groups: Vec<GroupPlan>,
    pub faults: Vec<FaultPlan>,
    /// Every kind of event (type, schema version) the run writes, when it
    /// writes a versioned type: producers and groups count by its index
    /// (docs/event-sourcing.md, "Schema versions"). Empty otherwise.
    pub kinds: Vec<EventKind>,
    /// This process's share of the run: which producer connections,
    /// consumers and faults it runs (`Segment::WHOLE` unless `--segment`).
    pub segment: Segment,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamPlan {
    /// The name in the scenario.
    pub name: String,
    /// The Redis key: `sd:<run_id>:<name>`, so two runs never collide;
    /// a partition's is `sd:<run_id>:<name>:p<index>` ([`partition_key`]).
    pub key: String,
    /// Trims each key on its own: a partition keeps up to `maxlen` entries.
    pub trim: Option<Trim>,
    /// What the trim may remove that a group still needs (XADD's KEEPREF |
    /// DELREF | ACKED); only with a trim.
    pub trim_policy: Option<crate::scenario::TrimPolicy>,
    /// Set on each key of a partitioned stream, whose keys follow each other
    /// in `Plan::streams` from partition 0 ([`Plan::partitions`]).
    pub partition: Option<Partition>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trim {
    MaxLen {
        len: u64,
        approx: bool,
    },
    /// Drop entries older than `age` (MINID = now - age).
    MinAge {
        age: Duration,
        approx: bool,
    },
}

#[derive(Debug, Clone)]
pub struct ProducerPlan {
    /// Dense id carried in every event; indexes the ledger.
    pub id: u32,
    /// "<entry label>/<n>".
    pub label: String,
    pub stream: usize,
    /// This producer's share of the entry's rate.
    pub profile: RateProfile,
    pub arrival: Arrival,
    /// Stagger in [0, 1) of uniform arrivals among producers sharing an entry.
    pub phase: f64,
    pub mix: Arc<EventMix>,
    pub seed: u64,
    /// rate = "max": closed loop with this many XADDs per pipeline.
    pub pipeline: Option<u32>,
    /// `WAIT replicas timeout` closing each pipeline.
    pub wait: Option<Wait>,
    /// The connection it sends on, shared with the other producers of its
    /// entry that have the same number (dense over the whole run).
    pub connection: u32,
    /// Wait this long after an event falls due for more to send with it.
    pub linger: Duration,
    /// Per kind of its mix (`EventMix::names`), its index in `Plan::kinds`;
    /// empty when the run writes no versioned type, and nothing is counted.
    pub kind_ids: Arc<[u32]>,
}

/// Synchronous replication of a producer's writes: `WAIT replicas timeout_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wait {
    pub replicas: u32,
    pub timeout: Duration,
}

impl ProducerPlan {
    pub fn schedule(&self, end: Duration) -> Schedule {
        Schedule::new(
            self.profile.clone(),
            self.arrival,
            self.phase,
            self.seed,
            end.as_secs_f64(),
        )
    }
}

#[derive(Debug, Clone)]
pub struct GroupPlan {
    pub index: usize,
    pub name: String,
    pub stream: usize,
    pub consumers: u32,
    pub batch: u32,
    pub block: Duration,
    pub start_id: String,
    pub start_after: Duration,
    /// Processing time per event, in nanoseconds.
    pub processing_ns: Real,
    pub ack: AckMode,
    /// XAUTOCLAIM: (min idle, period).
    pub reclaim: Option<(Duration, Duration)>,
    /// Entries delivered more than this often go to `dead_letter_key` unprocessed.
    pub max_deliveries: Option<u32>,
    /// `<stream key>:dlq`.
    pub dead_letter_key: String,
    pub poison: Option<Poison>,
    /// Checks per-aggregate order (docs/event-sourcing.md, "Per-aggregate ordering").
    pub check_order: bool,
    /// Its read model, if any (docs/event-sourcing.md, "Projections").
    pub projection: Option<Projection>,
    /// `<stream key>:proj:<group>`: one hash holds the whole model, so the
    /// idempotent script touches one key (one slot on a cluster).
    pub projection_key: String,
    /// What it does with each kind of event, when the run writes versioned
    /// types (docs/event-sourcing.md, "Schema versions").
    pub schema: Option<Arc<GroupSchema>>,
    /// Its projection rebuilt after the run (docs/event-sourcing.md, "Replay and snapshots").
    pub replay: Option<ReplayPlan>,
    pub seed: u64,
}

/// Which events a group always fails to process: a pure function of the
/// event, so every consumer, every redelivery and the tests agree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poison {
    pub fraction: f64,
    /// The scenario's seed.
    pub seed: u64,
}

impl Poison {
    pub fn is_poison(&self, producer: u32, seq: u64) -> bool {
        let draw = derive_seed(self.seed, SeedKind::Poison, u64::from(producer), seq);
        // The top 53 bits as a uniform number in [0, 1).
        ((draw >> 11) as f64 / (1u64 << 53) as f64) < self.fraction
    }
}

impl GroupPlan {
    /// Whether it may write its stream's dead-letter stream: after
    /// `max_deliveries`, or for a schema version it does not understand.
    pub fn dead_letters(&self) -> bool {
        self.max_deliveries.is_some() || self.schema.as_ref().is_some_and(|s| s.dead_letters())
    }
}

impl Plan {
    /// `run_id` names the report directory and prefixes the stream keys.
    /// The scenario must have passed validation.
    pub fn new(scenario: Scenario, run_id: String) -> Plan {
        let prefix = format!("{KEY_PREFIX}{run_id}:");
        let mut streams: Vec<StreamPlan> = Vec::new();
        let mut stream_index = |name: &str| match streams.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                let trim = scenario
                    .streams
                    .iter()
                    .find(|c| c.key == name)
                    .and_then(|c| match (c.maxlen, c.minid) {
                        (Some(len), _) => Some(Trim::MaxLen {
                            len,
                            approx: c.approx,
                        }),
                        (None, Some(age)) => Some(Trim::MinAge {
                            age: age.as_duration(),
                            approx: c.approx,
                        }),
                        (None, None) => None,
                    });
                let trim_policy = (scenario.streams.iter())
                    .find(|c| c.key == name)
                    .and_then(|c| c.trim_policy)
                    .filter(|_| trim.is_some());
                let key = format!("{prefix}{name}");
                let first = streams.len();
                match scenario.partitions_of(name) {
                    count @ 2.. => streams.extend((0..count).map(|index| StreamPlan {
                        name: name.to_string(),
                        key: partition_key(&key, index),
                        trim,
                        trim_policy,
                        partition: Some(Partition { index, count }),
                    })),
                    _ => streams.push(StreamPlan {
                        name: name.to_string(),
                        key,
                        trim,
                        trim_policy,
                        partition: None,
                    }),
                }
                first
            }
        };

        let kinds = event_kinds(&scenario);
        let mut producers = Vec::new();
        let mut connections = 0;
        for (entry, config) in scenario.producers.iter().enumerate() {
            let shared = config
                .connections
                .unwrap_or(config.count)
                .clamp(1, config.count.max(1));
            let stream = stream_index(&config.stream);
            let total = total_profile(config);
            let share = total.scaled(1.0 / config.count as f64);
            let mix = Arc::new(EventMix::new(&config.events, &config.aggregates));
            let label = config.name.clone().unwrap_or_else(|| config.stream.clone());
            let kind_ids: Arc<[u32]> = match kinds.is_empty() {
                true => Arc::from([]),
                false => (producer_kinds(&config.events).iter())
                    .map(|(kind, version)| {
                        let field =
                            version.map_or_else(|| kind.clone(), |v| versioned_name(kind, v));
                        (kinds.iter())
                            .position(|k| k.stream == config.stream && k.field == field)
                            .map_or(u32::MAX, |i| i as u32)
                    })
                    .collect(),
            };
            for n in 0..config.count {
                let id = producers.len() as u32;
                producers.push(ProducerPlan {
                    id,
                    label: format!("{label}/{n}"),
                    stream,
                    profile: share.clone(),
                    arrival: config.arrival,
                    phase: n as f64 / config.count as f64,
                    mix: mix.clone(),
                    seed: derive_seed(scenario.seed, SeedKind::Producer, entry as u64, n as u64),
                    pipeline: (config.rate == Some(Rate::Max)).then_some(config.pipeline),
                    wait: config.wait.map(|w| Wait {
                        replicas: w.replicas,
                        timeout: w.timeout.as_duration(),
                    }),
                    connection: connections + n % shared,
                    linger: config.linger.map_or(Duration::ZERO, |l| l.as_duration()),
                    kind_ids: kind_ids.clone(),
                });
            }
            connections += shared;
        }

        let groups = scenario
            .groups
            .iter()
            .enumerate()
            .map(|(index, g)| GroupPlan {
                index,
                name: g.name.clone(),
                stream: stream_index(&g.stream),
                consumers: g.consumers,
                batch: g.batch,
                block: g.block.as_duration(),
                start_id: g.start.clone(),
                start_after: g.start_after.as_duration(),
                processing_ns: Real::from(&g.processing),
                ack: g.ack,
                reclaim: g
                    .reclaim
                    .map(|r| (r.min_idle.as_duration(), r.every.as_duration())),
                max_deliveries: g.max_deliveries,
                dead_letter_key: format!("{prefix}{}:dlq", g.stream),
                poison: g.poison.map(|p| Poison {
                    fraction: p.fraction,
                    seed: scenario.seed,
                }),
                check_order: g.check_order,
                projection: g.projection,
                projection_key: format!("{prefix}{}:proj:{}", g.stream, g.name),
                schema: GroupSchema::new(g, &kinds).map(Arc::new),
                replay: (g.replay.as_ref())
                    .map(|r| ReplayPlan::new(r, &prefix, &g.stream, &g.name)),
                seed: derive_seed(scenario.seed, SeedKind::Group, index as u64, 0),
            })
            .collect();

        let faults = scenario
            .faults
            .iter()
            .map(|f| fault_plan(&scenario, f, &streams))
            .collect();
        Plan {
            faults,
            run_id,
            redis: scenario.redis.clone(),
            duration: scenario.duration.as_duration(),
            warmup: scenario.warmup.as_duration(),
            drain_timeout: scenario.drain_timeout.as_duration(),
            reply_grace: scenario.reply_grace.as_duration(),
            streams,
            producers,
            groups,
            kinds,
            scenario,
            segment: Segment::WHOLE,
        }
    }

    /// Whether the run targets a server of the user's own (`mode =
    /// "external"`), from which it deletes its keys when it is over.
    pub fn external(&self) -> bool {
        self.redis.mode == RedisMode::External
    }

    /// Expected events per second over the measured window, all producers together.
    /// Producer actors (one per connection) plus consumers: what runs on the workers.
    pub fn actors(&self) -> usize {
        let consumers: usize = self
            .groups
            .iter()
            .map(|g| self.consumers_run(g).count())
            .sum();
        self.producers_by_connection().len() + consumers
    }

    /// The keys of `stream` (an index producers and groups hold): its
    /// partitions in order, or its one key.
    pub fn partitions(&self, stream: usize) -> &[StreamPlan] {
        let count = self.streams[stream].partition.map_or(1, |p| p.count);
        &self.streams[stream..stream + count as usize]
    }

    /// The aggregate ids drawn for `stream`: `0..` this, the size of its
    /// version tables.
    pub fn aggregates_of(&self, stream: usize) -> u64 {
        (self.producers.iter())
            .filter(|p| p.stream == stream)
            .map(|p| p.mix.aggregate_count())
            .max()
            .unwrap_or(0)
    }

    /// The producers grouped by the connection they share, in connection
    /// order: the connections this process sends on (all but in a segment).
    pub fn producers_by_connection(&self) -> Vec<Vec<ProducerPlan>> {
        let n = self
            .producers
            .iter()
            .map(|p| p.connection + 1)
            .max()
            .unwrap_or(0);
        let mut by = vec![Vec::new(); n as usize];
        for p in &self.producers {
            by[p.connection as usize].push(p.clone());
        }
        let segment = self.segment;
        (0..n)
            .zip(by)
            .filter(|(c, _)| segment.owns_connection(*c))
            .map(|(_, p)| p)
            .collect()
    }

    /// Expected events per second over the measured window.
    pub fn target_rate_per_s(&self) -> f64 {
        self.target_rate_until(self.duration.as_secs_f64())
    }

    /// Expected events per second from the warmup's end until `to_s` (a run
    /// stopped early measures only that far).
    pub fn target_rate_until(&self, to_s: f64) -> f64 {
        let (from, to) = (
            self.warmup.as_secs_f64(),
            to_s.min(self.duration.as_secs_f64()),
        );
        let events: f64 = self
            .producers_run()
            .map(|p| p.profile.events_until(to) - p.profile.events_until(from))
            .sum();
        if to > from { events / (to - from) } else { 0.0 }
    }

    /// Target rate of all producers at time t (for the time series).
    pub fn target_rate_at(&self, t_s: f64) -> f64 {
        self.producers_run().map(|p| p.profile.rate_at(t_s)).sum()
    }
}

fn total_profile(config: &ProducerConfig) -> RateProfile {
    match config.rate {
        Some(Rate::PerSecond(rate)) if config.stages.is_empty() => RateProfile::constant(rate),
        // A saturating producer has no target rate.
        Some(Rate::Max) => RateProfile::constant(0.0),
        _ => {
            let stages: Vec<(f64, f64)> = config
                .stages
                .iter()
                .map(|s| (s.duration.as_secs_f64(), s.rate))
                .collect();
            let start = config
                .start_rate
                .or(stages.first().map(|s| s.1))
                .unwrap_or(0.0);
            RateProfile::stages(start, &stages)
        }
    }
}

/// What a derived seed is for. Each kind draws from its own sequence, so
/// adding draws of one kind never shifts another's. The numbers are part of
/// every run's identity (a scenario and seed replay the same events): never
/// renumber a kind; a new one takes an unused number (4 and 6 never were).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedKind {
    /// A producer's arrivals and event draws, by (entry, n).
    Producer = 1,
    /// A consumer group's, by (index); its consumers' seeds derive from it.
    Group = 2,
    /// A consumer's processing-time draws, by (index in its group), from
    /// its group's seed.
    Consumer = 3,
    /// Whether an event is poison, by (producer, seq).
    Poison = 5,
    /// The replication link proxy's jitter draws.
    ReplicationLink = 7,
}

/// Independent, reproducible seeds per actor (SplitMix64 finaliser over the parts).
pub fn derive_seed(seed: u64, kind: SeedKind, a: u64, b: u64) -> u64 {
    let kind = kind as u64;
    mix64(seed ^ kind.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ a.rotate_left(21) ^ b.rotate_left(42))
}

/// SplitMix64's finaliser: every input bit moves about half the output bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
