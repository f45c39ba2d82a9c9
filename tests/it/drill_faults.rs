//! Faults that cannot be applied fail the run, loudly: a typed outcome in
//! summary.json, a failed `faults_not_applied` check, exit code 1, and the
//! reason on the terminal.

use std::process::Command;

use streamdrill::report::Summary;

use crate::support::run_summary as run;

/// g/0 crashes at 500 ms and again at 1 s with no restart between: the
/// second crash finds it down already.
const CRASH_TWICE: &str = r#"
name = "crash-twice"
duration = "1500ms"
drain_timeout = "5s"
[[producers]]
stream = "s"
rate = 200
[[groups]]
stream = "s"
name = "g"
consumers = 2
reclaim = { min_idle = "200ms", every = "100ms" }
[[faults]]
action = "crash_consumer"
at = "500ms"
consumer = "g/0"
[[faults]]
action = "crash_consumer"
at = "1s"
consumer = "g/0"
"#;

#[test]
fn crashing_a_consumer_that_is_down_fails_the_run_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crash-twice.toml");
    std::fs::write(&file, CRASH_TWICE).unwrap();
    let reports = dir.path().join("reports");
    let output = Command::new(env!("CARGO_BIN_EXE_streamdrill"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&reports)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "fails as a failed SLO does:\n{stdout}\n{stderr}"
    );
    let reason = (stdout.lines())
        .find(|l| l.starts_with("  NOT APPLIED crash_consumer g/0 at "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        reason.ends_with("s: consumer g/0 is already down"),
        "{reason}"
    );
    assert!(stdout.contains("[FAIL] faults_not_applied"), "{stdout}");

    let run_dir = std::fs::read_dir(&reports)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let text = std::fs::read_to_string(run_dir.path().join("summary.json")).unwrap();
    let s: Summary = serde_json::from_str(&text).unwrap();
    let [first, second] = &s.faults[..] else {
        panic!("{:?}", s.faults)
    };
    assert!(first.applied && first.error.is_none(), "{first:?}");
    assert_eq!(second.kind, "crash_consumer");
    assert_eq!(second.target.as_deref(), Some("g/0"));
    assert!(!second.applied, "{second:?}");
    assert_eq!(
        second.error.as_deref(),
        Some("consumer g/0 is already down")
    );
    assert_eq!(
        second.name, "crash_consumer g/0",
        "the name stays a plain label"
    );
    assert!(!s.slo.passed);
    let check = (s.slo.checks.iter())
        .find(|c| c.name == "faults_not_applied")
        .expect("the check");
    assert_eq!(
        (check.objective.actual_text(), check.passed),
        ("1".into(), false)
    );
    // The first crash was real: what g/0 held was reclaimed, nothing lost.
    assert_eq!(s.groups[0].whole_run(|p| p.lost), 0, "{:?}", s.groups[0]);
}

/// kill_redis at 1 s, back 2 s later; another kill_redis at 1.5 s finds
/// no server process to kill.
const KILL_TWICE: &str = r#"
name = "kill-twice"
duration = "4s"
drain_timeout = "10s"
[[producers]]
stream = "s"
rate = 200
[[groups]]
stream = "s"
name = "g"
[[faults]]
action = "kill_redis"
at = "1s"
restart_after = "2s"
[[faults]]
action = "kill_redis"
at = "1500ms"
restart_after = "100ms"
"#;

#[test]
fn killing_a_redis_that_is_down_fails_the_run_and_says_why() {
    let s = run(KILL_TWICE);
    let [first, second] = &s.faults[..] else {
        panic!("{:?}", s.faults)
    };
    assert!(first.applied && first.error.is_none(), "{first:?}");
    assert!(
        first.end_s - first.start_s >= 2.0,
        "down until restarted: {first:?}"
    );
    assert_eq!(
        (second.kind.as_str(), second.target.as_deref()),
        ("kill_redis", None)
    );
    assert!(!second.applied, "{second:?}");
    let error = second.error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("redis-server on port ") && error.ends_with(" is already down"),
        "{error}"
    );
    assert!(!s.slo.passed, "{:?}", s.slo);
    // The kill that did happen still reads the streams back.
    assert!(s.durability.is_some());
}
