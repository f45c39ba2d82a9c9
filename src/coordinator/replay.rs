//! The replay phase (docs/event-sourcing.md, "Replay and snapshots"): after
//! the read-back, each group with `replay` rebuilds its projection from its
//! stream (every partition) as fast as it can, into a key of its own, with
//! the live projection's writes; optionally writing snapshots, compacting
//! the stream below the oldest one still needed, and rebuilding again from
//! the snapshots and the tail. It runs after the read-back so that nothing
//! it trims can change the run's ledger or its projection check.

use std::collections::HashMap;
use std::time::Instant;

use redis::{RedisResult, Value};

use crate::actors::projection;
use crate::connect::Conn;
use crate::error::Error;
use crate::event::AggregateVersion;
use crate::metrics::projection::{PerAggregate, compare, parse_model};
use crate::metrics::replay::{
    Coverage, Id, RawRead, ReplayPass, ReplayReport, SnapshotReport, State, compaction_minid,
    successor,
};
use crate::plan::{GroupPlan, Plan, ReplayPlan};
use crate::verify;

/// Aggregates' snapshots seeded into the tail model per pipeline.
const SEED_CHUNK: usize = 1000;

/// Per group (in plan order), its replay, or None for a group without one.
/// After Ctrl-C none runs, and each says so.
pub(super) async fn replays(
    plan: &Plan,
    conn: &mut Conn,
    url: &str,
    interrupted: bool,
) -> Vec<Option<ReplayReport>> {
    let mut out = Vec::with_capacity(plan.groups.len());
    for g in &plan.groups {
        let (Some(r), Some(mode)) = (&g.replay, g.projection) else {
            out.push(None);
            continue;
        };
        let mut report = ReplayReport {
            mode: mode.name().to_string(),
            batch: r.batch,
            checkpoint_every: r.checkpoint_every,
            ..ReplayReport::default()
        };
        if interrupted {
            report.error = Some("not run: Ctrl-C stopped the run".into());
        } else if let Err((doing, e)) = replay(plan, g, r, conn, &mut report).await {
            let doing = format!("replaying group {}: {doing}", g.name);
            report.error = Some(Error::redis(url, doing, e).to_string());
        }
        out.push(Some(report));
    }
    out
}

type Step<T> = std::result::Result<T, (&'static str, redis::RedisError)>;

fn at(doing: &'static str) -> impl FnOnce(redis::RedisError) -> (&'static str, redis::RedisError) {
    move |e| (doing, e)
}

async fn replay(
    plan: &Plan,
    g: &GroupPlan,
    r: &ReplayPlan,
    conn: &mut Conn,
    report: &mut ReplayReport,
) -> Step<()> {
    let keys: Vec<String> = (plan.partitions(g.stream).iter())
        .map(|s| s.key.clone())
        .collect();
    let mut del = redis::cmd("DEL");
    del.arg(&r.keys()[..]);
    del.query_async::<()>(conn)
        .await
        .map_err(at("deleting old replay keys"))?;
    let live = model(conn, &g.projection_key)
        .await
        .map_err(at("reading the live model"))?;

    report.raw_read = raw_read(conn, &keys, r.batch)
        .await
        .map_err(at("reading the stream alone"))?;
    let mut full = Pass::new(g, r, &r.model_key);
    full.snapshots = r.snapshot_every.map(|every| (every, Vec::new()));
    let started = Instant::now();
    for key in &keys {
        full.key(conn, key, &HashMap::new())
            .await
            .map_err(at("rebuilding from the start"))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let stream = std::mem::take(&mut full.stream);
    report.full = full
        .finish(conn, seconds, &stream, &live)
        .await
        .map_err(at("reading the rebuilt model"))?;

    let Some((every, coverage)) = full.snapshots.take() else {
        return Ok(());
    };
    let mut snap = SnapshotReport {
        every,
        written: full.snapshots_written,
        compacted: r.compact,
        ..SnapshotReport::default()
    };
    (snap.length_before, snap.memory_bytes_before) = usage(conn, &keys)
        .await
        .map_err(at("measuring the stream"))?;
    if r.compact {
        for ((key, cov), last) in keys.iter().zip(&coverage).zip(&full.last_ids) {
            let Some(last) = last else { continue };
            let bounds = group_bounds(plan, g.stream, conn, key)
                .await
                .map_err(at("reading the groups' positions"))?;
            let (ms, seq) = compaction_minid(cov.oldest_needed(), *last, &bounds);
            snap.trimmed += redis::cmd("XTRIM")
                .arg(key)
                .arg("MINID")
                .arg("=")
                .arg(format!("{ms}-{seq}"))
                .query_async::<u64>(conn)
                .await
                .map_err(at("compacting the stream"))?;
        }
    }
    (snap.length_after, snap.memory_bytes_after) = usage(conn, &keys)
        .await
        .map_err(at("measuring the stream"))?;

    let started = Instant::now();
    let covered = seed_from_snapshots(conn, r, &mut snap)
        .await
        .map_err(at("reading the snapshots"))?;
    let mut tail = Pass::new(g, r, &r.tail_model_key);
    for key in &keys {
        tail.key(conn, key, &covered)
            .await
            .map_err(at("rebuilding from the snapshots"))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    snap.tail = tail
        .finish(conn, seconds, &stream, &live)
        .await
        .map_err(at("reading the rebuilt model"))?;
    report.snapshots = Some(snap);
    Ok(())
}

/// One rebuild over a stream's keys, folding into `model_key`.
struct Pass<'a> {
    /// Its projection's mode is the fold's.
    group: &'a GroupPlan,
    plan: &'a ReplayPlan,
    model_key: &'a str,
    /// The events read per aggregate (count, highest version): the
    /// stream's content, as the check compares it with a model.
    stream: PerAggregate,
    /// Entries read, events or not.
    read: u64,
    applied: u64,
    checkpoints: u64,
    /// With snapshots: every, and per key read, its coverage.
    snapshots: Option<(u64, Vec<Coverage>)>,
    snapshots_written: u64,
    /// The fold's state per aggregate, for the snapshots' content.
    states: HashMap<u64, State>,
    /// Per key read, its last id.
    last_ids: Vec<Option<Id>>,
}

impl<'a> Pass<'a> {
    fn new(group: &'a GroupPlan, plan: &'a ReplayPlan, model_key: &'a str) -> Pass<'a> {
        Pass {
            group,
            plan,
            model_key,
            stream: PerAggregate::new(),
            read: 0,
            applied: 0,
            checkpoints: 0,
            snapshots: None,
            snapshots_written: 0,
            states: HashMap::new(),
            last_ids: Vec::new(),
        }
    }

    /// "naive" or "idempotent".
    fn mode(&self) -> &'static str {
        self.group.projection.map_or("", |m| m.name())
    }

    /// Reads `key` from its start in batches and folds each event that no
    /// snapshot in `covered` holds already. A checkpoint (HSET of the
    /// key's last id read) follows every `checkpoint_every` events read and
    /// the key's last one, and ends a pipeline whose reply the rebuild
    /// waits for: it moves on only once its position is saved.
    async fn key(
        &mut self,
        conn: &mut Conn,
        key: &str,
        covered: &HashMap<u64, Id>,
    ) -> RedisResult<()> {
        if let Some((every, cov)) = &mut self.snapshots {
            cov.push(Coverage::new(*every));
        }
        let every = self.plan.checkpoint_every;
        let (mut read, mut last) = (0u64, None);
        let mut chunk: Vec<AggregateVersion> = Vec::new();
        let mut pipe = redis::pipe();
        let mut pages = verify::Pages::new(key, "-", self.plan.batch as usize);
        while let Some(batch) = pages.next(conn).await? {
            for e in &batch {
                let id = verify::parse_id(&String::from_utf8_lossy(&e.id));
                read += 1;
                self.read += 1;
                last = Some(id);
                if let Some(av) = e.aggregate {
                    self.event(av, id, covered, &mut chunk, &mut pipe);
                }
                if read.is_multiple_of(every) {
                    self.checkpoint(conn, key, id, &mut chunk, &mut pipe)
                        .await?;
                }
            }
        }
        if let Some(id) = last
            && !read.is_multiple_of(every)
        {
            self.checkpoint(conn, key, id, &mut chunk, &mut pipe)
                .await?;
        }
        self.last_ids.push(last);
        Ok(())
    }

    /// Folds one event unless a snapshot covers it, and writes the
    /// aggregate's snapshot when it completes one.
    fn event(
        &mut self,
        av: AggregateVersion,
        id: Id,
        covered: &HashMap<u64, Id>,
        chunk: &mut Vec<AggregateVersion>,
        pipe: &mut redis::Pipeline,
    ) {
        let (a, v) = (av.aggregate, u64::from(av.version));
        // As `projection::expected` counts them, without keeping every event.
        let seen = self.stream.entry(a).or_default();
        (seen.0, seen.1) = (seen.0 + 1, seen.1.max(v));
        if covered.get(&a).is_some_and(|&snap| id <= snap) {
            return;
        }
        self.applied += 1;
        chunk.push(av);
        let idempotent = self.mode() == "idempotent";
        let state = self.states.entry(a).or_default();
        state.fold(idempotent, v);
        let state = *state;
        let Some((_, cov)) = &mut self.snapshots else {
            return;
        };
        if cov.last_mut().is_some_and(|c| c.event(a, id)) {
            // The writes before it go first: the snapshot follows the state it records.
            self.flush_chunk(chunk, pipe);
            pipe.cmd("HSET")
                .arg(&self.plan.snapshot_key)
                .arg(format!("{a}:n"))
                .arg(state.n)
                .arg(format!("{a}:v"))
                .arg(state.v)
                .arg(format!("{a}:id"))
                .arg(format!("{}-{}", id.0, id.1));
            self.snapshots_written += 1;
        }
    }

    /// The chunk's projection writes (one EVAL for an idempotent one) into the pipeline.
    fn flush_chunk(&self, chunk: &mut Vec<AggregateVersion>, pipe: &mut redis::Pipeline) {
        if chunk.is_empty() {
            return;
        }
        if let Some(mode) = self.group.projection {
            for c in projection::pipeline(mode, self.model_key, chunk).cmd_iter() {
                pipe.add_command(c.clone());
            }
        }
        chunk.clear();
    }

    async fn checkpoint(
        &mut self,
        conn: &mut Conn,
        key: &str,
        id: Id,
        chunk: &mut Vec<AggregateVersion>,
        pipe: &mut redis::Pipeline,
    ) -> RedisResult<()> {
        self.flush_chunk(chunk, pipe);
        pipe.cmd("HSET")
            .arg(&self.plan.checkpoint_key)
            .arg(key)
            .arg(format!("{}-{}", id.0, id.1));
        pipe.query_async::<Vec<Value>>(conn).await?;
        *pipe = redis::pipe();
        self.checkpoints += 1;
        Ok(())
    }

    /// The pass's figures, its model read back and compared with the
    /// stream's content and with the live model.
    async fn finish(
        &self,
        conn: &mut Conn,
        seconds: f64,
        stream: &PerAggregate,
        live: &PerAggregate,
    ) -> RedisResult<ReplayPass> {
        let rebuilt = model(conn, self.model_key).await?;
        let check = compare(self.mode(), stream, &rebuilt, None);
        let read = self.read;
        Ok(ReplayPass {
            events_read: read,
            events_applied: self.applied,
            checkpoints: self.checkpoints,
            seconds,
            events_per_s: read as f64 / seconds.max(1e-9),
            aggregates: check.aggregates,
            divergent: check.divergent,
            divergent_from_live: compare(self.mode(), live, &rebuilt, None).divergent,
        })
    }
}

/// The keys read from the start in batches of `batch`, each entry decoded
/// as the rebuild decodes it, nothing written: the rebuild's ceiling.
async fn raw_read(conn: &mut Conn, keys: &[String], batch: u32) -> RedisResult<RawRead> {
    let started = Instant::now();
    let mut events_read = 0;
    for key in keys {
        let mut pages = verify::Pages::new(key, "-", batch as usize);
        while let Some(entries) = pages.next(conn).await? {
            events_read += entries.len() as u64;
            // Decoded as the rebuild does, so only the writes differ.
            std::hint::black_box(entries.iter().filter(|e| e.aggregate.is_some()).count());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(RawRead {
        events_read,
        seconds,
        events_per_s: events_read as f64 / seconds.max(1e-9),
    })
}

/// A model hash per aggregate (effects, last version).
async fn model(conn: &mut Conn, key: &str) -> RedisResult<PerAggregate> {
    let fields: HashMap<String, String> = redis::cmd("HGETALL").arg(key).query_async(conn).await?;
    let numbers = (fields.into_iter()).filter_map(|(f, v)| Some((f, v.parse().ok()?)));
    Ok(parse_model(numbers).0)
}

/// The stream's length (XLEN) and memory (MEMORY USAGE SAMPLES 0) over its keys.
async fn usage(conn: &mut Conn, keys: &[String]) -> RedisResult<(u64, Option<u64>)> {
    let (mut length, mut memory) = (0, Some(0));
    for key in keys {
        length += redis::cmd("XLEN").arg(key).query_async::<u64>(conn).await?;
        let bytes = verify::memory_usage(conn, key).await;
        memory = memory.zip(bytes).map(|(m, b)| m + b);
    }
    Ok((length, memory))
}

/// Per group of the stream on `key`, the lowest id it may still need: its
/// oldest pending entry, else the entry after its last delivered one.
async fn group_bounds(
    plan: &Plan,
    stream: usize,
    conn: &mut Conn,
    key: &str,
) -> RedisResult<Vec<Id>> {
    let mut bounds = Vec::new();
    for g in plan.groups.iter().filter(|g| g.stream == stream) {
        let Some(info) = verify::group_info(conn, key, &g.name).await? else {
            // Never created on this key: nothing of it to keep.
            continue;
        };
        bounds.push(successor(verify::parse_id(&info.last_delivered_id)));
        let summary: Vec<Value> = redis::cmd("XPENDING")
            .arg(key)
            .arg(&g.name)
            .query_async(conn)
            .await?;
        if let Some(Ok(oldest)) = summary
            .get(1)
            .map(|v| redis::from_redis_value::<String>(v.clone()))
        {
            bounds.push(verify::parse_id(&oldest));
        }
    }
    Ok(bounds)
}

/// Seeds the tail model with every snapshot's state; returns the id each
/// aggregate's snapshot covers.
async fn seed_from_snapshots(
    conn: &mut Conn,
    r: &ReplayPlan,
    snap: &mut SnapshotReport,
) -> RedisResult<HashMap<u64, Id>> {
    let fields: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&r.snapshot_key)
        .query_async(conn)
        .await?;
    let mut states: HashMap<u64, (State, Id)> = HashMap::new();
    for (field, value) in &fields {
        let Some((a, what)) = field.split_once(':') else {
            continue;
        };
        let Ok(a) = a.parse::<u64>() else { continue };
        let slot = states.entry(a).or_default();
        match what {
            "n" => slot.0.n = value.parse().unwrap_or(0),
            "v" => slot.0.v = value.parse().unwrap_or(0),
            "id" => slot.1 = verify::parse_id(value),
            _ => {}
        }
    }
    snap.aggregates = states.len() as u64;
    let all: Vec<_> = states.iter().collect();
    for part in all.chunks(SEED_CHUNK) {
        let mut pipe = redis::pipe();
        for (a, (s, _)) in part {
            pipe.cmd("HSET")
                .arg(&r.tail_model_key)
                .arg(format!("{a}:n"))
                .arg(s.n)
                .arg(format!("{a}:v"))
                .arg(s.v);
        }
        pipe.query_async::<Vec<Value>>(conn).await?;
    }
    Ok(states.into_iter().map(|(a, (_, id))| (a, id)).collect())
}

/// Every command the replay phase sends, with the run's keys, for the
/// preflight (docs/acl.md).
pub(super) fn commands(plan: &Plan) -> Vec<(redis::Cmd, String)> {
    let mut out = Vec::new();
    for g in &plan.groups {
        let (Some(r), Some(mode)) = (&g.replay, g.projection) else {
            continue;
        };
        let doing = format!("group {}'s replay", g.name);
        let mut add = |c: redis::Cmd| out.push((c, doing.clone()));
        add(cmd(&[&["DEL"][..], &r.keys()].concat()));
        add(cmd(&["HGETALL", &g.projection_key]));
        for key in plan.partitions(g.stream).iter().map(|s| s.key.as_str()) {
            add(cmd(&[
                "XRANGE",
                key,
                "-",
                "+",
                "COUNT",
                &r.batch.to_string(),
            ]));
            add(cmd(&["HSET", &r.checkpoint_key, key, "0-1"]));
            if r.compact {
                add(cmd(&["XINFO", "GROUPS", key]));
                for o in plan.groups.iter().filter(|o| o.stream == g.stream) {
                    add(cmd(&["XPENDING", key, &o.name]));
                }
                add(cmd(&["XTRIM", key, "MINID", "=", "0-1"]));
            }
            if r.snapshot_every.is_some() {
                add(cmd(&["XLEN", key]));
            }
        }
        let first = AggregateVersion {
            aggregate: 1,
            version: 1,
        };
        for model in [&r.model_key, &r.tail_model_key] {
            for c in projection::pipeline(mode, model, &[first]).cmd_iter() {
                add(c.clone());
            }
            add(cmd(&["HGETALL", model]));
            // The idempotent script's own commands are checked too.
            add(cmd(&["HGET", model, "1:v"]));
            add(cmd(&["HINCRBY", model, "1:n", "1"]));
            add(cmd(&["HSET", model, "1:n", "1", "1:v", "1"]));
        }
        if r.snapshot_every.is_some() {
            let key = r.snapshot_key.as_str();
            add(cmd(&["HSET", key, "1:n", "1", "1:v", "1", "1:id", "0-1"]));
            add(cmd(&["HGETALL", key]));
        }
    }
    out
}

fn cmd(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    c.arg(&args[1..]);
    c
}
