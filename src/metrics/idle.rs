//! How idle CPUs waited while a run lasted: part of the run's environment,
//! recorded like the Redis config (docs/reports.md). `cpu_idle` holds the
//! state; the report renders it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What was in force while a run lasted, as summary.json's
/// `machine.cpu_idle` records it: `"poll"`, `"os"` or `{"os_poll_refused":
/// "why"}` (docs/reports.md). People read it through `Display`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleState {
    /// Zero wake-up latency held: idle CPUs polled.
    Poll,
    /// Idle states left to the OS, as asked.
    Os,
    /// Poll was asked for and could not be held, for this reason: the OS's
    /// idle states were in force, and latencies include wake-ups the user
    /// meant to rule out.
    OsPollRefused(String),
}

impl fmt::Display for IdleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdleState::Poll => f.write_str("poll"),
            IdleState::Os => f.write_str("os"),
            IdleState::OsPollRefused(why) => write!(f, "os (poll not held: {why})"),
        }
    }
}
