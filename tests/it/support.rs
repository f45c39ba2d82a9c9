//! Helpers shared by the integration tests: a managed redis-server per test,
//! a sync connection to it, and waiting on a condition with a deadline
//! (tests never sleep for a fixed time).

use std::thread::sleep;
use std::time::{Duration, Instant};

use streamdrill::server::{RedisServer, ServerConfig};

/// How often `wait_until` re-checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A fresh managed server with the default config (no persistence).
pub fn server() -> RedisServer {
    server_with(ServerConfig::default())
}

/// A fresh managed server; panics with the error (log tail included) if it cannot start.
pub fn server_with(config: ServerConfig) -> RedisServer {
    RedisServer::start(config).unwrap_or_else(|e| panic!("cannot start redis-server: {e}"))
}

/// A sync connection to `server`.
pub fn client(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to {}: {e}\n--- log tail ---\n{}",
                server.url(),
                server.log_tail(20)
            )
        })
}

/// Poll `cond` every 10 ms until it holds; panic naming `what` after `deadline`.
pub fn wait_until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !cond() {
        if Instant::now() >= until {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        sleep(POLL_INTERVAL);
    }
}

/// Runs a scenario given as TOML text into a throwaway report directory and
/// returns its summary; panics with the error if the scenario or the run fails.
pub fn run_summary(toml: &str) -> streamdrill::report::Summary {
    run_with_dir(toml).0
}

/// Like `run_summary`, also handing back the report directory (removed
/// when the `TempDir` drops).
pub fn run_with_dir(toml: &str) -> (streamdrill::report::Summary, RunDir) {
    let scenario = streamdrill::scenario::load_str(toml, "test.toml", &Default::default())
        .unwrap_or_else(|e| panic!("invalid scenario: {e}"));
    run_loaded(scenario)
}

/// Runs a loaded scenario on one worker thread; see `run_with_dir`.
pub fn run_loaded(
    scenario: streamdrill::scenario::Scenario,
) -> (streamdrill::report::Summary, RunDir) {
    let out = tempfile::tempdir().unwrap();
    let options = streamdrill::runner::RunOptions::new(out.path()).workers(1);
    let report = streamdrill::runner::run_scenario(scenario, options)
        .unwrap_or_else(|e| panic!("run failed: {e}"));
    assert_ledger_adds_up(&report.summary);
    let dir = RunDir {
        path: report.dir,
        _out: out,
    };
    (report.summary, dir)
}

/// A run's report directory, inside a temporary directory it keeps alive.
pub struct RunDir {
    pub path: std::path::PathBuf,
    _out: tempfile::TempDir,
}

/// What every run must show (docs/measurement.md, "Accounting"): in each
/// group and phase the outcomes of the acknowledged events add up to them,
/// and producers' counts add up to what they intended.
pub fn assert_ledger_adds_up(s: &streamdrill::report::Summary) {
    for g in &s.groups {
        for (phase, p) in [
            ("measured", Some(&g.measured)),
            ("warmup", g.warmup.as_ref()),
        ] {
            let Some(p) = p else { continue };
            assert_eq!(
                p.outcomes_total(),
                p.produced_acked,
                "group {} {phase}: {p:?}",
                g.name
            );
        }
    }
    let p = &s.produce;
    let (failed, indeterminate) = (p.failed.unwrap(), p.indeterminate.unwrap());
    assert_eq!(p.sent, p.acked + failed + indeterminate, "{p:?}");
    assert_eq!(p.errors, failed + indeterminate, "{p:?}");
    let (unsent, skipped) = (p.unsent.unwrap(), p.skipped.unwrap());
    assert_eq!(p.intended, Some(p.sent + unsent + skipped), "{p:?}");
    assert!(p.late.unwrap() <= p.acked && p.unanswered.unwrap() <= indeterminate);
    // Every intended event but the skipped has a latency, a lower bound if
    // it was never acknowledged.
    assert_eq!(p.latency_us.count, p.intended.unwrap() - skipped, "{p:?}");
    assert_eq!(
        p.latency_lower_bounds,
        Some(failed + indeterminate + unsent)
    );
}
