//! End-to-end runs against real redis-server processes: exact counts, the
//! ledger failing when entries vanish, trimming, SLO verdicts, bad targets.

use std::path::Path;
use std::thread;
use std::time::Duration;

use redis::Commands;
use streamdrill::report::Summary;
use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::scenario::{Overrides, load_str};

use crate::support::{client, server, wait_until};

fn run(toml: &str, out: &Path) -> Summary {
    run_on_workers(toml, out, 1)
}

fn run_on_workers(toml: &str, out: &Path, workers: usize) -> Summary {
    let scenario = load_str(toml, "test.toml", &Overrides::default()).expect("valid scenario");
    let options = RunOptions::new(out).workers(workers);
    let summary = run_scenario(scenario, options)
        .expect("run succeeds")
        .summary;
    crate::support::assert_ledger_adds_up(&summary);
    summary
}

const FIXED_RATE: &str = r#"
name = "fixed"
duration = "2s"
warmup = "500ms"
drain_timeout = "10s"
[[producers]]
stream = "s"
count = 2
rate = 500
[[groups]]
stream = "s"
name = "a"
consumers = 2
batch = 50
processing = "50us"
[[groups]]
stream = "s"
name = "b"
batch = 200
"#;

#[test]
fn fixed_rate_gives_exact_counts_in_every_group() {
    let out = tempfile::tempdir().unwrap();
    let s = run(FIXED_RATE, out.path());
    // 500/s for 2 s, warmup included in the ledger, split over two producers.
    let sent_total = s.produce.sent + s.warmup.produce_sent;
    assert_eq!(sent_total, 1000);
    assert_eq!(s.verify.produce_acked, 1000);
    assert_eq!(
        s.verify.streams[0].entries_added, 1000,
        "XINFO STREAM agrees"
    );
    assert!(s.verify.consistent);
    assert_eq!(s.produce.errors, 0);
    assert_eq!(s.groups.len(), 2);
    for g in &s.groups {
        // Each phase's events, processed once, whatever phase they were processed in.
        let warmup = g.warmup.as_ref().unwrap();
        assert_eq!(
            g.measured.processed,
            Some(s.produce.acked),
            "group {}",
            g.name
        );
        assert_eq!(warmup.processed, Some(s.warmup.produce_acked));
        assert_eq!(g.whole_run(|p| p.processings), 1000, "group {}", g.name);
        assert_eq!(
            (
                g.whole_run(|p| p.lost),
                g.whole_run(|p| p.duplicates),
                g.whole_run(|p| p.redelivered),
                g.unexpected
            ),
            (0, 0, 0, 0),
            "group {}",
            g.name
        );
        assert_eq!(g.pending_at_end, Some(0));
        assert!(g.drained);
        assert!(g.measured.e2e_latency_us.count > 0 && g.measured.e2e_latency_us.p50 > 0);
    }
    // 1.5 s measured at 500/s.
    assert!(
        (s.produce.target_rate_per_s - 500.0).abs() < 1.0,
        "{}",
        s.produce.target_rate_per_s
    );
    assert_eq!(s.produce.sent, 750);
    assert!(s.slo.passed);
    // The default leaves idle CPUs to the OS, and says so.
    assert_eq!(
        s.machine.cpu_idle,
        Some(streamdrill::metrics::IdleState::Os)
    );
    let h = s.harness.as_ref().expect("harness cost recorded");
    assert!(h.cpu_s > 0.0, "{h:?}");
    assert!(
        (h.cpu_us_per_event - h.cpu_s * 1e6 / 1000.0).abs() < 1e-6,
        "{h:?}"
    );
}

#[test]
fn actors_spread_over_worker_threads_keep_the_ledger_exact() {
    // A consumer crashes mid-run and a survivor on another thread reclaims
    // its entries: every cross-thread path (ledger batches, reports, faults).
    let toml = r#"
name = "workers"
duration = "2s"
warmup = "500ms"
drain_timeout = "10s"
[[producers]]
stream = "s"
count = 3
rate = 900
[[groups]]
stream = "s"
name = "g"
consumers = 3
batch = 20
processing = "1ms"
reclaim = { min_idle = "200ms", every = "100ms" }
[[faults]]
action = "crash_consumer"
consumer = "g/0"
at = "1s"
"#;
    let out = tempfile::tempdir().unwrap();
    let s = run_on_workers(toml, out.path(), 3);
    assert_eq!(s.produce.sent + s.warmup.produce_sent, 1800);
    assert_eq!(s.verify.produce_acked, 1800);
    let g = &s.groups[0];
    let whole = |f: fn(&streamdrill::report::GroupPhase) -> u64| g.whole_run(f);
    assert_eq!(
        (
            whole(|p| p.lost),
            whole(|p| p.stranded),
            whole(|p| p.unread)
        ),
        (0, 0, 0)
    );
    assert_eq!(whole(|p| p.processings), 1800 + whole(|p| p.duplicates));
    assert_eq!(g.whole_run_opt(|p| p.processed), Some(1800));
    assert!(
        whole(|p| p.redelivered) > 0,
        "the crash left entries to reclaim"
    );
    assert_eq!(g.pending_at_end, Some(0));
}

#[test]
fn producers_sharing_a_connection_keep_their_own_schedules_and_ledgers() {
    // Four producers on one connection, one of them dead for 300 ms: the
    // others go on, its events due meanwhile are never sent, and every
    // event is accounted for against the producer that numbered it.
    let toml = r#"
name = "shared"
duration = "1s"
drain_timeout = "10s"
[[producers]]
stream = "s"
count = 4
connections = 1
rate = 2000
[[groups]]
stream = "s"
name = "g"
[[faults]]
action = "crash_producer"
producer = "s/1"
at = "300ms"
restart_after = "300ms"
"#;
    let out = tempfile::tempdir().unwrap();
    let s = run(toml, out.path());
    // 500/s each for 1 s, but s/1 skipped ~150 while dead.
    let sent = s.produce.sent;
    assert!((1800..=1900).contains(&sent), "sent {sent}");
    // The crash lands on s/1's schedule (an event every 2 ms): what it had
    // in flight is never acknowledged, as its reader died, yet it lands;
    // the read-back must find exactly those and nothing else missing.
    let in_doubt = sent - s.produce.acked;
    assert!(
        in_doubt <= 3,
        "only s/1's last sends: sent {sent}, acked {}",
        s.produce.acked
    );
    // Its reader gone, they are indeterminate, not failed.
    assert_eq!(s.produce.errors, in_doubt);
    assert_eq!(s.produce.indeterminate, Some(in_doubt));
    assert!(
        s.produce.skipped.is_some_and(|n| n > 100),
        "{:?}",
        s.produce
    );
    let d = s
        .durability
        .as_ref()
        .expect("read back after a producer crash");
    assert_eq!(
        (d.indeterminate, d.indeterminate_landed),
        (in_doubt, in_doubt)
    );
    assert_eq!(d.acked_but_gone, 0);
    assert_eq!(
        s.verify.streams[0].entries_added, sent,
        "XINFO STREAM agrees"
    );
    assert!(s.verify.consistent);
    let g = &s.groups[0];
    assert_eq!(
        (
            g.measured.processings,
            g.measured.lost,
            g.measured.duplicates,
            g.unexpected
        ),
        (sent, 0, 0, 0)
    );
    assert_eq!(s.faults[0].name, "crash_producer s/1");
}

#[test]
fn a_lingering_shared_connection_accounts_for_every_event() {
    let toml = r#"
name = "linger"
duration = "1s"
[[producers]]
stream = "s"
count = 3
connections = 1
linger = "200us"
rate = 3000
[[groups]]
stream = "s"
name = "g"
"#;
    let out = tempfile::tempdir().unwrap();
    let s = run(toml, out.path());
    assert_eq!(
        (s.produce.sent, s.produce.acked, s.produce.errors),
        (3000, 3000, 0)
    );
    assert_eq!(s.verify.streams[0].entries_added, 3000);
    let g = &s.groups[0];
    assert_eq!(
        (
            g.measured.processings,
            g.measured.lost,
            g.measured.duplicates
        ),
        (3000, 0, 0)
    );
}

#[test]
fn run_writes_its_report_files() {
    let out = tempfile::tempdir().unwrap();
    let s = run(FIXED_RATE, out.path());
    let dir = out.path().join(&s.run_id);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["schema_version"], 2);
    assert_eq!(summary["groups"][0]["processed"], 750, "measured phase");
    assert_eq!(summary["groups"][0]["warmup"]["processed"], 250);
    let csv = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    assert!(
        csv.lines().count() >= 3,
        "header and one row per second:\n{csv}"
    );
    assert!(dir.join("histograms").read_dir().unwrap().count() >= 3);
}

#[test]
fn trimming_keeps_the_stream_at_maxlen() {
    let out = tempfile::tempdir().unwrap();
    let toml = r#"
name = "trim"
duration = "1s"
[[streams]]
key = "s"
maxlen = 100
approx = false
[[producers]]
stream = "s"
rate = 1000
"#;
    let s = run(toml, out.path());
    assert_eq!(s.verify.streams[0].entries_added, 1000);
    assert_eq!(s.verify.streams[0].length, 100);
}

#[test]
fn deleted_entries_are_reported_lost() {
    // The group starts reading late; meanwhile the test XDELs some entries.
    // Exactly those must come out as lost: the ledger can fail.
    let redis = server();
    let out = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
name = "xdel"
duration = "1s"
[redis]
mode = "external"
url = "{}"
[[producers]]
stream = "s"
rate = 100
[[groups]]
stream = "s"
name = "late"
start_after = "4s"
"#,
        redis.url()
    );
    let scenario = load_str(&toml, "xdel.toml", &Overrides::default()).unwrap();
    let runner = thread::spawn(move || {
        run_scenario(scenario, RunOptions::new(out.path()).workers(1)).map(|r| r.summary)
    });

    let mut conn = client(&redis);
    let mut key = String::new();
    wait_until(
        Duration::from_secs(3),
        "all 100 events in the stream",
        || {
            let keys: Vec<String> = conn.keys("sd:*:s").unwrap();
            key = keys.into_iter().next().unwrap_or_default();
            !key.is_empty() && conn.xlen::<_, u64>(&key).unwrap() == 100
        },
    );
    let entries: redis::streams::StreamRangeReply = conn.xrange_all(&key).unwrap();
    let victims: Vec<_> = entries.ids.iter().step_by(10).collect();
    let ids: Vec<&str> = victims.iter().map(|e| e.id.as_str()).collect();
    let deleted: u64 = conn.xdel(&key, &ids).unwrap();
    assert_eq!(deleted, 10);

    let s = runner.join().unwrap().expect("run succeeds");
    let g = &s.groups[0];
    assert_eq!(g.measured.lost, 10);
    assert_eq!(g.measured.processings, 90);
    assert_eq!(g.measured.duplicates, 0);
    let lost_seqs: Vec<u64> = g.lost_sample.iter().map(|k| k.seq).collect();
    assert_eq!(lost_seqs, (0..100).step_by(10).collect::<Vec<u64>>());
}

#[test]
fn failed_slo_is_reported_not_hidden() {
    let out = tempfile::tempdir().unwrap();
    let toml = FIXED_RATE.replace("duration = \"2s\"", "duration = \"1s\"")
        + "[slo]\ne2e_p99 = \"1us\"\nlost = 0\n";
    let s = run(&toml, out.path());
    assert!(!s.slo.passed);
    let failed: Vec<&str> = s
        .slo
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        failed.iter().all(|n| n.starts_with("e2e_p99")),
        "{failed:?}"
    );
    assert_eq!(failed.len(), 2, "one per group: {failed:?}");
}

#[test]
fn unreachable_redis_is_a_clear_error() {
    let out = tempfile::tempdir().unwrap();
    let toml =
        FIXED_RATE.to_string() + "[redis]\nmode = \"external\"\nurl = \"redis://127.0.0.1:1\"\n";
    let scenario = load_str(&toml, "t.toml", &Overrides::default()).unwrap();
    let err = run_scenario(scenario, RunOptions::new(out.path()).workers(1))
        .err()
        .expect("no server on port 1");
    let text = err.to_string();
    assert!(
        text.contains("redis://127.0.0.1:1") && text.contains("connecting"),
        "{text}"
    );
}

#[test]
fn a_group_that_falls_behind_is_unread_not_lost() {
    let out = tempfile::tempdir().unwrap();
    let toml = r#"
name = "behind"
duration = "1s"
drain_timeout = "300ms"
[[producers]]
stream = "s"
rate = 500
[[groups]]
stream = "s"
name = "slow"
batch = 1
processing = "10ms"
"#;
    let s = run(toml, out.path());
    let g = &s.groups[0];
    assert!(!g.drained);
    assert_eq!(
        g.measured.lost, 0,
        "a backlog still in the stream is not lost"
    );
    assert!(g.measured.unread > 300, "{}", g.measured.unread);
    let m = &g.measured;
    assert_eq!(m.processed, Some(m.processings), "no duplicates");
    assert_eq!(
        m.processings + m.unread + m.stranded + m.in_progress.unwrap(),
        500
    );
}

#[test]
fn saturation_mode_runs_closed_loop_and_counts_exactly() {
    let out = tempfile::tempdir().unwrap();
    let toml = r#"
name = "max"
duration = "1s"
[[producers]]
stream = "s"
count = 2
rate = "max"
pipeline = 16
[[groups]]
stream = "s"
name = "g"
batch = 500
"#;
    let s = run(toml, out.path());
    assert!(s.produce.sent > 1000, "{}", s.produce.sent);
    assert_eq!(s.produce.sent % 16, 0, "whole pipelines only");
    assert_eq!((s.produce.acked, s.produce.errors), (s.produce.sent, 0));
    assert_eq!(s.verify.produce_acked, s.verify.streams[0].entries_added);
    assert_eq!(s.groups[0].measured.processings, s.produce.sent);
    assert_eq!(s.produce.target_rate_per_s, 0.0, "no schedule, no target");
    // Intended = when the pipeline is built: latency is service time plus the build.
    let (latency, service) = (s.produce.latency_us.p50, s.produce.service_time_us.p50);
    assert!(
        latency >= service && latency - service < 1000,
        "{latency} vs {service}"
    );
}

#[test]
fn each_group_is_judged_against_its_own_stream() {
    let out = tempfile::tempdir().unwrap();
    let toml = r#"
name = "two-streams"
duration = "1s"
[[producers]]
stream = "a"
rate = 200
[[producers]]
stream = "b"
rate = 100
[[groups]]
stream = "a"
name = "ga"
[[groups]]
stream = "b"
name = "gb"
"#;
    let s = run(toml, out.path());
    let (ga, gb) = (&s.groups[0], &s.groups[1]);
    assert_eq!(
        (ga.measured.processings, ga.measured.lost),
        (200, 0),
        "{ga:?}"
    );
    assert_eq!(
        (gb.measured.processings, gb.measured.lost),
        (100, 0),
        "{gb:?}"
    );
    assert!(s.verify.consistent);
}
