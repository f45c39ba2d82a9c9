//! How idle CPUs wait while a run lasts. A CPU with nothing to do sleeps in
//! an idle state, and waking it costs time: on these VMs a halted vCPU took
//! 50-150 µs to run a timer that fell due or to answer a packet. That wake-up
//! lands in every figure the harness measures: its own schedule lag (p99
//! 223 µs at 1,000 events/s here) and Redis's service time (p50 148 µs on
//! loopback). Asking the kernel, through PM QoS, for a zero wake-up latency
//! makes idle CPUs poll instead (p99 lag 70 µs, service p50 53 µs), which is
//! what cyclictest does by default to measure timer latency.
//!
//! It is machine-wide: every idle CPU of this host spins while it holds
//! (host CPU on a VM, power and turbo headroom on bare metal), and a Redis on
//! another host keeps sleeping. So `run` leaves the machine as configured
//! unless asked; `bench`, which compares two clients on one host, holds it
//! for both. The request lasts while the file stays open and ends with it,
//! even when the process is killed.

use std::fs::{File, OpenOptions};
use std::io::Write;

use crate::metrics::IdleState;

/// The kernel's PM QoS interface for the whole machine's CPU wake-up latency.
const PM_QOS_DEVICE: &str = "/dev/cpu_dma_latency";

/// The kernel's CPU idle driver: without one, idle CPUs halt whatever PM
/// QoS asks.
const IDLE_DRIVER: &str = "/sys/devices/system/cpu/cpuidle/current_driver";

/// What a run asks of idle CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CpuIdle {
    /// Leave idle states to the OS: the machine as it is configured.
    #[default]
    Os,
    /// Idle CPUs poll, so they wake at once (needs write access to
    /// /dev/cpu_dma_latency, i.e. root, and a cpuidle driver; without them
    /// the run goes on as `os` and says why).
    Poll,
}

/// Held for the duration of a run; `state` says what was in force.
pub struct IdleHold {
    _file: Option<File>,
    state: IdleState,
}

impl IdleHold {
    pub fn acquire(want: CpuIdle) -> IdleHold {
        let (file, state) = match want {
            CpuIdle::Os => (None, IdleState::Os),
            CpuIdle::Poll => match idle_driver().and_then(|_| request_zero_latency()) {
                Ok(file) => (Some(file), IdleState::Poll),
                Err(why) => (None, IdleState::OsPollRefused(why)),
            },
        };
        IdleHold { _file: file, state }
    }

    pub fn state(&self) -> &IdleState {
        &self.state
    }
}

/// Err when no cpuidle driver is there for PM QoS to act on.
fn idle_driver() -> Result<(), String> {
    match std::fs::read_to_string(IDLE_DRIVER) {
        Ok(driver) if !matches!(driver.trim(), "" | "none") => Ok(()),
        _ => Err("no cpuidle driver: idle CPUs halt regardless".to_string()),
    }
}

fn request_zero_latency() -> Result<File, String> {
    let open = || -> std::io::Result<File> {
        let mut file = OpenOptions::new().write(true).open(PM_QOS_DEVICE)?;
        // The device takes the latency in µs as a binary s32.
        file.write_all(&0i32.to_ne_bytes())?;
        Ok(file)
    };
    open().map_err(|e| format!("{PM_QOS_DEVICE}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The device reads back the machine-wide target in force.
    fn target_in_force() -> Option<i32> {
        let bytes = std::fs::read(PM_QOS_DEVICE).ok()?;
        Some(i32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?))
    }

    #[test]
    fn poll_holds_zero_latency_or_says_why_not() {
        let hold = IdleHold::acquire(CpuIdle::Poll);
        match hold.state() {
            IdleState::Poll => assert_eq!(target_in_force(), Some(0)),
            IdleState::OsPollRefused(why) => {
                assert!(!why.is_empty());
                // Where the device can be written and a driver acts on it, it must hold.
                let writable = OpenOptions::new().write(true).open(PM_QOS_DEVICE).is_ok();
                assert!(!writable || idle_driver().is_err(), "{why}");
            }
            IdleState::Os => panic!("poll asked for: held or refused"),
        }
    }

    #[test]
    fn os_asks_for_nothing() {
        let hold = IdleHold::acquire(CpuIdle::Os);
        assert_eq!(hold.state(), &IdleState::Os);
        assert!(hold._file.is_none());
    }

    /// The words people read, unchanged from when the state was a string.
    #[test]
    fn states_read_as_before() {
        let refused = IdleState::OsPollRefused("no cpuidle driver".into());
        assert_eq!(refused.to_string(), "os (poll not held: no cpuidle driver)");
        assert_eq!(
            (IdleState::Poll.to_string(), IdleState::Os.to_string()),
            ("poll".into(), "os".into())
        );
        let json = serde_json::to_string(&[IdleState::Poll, IdleState::Os, refused]).unwrap();
        assert_eq!(
            json,
            r#"["poll","os",{"os_poll_refused":"no cpuidle driver"}]"#
        );
    }
}
