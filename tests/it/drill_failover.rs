//! Failover to a managed replica, WAIT, and producer crashes, against real
//! redis-server processes: the harness follows the promoted replica, the
//! durability read-back judges every XADD against the new primary, and a
//! crashed producer's in-flight writes are indeterminate, never lost. With the
//! replication link blackholed before the failover, the loss is deterministic
//! and WAIT flags every lost write; server faults after a failover reach the
//! promoted replica.

use streamdrill::report::Summary;
use streamdrill::scenario::{Overrides, load_str};

use crate::support::run_summary as run;

/// Redis serves WAIT's timeout from its cron, 10 times a second by default:
/// with no replica answering, each WAIT held its connection ~100 ms and the
/// backlog of queued pipelines took seconds to drain after the schedule.
const FAST_CRON: &str = "replica = true\nconfig = [\"hz 100\"]";

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
    assert!(g.measured.lost <= d.acked_but_gone, "{g:?} {d:?}");
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
    let toml = failover("wait = { replicas = 1, timeout = \"20ms\" }");
    let s = run(&toml.replace("replica = true", FAST_CRON));
    let d = s.durability.as_ref().expect("durability read back");
    assert_eq!(
        d.acked_but_gone, 0,
        "WAIT 1 acknowledged only what the replica had: {d:?}"
    );
    assert_eq!(s.verify.streams[0].length, present(&s));
    // After the failover no replica is left: WAIT times out and says so.
    assert!(s.produce.unreplicated.unwrap_or(0) > 0, "{:?}", s.produce);
    assert_eq!(s.groups[0].measured.lost, 0);
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
    assert_eq!(
        (g.measured.lost, g.unexpected, g.measured.stranded),
        (0, 0, 0),
        "{g:?}"
    );
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
            failover("").replace("replica = true", "") + CUT_LINK,
            "faults[1].link",
        ),
        (
            failover("") + &CUT_LINK.replace("at = \"500ms\"", "at = \"1s\""),
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

/// The replication link blackholed from 500 ms until after the failover at 1 s:
/// the replica hears nothing of the writes acknowledged in between.
const CUT_LINK: &str = r#"
[[faults]]
action = "network_blackhole"
link = "replication"
at = "500ms"
duration = "1s"
"#;

/// The gone writes are those acknowledged while the link was cut, and the
/// count agrees with Redis's own counter on the new primary.
fn assert_loss_is_the_cut(s: &Summary) -> &streamdrill::metrics::Durability {
    let d = s.durability.as_ref().expect("read back after a failover");
    let cut = (s.faults.iter())
        .find(|f| f.name == "network_blackhole (replication)")
        .expect("the link's fault window");
    let failover = (s.faults.iter())
        .find(|f| f.name == "failover")
        .expect("failover window");
    eprintln!(
        "gone {} (silent {:?}) of {} acked; cut at {:.3}s, promoted at {:.3}s; unreplicated {:?}",
        d.acked_but_gone,
        d.acked_but_gone_silent,
        d.acked,
        cut.start_s,
        failover.end_s,
        s.produce.unreplicated
    );
    // Independent of the XRANGE read-back: XINFO's entries-added on the new
    // primary counts what it holds from replication plus what it took after.
    let added = s.verify.streams[0].entries_added;
    assert_eq!(
        d.acked_but_gone,
        s.verify.produce_acked + d.indeterminate_landed - added,
        "{d:?} {:?}",
        s.verify
    );
    assert_eq!(s.verify.streams[0].length, present(s), "XLEN agrees: {d:?}");
    // 1000/s of one producer: seq n is intended at n ms. Nothing acknowledged
    // before the cut is gone, and nothing intended after the promotion.
    let first_gone_ms = d.gone_sample[0].seq as f64;
    let cut_ms = cut.start_s * 1000.0;
    assert!(
        (cut_ms - 150.0..cut_ms + 150.0).contains(&first_gone_ms),
        "first gone {first_gone_ms} ms, cut at {cut_ms} ms"
    );
    let window_ms = (failover.end_s - cut.start_s) * 1000.0;
    assert!(
        (d.acked_but_gone as f64) <= window_ms + 150.0,
        "{} gone, {window_ms:.0} ms between the cut and the promotion",
        d.acked_but_gone
    );
    d
}

#[test]
fn a_cut_replication_link_loses_every_write_acknowledged_since() {
    let s = run(&(failover("") + CUT_LINK));
    let d = assert_loss_is_the_cut(&s);
    assert!(
        d.acked_but_gone > 0,
        "acknowledged while cut, then gone: {d:?}"
    );
    // Nothing warned the producer: without WAIT every gone write is silent.
    assert_eq!(d.acked_but_gone_silent, Some(d.acked_but_gone));
    let g = &s.groups[0];
    assert!(g.measured.lost <= d.acked_but_gone, "{g:?} {d:?}");
}

/// WAIT 1 answers 0 while the link is cut: the producer is told of every
/// write that is then lost (and acknowledged-and-replicated ones survive).
#[test]
fn with_wait_every_write_lost_to_a_cut_link_was_flagged_unreplicated() {
    let toml = failover("wait = { replicas = 1, timeout = \"20ms\" }") + CUT_LINK;
    let s = run(&toml.replace("replica = true", FAST_CRON));
    let d = assert_loss_is_the_cut(&s);
    assert!(
        d.acked_but_gone > 0,
        "pipelines WAIT let through while cut: {d:?}"
    );
    assert_eq!(d.acked_but_gone_silent, Some(0), "none silent: {d:?}");
    let unreplicated = s.produce.unreplicated.expect("producers wait");
    assert!(unreplicated >= d.acked_but_gone, "{:?} {d:?}", s.produce);
}

/// Failover at 1 s; then, against "the server": CLIENT KILL at 2 s, CLIENT
/// PAUSE at 3 s for 500 ms, and SIGKILL with a restart at 4 s. All must reach
/// the promoted replica (the old primary's port is dead); the AOF keeps every
/// write through the restart.
const SERVER_FAULTS_AFTER: &str = r#"
name = "after-failover"
duration = "5s"
drain_timeout = "10s"
[redis]
replica = true
appendonly = true
appendfsync = "always"
[[producers]]
stream = "s"
rate = 1000
[[groups]]
stream = "s"
name = "g"
[[faults]]
action = "failover"
at = "1s"
[[faults]]
action = "client_kill"
at = "2s"
[[faults]]
action = "client_pause"
at = "3s"
duration = "500ms"
[[faults]]
action = "kill_redis"
at = "4s"
restart_after = "200ms"
"#;

#[test]
fn server_faults_after_a_failover_act_on_the_promoted_replica() {
    let s = &run(SERVER_FAULTS_AFTER);
    let names: Vec<&str> = s.faults.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "failover",
            "client_kill",
            "client_pause 500ms",
            "kill_redis"
        ]
    );
    // Sent to the dead primary, each would have failed and said so.
    let failed: Vec<_> = s.faults.iter().filter(|f| !f.applied).collect();
    assert!(failed.is_empty() && s.slo.passed, "{failed:?}");
    // CLIENT KILL closed the harness's connections to the new primary: the
    // producer's, the consumer's blocking one and the sampler's at least.
    let client_kill = &s.faults[1];
    let killed = (client_kill.clients_killed).unwrap_or_else(|| panic!("{client_kill:?}"));
    assert!(killed >= 3, "{client_kill:?}");
    // CLIENT PAUSE held the new primary's clients for 500 ms.
    let max_s = s.produce.latency_us.max as f64 / 1e6;
    assert!(max_s >= 0.45, "XADDs held by the pause: max {max_s}s");
    // The promoted replica came back from SIGKILL as a primary (CONFIG
    // REWRITE dropped its `replicaof`) and took writes again, keeping all.
    let kill = &s.faults[3];
    // It was the harness's server that went down: writes stalled for the
    // 200 ms it was dead (on the old primary's port nothing would stall),
    // then were acknowledged again (a replica would answer READONLY).
    let stalled_s =
        (kill.first_write_after_s).unwrap_or_else(|| panic!("no write after: {kill:?}"));
    assert!(stalled_s >= 0.15, "{kill:?}");
    let d = s.durability.as_ref().expect("read back");
    assert_eq!(d.acked_but_gone, 0, "{d:?}");
}
