//! Sampler actor: once per interval reads what Redis itself says (stream
//! lengths, each group's lag and pending count, memory, commands per second,
//! CPU; in a cluster, each primary's CPU too) on its own connection, so the
//! time series has an independent view beside the harness's own counters.

use std::time::Instant;

use crate::connect::Conn;
use actix::prelude::*;
use redis::Value;
use redis::streams::StreamInfoGroupsReply;

use super::{ReadingReport, every_interval};
use crate::clock::RunClock;
use crate::metrics::cluster::ShardReading;
use crate::metrics::trim::head_distance;
use crate::metrics::{
    GroupReading, Reading, SUMMED_INFO_FIELDS, StreamReading, info_field, info_sum,
};
use crate::verify;

pub struct Sampler {
    conn: Conn,
    clock: RunClock,
    /// Stream keys, and for each group (in plan order) its name and stream
    /// keys (several for a partitioned stream, whose figures add up).
    streams: Vec<String>,
    groups: Vec<(String, Vec<String>)>,
    /// Per stream key, whether it is trimmed: its groups' distance to the
    /// trimmed head is read too.
    trimmed: Vec<bool>,
    collector: Recipient<ReadingReport>,
    /// Redis's command counter at the previous reading, for a rate.
    last_commands: Option<(Instant, u64)>,
}

impl Sampler {
    pub fn new(
        conn: Conn,
        clock: RunClock,
        streams: Vec<String>,
        groups: Vec<(String, Vec<String>)>,
        trimmed: Vec<bool>,
        collector: Recipient<ReadingReport>,
    ) -> Sampler {
        Sampler {
            conn,
            clock,
            streams,
            groups,
            trimmed,
            collector,
            last_commands: None,
        }
    }

    fn read(&mut self, interval: u32, ctx: &mut Context<Self>) {
        let mut conn = self.conn.clone();
        let streams = self.streams.clone();
        let trimmed = self.trimmed.clone();
        let at_s = self.clock.now_ns() as f64 / 1e9;
        let harness_cpu_s = crate::clock::process_cpu_s();
        // Rates use when each reading was asked for: two replies that arrive
        // together after a stall are still a second apart in Redis's counters.
        let asked = Instant::now();
        let read = async move { read_redis(&mut conn, &streams, &trimmed).await };
        ctx.spawn(read.into_actor(self).map(move |reply, act, _| {
            // A reading Redis cannot answer is a gap in the series, not an error:
            // the drills kill Redis on purpose.
            let Ok(Readings {
                lengths,
                infos,
                info,
                heads,
                shards,
            }) = reply
            else {
                return;
            };
            let commands = info_field(&info, "total_commands_processed").unwrap_or(0u64);
            let ops_per_sec = match act.last_commands.replace((asked, commands)) {
                Some((then, before)) => {
                    commands.saturating_sub(before) as f64 / (asked - then).as_secs_f64().max(1e-3)
                }
                None => 0.0,
            };
            let reading = Reading {
                at_s,
                used_memory_bytes: info_field(&info, "used_memory").unwrap_or(0u64),
                ops_per_sec,
                cpu_s: cpu_seconds(&info),
                harness_cpu_s: Some(harness_cpu_s),
                shards,
                groups: act.group_readings(&infos, &heads),
                streams: act
                    .streams
                    .iter()
                    .zip(lengths)
                    .map(|(key, length)| StreamReading {
                        key: key.clone(),
                        length,
                    })
                    .collect(),
            };
            act.collector.do_send(ReadingReport { interval, reading });
        }));
    }

    /// `heads`: per stream key, (length, entries-added) of a trimmed one.
    fn group_readings(
        &self,
        infos: &[StreamInfoGroupsReply],
        heads: &[Option<(u64, u64)>],
    ) -> Vec<GroupReading> {
        self.groups
            .iter()
            .map(|(name, keys)| {
                let info = |key: &String| {
                    (self.streams.iter().position(|s| s == key))
                        .and_then(|i| infos.get(i))
                        .and_then(|r| r.groups.iter().find(|g| &g.name == name))
                };
                let infos: Vec<_> = keys.iter().map(info).collect();
                // The closest partition is how close the group came.
                let head_distance = (keys.iter().zip(&infos))
                    .filter_map(|(key, i)| {
                        let k = self.streams.iter().position(|s| s == key)?;
                        let (length, added) = (*heads.get(k)?)?;
                        let lag = i.and_then(|g| g.lag.map(|l| l as u64));
                        head_distance(length, added, lag)
                    })
                    .min();
                // A lag unknown on one partition is unknown for the group.
                let lag = (infos.iter())
                    .map(|i| i.and_then(|g| g.lag.map(|l| l as u64)))
                    .sum::<Option<u64>>();
                GroupReading {
                    name: name.clone(),
                    lag,
                    pending: infos.iter().flatten().map(|g| g.pending as u64).sum(),
                    head_distance,
                }
            })
            .collect()
    }
}

/// What one reading got from Redis.
struct Readings {
    lengths: Vec<u64>,
    infos: Vec<StreamInfoGroupsReply>,
    /// INFO memory, stats and cpu (a cluster's summed over the primaries).
    info: String,
    /// Per key, (length, entries-added) from XINFO STREAM for a trimmed one.
    heads: Vec<Option<(u64, u64)>>,
    /// A cluster's primaries' own CPU, in slot order; empty for one server.
    shards: Vec<ShardReading>,
}

/// One reading's commands: each stream's length, then its groups, then
/// three INFO sections, then XINFO STREAM of each key `trimmed` marks (the
/// preflight checks these very commands).
pub fn readings(streams: &[String], trimmed: &[bool]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for key in streams {
        pipe.cmd("XLEN").arg(key);
    }
    for key in streams {
        pipe.cmd("XINFO").arg("GROUPS").arg(key);
    }
    pipe.cmd("INFO").arg("memory").cmd("INFO").arg("stats");
    pipe.cmd("INFO").arg("cpu");
    // Its own length with entries-added, read together: whether trimming
    // has begun, and how many entries are left.
    for (key, _) in streams.iter().zip(trimmed).filter(|(_, t)| **t) {
        pipe.cmd("XINFO").arg("STREAM").arg(key);
    }
    pipe
}

async fn read_redis(
    conn: &mut Conn,
    streams: &[String],
    trimmed: &[bool],
) -> redis::RedisResult<Readings> {
    let mut replies: Vec<Value> = readings(streams, trimmed).query_async(conn).await?;
    let stream_infos = replies.split_off(replies.len().saturating_sub(trimmed_count(trimmed)));
    let cpu: String = redis::from_redis_value(replies.pop().unwrap_or(Value::Nil))?;
    let stats: String = redis::from_redis_value(replies.pop().unwrap_or(Value::Nil))?;
    let memory: String = redis::from_redis_value(replies.pop().unwrap_or(Value::Nil))?;
    let infos = replies.split_off(streams.len());
    let lengths = replies
        .into_iter()
        .map(redis::from_redis_value)
        .collect::<Result<_, _>>()?;
    let infos = infos
        .into_iter()
        .map(redis::from_redis_value)
        .collect::<Result<_, _>>()?;
    let mut stream_infos = stream_infos.into_iter();
    let heads = (trimmed.iter())
        .map(|&t| match t {
            true => stream_infos.next().and_then(|r| {
                let fields = verify::info_fields(&r);
                let field = |f: &str| fields.get(f)?.parse::<u64>().ok();
                Some((field("length")?, field("entries-added")?))
            }),
            false => None,
        })
        .collect();
    let (info, shards) = match conn.is_cluster() {
        false => (memory + &stats + &cpu, Vec::new()),
        true => {
            let each = each_primary_info(conn).await?;
            let shards = (each.iter())
                .map(|(node, info)| ShardReading {
                    node: node.clone(),
                    cpu_s: cpu_seconds(info),
                })
                .collect();
            let infos: Vec<String> = each.into_iter().map(|(_, info)| info).collect();
            (info_sum(&infos, &SUMMED_INFO_FIELDS), shards)
        }
    };
    Ok(Readings {
        lengths,
        infos,
        info,
        heads,
        shards,
    })
}

/// Each of a cluster's primaries, `host:port` in slot order, with its INFO
/// memory, stats and cpu: the figures a reading uses are summed over them
/// (the pipeline's own INFO is the first shard's), and each one's CPU is
/// its shard's.
async fn each_primary_info(conn: &Conn) -> redis::RedisResult<Vec<(String, String)>> {
    let mut each = Vec::new();
    for (node, mut primary) in conn.primaries() {
        let (memory, stats, cpu): (String, String, String) = redis::pipe()
            .cmd("INFO")
            .arg("memory")
            .cmd("INFO")
            .arg("stats")
            .cmd("INFO")
            .arg("cpu")
            .query_async(&mut primary)
            .await?;
        each.push((node, memory + &stats + &cpu));
    }
    Ok(each)
}

fn trimmed_count(trimmed: &[bool]) -> usize {
    trimmed.iter().filter(|t| **t).count()
}

/// Redis's CPU seconds (user + system, main thread and the rest) from INFO cpu.
fn cpu_seconds(info: &str) -> Option<f64> {
    Some(info_field::<f64>(info, "used_cpu_user")? + info_field::<f64>(info, "used_cpu_sys")?)
}

impl Actor for Sampler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        every_interval(ctx, self.clock, |act: &mut Self, interval, ctx| {
            act.read(interval, ctx)
        });
    }
}
