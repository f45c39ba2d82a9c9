//! How long the run waits for Redis's replies: the default for a live
//! server, and the shorter one of a network drill, where a blackhole of a
//! few seconds must turn XADDs into indeterminate writes rather than merely
//! slow ones. The runtime's connections take their timeouts from here.

use std::time::Duration;

use super::Plan;
use crate::scenario::Link;

/// Response timeout of non-blocking connections; redis-rs's 500 ms default
/// would turn a slow but live Redis into errors.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Response timeout of non-blocking connections in a run with network faults
/// (plus the largest added latency): long enough for any live Redis, short
/// enough that a 5 s blackhole shows up as timed-out, indeterminate writes.
pub const NETWORK_DRILL_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

impl Plan {
    /// How long a non-blocking command may wait for its reply. Under network
    /// faults it is [`NETWORK_DRILL_RESPONSE_TIMEOUT`] beyond the largest added
    /// latency, so a blackhole of a few seconds turns XADDs into indeterminate
    /// writes instead of merely slow ones; otherwise [`RESPONSE_TIMEOUT`].
    pub fn response_timeout(&self) -> Duration {
        if !self.has_network_faults() {
            return RESPONSE_TIMEOUT;
        }
        NETWORK_DRILL_RESPONSE_TIMEOUT + self.added_latency_max()
    }

    /// The most reply delay a network_latency fault adds (delay + jitter).
    pub fn added_latency_max(&self) -> Duration {
        (self.faults.iter())
            .filter(|f| f.target.link() == Some(Link::Clients))
            .map(|f| f.spec().reply_delay.as_duration())
            .max()
            .unwrap_or_default()
    }
}
