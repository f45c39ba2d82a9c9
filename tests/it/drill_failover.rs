//! Failover to a managed replica, WAIT, and producer crashes, against real
//! redis-server processes: the harness follows the promoted replica, the
//! durability read-back judges every XADD against the new primary, and a
//! crashed producer's in-flight writes are indeterminate, never lost.

use streamdrill::report::Summary;
use streamdrill::scenario::{Overrides, load_str};

use crate::support::run_summary as run;

/// 1000 events/s for 3 s; the primary is killed at 1 s and the replica promoted.
fn failover(wait: &str) -> String {
    format!(
        r#"
name = "failover"
duration = "3s"
drain_timeout = "10s"
[redis]
replica = true
[[producers]]
stream = "s"
rate = 1000
{wait}
[[groups]]
stream = "s"
name = "g"
[[faults]]
action = "failover"
at = "1s"
"#
    )
}

/// Events the stream holds after the run, as the durability check counts them:
/// acknowledged and present, plus unacknowledged writes that landed.
fn present(s: &Summary) -> u64 {
    let d = s.durability.as_ref().expect("read back after a failover");
    d.acked - d.acked_but_gone + d.indeterminate_landed
}

#[test]
fn the_harness_follows_the_promoted_replica() {
    let s = run(&failover(""));
    assert_eq!(s.faults.len(), 1);
    let window = &s.faults[0];
    assert_eq!(window.name, "failover", "{window:?}");
    // Events intended before the window's end are at most rate x end; more
    // acknowledged means the producer wrote to the new primary afterwards.
    assert!(
        s.produce.acked as f64 > 1000.0 * (window.end_s + 0.5),
        "acked {} with the failover over at {:.2}s",
        s.produce.acked,
        window.end_s
    );
    let d = s.durability.as_ref().expect("durability read back");
    assert_eq!(d.acked, s.produce.acked);
    // Read back from the new primary: what XLEN says it holds is exactly the
    // acknowledged writes that survived plus the indeterminate ones that landed.
    assert_eq!(s.verify.streams[0].length, present(&s), "{d:?}");
    assert_eq!(s.produce.unreplicated, None, "no wait, no count");
    let g = &s.groups[0];
    assert!(g.lost <= d.acked_but_gone, "{g:?} {d:?}");
}

#[test]
fn wait_counts_every_write_replicated_in_steady_state() {
    let toml = failover("wait = { replicas = 1, timeout = \"500ms\" }")
        .replace("[[faults]]\naction = \"failover\"\nat = \"1s\"\n", "")
        .replace("duration = \"3s\"", "duration = \"1s\"");
    let s = run(&toml);
    assert_eq!(s.produce.acked, 1000);
    assert_eq!(s.produce.unreplicated, Some(0), "the replica had them all");
}

#[test]
fn with_wait_no_acknowledged_write_is_lost_in_a_failover() {
    let s = run(&failover("wait = { replicas = 1, timeout = \"100ms\" }"));
    let d = s.durability.as_ref().expect("durability read back");
    assert_eq!(
        d.acked_but_gone, 0,
        "WAIT 1 acknowledged only what the replica had: {d:?}"
    );
    assert_eq!(s.verify.streams[0].length, present(&s));
    // After the failover no replica is left: WAIT times out and says so.
    assert!(s.produce.unreplicated.unwrap_or(0) > 0, "{:?}", s.produce);
    assert_eq!(s.groups[0].lost, 0);
}

/// Replies take 50 ms (network latency through the proxy) when the producer
/// crashes at 500 ms, so ~50 writes are in flight; it is back at 1 s.
const CRASH: &str = r#"
name = "producer-crash"
duration = "2s"
drain_timeout = "10s"
[[producers]]
stream = "s"
rate = 1000
[[groups]]
stream = "s"
name = "g"
[[faults]]
action = "network_latency"
at = "200ms"
duration = "600ms"
delay = "50ms"
[[faults]]
action = "crash_producer"
at = "500ms"
producer = "s/0"
restart_after = "500ms"
"#;

#[test]
fn a_crashed_producers_writes_in_flight_are_indeterminate_not_lost() {
    let s = run(CRASH);
    let d = s.durability.as_ref().expect("durability read back");
    assert!(d.indeterminate > 0, "writes in flight at the crash: {d:?}");
    assert_eq!(
        d.indeterminate_landed, d.indeterminate,
        "Redis applied them; only their replies were ignored"
    );
    assert_eq!(d.acked_but_gone, 0);
    let g = &s.groups[0];
    assert_eq!((g.lost, g.unexpected, g.stranded), (0, 0, 0), "{g:?}");
    // 500 ms dead: ~500 events were never sent, and it resumed afterwards.
    let sent = s.produce.sent;
    assert!((1400..=1600).contains(&sent), "sent {sent}");
    assert_eq!(s.produce.acked + d.indeterminate, sent);
    let crash = (s.faults.iter())
        .find(|f| f.name == "crash_producer s/0")
        .expect("crash window");
    assert!(crash.end_s - crash.start_s > 0.4, "{crash:?}");
}

#[test]
fn failover_and_wait_are_validated() {
    let refused = [
        (failover("").replace("replica = true", ""), "replica = true"),
        (
            failover("wait = { replicas = 1, timeout = \"0s\" }"),
            "wait.timeout",
        ),
        (
            failover("wait = { replicas = 1, timeout = \"1s\" }").replace("replica = true", ""),
            "producers[0].wait",
        ),
        (CRASH.replace("\"s/0\"", "\"s/1\""), "faults[1].producer"),
        (CRASH.replace("\"s/0\"", "3"), "faults[1].producer"),
        (
            failover("") + "[[faults]]\naction = \"kill_redis\"\nat = \"2s\"\n",
            "after the failover",
        ),
    ];
    for (toml, want) in refused {
        let e = load_str(&toml, "drill.toml", &Overrides::default())
            .expect_err(want)
            .to_string();
        assert!(e.contains(want), "{want}: {e}");
    }
    let by_index = CRASH.replace("\"s/0\"", "0");
    load_str(&by_index, "drill.toml", &Overrides::default()).expect("index 0 is a producer");
}
