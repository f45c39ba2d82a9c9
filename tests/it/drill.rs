//! Failure drills against real redis-server processes: the ledger after a
//! fault must account for every event.

use crate::support::run_summary as run;

/// Two consumers that cannot keep up (2 ms per event, 1500 events/s), so each
/// always has a batch in hand: the crash at 500 ms always strands one.
const CRASH: &str = r#"
name = "crash"
duration = "1s"
drain_timeout = "10s"
[[producers]]
stream = "s"
rate = 1500
[[groups]]
stream = "s"
name = "g"
consumers = 2
batch = 50
processing = "2ms"
reclaim = { min_idle = "500ms", every = "100ms" }
[[faults]]
action = "crash_consumer"
at = "500ms"
consumer = "g/0"
"#;

#[test]
fn a_crashed_consumers_entries_are_reclaimed_not_lost() {
    let s = run(CRASH);
    let g = &s.groups[0];
    assert_eq!(s.verify.produce_acked, 1500);
    assert_eq!(
        (g.measured.lost, g.measured.stranded, g.measured.unread),
        (0, 0, 0),
        "every event accounted for"
    );
    assert_eq!(g.measured.processings, 1500 + g.measured.duplicates);
    assert!(
        g.measured.redelivered > 0,
        "what the dead consumer held was delivered again"
    );
    assert_eq!(
        g.pending_at_end,
        Some(0),
        "XINFO GROUPS: the dead consumer's PEL was emptied"
    );
    assert!(g.drained);
    assert_eq!(s.faults.len(), 1);
    assert_eq!(s.faults[0].name, "crash_consumer g/0");
    assert!((s.faults[0].start_s - 0.5).abs() < 0.2, "{:?}", s.faults[0]);
}

/// The crashed consumer's batch in hand was delivered before the crash and
/// reclaimed only once idle for `min_idle` (500 ms): its redelivery latency
/// and the fault's time to recover say so; every event is in the
/// delivery-count distribution.
#[test]
fn a_crash_drill_reports_deliveries_redelivery_latency_and_recovery() {
    let s = run(CRASH);
    let g = &s.groups[0];
    assert_eq!(
        (
            g.measured.lost,
            g.measured.stranded,
            g.measured.dead_lettered,
            g.measured.unread
        ),
        (0, 0, 0, 0)
    );
    let counts = &g.delivery_counts();
    assert_eq!(counts.total(), s.verify.produce_acked, "{counts:?}");
    assert_eq!(counts.redelivered(), g.measured.redelivered, "{counts:?}");
    assert!(g.measured.redelivered > 0);
    // Redelivered events were either waiting in the dead consumer's hands
    // (timed), read by it unseen (a read cut off by the crash), or processed
    // before its XACK was lost (duplicates, not timed).
    let latency = &g.redelivery_latency_us;
    assert_eq!(
        latency.count + g.redelivery_unmeasured + g.measured.duplicates,
        g.measured.redelivered,
        "{g:?}"
    );
    if latency.count > 0 {
        let encoded = &s.histograms[&streamdrill::metrics::tags::redelivery("g")];
        let h = streamdrill::metrics::Latency::decode(encoded).unwrap();
        let min_us = h.histogram().highest_equivalent(h.histogram().min());
        assert!(min_us >= 500_000, "below min_idle: {min_us} µs");
        assert!(latency.max < 11_000_000, "{latency:?}");
    }
    // In flight at the crash: at least the batch in hand, all processed once
    // reclaimed; that batch took as long to process again as it had been in
    // hand, so the last of it was done at least min_idle after the crash.
    let f = &s.faults[0];
    assert!(f.in_flight_at_start.is_some_and(|n| n > 0), "{f:?}");
    let recovered = f
        .recovered_after_s
        .expect("everything in flight was processed");
    let slack_s = 0.01; // the window opens just after the planned start
    assert!(recovered >= 0.5 - slack_s && recovered < 11.0, "{f:?}");
    // Producers were not affected, and did write after the crash.
    assert!(
        f.first_write_after_s.is_some() && f.all_writes_after_s.is_some(),
        "{f:?}"
    );
}

#[test]
fn without_reclaim_a_crashed_consumers_entries_are_stranded() {
    let s = run(&CRASH
        .replace("reclaim = { min_idle = \"500ms\", every = \"100ms\" }", "")
        .replace("drain_timeout = \"10s\"", "drain_timeout = \"300ms\""));
    let g = &s.groups[0];
    assert!(
        g.measured.stranded > 0,
        "the batch in hand stays pending: {g:?}"
    );
    assert_eq!(g.measured.lost, 0);
    assert_eq!(
        g.pending_at_end,
        Some(g.measured.stranded),
        "stranded = what XINFO says is pending"
    );
    assert!(!g.drained);
}

#[test]
fn a_restarted_consumer_drains_its_own_pending_entries() {
    let s = run(&CRASH
        .replace("reclaim = { min_idle = \"500ms\", every = \"100ms\" }", "")
        .replace(
            "consumer = \"g/0\"",
            "consumer = \"g/0\"\nrestart_after = \"500ms\"",
        ));
    let g = &s.groups[0];
    assert_eq!(
        (g.measured.lost, g.measured.stranded, g.pending_at_end),
        (0, 0, Some(0))
    );
    assert!(
        g.measured.redelivered > 0,
        "its own PEL was read again with id 0"
    );
    assert!(s.faults[0].end_s - s.faults[0].start_s > 0.4);
}

fn kill_drill(persistence: &str) -> String {
    format!(
        r#"
name = "kill"
duration = "3s"
drain_timeout = "10s"
[redis]
{persistence}
[[producers]]
stream = "s"
rate = 500
[[groups]]
stream = "s"
name = "g"
[[faults]]
action = "kill_redis"
at = "1s"
restart_after = "300ms"
[slo]
acked_but_gone = 0
"#
    )
}

#[test]
fn sigkill_with_appendfsync_always_loses_no_acknowledged_write() {
    let s = run(&kill_drill("appendonly = true\nappendfsync = \"always\""));
    let d = s
        .durability
        .as_ref()
        .expect("streams read back after the kill");
    assert!(d.acked > 1000, "{d:?}");
    assert_eq!(d.acked_but_gone, 0, "{d:?}");
    assert!(s.slo.passed);
    assert_eq!(s.faults[0].name, "kill_redis");
    assert!(s.faults[0].end_s - s.faults[0].start_s >= 0.3);
    assert!(s.produce.errors > 0, "XADDs failed while Redis was down");
}

#[test]
fn sigkill_without_persistence_loses_what_was_acknowledged_before() {
    let s = run(&kill_drill("appendonly = false\nsave = \"\""));
    let d = s
        .durability
        .as_ref()
        .expect("streams read back after the kill");
    assert!(
        d.acked_but_gone > 300,
        "about a second of writes is gone: {d:?}"
    );
    // Cross-check with Redis's own count: what is in the stream is what survived.
    let length = s.verify.streams[0].length;
    assert_eq!(
        d.acked - d.acked_but_gone + d.indeterminate_landed,
        length,
        "{d:?}"
    );
    assert!(!s.slo.passed, "the checker can fail");
    // The group vanished with the data; its consumer created it again and went on.
    let g = &s.groups[0];
    assert!(g.measured.processings >= length, "{g:?}");
    assert!(g.drained);
}

/// One consumer at 1 ms per event and 800 events/s keeps up (80 % busy);
/// slowed x5 from 500 ms for 500 ms it does 200/s, so about 300 events queue
/// and each waits behind them, 1 ms apiece, once the slowdown is over.
const SLOW: &str = r#"
name = "slow"
duration = "2s"
drain_timeout = "10s"
[[producers]]
stream = "s"
rate = 800
[[groups]]
stream = "s"
name = "g"
processing = "1ms"
[[faults]]
action = "slow_consumer"
at = "500ms"
consumer = "g/0"
duration = "500ms"
factor = 5
"#;

#[test]
fn a_slowed_consumer_falls_behind_and_loses_nothing() {
    let s = run(SLOW);
    let g = &s.groups[0];
    assert_eq!(s.verify.produce_acked, 1600);
    assert_eq!(
        (
            g.measured.lost,
            g.measured.stranded,
            g.measured.unread,
            g.measured.duplicates
        ),
        (0, 0, 0, 0),
        "{g:?}"
    );
    assert_eq!(
        (g.measured.processings, g.measured.acked),
        (1600, 1600),
        "{g:?}"
    );
    assert!(g.drained);
    assert_eq!(s.faults.len(), 1);
    let f = &s.faults[0];
    assert_eq!(f.name, "slow_consumer g/0 x5");
    assert!((f.start_s - 0.5).abs() < 0.2, "{f:?}");
    assert!((f.end_s - f.start_s - 0.5).abs() < 0.2, "{f:?}");
    // Unslowed, an event waits at most a few 1 ms events; 1 % of them
    // (16) waiting 100 ms takes a queue of 100 events, which only the
    // slowdown builds (about 300 at its end).
    let e2e = &g.measured.e2e_latency_us;
    assert!(e2e.p99 >= 100_000, "e2e p99 {} µs: {e2e:?}", e2e.p99);
    assert!(e2e.max < 2_000_000, "{e2e:?}");
}

/// One consumer at 400 ms per event, 5 events/s: it is always in the middle
/// of a batch. Stalled at 1.5 s for longer than the run, it still finishes
/// the batch it had begun (a stall stops reading, not work in hand) when the
/// drain gives up at about 2.1 s and the consumer is stopped; what it never
/// read is unread.
const STALL: &str = r#"
name = "stall"
duration = "2s"
drain_timeout = "100ms"
[[producers]]
stream = "s"
rate = 5
[[groups]]
stream = "s"
name = "g"
batch = 100
processing = "400ms"
[[faults]]
action = "stall_consumer"
at = "1500ms"
consumer = "g/0"
duration = "10s"
"#;

#[test]
fn a_stopped_stalled_consumer_finishes_the_batch_begun_before_the_stall() {
    let s = run(STALL);
    let g = &s.groups[0];
    let m = &g.measured;
    assert_eq!(s.verify.produce_acked, 10);
    assert_eq!((m.lost, m.in_progress), (0, Some(0)), "{m:?}");
    assert!(m.unread > 0, "the stall kept it from reading: {m:?}");
    assert_eq!(m.processed.map(|p| p + m.unread), Some(10), "{m:?}");
    assert_eq!(m.acked, m.processings, "its XACK went out alone: {m:?}");
    assert!(!g.drained);
}
