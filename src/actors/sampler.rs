//! Sampler actor: once per interval reads what Redis itself says (stream
//! lengths, each group's lag and pending count, memory, commands per second)
//! on its own connection, so the time series has an independent view beside
//! the harness's own counters.

use std::time::Instant;

use crate::connect::Conn;
use actix::prelude::*;
use redis::Value;
use redis::streams::StreamInfoGroupsReply;

use super::{ReadingReport, every_interval};
use crate::clock::RunClock;
use crate::metrics::trim::head_distance;
use crate::metrics::{GroupReading, Reading, StreamReading, info_field};

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
        let read = async move {
            let readings = read_redis(&mut conn, &streams).await?;
            let added = entries_added(&mut conn, &streams, &trimmed).await?;
            Ok::<_, redis::RedisError>((readings, added))
        };
        ctx.spawn(read.into_actor(self).map(move |reply, act, _| {
            // A reading Redis cannot answer is a gap in the series, not an error:
            // the drills kill Redis on purpose.
            let Ok(((lengths, infos, info), added)) = reply else {
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
                groups: act.group_readings(&infos, &lengths, &added),
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

    /// `lengths` and `added` (entries-added of a trimmed key, else None) per stream key.
    fn group_readings(
        &self,
        infos: &[StreamInfoGroupsReply],
        lengths: &[u64],
        added: &[Option<u64>],
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
                        let (length, added) = (*lengths.get(k)?, (*added.get(k)?)?);
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

type Readings = (Vec<u64>, Vec<StreamInfoGroupsReply>, String);

/// One reading's commands: each stream's length, then its groups, then
/// three INFO sections (the preflight checks these very commands).
pub fn readings(streams: &[String]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for key in streams {
        pipe.cmd("XLEN").arg(key);
    }
    for key in streams {
        pipe.cmd("XINFO").arg("GROUPS").arg(key);
    }
    pipe.cmd("INFO").arg("memory").cmd("INFO").arg("stats");
    pipe.cmd("INFO").arg("cpu");
    pipe
}

async fn read_redis(conn: &mut Conn, streams: &[String]) -> redis::RedisResult<Readings> {
    let mut replies: Vec<Value> = readings(streams).query_async(conn).await?;
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
    Ok((lengths, infos, memory + &stats + &cpu))
}

/// Per stream key, XINFO STREAM's `entries-added` for a trimmed one (None
/// for the others): with XLEN it says whether trimming has begun.
async fn entries_added(
    conn: &mut Conn,
    streams: &[String],
    trimmed: &[bool],
) -> redis::RedisResult<Vec<Option<u64>>> {
    let mut pipe = redis::pipe();
    for (key, _) in streams.iter().zip(trimmed).filter(|(_, t)| **t) {
        pipe.cmd("XINFO").arg("STREAM").arg(key);
    }
    let mut replies: std::vec::IntoIter<Value> = match trimmed.iter().any(|t| *t) {
        true => pipe.query_async::<Vec<Value>>(conn).await?.into_iter(),
        false => Vec::new().into_iter(),
    };
    Ok((trimmed.iter())
        .map(|&t| match t {
            true => replies
                .next()
                .and_then(|r| stream_field(r, "entries-added")),
            false => None,
        })
        .collect())
}

/// A number from an XINFO STREAM reply (RESP2 pairs or a RESP3 map).
fn stream_field(reply: Value, field: &str) -> Option<u64> {
    let pairs: Vec<(Value, Value)> = match reply {
        Value::Array(items) => {
            let mut it = items.into_iter();
            std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
        }
        Value::Map(pairs) => pairs,
        _ => return None,
    };
    let (_, value) = (pairs.into_iter())
        .find(|(k, _)| redis::from_redis_value::<String>(k.clone()).is_ok_and(|k| k == field))?;
    redis::from_redis_value(value).ok()
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
