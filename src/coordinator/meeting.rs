//! How the segments of one run meet through the Redis they test
//! (docs/segments.md, "A common start"): no other service, one hash
//! `sd:meet:<name>` that every segment writes with short Lua scripts, so each
//! step is atomic whoever gets there first.
//!
//! 1. `arrive`: a segment registers its number and its clock offset; the
//!    first one's proposed run id becomes everyone's (the keys' prefix).
//! 2. `start`: once set up, it says it is ready; when all are, the first to
//!    see it fixes the start a moment ahead in Redis `TIME`, and each starts
//!    its run clock at that instant as its own clock shows it.
//! 3. `finish`: once its consumers stopped, it waits for the others (a
//!    segment that died is waited for until the deadline), so every
//!    segment reads back the same final state.
//! 4. `read_back_done`: the last one to have read back deletes the run's
//!    keys and the meeting.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::clock::RunClock;
use crate::connect::Conn;
use crate::error::{Error, Result};
use crate::metrics::ClockOffset;
use crate::plan::{KEY_PREFIX, Segment};

/// How far ahead of the moment all are ready the start is set: every
/// segment polls every `POLL`, so each sees it in time to start on it.
const START_LEAD: Duration = Duration::from_millis(500);
const POLL: Duration = Duration::from_millis(20);
/// Round trips of TIME the clock offset is measured from; the fastest counts.
const OFFSET_SAMPLES: usize = 25;

/// What an ACL user needs for the meeting, its scripts' commands included.
pub const MEETING_ACL: &str =
    "+eval +time +hkeys +hget +hset +hsetnx +hexists +exists +pexpire +del";

/// One segment's place in a meeting.
#[derive(Debug, Clone)]
pub struct Meeting {
    pub key: String,
    pub segment: Segment,
    /// How long to wait for the others, at the start and at the end.
    pub wait: Duration,
    pub clock: ClockOffset,
}

/// `KEYS[1]` the meeting; ARGV: index, count, proposed run id, this
/// segment's entry, expiry in ms. A meeting whose start has passed was
/// another run's: it is replaced.
const ARRIVE: &str = r"
local k = KEYS[1]
local start = redis.call('HGET', k, 'start')
if start then
  local t = redis.call('TIME')
  if tonumber(start) < tonumber(t[1]) * 1000000 + tonumber(t[2]) then
    redis.call('DEL', k)
  else
    return redis.error_reply('CLOSED ' .. start)
  end
end
local count = redis.call('HGET', k, 'count')
if count and count ~= ARGV[2] then
  return redis.error_reply('COUNT ' .. count)
end
if redis.call('HSETNX', k, 'seg:' .. ARGV[1], ARGV[4]) == 0 then
  return redis.error_reply('TWICE')
end
redis.call('HSETNX', k, 'count', ARGV[2])
redis.call('HSETNX', k, 'run_id', ARGV[3])
redis.call('PEXPIRE', k, ARGV[5])
return redis.call('HGET', k, 'run_id')
";

/// ARGV: index, count, lead in µs. Marks this segment ready; when every
/// one is, fixes the start (µs of Redis TIME). Returns the start or 0.
const READY: &str = r"
local k = KEYS[1]
if redis.call('EXISTS', k) == 0 then return redis.error_reply('GONE') end
redis.call('HSET', k, 'ready:' .. ARGV[1], '1')
local start = redis.call('HGET', k, 'start')
if start then return tonumber(start) end
for i = 0, tonumber(ARGV[2]) - 1 do
  if redis.call('HEXISTS', k, 'ready:' .. i) == 0 then return 0 end
end
local t = redis.call('TIME')
start = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[3])
redis.call('HSET', k, 'start', start)
return start
";

/// ARGV: field prefix (`done:` or `read:`), index, count. Sets this
/// segment's field; returns how many segments set it, and how many
/// finished (`done:`).
const MARK: &str = r"
local k = KEYS[1]
redis.call('HSET', k, ARGV[1] .. ARGV[2], '1')
local marked, done = 0, 0
for i = 0, tonumber(ARGV[3]) - 1 do
  marked = marked + redis.call('HEXISTS', k, ARGV[1] .. i)
  done = done + redis.call('HEXISTS', k, 'done:' .. i)
end
return {marked, done}
";

impl Meeting {
    /// The meeting of a scenario's segments: `name` is `--meet`, or the
    /// scenario's name and the segment count.
    pub fn key_of(name: &str) -> String {
        format!("{KEY_PREFIX}meet:{name}")
    }

    /// Registers this segment and returns the run id every segment uses.
    pub async fn arrive(
        conn: &mut Conn,
        name: &str,
        segment: Segment,
        wait: Duration,
        proposed_run_id: &str,
        expires: Duration,
    ) -> Result<(Meeting, String)> {
        let key = Meeting::key_of(name);
        let clock = measure_offset(conn).await?;
        let entry = format!(
            "{}:{}:{}",
            clock.offset_ns,
            clock.uncertainty_ns,
            hostname()
        );
        let reply: redis::RedisResult<String> = redis::cmd("EVAL")
            .arg(ARRIVE)
            .arg(1)
            .arg(&key)
            .arg(segment.index)
            .arg(segment.count)
            .arg(proposed_run_id)
            .arg(entry)
            .arg(expires.as_millis() as u64)
            .query_async(conn)
            .await;
        let run_id = reply.map_err(|e| arrival_refused(&key, segment, &e))?;
        let meeting = Meeting {
            key,
            segment,
            wait,
            clock,
        };
        Ok((meeting, run_id))
    }

    /// Says this segment is set up, waits for the others, and returns the
    /// run clock started at the common instant.
    pub async fn start(&self, conn: &mut Conn) -> Result<RunClock> {
        let deadline = Instant::now() + self.wait;
        loop {
            let start: i64 = redis::cmd("EVAL")
                .arg(READY)
                .arg(1)
                .arg(&self.key)
                .arg(self.segment.index)
                .arg(self.segment.count)
                .arg(START_LEAD.as_micros() as u64)
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
                let missing = self.missing(conn, "ready:").await;
                // Closing the meeting fails the start for everyone waiting.
                let _: redis::RedisResult<()> =
                    redis::cmd("DEL").arg(&self.key).query_async(conn).await;
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

    /// Says this segment has finished and waits, up to the deadline, for the
    /// others. Returns the segments that had not finished by then.
    pub async fn finish(&self, conn: &mut Conn) -> Vec<u32> {
        let deadline = Instant::now() + self.wait;
        loop {
            let marked = self.mark(conn, "done:").await;
            let all = marked.is_some_and(|(done, _)| done == self.segment.count);
            if all || Instant::now() >= deadline {
                return match all {
                    true => Vec::new(),
                    false => self.unmarked(conn, "done:").await,
                };
            }
            tokio::time::sleep(POLL * 5).await;
        }
    }

    /// Says this segment has read Redis back; true for the last of the
    /// finished segments to do so, which may delete the run's keys.
    pub async fn read_back_done(&self, conn: &mut Conn) -> bool {
        let last = (self.mark(conn, "read:").await).is_some_and(|(read, done)| read >= done);
        if last {
            let _: redis::RedisResult<()> =
                redis::cmd("DEL").arg(&self.key).query_async(conn).await;
        }
        last
    }

    /// This segment failed: closing the meeting fails the others' start at
    /// once instead of at the deadline. Best effort.
    pub async fn abandon(&self, conn: &mut Conn) {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&self.key).query_async(conn).await;
    }

    async fn mark(&self, conn: &mut Conn, prefix: &str) -> Option<(u32, u32)> {
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

    async fn unmarked(&self, conn: &mut Conn, prefix: &str) -> Vec<u32> {
        let fields: redis::RedisResult<Vec<String>> =
            redis::cmd("HKEYS").arg(&self.key).query_async(conn).await;
        let fields = fields.unwrap_or_default();
        (0..self.segment.count)
            .filter(|i| !fields.contains(&format!("{prefix}{i}")))
            .collect()
    }

    async fn missing(&self, conn: &mut Conn, prefix: &str) -> String {
        let missing: Vec<String> = (self.unmarked(conn, prefix).await)
            .iter()
            .map(u32::to_string)
            .collect();
        missing.join(", ")
    }

    /// The run clock at `start_ns` of Redis time: this process's clock
    /// reads `start_ns - offset` then.
    async fn clock_at(&self, start_ns: u64) -> RunClock {
        let local_start = start_ns as i128 - i128::from(self.clock.offset_ns);
        let ahead = (local_start - unix_ns() as i128).max(0) as u64;
        let at = Instant::now() + Duration::from_nanos(ahead);
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
    } else if text.contains("CLOSED") {
        "the other segments have already fixed their start: this segment came too late; \
         start all within --segment-wait of each other"
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

/// The offset of Redis `TIME` from this process's clock, from the fastest
/// of several round trips: Redis read the time somewhere inside it, so the
/// offset is off by at most half that round trip.
pub async fn measure_offset(conn: &mut Conn) -> Result<ClockOffset> {
    let mut best: Option<(u64, i64)> = None;
    for _ in 0..OFFSET_SAMPLES {
        let before = unix_ns();
        let (s, us): (u64, u64) = redis::cmd("TIME")
            .query_async(conn)
            .await
            .map_err(|e| Error::Segment(format!("TIME for the clock offset: {e}")))?;
        let after = unix_ns();
        let rtt = after.saturating_sub(before);
        let redis_ns = (s * 1_000_000_000 + us * 1000) as i128;
        let offset = (redis_ns - (before as i128 + after as i128) / 2) as i64;
        if best.is_none_or(|(r, _)| rtt < r) {
            best = Some((rtt, offset));
        }
    }
    let (rtt, offset) = best.unwrap_or_default();
    Ok(ClockOffset {
        offset_ns: offset,
        // TIME has microseconds: add half of one.
        uncertainty_ns: rtt / 2 + 500,
        rtt_ns: rtt,
    })
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace(':', "_"))
        .unwrap_or_default()
}
