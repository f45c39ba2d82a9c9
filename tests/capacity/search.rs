//! `streamdrill capacity` against a setup whose limit is known: one group of
//! two consumers, each taking 1 ms per event in batches of 10, cannot
//! process more than ~2,000 events/s (a little less: each batch also waits
//! for its XACK and the next read). The search must find it to its
//! resolution and name that group's lag as the limit.

use std::time::Duration;

use streamdrill::capacity::{CapacityOptions, run_capacity};
use streamdrill::report::capacity::{Bound, Criterion, StepKind};
use streamdrill::scenario::{Overrides, load_str};

use crate::support::assert_ledger_adds_up;

const TWO_MS_CONSUMERS: &str = r#"
name = "known-limit"
duration = "5s"
[[streams]]
key = "s"
[[producers]]
stream = "s"
rate = 1000
events = [{ type = "E", weight = 1, size = "64B" }]
[[groups]]
stream = "s"
name = "slow"
consumers = 2
batch = 10
processing = "1ms"
"#;

fn options(out: &std::path::Path) -> CapacityOptions {
    let mut o = CapacityOptions::new(out);
    o.step_warmup = std::time::Duration::from_secs(1);
    o.step = std::time::Duration::from_secs(3);
    o.confirm = std::time::Duration::from_secs(3);
    o.resolution = 0.10;
    o.workers = Some(1);
    o
}

#[test]
fn finds_a_groups_processing_limit_and_names_it() {
    let scenario = load_str(TWO_MS_CONSUMERS, "known.toml", &Overrides::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let report = run_capacity(scenario, "known.toml", options(out.path())).unwrap();
    let search = &report.capacity.servers[0];
    let result = search.result.as_ref().expect("a result");
    let steps: Vec<_> = (search.steps.iter())
        .map(|s| (s.offered_rate_per_s, s.verdict.passed))
        .collect();
    println!("steps {steps:?}, result {result:?}");
    assert_eq!(result.bound, Bound::Found);
    let max = result.max_sustainable_rate_per_s;
    // Below 2,000/s by the XACK and read round trips; a loaded machine's
    // late timer wake-ups took it to 1,375/s once, so the floor is loose:
    // the limit's name below is what this test is about.
    assert!((1200.0..2000.0).contains(&max), "{max}");
    let fail = result.first_failing_rate_per_s.unwrap();
    assert!(
        fail <= 2100.0 && (fail - max) / max <= 0.10,
        "{max} .. {fail}"
    );
    let limit = result.limit.as_ref().unwrap();
    assert!(
        matches!(&limit.failed, Some(Criterion::GroupLag { group, .. }) if group == "slow"),
        "{limit:?}"
    );
    assert!(!limit.harness_limited, "{limit:?}");
    assert!(result.confirmed);
    assert_eq!(search.steps.last().unwrap().kind, StepKind::Confirm);
    // Every step is a whole run whose ledger adds up, in the directory named.
    for step in &search.steps {
        let path = report.dir.join(&step.run_dir).join("summary.json");
        let summary = streamdrill::report::read_summary(&path).unwrap();
        assert_ledger_adds_up(&summary);
        assert_eq!(summary.produce.target_rate_per_s, step.offered_rate_per_s);
        assert!(step.redis_cpu_cores.is_some() && step.stream_entries.is_some());
    }
    let written = std::fs::read_to_string(report.dir.join("capacity.json")).unwrap();
    let read: streamdrill::report::capacity::Capacity = serde_json::from_str(&written).unwrap();
    assert_eq!(read, report.capacity);
    let sizing = search.sizing.as_ref().unwrap();
    let per_entry = sizing.bytes_per_entry.unwrap();
    assert!(
        (64.0..1024.0).contains(&per_entry),
        "{per_entry} bytes per 64-byte event"
    );
    assert!(sizing.pending_bytes_per_entry.unwrap() > 0.0);
}

#[test]
fn a_shape_it_cannot_scale_is_refused_before_any_step() {
    let out = tempfile::tempdir().unwrap();
    let faulty = format!("{TWO_MS_CONSUMERS}[[faults]]\naction = \"kill_redis\"\nat = \"2s\"\n");
    let scenario = load_str(&faulty, "f.toml", &Overrides::default()).unwrap();
    let e = run_capacity(scenario, "f.toml", options(out.path()))
        .err()
        .unwrap();
    assert!(e.to_string().contains("f.toml: `faults`"), "{e}");
    let scenario = load_str(TWO_MS_CONSUMERS, "k.toml", &Overrides::default()).unwrap();
    let mut short = options(out.path());
    short.step = std::time::Duration::from_secs(1);
    let e = run_capacity(scenario, "k.toml", short).err().unwrap();
    assert!(e.to_string().contains("--step"), "{e}");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

/// Ctrl-C during the second step: that step's run stops and is written as
/// incomplete, the search stops, and capacity.json keeps what was found.
#[test]
fn ctrl_c_stops_the_search_and_keeps_what_was_found() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};

    let out = tempfile::tempdir().unwrap();
    let scenario = out.path().join("known.toml");
    std::fs::write(&scenario, TWO_MS_CONSUMERS).unwrap();
    let reports = out.path().join("reports");
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamdrill"))
        .args(["capacity", "--step", "3s", "--step-warmup", "1s", "--out"])
        .arg(&reports)
        .arg(&scenario)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let seen = text.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let second_step = || text.lock().unwrap().contains("step  2");
    crate::support::wait_until(Duration::from_secs(30), "the second step", second_step);
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut exit = None;
    crate::support::wait_until(Duration::from_secs(20), "capacity to exit", || {
        exit = child.try_wait().unwrap();
        exit.is_some()
    });
    reader.join().unwrap();
    let stderr = text.lock().unwrap().clone();
    assert_eq!(exit.unwrap().code(), Some(130), "stderr: {stderr}");
    let dir = std::fs::read_dir(&reports)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let json = std::fs::read_to_string(dir.join("capacity.json")).unwrap();
    let c: streamdrill::report::capacity::Capacity = serde_json::from_str(&json).unwrap();
    assert!(c.interrupted);
    let search = &c.servers[0];
    assert_eq!(search.steps.len(), 2, "{stderr}");
    assert!(
        search.steps[0].verdict.passed,
        "{:?}",
        search.steps[0].verdict
    );
    assert!(
        matches!(
            search.steps[1].verdict.failed,
            Some(Criterion::Incomplete { .. })
        ),
        "{:?}",
        search.steps[1].verdict
    );
    assert_eq!(search.result.as_ref().unwrap().bound, Bound::Incomplete);
}

#[test]
fn a_missing_server_binary_fails_the_search_with_its_path() {
    let out = tempfile::tempdir().unwrap();
    let scenario = load_str(TWO_MS_CONSUMERS, "k.toml", &Overrides::default()).unwrap();
    let mut o = options(out.path());
    o.servers = vec!["/nonexistent/valkey-server".into()];
    let e = run_capacity(scenario, "k.toml", o)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent/valkey-server"), "{e}");
    assert!(e.contains("fetch-servers"), "says how to get one: {e}");
}
