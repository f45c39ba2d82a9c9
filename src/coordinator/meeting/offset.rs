//! Where Redis's clock stands against this process's (docs/segments.md,
//! "Clock offsets"): from the fastest of several `TIME` round trips, since
//! Redis read its time somewhere inside it.

use std::time::{Duration, Instant};

use crate::clock::unix_now_ns;
use crate::connect::Conn;
use crate::error::{Error, Result};
use crate::metrics::ClockOffset;

/// Round trips of TIME the offset is measured from; the fastest counts.
const OFFSET_SAMPLES: usize = 25;

/// A Redis time and the instant of this process's monotonic clock it was
/// read at (the fastest round trip's midpoint).
#[derive(Debug, Clone, Copy)]
pub(super) struct Anchor {
    instant: Instant,
    redis_ns: u64,
}

impl Anchor {
    /// The instant of this process's clock at which Redis's reads `redis_ns`.
    pub(super) fn instant_of(&self, redis_ns: u64) -> Instant {
        match redis_ns.checked_sub(self.redis_ns) {
            Some(after) => self.instant + Duration::from_nanos(after),
            None => (self.instant)
                .checked_sub(Duration::from_nanos(self.redis_ns - redis_ns))
                .unwrap_or(self.instant),
        }
    }
}

/// The offset of Redis `TIME` from this host's wall clock (for the report),
/// and the anchor the run clock is placed by.
pub(super) async fn measure_offset(conn: &mut Conn) -> Result<(ClockOffset, Anchor)> {
    let mut best: Option<(u64, i64, Anchor)> = None;
    for _ in 0..OFFSET_SAMPLES {
        let (before_wall, before) = (unix_now_ns(), Instant::now());
        let (s, us): (u64, u64) = redis::cmd("TIME")
            .query_async(conn)
            .await
            .map_err(|e| Error::Segment(format!("TIME for the clock offset: {e}")))?;
        let rtt = before.elapsed();
        let redis_ns = s * 1_000_000_000 + us * 1000;
        let half = rtt / 2;
        let offset = redis_ns as i128 - (before_wall + half.as_nanos() as u64) as i128;
        let anchor = Anchor {
            instant: before + half,
            redis_ns,
        };
        let rtt = rtt.as_nanos() as u64;
        if best.is_none_or(|(r, ..)| rtt < r) {
            best = Some((rtt, offset as i64, anchor));
        }
    }
    let Some((rtt, offset_ns, anchor)) = best else {
        return Err(Error::Internal("no TIME sample".into()));
    };
    let offset = ClockOffset {
        offset_ns,
        // TIME truncates to the microsecond: up to one more.
        uncertainty_ns: rtt / 2 + 1000,
        rtt_ns: rtt,
    };
    Ok((offset, anchor))
}
