//! Where and how a run ran, as `summary.json` records it: the client
//! machine (and how its idle CPUs waited), the Redis server, and what the
//! harness itself cost. Enough to tell two runs' conditions apart.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the client side ran: enough to tell two machines' results apart.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct MachineInfo {
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub cpus: u32,
    /// Kernel release, where the OS tells it.
    pub kernel: String,
    /// How idle CPUs waited during the run: `poll`, `os`, or `os (poll not
    /// held: why)` (see `cpu_idle`). Wake-ups from idle add to latencies.
    #[serde(default)]
    pub cpu_idle: String,
}

impl MachineInfo {
    /// `cpu_idle` for people: runs written before it was recorded say so.
    pub fn idle_label(&self) -> &str {
        match self.cpu_idle.as_str() {
            "" => "(not recorded)",
            held => held,
        }
    }

    /// Poll was asked for and refused: latencies include wake-ups the user
    /// meant to rule out.
    pub fn poll_refused(&self) -> bool {
        self.cpu_idle.starts_with(crate::cpu_idle::NOT_HELD)
    }

    pub fn current() -> MachineInfo {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        MachineInfo {
            hostname: read("/proc/sys/kernel/hostname"),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
            kernel: read("/proc/sys/kernel/osrelease"),
            cpu_idle: String::new(),
        }
    }
}

/// The server the run talked to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct RedisInfo {
    /// "managed" or "external".
    pub mode: String,
    pub url: String,
    /// `redis_version` from INFO.
    pub version: String,
    /// Settings that shape results (appendonly, appendfsync, maxmemory, …), as CONFIG GET returned them.
    pub config: BTreeMap<String, String>,
}

/// The harness's own CPU (user + system, every thread of the streamdrill
/// process, the fault proxy's included; a managed Redis is another process)
/// from the run clock's start to the end of the drain, warmup included.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct HarnessCost {
    pub cpu_s: f64,
    /// Per event sent (warmup included; 0 when none was): producing,
    /// consuming, acknowledging and measuring it.
    pub cpu_us_per_event: f64,
}

impl HarnessCost {
    pub fn of(cpu_s: f64, events_sent: u64) -> HarnessCost {
        let cpu_us_per_event = match events_sent {
            0 => 0.0,
            n => cpu_s * 1e6 / n as f64,
        };
        HarnessCost {
            cpu_s,
            cpu_us_per_event,
        }
    }
}
