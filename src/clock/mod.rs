//! Time on this machine: the run-wide clock (docs/measurement.md,
//! "Latencies"), wall time read once at the start and advanced by the
//! monotonic clock, so every actor agrees on "now" and an NTP step during a
//! run cannot bend a latency; the precise sleep that open-loop schedules wake
//! on (`Timer`); and the process's own CPU time.

mod timer;

pub use timer::Timer;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    start: Instant,
    start_unix_ns: u64,
}

impl RunClock {
    pub fn start() -> RunClock {
        RunClock {
            start: Instant::now(),
            start_unix_ns: unix_now_ns(),
        }
    }

    /// Nanoseconds since the run started.
    /// A clock that starts at `start`, when the time is `start_unix_ns`
    /// by a clock other than this host's: a segmented run's common start in
    /// Redis time (docs/segments.md, "A common start").
    pub fn at(start: Instant, start_unix_ns: u64) -> RunClock {
        RunClock {
            start,
            start_unix_ns,
        }
    }

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

/// The resolution of `process_cpu_s`: Linux reports CPU time in USER_HZ
/// ticks, 100 per second on every mainstream build.
/// This host's wall clock, in nanoseconds since the Unix epoch (0 before it).
pub fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub const CPU_TICK_S: f64 = 0.01;

/// user + system CPU seconds of this process, from /proc/self/stat (Linux).
pub fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) * CPU_TICK_S
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_is_readable_and_grows() {
        let before = process_cpu_s();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(
            process_cpu_s() > before,
            "utime + stime advance while spinning"
        );
    }
}
