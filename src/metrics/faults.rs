//! The record of one fault of a drill: when it was active, whether it was
//! applied (and if not, why), what it counted, and how fast the run recovered.
//! The chaos actor builds one per fault as it applies it; `recovery` fills the
//! recovery figures from the run's metrics; the report stores the list in
//! `summary.json` and renders it.

use serde::{Deserialize, Serialize};

/// When a fault was active, in seconds since run start, and its outcome.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FaultWindow {
    /// A plain label for plots and tables, e.g. "crash_consumer billing/0".
    pub name: String,
    /// The fault's `action` as the scenario writes it, e.g. "crash_consumer".
    /// Empty in runs written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// What it acted on: a consumer ("billing/0"), a producer ("orders/1"),
    /// a link ("clients", "replication"); absent for server faults (and in
    /// runs written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Every step of the fault took effect: its start and, for one that
    /// lasts, its end (a restart, a thaw). A fault not applied fails the run.
    /// Runs written before outcomes were recorded read as applied: their
    /// faults were never checked, and a failure shows only as the
    /// "(failed: ...)" those runs appended to `name`.
    #[serde(default = "applied_in_older_runs")]
    pub applied: bool,
    /// Why the fault was not applied, e.g. "consumer billing/0 is already down".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// client_kill: the connections Redis closed (CLIENT KILL's reply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients_killed: Option<u64>,
    pub start_s: f64,
    pub end_s: f64,
    /// Seconds from the fault's end to the first acknowledged XADD after it,
    /// at the time series' 1 s resolution (see `recovery`). None: none came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_ack_after_s: Option<f64>,
    /// Seconds from the fault's end until every group's lag was back to its
    /// pre-fault level, from the sampler's readings. None: it never was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_recovered_after_s: Option<f64>,
    /// Seconds from the fault's start until some producer, and until every
    /// producer, had an XADD acknowledged again, from the producers' stalls
    /// (50 ms or more with XADDs outstanding and no ack; a producer without
    /// one at the start counts 0). None: none (some) never was. README:
    /// "Recovery per fault".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_write_after_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_writes_after_s: Option<f64>,
    /// Events (all groups) asked for by a read sent before the fault's
    /// planned start (`at`) and not processed by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_at_start: Option<u64>,
    /// Time to recover: seconds from the start until the last of those was
    /// processed or dead-lettered (0 if none; end of its processing batch).
    /// Events produced during the fault wait as lag instead (but for what a
    /// blocking read outstanding at the start returns). None: one never was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_after_s: Option<f64>,
    /// In a merged run, the segment that applied the fault: its recovery
    /// figures are what that segment saw, its producers and consumers
    /// (docs/segments.md, "One report").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<u32>,
}

fn applied_in_older_runs() -> bool {
    true
}

impl Default for FaultWindow {
    /// An applied fault with no figures: what tests and older runs start from.
    fn default() -> Self {
        FaultWindow {
            name: String::new(),
            kind: String::new(),
            target: None,
            applied: true,
            error: None,
            clients_killed: None,
            start_s: 0.0,
            end_s: 0.0,
            first_ack_after_s: None,
            lag_recovered_after_s: None,
            first_write_after_s: None,
            all_writes_after_s: None,
            in_flight_at_start: None,
            recovered_after_s: None,
            segment: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_from_an_older_run_reads_as_applied() {
        let old = r#"{"name": "kill_redis (restart failed: boom)", "start_s": 1.0, "end_s": 2.5}"#;
        let w: FaultWindow = serde_json::from_str(old).unwrap();
        assert!(w.applied && w.error.is_none() && w.kind.is_empty(), "{w:?}");
        assert_eq!((w.target, w.clients_killed), (None, None));
    }

    #[test]
    fn an_outcome_round_trips_with_numbers_as_numbers() {
        let w = FaultWindow {
            name: "client_kill".into(),
            kind: "client_kill".into(),
            applied: false,
            error: Some("CLIENT KILL closed no connection".into()),
            clients_killed: Some(0),
            ..Default::default()
        };
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["clients_killed"], 0);
        assert_eq!(json["applied"], false);
        assert!(json.get("target").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<FaultWindow>(json).unwrap(), w);
    }
}
