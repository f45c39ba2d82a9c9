//! One scenario run as several processes (docs/segments.md): real
//! `streamdrill run --segment I/N` processes against one Redis the test
//! starts, merged by `streamdrill merge`, against the same scenario run as
//! one process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{assert_ledger_adds_up, server};
use streamdrill::report::Summary;

const SCENARIO: &str = r#"
name = "seg"
duration = "3s"
warmup = "1s"
drain_timeout = "5s"
reply_grace = "5s"
[redis]
mode = "external"
url = "redis://127.0.0.1:1"
[[producers]]
stream = "orders"
count = 3
rate = 900
[[groups]]
name = "billing"
stream = "orders"
consumers = 3
batch = 20
block = "50ms"
processing = "50us"
reclaim = { min_idle = "300ms", every = "100ms" }
[[groups]]
name = "audit"
stream = "orders"
consumers = 2
"#;

fn streamdrill(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamdrill"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Starts segment `i` of `n` of the scenario in `dir`, writing under `dir/out`.
fn segment(dir: &Path, url: &str, i: u32, n: u32, extra: &[&str]) -> Child {
    let scenario = dir.join("seg.toml");
    let (seg, out) = (format!("{i}/{n}"), dir.join("out"));
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--redis",
        url,
        "--segment",
        &seg,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    streamdrill(&args).spawn().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn segment_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("-seg"))
        .collect();
    dirs.sort();
    dirs
}

fn merge(dir: &Path, dirs: &[PathBuf]) -> (Output, Option<Summary>) {
    let merged = dir.join("merged");
    let mut args = vec!["merge", "--out", merged.to_str().unwrap()];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    let output = streamdrill(&args).output().unwrap();
    let summary = std::fs::read_dir(&merged).ok().and_then(|mut d| {
        let run = d.next()?.ok()?.path();
        streamdrill::report::read_summary(&run.join("summary.json")).ok()
    });
    (output, summary)
}

fn setup(extra_toml: &str) -> (tempfile::TempDir, streamdrill::server::RedisServer, String) {
    let redis = server();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("{SCENARIO}{extra_toml}");
    std::fs::write(dir.path().join("seg.toml"), toml).unwrap();
    let url = redis.url();
    (dir, redis, url)
}

/// Three processes merged count exactly what one process counts.
#[test]
fn three_segments_merge_into_the_counts_of_one_process() {
    let (dir, _redis, url) = setup("");
    let children: Vec<Child> = (0..3)
        .map(|i| segment(dir.path(), &url, i, 3, &[]))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let dirs = segment_dirs(dir.path());
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    let parts: Vec<Summary> = (dirs.iter())
        .map(|d| streamdrill::report::read_summary(&d.join("summary.json")).unwrap())
        .collect();
    let (out, merged) = merge(dir.path(), &dirs);
    assert!(out.status.success(), "{}", text(&out));
    let merged = merged.expect("a merged summary.json");
    assert_ledger_adds_up(&merged);

    // The last segment out deleted the run's keys and the meeting.
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let left: Vec<String> = redis::cmd("KEYS").arg("sd:*").query(&mut conn).unwrap();
    assert!(left.is_empty(), "{left:?}");

    // The same scenario as one process (in this test, on the same server).
    let toml = SCENARIO.replace("redis://127.0.0.1:1", &url);
    let (one, one_dir) = crate::support::run_with_dir(&toml);
    // compare reads a merged run as any other.
    let merged_dir = std::fs::read_dir(dir.path().join("merged"))
        .unwrap()
        .next()
        .unwrap();
    let a = merged_dir.unwrap().path();
    let args = [
        "compare",
        a.to_str().unwrap(),
        one_dir.path.to_str().unwrap(),
        "--fail-if",
        "lost > 0",
    ];
    let compared = streamdrill(&args).output().unwrap();
    assert!(compared.status.success(), "{}", text(&compared));
    assert!(
        text(&compared).contains("produce.rate"),
        "{}",
        text(&compared)
    );
    let whole = |s: &Summary| s.produce.acked + s.warmup.produce_acked;
    assert_eq!(whole(&merged), whole(&one));
    assert_eq!(merged.produce.acked, one.produce.acked);
    for (m, o) in merged.groups.iter().zip(&one.groups) {
        assert_eq!(m.measured.processed, o.measured.processed, "{}", m.name);
        assert_eq!(
            m.measured.processed,
            Some(m.measured.produced_acked.unwrap())
        );
        assert_eq!(
            (m.measured.lost, m.measured.duplicates),
            (0, 0),
            "{}",
            m.name
        );
        assert_eq!(m.warmup.as_ref().unwrap().lost, 0);
    }
    // Histograms merged from raw data: counts add up.
    let count = |s: &Summary| s.produce.latency_us.count;
    assert_eq!(count(&merged), parts.iter().map(count).sum::<u64>());
    let e2e = |s: &Summary| s.groups[0].measured.e2e_latency_us.count;
    assert_eq!(e2e(&merged), parts.iter().map(e2e).sum::<u64>());
    let rows = merged.segments.as_ref().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r.dir.is_some() && r.clock.uncertainty_ns > 0)
    );
    // One machine, one clock: no drift worth a millisecond in seconds.
    assert!(
        rows.iter().all(|r| r.clock_error_ns() < 1_000_000),
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r.clock_end.is_some()), "{rows:?}");
    let planned: u64 = rows.iter().map(|r| r.planned_events).sum();
    assert_eq!(planned, whole(&one));
}

/// A consumer crash owned by one segment: its redeliveries reach the merged
/// ledger, nothing is lost or processed twice.
#[test]
fn a_crash_in_one_segment_shows_its_redeliveries_in_the_merge() {
    // billing/1 belongs to segment (0 + 1) mod 2 = 1.
    let crash =
        "[[faults]]\naction = \"crash_consumer\"\nat = \"1500ms\"\nconsumer = \"billing/1\"\n";
    let (dir, _redis, url) = setup(crash);
    let children: Vec<Child> = (0..2)
        .map(|i| segment(dir.path(), &url, i, 2, &[]))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let (out, merged) = merge(dir.path(), &segment_dirs(dir.path()));
    assert!(out.status.success(), "{}", text(&out));
    let merged = merged.unwrap();
    assert_ledger_adds_up(&merged);
    assert_eq!(merged.faults.len(), 1, "segment 1 applied it");
    let billing = &merged.groups[0];
    let redelivered = billing.measured.redelivered + billing.warmup.as_ref().unwrap().redelivered;
    assert!(redelivered > 0, "{billing:?}");
    let whole = |f: fn(&streamdrill::report::GroupPhase) -> u64| billing.whole_run(f);
    assert_eq!(whole(|p| p.lost), 0);
    assert_eq!(whole(|p| p.duplicates), 0);
    assert_eq!(
        whole(|p| p.processed.unwrap()),
        whole(|p| p.produced_acked.unwrap())
    );
}

/// A segment that never comes fails the others' start within the wait.
#[test]
fn a_segment_that_never_arrives_fails_the_start_for_the_others() {
    let (dir, _redis, url) = setup("");
    let started = Instant::now();
    let children: Vec<Child> = (0..2)
        .map(|i| segment(dir.path(), &url, i, 3, &["--segment-wait", "2s"]))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let said = text(&out);
        assert!(
            // Segment 2 among those named (a loaded machine may name a
            // slow one too), or the meeting another closed first.
            (said.contains("of 3 were not ready within 2s") && said.contains("2 of 3"))
                || said.contains("the meeting in Redis is gone"),
            "{said}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// A segment killed mid-run: the others finish after the wait, and the
/// merge reports its events as unaccounted for and fails.
#[test]
fn a_segment_killed_mid_run_is_unaccounted_for_in_the_merge() {
    let (dir, _redis, url) = setup("");
    let wait = ["--segment-wait", "3s"];
    let mut children: Vec<Child> = (0..3)
        .map(|i| segment(dir.path(), &url, i, 3, &wait))
        .collect();
    let mut victim = children.pop().unwrap();
    // Killed mid-run: once the run's stream holds a third of its events.
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    crate::support::wait_until(Duration::from_secs(30), "a third of the run", || {
        let run_id: Option<String> = redis::cmd("HGET")
            .arg("sd:meet:seg:3")
            .arg("run_id")
            .query(&mut conn)
            .unwrap_or(None);
        let key = format!("sd:{}:orders", run_id.unwrap_or_default());
        redis::cmd("XLEN").arg(key).query(&mut conn).unwrap_or(0u64) > 900
    });
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    // The survivors deleted the run's keys and the meeting all the same.
    let left: Vec<String> = redis::cmd("KEYS").arg("sd:*").query(&mut conn).unwrap();
    assert!(left.is_empty(), "{left:?}");
    let dirs: Vec<PathBuf> = segment_dirs(dir.path())
        .into_iter()
        .filter(|d| d.join("ledger.json").exists())
        .collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let (out, merged) = merge(dir.path(), &dirs);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("segment 2 missing"), "{}", text(&out));
    let merged = merged.unwrap();
    let rows = merged.segments.unwrap();
    let missing = rows.iter().find(|r| r.index == 2).unwrap();
    assert!(
        missing.dir.is_none() && missing.planned_events > 0,
        "{missing:?}"
    );
    // What its consumers processed died with it: unknown, never lost; its
    // producers' events are left out, not unexpected.
    let billing = &merged.groups[0];
    assert_eq!(
        (billing.measured.lost, billing.unexpected),
        (0, 0),
        "{billing:?}"
    );
    assert!(billing.readback_error.as_ref().unwrap().contains("[2]"));
}

/// A segment whose wall clock is 5 s ahead (libfaketime; `.ci/run`
/// installs Debian's faketime): its offset to Redis is measured, and
/// end-to-end latencies across the two segments stay true.
#[test]
fn a_skewed_clock_is_measured_and_corrected() {
    let (dir, _redis, url) = setup("");
    let scenario = dir.path().join("seg.toml");
    let out = dir.path().join("out");
    let args = |i: u32| {
        let seg = format!("{i}/2");
        let (scenario, out) = (scenario.to_str().unwrap(), out.to_str().unwrap());
        [
            "run",
            scenario,
            "--redis",
            &url,
            "--segment",
            &seg,
            "--quiet",
            "--out",
            out,
        ]
        .map(String::from)
    };
    let plain = streamdrill(&args(0).each_ref().map(String::as_str))
        .spawn()
        .unwrap();
    let skewed = Command::new("faketime")
        .args(["-m", "-f", "+5s", env!("CARGO_BIN_EXE_streamdrill")])
        .args(args(1))
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faketime (Debian: apt-get install -y faketime)");
    for child in [plain, skewed] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let (out, merged) = merge(dir.path(), &segment_dirs(dir.path()));
    assert!(out.status.success(), "{}", text(&out));
    let merged = merged.unwrap();
    let rows = merged.segments.as_ref().unwrap();
    let offset_s = |i: usize| rows[i].clock.offset_ns as f64 / 1e9;
    assert!(offset_s(0).abs() < 0.01, "{rows:?}");
    assert!((offset_s(1) + 5.0).abs() < 0.01, "{rows:?}");
    // Uncorrected, half the events would show 5 s (or -5 s, clamped to 1 µs).
    for g in &merged.groups {
        let e2e = g.measured.e2e_latency_us;
        assert!(e2e.max < 2_000_000 && e2e.p50 > 1, "{}: {e2e:?}", g.name);
    }
}

/// Processes that do not run the same scenario never meet.
#[test]
fn a_segment_of_another_scenario_is_turned_away() {
    let (dir, _redis, url) = setup("");
    let wait = ["--segment-wait", "3s"];
    let other = ["--segment-wait", "3s", "--seed", "99"];
    let both = [
        segment(dir.path(), &url, 0, 2, &wait),
        segment(dir.path(), &url, 1, 2, &other),
    ];
    // Whichever arrives second is turned away; the first then waits in vain.
    let said: Vec<String> = (both.into_iter())
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{}", text(&out));
            text(&out)
        })
        .collect();
    assert!(
        said.iter().any(|s| s.contains("run another scenario")),
        "{said:?}"
    );
}
