//! How the segments of one run meet through the Redis they test
//! (docs/segments.md, "A common start"): no other service, one hash
//! `sd:meet:<name>` that every step writes with a short Lua script
//! (`scripts`).
//!
//! 1. `arrive`: a segment measures where Redis's clock stands on its own
//!    (`offset`), registers its number and the scenario's digest; the first
//!    one's proposed run id becomes everyone's (the keys' prefix).
//! 2. `start`: once set up, it says it is ready; when all are, the first to
//!    see it fixes the start a moment ahead in Redis `TIME`, and each starts
//!    its run clock at that instant.
//! 3. `barrier("sent:")` before the drain, so no segment drains while
//!    another still writes; `barrier("done:")` once its consumers stopped,
//!    so every segment reads back the same final state.
//! 4. `read_back_done`: the last one to have read back deletes the meeting
//!    (and the runner the run's keys).

mod offset;
mod scripts;

use std::time::{Duration, Instant};

use crate::clock::RunClock;
use crate::connect::Conn;
use crate::error::{Error, Result};
use crate::metrics::ClockOffset;
use crate::plan::{KEY_PREFIX, Segment};
use offset::{Anchor, measure_offset};
use scripts::{ARRIVE, CLOSE, MARK, READY};

/// How far ahead of the moment all are ready the start is set: every
/// segment polls every `POLL`, so each sees it in time to start on it.
const START_LEAD: Duration = Duration::from_millis(500);
const POLL: Duration = Duration::from_millis(20);
/// How long a meeting outlives its deadlines, for the slowest reader.
const MARGIN: Duration = Duration::from_secs(60);

/// What an ACL user needs for the meeting, its scripts' commands included.
pub const MEETING_ACL: &str =
    "+eval +time +hkeys +hget +hset +hsetnx +hexists +exists +pexpire +del";

/// One segment's place in a meeting.
#[derive(Debug, Clone)]
pub struct Meeting {
    pub key: String,
    pub segment: Segment,
    /// How long to wait for the others: from arrival for the start, then at
    /// each barrier.
    pub wait: Duration,
    /// For the report: Redis's clock against this host's wall clock.
    pub clock: ClockOffset,
    /// Where Redis's clock stood on this process's monotonic clock: the run
    /// clock starts from it, so a wall-clock step after arrival moves nothing.
    anchor: Anchor,
    arrived: Instant,
    /// Schedule, reply grace and drain: how long the run may last once started.
    run_length: Duration,
}

/// What a segment tells the meeting on arrival.
pub struct Arrival<'a> {
    pub name: &'a str,
    pub segment: Segment,
    pub wait: Duration,
    pub proposed_run_id: &'a str,
    /// Of the resolved scenario: segments of different scenarios must not meet.
    pub digest: &'a str,
    pub run_length: Duration,
}

impl Meeting {
    /// The meeting of a scenario's segments: `name` is `--meet`, or the
    /// scenario's name and the segment count.
    pub fn key_of(name: &str) -> String {
        format!("{KEY_PREFIX}meet:{name}")
    }

    /// Registers this segment and returns the run id every segment uses.
    pub async fn arrive(conn: &mut Conn, a: Arrival<'_>) -> Result<(Meeting, String)> {
        let key = Meeting::key_of(a.name);
        let (clock, anchor) = measure_offset(conn).await?;
        let arrived = Instant::now();
        let entry = format!(
            "{}:{}:{}",
            clock.offset_ns,
            clock.uncertainty_ns,
            hostname()
        );
        // Until the start is fixed, a meeting nobody completes goes by itself.
        let expiry = a.wait + MARGIN;
        let reply: redis::RedisResult<String> = redis::cmd("EVAL")
            .arg(ARRIVE)
            .arg(1)
            .arg(&key)
            .arg(a.segment.index)
            .arg(a.segment.count)
            .arg(a.proposed_run_id)
            .arg(entry)
            .arg(expiry.as_millis() as u64)
            .arg(a.digest)
            .query_async(conn)
            .await;
        let run_id = reply.map_err(|e| arrival_refused(&key, a.segment, &e))?;
        let meeting = Meeting {
            key,
            segment: a.segment,
            wait: a.wait,
            clock,
            anchor,
            arrived,
            run_length: a.run_length,
        };
        Ok((meeting, run_id))
    }

    /// Says this segment is set up, waits for the others (until
    /// `--segment-wait` after its arrival), and returns the run clock
    /// started at the common instant.
    pub async fn start(&self, conn: &mut Conn) -> Result<RunClock> {
        let deadline = self.arrived + self.wait;
        // The meeting then lasts as long as the run may, and every barrier.
        let lasts = self.run_length + self.wait * 3 + MARGIN;
        loop {
            let start: i64 = redis::cmd("EVAL")
                .arg(READY)
                .arg(1)
                .arg(&self.key)
                .arg(self.segment.index)
                .arg(self.segment.count)
                .arg(START_LEAD.as_micros() as u64)
                .arg((self.run_length + self.wait * 2).as_micros() as u64)
                .arg(lasts.as_millis() as u64)
                .query_async(conn)
                .await
                .map_err(|e| {
                    self.failed(format!(
                        "the meeting in Redis is gone ({e}): another segment failed, or ran \
                         out of --segment-wait; see its output"
                    ))
                })?;
            if start > 0 {
                return Ok(self.clock_at(start as u64 * 1000).await);
            }
            if Instant::now() >= deadline {
                let fields = self.fields(conn).await;
                if fields.is_empty() {
                    return Err(self.failed(
                        "the meeting in Redis is gone: another segment's --segment-wait ran out \
                         first, or it failed; see its output"
                            .into(),
                    ));
                }
                let missing: Vec<String> = (unmarked(&fields, "ready:", self.segment.count))
                    .iter()
                    .map(u32::to_string)
                    .collect();
                let missing = missing.join(", ");
                // Closes the meeting, failing everyone's start, unless the
                // last segment fixed the start meanwhile.
                let start: i64 = redis::cmd("EVAL")
                    .arg(CLOSE)
                    .arg(1)
                    .arg(&self.key)
                    .query_async(conn)
                    .await
                    .unwrap_or(0);
                if start > 0 {
                    return Ok(self.clock_at(start as u64 * 1000).await);
                }
                return Err(self.failed(format!(
                    "segment(s) {missing} of {} were not ready within {:?}: start every \
                     segment within --segment-wait of the first, against the same Redis and \
                     with the same --meet",
                    self.segment.count, self.wait
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Says this segment has reached `prefix` (`sent:` its producers are
    /// done; `done:` its consumers stopped) and waits, up to `--segment-wait`,
    /// for the others. Returns the segments that had not reached it then
    /// (all others when the meeting is gone).
    pub async fn barrier(&self, conn: &mut Conn, prefix: &str) -> Vec<u32> {
        let deadline = Instant::now() + self.wait;
        loop {
            match self.mark(conn, prefix).await {
                Some((marked, _)) if marked == self.segment.count as i64 => return Vec::new(),
                Some((marked, _)) if marked < 0 => return self.others(),
                _ if Instant::now() >= deadline => {
                    let fields = self.fields(conn).await;
                    return match fields.is_empty() {
                        true => self.others(),
                        false => unmarked(&fields, prefix, self.segment.count),
                    };
                }
                _ => tokio::time::sleep(POLL * 5).await,
            }
        }
    }

    /// Says this segment has read Redis back and waits, up to
    /// `--segment-wait`, until every segment that finished has too. True
    /// when no one reads the run's keys any more, so they may go: all have
    /// read, or one that finished never did (it died) and the wait ran out.
    /// False when the meeting is gone: another segment saw that first.
    pub async fn read_back_done(&self, conn: &mut Conn) -> bool {
        let deadline = Instant::now() + self.wait;
        loop {
            match self.mark(conn, "read:").await {
                Some((read, _)) if read < 0 => return false,
                Some((read, done)) if read >= done => break,
                _ if Instant::now() >= deadline => break,
                _ => tokio::time::sleep(POLL * 5).await,
            }
        }
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&self.key).query_async(conn).await;
        true
    }

    /// Redis's clock against this host's again, at the end: how far the two
    /// drifted apart during the run (docs/segments.md, "Clock offsets").
    pub async fn clock_now(&self, conn: &mut Conn) -> Option<ClockOffset> {
        measure_offset(conn).await.ok().map(|(offset, _)| offset)
    }

    /// This segment failed before the start: closing the meeting fails the
    /// others' start at once instead of at the deadline. Best effort; a
    /// meeting whose start is fixed is left to the segments running.
    pub async fn abandon(&self, conn: &mut Conn) {
        let _: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(CLOSE)
            .arg(1)
            .arg(&self.key)
            .query_async(conn)
            .await;
    }

    async fn mark(&self, conn: &mut Conn, prefix: &str) -> Option<(i64, i64)> {
        redis::cmd("EVAL")
            .arg(MARK)
            .arg(1)
            .arg(&self.key)
            .arg(prefix)
            .arg(self.segment.index)
            .arg(self.segment.count)
            .query_async(conn)
            .await
            .ok()
    }

    async fn fields(&self, conn: &mut Conn) -> Vec<String> {
        let fields: redis::RedisResult<Vec<String>> =
            redis::cmd("HKEYS").arg(&self.key).query_async(conn).await;
        fields.unwrap_or_default()
    }

    fn others(&self) -> Vec<u32> {
        (0..self.segment.count)
            .filter(|&i| i != self.segment.index)
            .collect()
    }

    /// The run clock at `start_ns` of Redis time, placed on this process's
    /// monotonic clock by the anchor. A segment that sees the start late
    /// starts its clock in the past: what fell due meanwhile is late, and
    /// counted so.
    async fn clock_at(&self, start_ns: u64) -> RunClock {
        let at = self.anchor.instant_of(start_ns);
        tokio::time::sleep_until(at.into()).await;
        RunClock::at(at, start_ns)
    }

    fn failed(&self, why: String) -> Error {
        Error::Segment(format!(
            "segment {} could not start (meeting {}): {why}",
            self.segment, self.key
        ))
    }
}

/// The segments of `0..count` without a `<prefix><i>` field.
fn unmarked(fields: &[String], prefix: &str, count: u32) -> Vec<u32> {
    (0..count)
        .filter(|i| !fields.contains(&format!("{prefix}{i}")))
        .collect()
}

fn arrival_refused(key: &str, segment: Segment, e: &redis::RedisError) -> Error {
    let text = e.to_string();
    let why = if text.contains("TWICE") {
        format!(
            "another process already registered as segment {segment}: give each process its \
             own index, or pass --meet to keep two runs apart"
        )
    } else if let Some(count) = text.split("COUNT ").nth(1) {
        format!(
            "the segments already waiting were started with {} segments, this one with {}: \
             start all with the same N",
            count.split_whitespace().next().unwrap_or("?"),
            segment.count
        )
    } else if text.contains("DIGEST") {
        "the segments already waiting run another scenario (a different file, --set, \
         --seed or --duration): start all with the same, or pass --meet to keep two runs apart"
            .to_string()
    } else if text.contains("CLOSED") {
        "the other segments have started their run without this one: start all within \
         --segment-wait of each other, or pass --meet to start another run"
            .to_string()
    } else if text.contains("NOPERM") || text.contains("can't run this command") {
        format!(
            "the user may not run the meeting's commands ({text}): grant {MEETING_ACL} on \
             ~sd:* (docs/acl.md, \"Shipped scenarios\")"
        )
    } else {
        format!("Redis refused the meeting's script: {text}")
    };
    Error::Segment(format!(
        "segment {segment} could not join meeting {key}: {why}"
    ))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace(':', "_"))
        .unwrap_or_default()
}
