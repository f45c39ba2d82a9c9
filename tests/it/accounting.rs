//! The accounting model under overload and failure (docs/measurement.md,
//! "Accounting"), against real redis-server processes: an overloaded run
//! reads as overloaded, warmup stays out of the headline figures, slow is
//! never counted as lost, the worst tail is counted, and a read-back that
//! fails says so.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use redis::Commands;
use streamdrill::metrics::Progress;
use streamdrill::report::columns::{T_S, TARGET_RATE_PER_S};
use streamdrill::report::files::TIMESERIES_FILE;
use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::scenario::{Overrides, load_file, load_str};

use crate::support::{client, run_summary as run, server, wait_until};

/// Redis frozen for the last 1.5 s of a 3 s measured window: the XADDs of
/// those 1.5 s are answered after the schedule ends, late.
const FROZEN_AT_THE_END: &str = r#"
name = "frozen-end"
duration = "4s"
warmup = "1s"
[[producers]]
stream = "s"
rate = 1000
[[groups]]
stream = "s"
name = "g"
[[faults]]
action = "freeze_redis"
at = "2500ms"
duration = "1500ms"
[slo]
min_rate_ratio = 0.95
"#;

#[test]
fn an_overloaded_window_reads_as_overloaded() {
    let (s, dir) = crate::support::run_with_dir(FROZEN_AT_THE_END);
    let p = &s.produce;
    let ratio = p.achieved_rate_per_s / p.target_rate_per_s;
    assert!(ratio < 0.8, "in-window rate {ratio}: {p:?}");
    assert!(ratio > 0.3, "the first 1.5 s were answered: {p:?}");
    let late = p.late.unwrap();
    assert!(late > 1000, "the frozen 1.5 s came after the end: {p:?}");
    assert_eq!(p.acked, 3000, "all answered within the reply grace");
    let in_window = p.achieved_rate_per_s * s.measured_duration_s;
    assert!((in_window - (p.acked - late) as f64).abs() < 1e-6, "{p:?}");
    let check = (s.slo.checks.iter())
        .find(|c| c.name == "min_rate_ratio")
        .unwrap();
    assert!(!check.passed && !s.slo.passed, "{check:?}");
    // The target series ends with the schedule: none in the grace or drain.
    let csv = std::fs::read_to_string(dir.path.join(TIMESERIES_FILE)).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (t, target) = (column(&header, T_S), column(&header, TARGET_RATE_PER_S));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.len() >= 5, "the late replies' interval too: {csv}");
    for row in &rows {
        let t_s: f64 = row[t].parse().unwrap();
        match t_s < 4.0 {
            true => assert_eq!(row[target], "1000", "{csv}"),
            false => assert_eq!(row[target], "", "no target after the schedule: {csv}"),
        }
    }
}

fn column(header: &[&str], name: &str) -> usize {
    (header.iter().position(|h| *h == name)).unwrap_or_else(|| panic!("{name} in {header:?}"))
}

/// The quickstart scenario, shortened: every group's headline figures are
/// the measured phase's, so they reconcile with the producers', and the
/// warmup's stand beside them.
#[test]
fn quickstart_groups_reconcile_with_producers_phase_by_phase() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/quickstart.toml");
    let overrides = Overrides::parse(&["duration=3s".into(), "warmup=1s".into()]).unwrap();
    let scenario = load_file(std::path::Path::new(path), &overrides).unwrap();
    let s = crate::support::run_loaded(scenario).0;
    let (p, w) = (&s.produce, &s.warmup);
    assert_eq!((p.acked, w.produce_acked), (4000, 2000), "{p:?}");
    assert_eq!(s.verify.produce_acked, p.acked + w.produce_acked);
    assert_eq!(s.groups.len(), 2);
    for g in &s.groups {
        let warmup = g.warmup.as_ref().unwrap();
        assert_eq!(g.measured.produced_acked, Some(p.acked), "{}", g.name);
        assert_eq!(g.measured.processed, Some(p.acked), "{}", g.name);
        assert_eq!(warmup.processed, Some(w.produce_acked), "{}", g.name);
        assert_eq!(g.measured.e2e_latency_us.count, p.acked, "{}", g.name);
        assert!(g.drained);
    }
}

/// A NOACK group whose consumer takes 100 ms per event: it is still working
/// when the producers stop and Redis has nothing pending. The drain waits
/// for the work in hand, and nothing slow is counted lost.
#[test]
fn a_slow_noack_group_loses_nothing() {
    let s = run(r#"
name = "slow-noack"
duration = "2s"
[[producers]]
stream = "s"
rate = 20
[[groups]]
stream = "s"
name = "slow"
ack = "noack"
processing = "100ms"
[slo]
lost = 0
"#);
    let g = &s.groups[0].measured;
    assert_eq!(
        (g.produced_acked, g.processed, g.lost, g.in_progress),
        (Some(40), Some(40), 0, Some(0)),
        "{g:?}"
    );
    assert_eq!(g.e2e_latency_us.count, 40);
    assert!(s.groups[0].drained && s.slo.passed);
}

/// With a drain too short for the work in hand, what the consumer still
/// holds is in progress, not lost, and e2e says it does not cover it.
#[test]
fn work_in_hand_at_the_deadline_is_in_progress() {
    let s = run(r#"
name = "in-hand"
duration = "1s"
drain_timeout = "100ms"
[[producers]]
stream = "s"
rate = 50
[[groups]]
stream = "s"
name = "slow"
ack = "noack"
batch = 100
processing = "1s"
"#);
    let g = &s.groups[0].measured;
    assert_eq!(g.lost, 0, "{g:?}");
    assert!(g.in_progress.unwrap() > 0, "{g:?}");
    assert_eq!(g.unprocessed(), Some(g.in_progress.unwrap() + g.unread));
    assert!(!s.groups[0].drained);
}

/// Redis frozen from outside (SIGSTOP by the test, not by the harness)
/// past the reply grace: XADDs still out are unanswered, those the producer
/// never got to send are unsent, and both are in the produce latency as
/// lower bounds instead of vanishing. Thawed once the run's clock says the
/// producers have given up.
#[test]
fn what_was_never_answered_or_sent_is_counted_with_its_latency() {
    let mut redis = server();
    let toml = format!(
        r#"
name = "gave-up"
duration = "1s"
reply_grace = "300ms"
[redis]
mode = "external"
url = "{}"
[[producers]]
stream = "s"
rate = 500
[[groups]]
stream = "s"
name = "g"
"#,
        redis.url()
    );
    let scenario = load_str(&toml, "gave-up.toml", &Overrides::default()).unwrap();
    let (elapsed_tx, elapsed) = mpsc::channel();
    let run = thread::spawn(move || {
        let out = tempfile::tempdir().unwrap();
        let options = RunOptions::new(out.path())
            .workers(1)
            .on_progress(move |p: &Progress| {
                let _ = elapsed_tx.send(p.elapsed_s);
            });
        run_scenario(scenario, options).map(|r| r.summary)
    });
    let mut conn = client(&redis);
    wait_until(Duration::from_secs(5), "250 events in the stream", || {
        let keys: Vec<String> = conn.keys("sd:*:s").unwrap();
        keys.first()
            .is_some_and(|k| conn.xlen::<_, u64>(k).unwrap() >= 250)
    });
    redis.freeze().unwrap();
    // Producers give up at 1.3 s; the progress line ticks on meanwhile.
    while elapsed.recv_timeout(Duration::from_secs(10)).unwrap() < 2.0 {}
    redis.thaw().unwrap();
    let s = run.join().unwrap().expect("run succeeds");
    crate::support::assert_ledger_adds_up(&s);
    let p = &s.produce;
    let (unanswered, unsent) = (p.unanswered.unwrap(), p.unsent.unwrap());
    assert!(unanswered > 0 && unsent > 0, "{p:?}");
    assert_eq!(p.indeterminate, Some(unanswered), "{p:?}");
    assert_eq!(p.intended, Some(500));
    assert_eq!(p.latency_lower_bounds, Some(unanswered + unsent));
    // The oldest waited from the freeze (about 0.5 s) until 1.3 s.
    assert!(p.latency_us.max >= 700_000, "{:?}", p.latency_us);
    // Sent into the freeze, they landed when it ended: the group saw them.
    assert_eq!(s.groups[0].measured.unacked_landed, unanswered);
}

/// XPENDING refused during the run (its permission taken away once the run
/// has made its stream, after the preflight let it start): the group's
/// pending list cannot be read back, so its unprocessed events are unknown,
/// not lost, and the loss objective cannot pass.
#[test]
fn a_failed_read_back_makes_unknown_not_lost() {
    let server = server();
    let mut admin = client(&server);
    let revoke = thread::spawn(move || {
        wait_until(Duration::from_secs(10), "the run's stream", || {
            let keys: Vec<String> = admin.keys("sd:no-readback-*:s").unwrap();
            !keys.is_empty()
        });
        let revoked = redis::cmd("ACL")
            .arg(&["SETUSER", "default", "-xpending"])
            .query::<()>(&mut admin);
        revoked.unwrap();
    });
    let s = run(&format!(
        r#"
name = "no-readback"
duration = "1s"
drain_timeout = "200ms"
[redis]
mode = "external"
url = "{}"
[[producers]]
stream = "s"
rate = 500
[[groups]]
stream = "s"
name = "g"
batch = 20
processing = "1ms"
[[faults]]
action = "crash_consumer"
at = "500ms"
consumer = "g/0"
[slo]
lost = 0
"#,
        server.url()
    ));
    revoke.join().unwrap();
    let group = &s.groups[0];
    let g = &group.measured;
    let why = group.readback_error.as_deref().unwrap_or_default();
    assert!(why.contains("xpending"), "{why}");
    assert!(g.unknown.unwrap() > 0, "{g:?}");
    assert_eq!((g.lost, g.unread, g.stranded), (0, 0, 0), "{g:?}");
    assert_eq!(group.pending_at_end, None);
    let lost = s.slo.checks.iter().find(|c| c.name == "lost[g]").unwrap();
    assert!(!lost.passed, "{lost:?}");
    assert!(lost.note.as_deref().unwrap_or_default().contains("unknown"));
}
