//! Power-loss drills against a real Redis on streamdrill's own FUSE file
//! system (docs/faults.md, "Power loss"): what each appendfsync policy loses
//! when the page cache vanishes, and that a plain process kill on the same
//! file system loses nothing, so the two faults are told apart by the data.
//! Each test skips, saying why, where FUSE is unavailable.

use crate::support::run_summary;

/// 2 × 500 events/s; the fault at 3 s.
fn drill(appendfsync: &str, fault: &str) -> String {
    format!(
        r#"
name = "power"
duration = "5s"
warmup = "1s"
drain_timeout = "5s"
[redis]
appendonly = true
appendfsync = "{appendfsync}"
power_fs = true
[[producers]]
stream = "s"
count = 2
rate = 1000
events = [{{ type = "E", size = "128B" }}]
[[groups]]
stream = "s"
name = "g"
consumers = 1
[[faults]]
action = "{fault}"
at = "3s"
restart_after = "500ms"
"#
    )
}

fn fuse_missing() -> bool {
    match streamdrill::powerfs::available() {
        Ok(()) => false,
        Err(why) => {
            println!("skipped: no FUSE here ({why})");
            true
        }
    }
}

/// Acknowledged XADDs gone after the drill.
fn gone(appendfsync: &str, fault: &str) -> u64 {
    let summary = run_summary(&drill(appendfsync, fault));
    let window = &summary.faults[0];
    assert!(window.applied, "{window:?}");
    // The file system's own work is reported beside the drill's result.
    let fs = summary.power_fs.clone().expect("power_fs in the summary");
    assert!(fs.writes > 0 && fs.written_bytes > 0, "{fs:?}");
    assert_eq!(fs.cuts, u64::from(fault == "power_loss"), "{fs:?}");
    let d = summary.durability.expect("a durability read-back");
    println!(
        "{fault} under {appendfsync}: {} acked, {} gone",
        d.acked, d.acked_but_gone
    );
    d.acked_but_gone
}

#[test]
fn always_loses_nothing_acknowledged() {
    if fuse_missing() {
        return;
    }
    assert_eq!(gone("always", "power_loss"), 0);
}

#[test]
fn everysec_loses_up_to_about_a_second() {
    if fuse_missing() {
        return;
    }
    let lost = gone("everysec", "power_loss");
    // At 1000/s: some, and no more than about a second and a half of them.
    assert!((1..=1500).contains(&lost), "{lost}");
}

#[test]
fn no_loses_everything_since_the_last_fsync() {
    if fuse_missing() {
        return;
    }
    // Nothing fsyncs the AOF under `no`, and this file system never flushes
    // on its own: every acknowledged XADD before the cut (3 s at 1000/s).
    let lost = gone("no", "power_loss");
    assert!(lost >= 2700, "{lost}");
}

#[test]
fn a_process_kill_on_the_same_file_system_loses_nothing() {
    if fuse_missing() {
        return;
    }
    assert_eq!(gone("everysec", "kill_redis"), 0);
}

/// A server that fails to start must not leave its file system mounted:
/// the mount goes with the server's temporary directory.
#[test]
fn a_server_that_fails_to_start_leaves_no_mount() {
    if fuse_missing() {
        return;
    }
    let bad = drill("everysec", "power_loss").replace(
        "power_fs = true",
        "power_fs = true\nconfig = [\"no-such-directive yes\"]",
    );
    let scenario = streamdrill::scenario::load_str(&bad, "bad.toml", &Default::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let options = streamdrill::runner::RunOptions::new(out.path());
    let e = streamdrill::runner::run_scenario(scenario, options)
        .err()
        .expect("redis-server refuses the directive")
        .to_string();
    // The error names the server's log in its temporary directory.
    let dir = (e.split_whitespace())
        .find_map(|w| w.strip_suffix("/redis.log"))
        .unwrap_or_else(|| panic!("no log path in: {e}"));
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(dir), "{dir} still mounted:\n{mounts}");
    assert!(!std::path::Path::new(dir).exists(), "{dir} left behind");
}
