//! The run-wide clock (DESIGN rule 2): wall time read once at the start and
//! advanced by the monotonic clock, so every actor agrees on "now" and an
//! NTP step during a run cannot bend a latency.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    start: Instant,
    start_unix_ns: u64,
}

impl RunClock {
    pub fn start() -> RunClock {
        let start_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        RunClock {
            start: Instant::now(),
            start_unix_ns,
        }
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Unix time in nanoseconds of an offset from the run start (what events carry).
    pub fn unix_ns(&self, offset_ns: u64) -> u64 {
        self.start_unix_ns + offset_ns
    }

    /// Offset from the run start of a Unix timestamp carried in an event.
    pub fn offset_of_unix_ns(&self, unix_ns: u64) -> u64 {
        unix_ns.saturating_sub(self.start_unix_ns)
    }

    pub fn start_unix_ns(&self) -> u64 {
        self.start_unix_ns
    }

    /// The `Instant` at an offset, for timers.
    pub fn instant_at(&self, offset_ns: u64) -> Instant {
        self.start + Duration::from_nanos(offset_ns)
    }

    /// Index of the one-second interval containing an offset.
    pub fn interval_of(offset_ns: u64) -> u32 {
        (offset_ns / 1_000_000_000) as u32
    }
}
