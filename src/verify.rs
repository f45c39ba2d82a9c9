//! Reading back what Redis itself holds, independently of the harness's own
//! counters: each stream's `entries-added` and length, and per group what is
//! still unread beyond its cursor or still pending in its PEL after the drain.
//! The coordinator calls this in the verify phase; the marks settle the ledger
//! so that "not reached yet" and "stranded" are never reported as "lost".

use std::collections::HashMap;

use crate::connect::Conn;
use redis::streams::{StreamInfoGroup, StreamInfoGroupsReply};
use redis::{RedisResult, Value};

use crate::error::{Error, Result};
use crate::event::Header;
use crate::metrics::commandstats::CommandStats;
use crate::metrics::durability::{self, Durability};
use crate::metrics::projection::{self, ProjectionCheck};
use crate::metrics::{EventKey, ProduceLedger, StreamUsage};
use crate::metrics::{PartitionOf, StreamVerify, VerifySummary};
use crate::plan::Plan;
use crate::wire::entries::{Entry, entries};

mod trim;
pub use trim::TrimmedHead;

/// Entries read per XRANGE / XPENDING call while reading a backlog back.
pub const READ_CHUNK: usize = 10_000;

/// What Redis still holds for one group after the drain.
#[derive(Debug, Default, Clone)]
pub struct GroupMarks {
    pub pending_at_end: u64,
    /// Events still in the stream beyond the group's last delivered id.
    pub unread: Vec<EventKey>,
    /// Events delivered to the group and never acknowledged.
    pub pending: Vec<EventKey>,
    /// On a trimmed stream, what trimming removed and whether it alone did.
    pub trim: Option<TrimmedHead>,
}

/// XINFO STREAM as field -> value text (numbers and ids; nested entries are skipped).
pub async fn stream_info(conn: &mut Conn, key: &str) -> RedisResult<HashMap<String, String>> {
    let reply: Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(key)
        .query_async(conn)
        .await?;
    Ok(info_fields(&reply))
}

/// An XINFO reply's fields whose values are text or numbers, as text:
/// RESP2 pairs or a RESP3 map alike; nested values are skipped.
pub fn info_fields(reply: &Value) -> HashMap<String, String> {
    let text = |v: &Value| redis::from_redis_value::<String>(v.clone()).ok();
    let pairs: Vec<(&Value, &Value)> = match reply {
        Value::Array(items) => (items.chunks(2))
            .filter_map(|pair| match pair {
                [k, v] => Some((k, v)),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        _ => Vec::new(),
    };
    (pairs.into_iter())
        .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
        .collect()
}

/// One group's XINFO GROUPS entry, if the group exists.
pub async fn group_info(
    conn: &mut Conn,
    key: &str,
    group: &str,
) -> RedisResult<Option<StreamInfoGroup>> {
    let groups: StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query_async(conn)
        .await?;
    Ok(groups.groups.into_iter().find(|g| g.name == group))
}

/// A stream id "ms-seq" as a comparable pair; "" or garbage sorts first.
pub fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// Each stream's own count of entries ever added, checked against the XADDs
/// producers saw acknowledged.
pub async fn streams(
    plan: &Plan,
    conn: &mut Conn,
    url: &str,
    ledgers: &[ProduceLedger],
) -> Result<VerifySummary> {
    let mut streams = Vec::new();
    for s in &plan.streams {
        let info = stream_info(conn, &s.key)
            .await
            .map_err(|e| Error::redis(url, format!("reading XINFO STREAM {}", s.key), e))?;
        let number = |f: &str| info.get(f).and_then(|v| v.parse().ok()).unwrap_or(0);
        streams.push(StreamVerify {
            key: s.key.clone(),
            entries_added: number("entries-added"),
            length: number("length"),
            partition: s.partition.map(|p| PartitionOf {
                stream: s.name.clone(),
                index: p.index,
            }),
        });
    }
    let mut verify = VerifySummary::new(streams, ledgers);
    verify.dead_letter = dead_letter_streams(plan, conn)
        .await
        .map_err(|e| Error::redis(url, "reading the dead-letter streams", e))?;
    Ok(verify)
}

/// Length of each dead-letter stream (once per key; groups on one stream share it).
async fn dead_letter_streams(plan: &Plan, conn: &mut Conn) -> RedisResult<Vec<StreamVerify>> {
    let mut keys: Vec<&str> = (plan.groups.iter())
        .filter(|g| g.dead_letters())
        .map(|g| g.dead_letter_key.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        // XINFO fails on a stream nobody wrote: nothing was dead-lettered.
        let length: u64 = redis::cmd("XLEN").arg(key).query_async(conn).await?;
        let entries_added = match length {
            0 => 0,
            _ => (stream_info(conn, key).await?.get("entries-added"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        };
        out.push(StreamVerify {
            key: key.to_string(),
            entries_added,
            length,
            partition: None,
        });
    }
    Ok(out)
}

/// After Redis was killed and restarted: every stream read back whole, and
/// every XADD judged by what Redis answered and what survived.
pub async fn durability(
    plan: &Plan,
    conn: &mut Conn,
    url: &str,
    ledgers: &[ProduceLedger],
) -> Result<Durability> {
    let mut present = Vec::new();
    for s in &plan.streams {
        let keys = read_headers(conn, &s.key, "-")
            .await
            .map_err(|e| Error::redis(url, format!("reading {} back", s.key), e))?;
        present.extend(keys);
    }
    Ok(durability::check(ledgers, &present))
}

/// Per group (in plan order): its unread backlog and its pending entries, as
/// event keys, or why they could not be read back.
pub async fn group_marks(
    plan: &Plan,
    conn: &mut Conn,
    url: &str,
) -> Vec<std::result::Result<GroupMarks, String>> {
    let mut marks = Vec::with_capacity(plan.groups.len());
    for g in &plan.groups {
        let mut all = Ok(GroupMarks::default());
        // A partitioned stream's group: its marks on each key, together.
        for key in plan.partitions(g.stream).iter().map(|s| &s.key) {
            let Ok(sum) = &mut all else { break };
            match group_marks_on(conn, key, &g.name).await {
                Ok(m) => {
                    sum.pending_at_end += m.pending_at_end;
                    sum.unread.extend(m.unread);
                    sum.pending.extend(m.pending);
                }
                Err(e) => {
                    let what = format!("reading back group {} of {key}", g.name);
                    all = Err(Error::redis(url, what, e).to_string());
                }
            }
        }
        if let Ok(sum) = &mut all {
            match trimmed_head(plan, g, conn).await {
                Ok(head) => sum.trim = head,
                Err(e) => {
                    let what = format!("reading back what trimming removed for group {}", g.name);
                    all = Err(Error::redis(url, what, e).to_string());
                }
            }
        }
        marks.push(all);
    }
    marks
}

/// On a trimmed stream, what trimming removed and whether it alone did.
async fn trimmed_head(
    plan: &Plan,
    g: &crate::plan::GroupPlan,
    conn: &mut Conn,
) -> RedisResult<Option<TrimmedHead>> {
    let keys = trim::keys(plan, g);
    if keys.is_empty() {
        return Ok(None);
    }
    let mut infos = Vec::with_capacity(keys.len());
    for key in keys {
        infos.push((key, stream_info(conn, key).await?));
    }
    Ok(Some(trim::trimmed_head(plan, g, &infos)))
}

/// One group's marks on one key.
async fn group_marks_on(conn: &mut Conn, key: &str, group: &str) -> RedisResult<GroupMarks> {
    let Some(info) = group_info(conn, key, group).await? else {
        return Ok(GroupMarks::default());
    };
    Ok(GroupMarks {
        pending_at_end: info.pending as u64,
        unread: read_range(conn, key, &format!("({}", info.last_delivered_id)).await?,
        pending: read_pending(conn, key, group).await?,
        trim: None,
    })
}

/// Per group (in plan order), its projection's read model checked against
/// the events its stream holds, or None for a group without one.
pub async fn projections(plan: &Plan, conn: &mut Conn, url: &str) -> Vec<Option<ProjectionCheck>> {
    let mut out = Vec::with_capacity(plan.groups.len());
    for g in &plan.groups {
        let Some(mode) = g.projection else {
            out.push(None);
            continue;
        };
        let check = match projection_of(plan, g, conn).await {
            Ok((stream, model, skipped)) => {
                let skipped = (mode.name() == "idempotent").then_some(skipped);
                projection::compare(mode.name(), &stream, &model, skipped)
            }
            Err(e) => {
                let what = format!("reading back group {}'s projection", g.name);
                ProjectionCheck::unavailable(mode.name(), Error::redis(url, what, e).to_string())
            }
        };
        out.push(Some(check));
    }
    out
}

/// INFO commandstats, for what a run's projections cost Redis: a cluster's
/// calls and microseconds per command summed over its primaries.
pub async fn command_stats(conn: &mut Conn) -> RedisResult<CommandStats> {
    let mut total = CommandStats::default();
    for (_, mut primary) in conn.primaries() {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut primary)
            .await?;
        total.add(&CommandStats::parse(&info));
    }
    Ok(total)
}

/// Sets each projection's Redis cost from the commandstats read at the
/// start (None: that reading failed) and now. Per event is left to the
/// caller, which knows what the group processed.
pub async fn projection_costs(
    plan: &Plan,
    conn: &mut Conn,
    at_start: Option<&CommandStats>,
    checks: &mut [Option<ProjectionCheck>],
) {
    let groups: Vec<(&str, Option<&str>, bool)> = (plan.groups.iter())
        .map(|g| {
            let dead_letters = g.schema.as_ref().is_some_and(|s| s.dead_letters());
            (
                g.name.as_str(),
                g.projection.map(|p| p.name()),
                dead_letters,
            )
        })
        .collect();
    let now = match at_start {
        Some(_) => command_stats(conn).await.map_err(|e| e.to_string()),
        None => Err("INFO commandstats could not be read at the start".to_string()),
    };
    let owned = projection::cost_attribution(&groups);
    for (check, owned) in checks.iter_mut().zip(owned) {
        let (Some(check), Some(owned)) = (check.as_mut(), owned) else {
            continue;
        };
        let usage = owned.and_then(|commands| {
            let (now, start) = match (&now, at_start) {
                (Ok(now), Some(start)) => (now, start),
                (Err(why), _) => return Err(why.clone()),
                (Ok(_), None) => return Err("no commandstats reading at the start".into()),
            };
            let usage = (now.since(start, commands)).ok_or(
                "Redis's command counters went down during the run (a restart or CONFIG RESETSTAT)",
            )?;
            Ok((commands, usage))
        });
        match usage {
            Ok((commands, usage)) => {
                check.redis_cost = Some(projection::RedisCost {
                    commands: commands.iter().map(|c| c.to_string()).collect(),
                    calls: usage.calls,
                    usec: usage.usec,
                    usec_per_event: None,
                })
            }
            Err(why) => check.redis_cost_note = Some(why),
        }
    }
}

/// The group's stream per aggregate, its model, and the model's refusals.
async fn projection_of(
    plan: &Plan,
    g: &crate::plan::GroupPlan,
    conn: &mut Conn,
) -> RedisResult<(projection::PerAggregate, projection::PerAggregate, u64)> {
    let mut events = Vec::new();
    for key in plan.partitions(g.stream).iter().map(|s| &s.key) {
        let pick = |e: &Entry| e.aggregate.map(|a| (a.aggregate, u64::from(a.version)));
        events.extend(read_all(conn, key, "-", pick).await?);
    }
    let fields: HashMap<String, u64> = redis::cmd("HGETALL")
        .arg(&g.projection_key)
        .query_async(conn)
        .await?;
    let (model, skipped) = projection::parse_model(fields);
    Ok((projection::expected(events), model, skipped))
}

/// Each stream's length and memory after the drain (docs/capacity.md,
/// "Sizing"). Best effort: a stream Redis cannot measure is left out, and
/// a server without MEMORY USAGE gives None for its bytes.
pub async fn stream_usage(plan: &Plan, conn: &mut Conn) -> Vec<StreamUsage> {
    let mut out = Vec::with_capacity(plan.streams.len());
    for s in &plan.streams {
        let Ok(length) = redis::cmd("XLEN")
            .arg(&s.key)
            .query_async::<u64>(conn)
            .await
        else {
            continue;
        };
        out.push(StreamUsage {
            key: s.name.clone(),
            length,
            memory_bytes: memory_usage(conn, &s.key).await,
        });
    }
    out
}

/// MEMORY USAGE of `key`, every node of a stream counted (SAMPLES 0); None
/// where the server refuses it or the key is gone.
pub async fn memory_usage(conn: &mut Conn, key: &str) -> Option<u64> {
    (redis::cmd("MEMORY").arg("USAGE").arg(key))
        .arg("SAMPLES")
        .arg(0)
        .query_async::<Option<u64>>(conn)
        .await
        .ok()
        .flatten()
}

/// Keys of the events in `key` from `start` (an XRANGE start, "(" for exclusive) to the end.
async fn read_range(conn: &mut Conn, key: &str, start: &str) -> RedisResult<Vec<EventKey>> {
    let headers = read_headers(conn, key, start).await?;
    Ok((headers.iter())
        .map(|h| EventKey {
            producer: h.producer,
            seq: h.seq,
        })
        .collect())
}

/// The streamdrill events in `key` from `start` on.
async fn read_headers(conn: &mut Conn, key: &str, start: &str) -> RedisResult<Vec<Header>> {
    read_all(conn, key, start, |e| e.header).await
}

/// What `pick` takes from each entry of `key` from `start` on.
async fn read_all<T>(
    conn: &mut Conn,
    key: &str,
    start: &str,
    pick: impl Fn(&Entry) -> Option<T>,
) -> RedisResult<Vec<T>> {
    let mut keys = Vec::new();
    let mut pages = Pages::new(key, start, READ_CHUNK);
    while let Some(page) = pages.next(conn).await? {
        keys.extend(page.iter().filter_map(&pick));
    }
    Ok(keys)
}

/// A stream read from `start` on, `count` entries at a time: XRANGE from
/// just after each page's last id, until a page comes back short. The
/// read-back and the replay read streams this way.
pub struct Pages<'k> {
    key: &'k str,
    from: String,
    count: usize,
    done: bool,
}

impl<'k> Pages<'k> {
    pub fn new(key: &'k str, start: &str, count: usize) -> Pages<'k> {
        Pages {
            key,
            from: start.to_string(),
            count,
            done: false,
        }
    }

    /// The next page; None once the stream has been read to its end.
    pub async fn next(&mut self, conn: &mut Conn) -> RedisResult<Option<Vec<Entry>>> {
        if self.done {
            return Ok(None);
        }
        let list: Value = redis::cmd("XRANGE")
            .arg(self.key)
            .arg(&self.from)
            .arg("+")
            .arg("COUNT")
            .arg(self.count)
            .query_async(conn)
            .await?;
        let page = entries(list);
        let Some(last) = page.last() else {
            self.done = true;
            return Ok(None);
        };
        self.from = format!("({}", String::from_utf8_lossy(&last.id));
        self.done = page.len() < self.count;
        Ok(Some(page))
    }
}

/// Keys of the events pending in `group`: ids from XPENDING, entries from XRANGE
/// (a pending entry that was deleted from the stream has no key: it is gone).
async fn read_pending(conn: &mut Conn, key: &str, group: &str) -> RedisResult<Vec<EventKey>> {
    let mut keys = Vec::new();
    let mut from = "-".to_string();
    loop {
        let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(key)
            .arg(group)
            .arg(&from)
            .arg("+")
            .arg(READ_CHUNK)
            .query_async(conn)
            .await?;
        let mut pipe = redis::pipe();
        for (id, ..) in &rows {
            pipe.cmd("XRANGE").arg(key).arg(id).arg(id);
        }
        let lists: Vec<Value> = if rows.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(conn).await?
        };
        for list in lists {
            keys.extend(entries(list).iter().filter_map(|e| {
                e.header.map(|h| EventKey {
                    producer: h.producer,
                    seq: h.seq,
                })
            }));
        }
        match rows.last() {
            Some((id, ..)) if rows.len() == READ_CHUNK => from = format!("({id}"),
            _ => return Ok(keys),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_read_resp2_pairs_and_resp3_maps_alike() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let resp2 = Value::Array(vec![
            bulk("length"),
            Value::Int(200),
            bulk("first-entry"),
            Value::Array(vec![bulk("1-0")]),
            bulk("max-deleted-entry-id"),
            bulk("0-0"),
        ]);
        let resp3 = Value::Map(vec![
            (bulk("length"), Value::Int(200)),
            (bulk("max-deleted-entry-id"), bulk("0-0")),
        ]);
        for reply in [resp2, resp3] {
            let fields = info_fields(&reply);
            assert_eq!(fields.get("length").map(String::as_str), Some("200"));
            assert_eq!(
                fields.get("max-deleted-entry-id").map(String::as_str),
                Some("0-0")
            );
            assert!(!fields.contains_key("first-entry"));
        }
    }
}
