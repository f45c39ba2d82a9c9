//! The figures of the live progress line: the newest complete second of the
//! time series, and what Redis said at the sampler's last reading. The
//! collector assembles them on request; the command line prints them.

use super::series::{Reading, Row};

/// The figures of the progress line: the last complete interval.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub elapsed_s: f64,
    pub target_rate_per_s: f64,
    pub acked_per_s: u64,
    pub errors: u64,
    pub produce_p99_us: u64,
    /// Per group: name, processed per second, e2e p99 (µs), lag, pending.
    pub groups: Vec<GroupProgress>,
}

#[derive(Debug, Clone, Default)]
pub struct GroupProgress {
    pub name: String,
    pub processed_per_s: u64,
    pub e2e_p99_us: u64,
    pub lag: Option<u64>,
    pub pending: u64,
}

impl Progress {
    /// From the newest complete row (`live`, None before the first) and the
    /// sampler's last reading; `groups` names the groups in scenario order.
    pub fn of(
        elapsed_s: f64,
        target_rate_per_s: f64,
        live: Option<&Row>,
        reading: Option<&Reading>,
        groups: &[&str],
    ) -> Progress {
        let groups = (groups.iter().enumerate())
            .map(|(i, name)| {
                let stats = live.and_then(|row| row.groups.get(i));
                let redis = reading.and_then(|s| s.groups.get(i));
                GroupProgress {
                    name: name.to_string(),
                    processed_per_s: stats.map_or(0, |s| s.processed),
                    e2e_p99_us: stats.map_or(0, |s| s.e2e_us.p99),
                    lag: redis.and_then(|r| r.lag),
                    pending: redis.map_or(0, |r| r.pending),
                }
            })
            .collect();
        Progress {
            elapsed_s,
            target_rate_per_s,
            acked_per_s: live.map_or(0, |row| row.produce.acked),
            errors: live.map_or(0, |row| row.produce.errors),
            produce_p99_us: live.map_or(0, |row| row.produce.latency_us.p99),
            groups,
        }
    }
}
