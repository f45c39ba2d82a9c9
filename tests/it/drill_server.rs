//! Redis server drills against real redis-server processes: freeze
//! (SIGSTOP/SIGCONT), CLIENT KILL, CLIENT PAUSE, DEBUG SLEEP and a graceful
//! restart under load end with every event accounted for; Ctrl-C stops a
//! run cleanly and still writes its report.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use streamdrill::report::Summary;
use streamdrill::scenario::{Overrides, load_str};

use crate::support::wait_until;

use crate::support::run_summary as run;

/// 1000 events/s for 3 s, one fault at 1 s (`{fault}` is its TOML lines).
fn drill(fault: &str) -> String {
    format!(
        r#"
name = "server-drill"
duration = "3s"
drain_timeout = "10s"
[[producers]]
stream = "s"
rate = 1000
[[groups]]
stream = "s"
name = "g"
consumers = 2
batch = 50
reclaim = {{ min_idle = "1s", every = "200ms" }}
[[faults]]
at = "1s"
{fault}
"#
    )
}

/// Nothing acknowledged was lost, and the counts agree with what Redis holds.
fn assert_accounted(s: &Summary) {
    let g = &s.groups[0];
    assert_eq!(
        (g.measured.lost, g.measured.stranded),
        (0, 0),
        "every event accounted for: {g:?}"
    );
    assert!(g.drained, "{g:?}");
    assert!(s.verify.consistent, "{:?}", s.verify);
}

fn window_s(s: &Summary) -> f64 {
    assert_eq!(s.faults.len(), 1, "{:?}", s.faults);
    s.faults[0].end_s - s.faults[0].start_s
}

#[test]
fn a_frozen_redis_delays_writes_by_the_freeze_and_loses_nothing() {
    let s = run(&drill("action = \"freeze_redis\"\nduration = \"1s\""));
    assert_accounted(&s);
    let frozen_s = window_s(&s);
    assert!(frozen_s >= 1.0, "{:?}", s.faults);
    let max_s = s.produce.latency_us.max as f64 / 1e6;
    assert!(
        s.produce.errors > 0 || max_s >= 0.95,
        "XADDs waited out the freeze: max {max_s}s, {:?}",
        s.produce
    );
    assert_eq!(s.faults[0].name, "freeze_redis 1s");
    let first_ack = s.faults[0].first_ack_after_s.expect("writes resumed");
    assert!(first_ack <= 1.0, "{:?}", s.faults[0]);
}

#[test]
fn a_saturating_producer_writes_again_after_its_connection_is_killed() {
    // Closed loop: only a reply sends the next pipeline, and none comes to a
    // killed connection; reconnecting must start the loop again.
    let toml = drill("action = \"client_kill\"")
        .replace("rate = 1000", "rate = \"max\"\npipeline = 16")
        .replace("duration = \"3s\"", "duration = \"2s\"");
    let s = run(&toml);
    assert_accounted(&s);
    let back_s = s.faults[0].first_write_after_s.expect("writes resumed");
    assert!(
        back_s < 0.6,
        "reconnected within the backoff: {:?}",
        s.faults[0]
    );
    let d = s.durability.as_ref().expect("streams read back");
    assert_eq!(d.acked_but_gone, 0, "{d:?}");
}

#[test]
fn client_kill_cuts_connections_the_harness_recovers_and_loses_nothing() {
    let s = run(&drill("action = \"client_kill\""));
    assert_accounted(&s);
    let kill = &s.faults[0];
    assert!(
        kill.applied && kill.error.is_none(),
        "CLIENT KILL ran: {kill:?}"
    );
    assert_eq!(kill.kind, "client_kill");
    assert!(kill.clients_killed.is_some_and(|n| n >= 3), "{kill:?}");
    assert!(
        s.produce.errors > 0,
        "killed connections fail their XADDs: {:?}",
        s.produce
    );
    // Errors, then recovery: most of the run's writes were acknowledged.
    assert!(s.produce.acked > 2500, "{:?}", s.produce);
    assert!(s.faults[0].first_ack_after_s.expect("writes resumed") <= 1.0);
    let d = s
        .durability
        .as_ref()
        .expect("streams read back after CLIENT KILL");
    assert_eq!(d.acked_but_gone, 0, "{d:?}");
}

#[test]
fn client_pause_delays_writes_by_the_pause() {
    let s = run(&drill("action = \"client_pause\"\nduration = \"1s\""));
    assert_accounted(&s);
    let max_s = s.produce.latency_us.max as f64 / 1e6;
    assert!(max_s >= 0.9, "XADDs held for the pause: max {max_s}s");
    assert!(window_s(&s) >= 1.0, "{:?}", s.faults);
}

#[test]
fn debug_sleep_blocks_redis_without_blocking_the_harness() {
    let s = run(&drill("action = \"debug_sleep\"\nduration = \"1s\""));
    assert_accounted(&s);
    assert!(s.faults[0].applied, "{:?}", s.faults);
    // The window ends with DEBUG SLEEP's reply, after the sleep.
    assert!(window_s(&s) >= 0.95, "{:?}", s.faults);
    let max_s = s.produce.latency_us.max as f64 / 1e6;
    assert!(max_s >= 0.9, "XADDs waited for the sleep: max {max_s}s");
}

#[test]
fn a_graceful_restart_with_fsync_always_keeps_every_acked_write() {
    let toml = drill("action = \"restart_redis\"").replace(
        "[[producers]]",
        "[redis]\nappendonly = true\nappendfsync = \"always\"\n[[producers]]",
    );
    let s = run(&toml);
    assert_eq!(s.groups[0].measured.lost, 0, "{:?}", s.groups[0]);
    let d = s
        .durability
        .as_ref()
        .expect("streams read back after a restart");
    assert_eq!(d.acked_but_gone, 0, "{d:?}");
    assert!(s.faults[0].applied, "{:?}", s.faults);
    assert!(s.slo.passed, "{:?}", s.slo);
}

#[test]
fn server_faults_are_refused_against_an_external_redis() {
    for action in [
        "freeze_redis\"\nduration = \"1s",
        "debug_sleep\"\nduration = \"1s",
        "restart_redis",
    ] {
        let toml = drill(&format!("action = \"{action}\"")).replace(
            "[[producers]]",
            "[redis]\nmode = \"external\"\nurl = \"redis://127.0.0.1:1\"\n[[producers]]",
        );
        let e = load_str(&toml, "x.toml", &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs a managed Redis"), "{action}: {e}");
        assert!(e.contains("mode = \"managed\""), "{action}: {e}");
    }
}

/// A run long enough that only Ctrl-C ends it within the test.
const LONG: &str = r#"
name = "interrupted"
duration = "60s"
[[producers]]
stream = "s"
rate = 500
[[groups]]
stream = "s"
name = "g"
"#;

/// The pids of `pid`'s child processes.
fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent's wait is missing.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn summary_in(out: &Path) -> Option<PathBuf> {
    let dir = std::fs::read_dir(out).ok()?.next()?.ok()?.path();
    Some(dir.join("summary.json")).filter(|p| p.is_file())
}

/// A failed test must not leave a 60 s run behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ctrl_c_stops_the_run_stops_redis_and_writes_the_report() {
    let out = tempfile::tempdir().unwrap();
    let scenario = out.path().join("long.toml");
    std::fs::write(&scenario, LONG).unwrap();
    let reports = out.path().join("reports");
    let child = Command::new(env!("CARGO_BIN_EXE_streamdrill"))
        .arg("run")
        .arg(&scenario)
        .arg("--progress")
        .arg("--out")
        .arg(&reports)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let pid = child.0.id();
    // The first progress line (after ~1 s) says the run is under way.
    let progressing = Arc::new(AtomicBool::new(false));
    let mut stderr = child.0.stderr.take().unwrap();
    let seen = progressing.clone();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
            seen.store(true, Ordering::SeqCst);
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    wait_until(Duration::from_secs(15), "the first progress line", || {
        progressing.load(Ordering::SeqCst)
    });
    let servers = children(pid);
    assert_eq!(servers.len(), 1, "one managed redis-server: {servers:?}");
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exit = None;
    wait_until(
        Duration::from_secs(15),
        "streamdrill to exit after SIGINT",
        || {
            exit = child.0.try_wait().unwrap();
            exit.is_some()
        },
    );
    let stderr = reader.join().unwrap();
    assert_eq!(exit.unwrap().code(), Some(130), "stderr: {stderr}");
    wait_until(
        Duration::from_secs(5),
        "the managed redis-server to exit",
        || !alive(servers[0]),
    );
    let path = summary_in(&reports).expect("summary.json written");
    let summary: Summary = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(summary.interrupted);
    assert!(summary.produce.acked > 0, "{:?}", summary.produce);
    assert!(
        summary.measured_duration_s < 30.0,
        "measured only what ran: {}",
        summary.measured_duration_s
    );
    assert_eq!(
        summary.groups[0].measured.lost, 0,
        "{:?}",
        summary.groups[0]
    );
}
