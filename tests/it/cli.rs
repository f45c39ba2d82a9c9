//! The binary as a user runs it: README commands, overrides, exit codes.

use std::process::Command;

fn streamdrill() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamdrill"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

#[test]
fn quickstart_runs_short_and_writes_a_report() {
    let out = tempfile::tempdir().unwrap();
    let output = streamdrill()
        .args([
            "run",
            "scenarios/quickstart.toml",
            "--duration",
            "4s",
            "--set",
            "producers.0.rate=500",
            // The quickstart's latency and rate SLOs are for a quiet machine;
            // this checks the run, its report and its exit code, and a
            // stall of a loaded CI machine must not fail it.
            "--set",
            "slo.e2e_p99=2s",
            "--set",
            "slo.min_rate_ratio=0.5",
            "--progress",
            "--cpu-idle",
            "poll",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("billing"), "{stdout}");
    assert!(
        stderr.lines().count() >= 2,
        "--progress: a line per second even without a terminal:\n{stderr}"
    );
    let run_dir = std::fs::read_dir(out.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary = std::fs::read_to_string(run_dir.join("summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["scenario"]["producers"][0]["rate"], 500.0);
    assert_eq!(summary["groups"][0]["lost"], 0);
    // Held, or the reason it could not be (not root, no cpuidle driver).
    let idle = &summary["machine"]["cpu_idle"];
    let refused = idle["os_poll_refused"].as_str();
    assert!(
        idle == "poll" || refused.is_some_and(|why| !why.is_empty()),
        "{idle}"
    );
}

#[test]
fn validate_accepts_good_and_rejects_bad_files() {
    let ok = streamdrill()
        .args(["validate", "scenarios/orders.toml"])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let bad = streamdrill()
        .args([
            "validate",
            "scenarios/quickstart.toml",
            "--set",
            "producers.0.rate=-5",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr.starts_with("error: ") && stderr.contains("producers[0].rate"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bench_compares_side_by_side_and_splits_the_cycle() {
    // The smallest comparison: one depth, one payload, a slow cycle (its
    // three ways of sending, each with and without the group; too short to
    // split its CPU between them).
    let output = streamdrill()
        .args(["bench", "--duration", "1s", "--connections", "4"])
        .args([
            "--payloads",
            "16",
            "--pipelines",
            "16",
            "--cycle-rate",
            "2000",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let row: Vec<f64> = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("16B"))
        .unwrap_or_else(|| panic!("no XADD row:\n{stdout}"))
        .split_whitespace()
        .skip(2)
        .map(|v| v.trim_end_matches("µs").parse().unwrap())
        .collect();
    let [sd, rb, ratio, ..] = row[..] else {
        panic!("{stdout}")
    };
    assert!(sd > 0.0 && rb > 0.0, "{stdout}");
    assert!((ratio - sd / rb).abs() < 0.01, "{stdout}");
    let cycles: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("harness CPU"))
        .collect();
    assert_eq!(cycles.len(), 3, "{stdout}");
    for line in cycles {
        // Acknowledged inside the window: the last few milliseconds' replies come late.
        let achieved: f64 = (line.split("achieved ").nth(1))
            .and_then(|rest| rest.split("/s").next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert!((1960.0..=2000.0).contains(&achieved), "{line}");
        assert!(line.contains("run too short to split"), "{line}");
    }
    let wake_us: f64 = stdout
        .split("timer wake-up, for scale: ")
        .nth(1)
        .and_then(|rest| rest.split("µs").next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no timer floor:\n{stdout}"));
    assert!(wake_us > 0.0, "{stdout}");
}

#[test]
fn bench_tls_repeats_each_row_on_a_tls_server_and_prices_it() {
    // One row, no cycle: the TLS table and the cost table must follow the
    // plain one, row for row. A second is too short for two sampler
    // readings, so only redis-benchmark's runs price Redis's CPU here.
    let output = streamdrill()
        .args(["bench", "--tls", "--duration", "1s", "--connections", "4"])
        .args(["--payloads", "16", "--pipelines", "16", "--cycle-rate", "0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("XADD over TLS (TLSv1."), "{stdout}");
    let rows: Vec<Vec<&str>> = (stdout.lines())
        .filter(|l| l.trim_start().starts_with("16B"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let [plain, tls, cost] = &rows[..] else {
        panic!("want a plain, a TLS and a cost row:\n{stdout}")
    };
    let num = |v: &str| -> f64 { v.trim_end_matches("µs").parse().unwrap() };
    let rate_ratio = num(tls[2]) / num(plain[2]);
    assert!((num(cost[2]) - rate_ratio).abs() < 0.01, "{stdout}");
    let (rb_plain, rb_tls) = (num(cost[7]), num(cost[8]));
    assert!(rb_plain > 0.0 && rb_tls > 0.0, "{stdout}");
    // Both figures are rounded to 0.01µs before this division.
    assert!((num(cost[9]) - rb_tls / rb_plain).abs() < 0.05, "{stdout}");
}
