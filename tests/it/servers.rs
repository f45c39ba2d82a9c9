//! Other redis-server-compatible binaries (`[redis] server`): a short run on
//! each one `scripts/fetch-servers` put in `.servers/` adds up and says in
//! summary.json which server it was; a binary that is not there, and a
//! server lacking XAUTOCLAIM for a `reclaim`, fail with errors that say so.
//! `--server` says the same. A test whose binary was not fetched skips,
//! saying how to fetch it.

use std::path::{Path, PathBuf};

use streamdrill::Error;
use streamdrill::metrics::StreamFeature;
use streamdrill::report::Summary;
use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::scenario::{Overrides, load_str};

use crate::support::run_summary;

/// `.servers/<rel>` if scripts/fetch-servers fetched it; None (and a line
/// saying the test skips and why) if not.
fn fetched(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".servers")
        .join(rel);
    if path.is_file() {
        return Some(path);
    }
    println!(
        "skipped: {} is absent; run scripts/fetch-servers to fetch it",
        path.display()
    );
    None
}

/// `[redis] server = "<binary>"`
fn server(binary: &Path) -> String {
    format!("server = {:?}", binary.to_str().unwrap())
}

/// Two seconds at 200/s with one group that reclaims; `redis`: the lines
/// of its `[redis]` table.
fn short_run(redis: &str) -> String {
    format!(
        r#"
name = "servers"
duration = "2s"
warmup = "500ms"
[redis]
{redis}
[[producers]]
stream = "s"
rate = 200
[[groups]]
stream = "s"
name = "g"
consumers = 2
reclaim = {{ min_idle = "1s" }}
"#
    )
}

/// Every event made it, and summary.json names the server the run started.
fn assert_ran_on(s: &Summary, binary: &Path, name: &str, version: &str) {
    assert_eq!((s.produce.sent + s.warmup.produce_sent), 400);
    assert_eq!(s.groups[0].measured.lost, 0, "{:?}", s.groups[0]);
    let server = s.redis.server.as_ref().expect("the server is recorded");
    assert_eq!(
        (server.name.as_str(), server.version.as_str()),
        (name, version)
    );
    assert_eq!(server.binary.as_deref(), binary.to_str());
    for feature in [StreamFeature::Xautoclaim, StreamFeature::GroupLag] {
        assert!(server.has(feature), "{feature:?}: {server:?}");
    }
    assert_eq!(s.redis.label(), format!("{name} {version}"));
    let table = streamdrill::report::render_table(s);
    assert!(
        table.contains(&format!("{name} {version} (managed")),
        "{table}"
    );
}

#[test]
fn a_run_on_redis_8_adds_up_and_names_it() {
    let Some(binary) = fetched("redis-8.2.3/redis-server") else {
        return;
    };
    let s = run_summary(&short_run(&server(&binary)));
    assert_ran_on(&s, &binary, "redis", "8.2.3");
    assert_eq!(s.redis.version, "8.2.3");
}

/// With a replica: it runs the same binary, or a Valkey 9 primary would
/// not sync to the PATH's redis-server.
#[test]
fn a_run_on_valkey_9_adds_up_and_names_it_not_its_redis_version() {
    let Some(binary) = fetched("valkey-9.1.2/valkey-server") else {
        return;
    };
    let s = run_summary(&short_run(&(server(&binary) + "\nreplica = true")));
    assert_ran_on(&s, &binary, "valkey", "9.1.2");
    assert_eq!(
        s.redis.version, "7.2.4",
        "what Valkey reports for compatibility"
    );
}

fn run_error(toml: &str) -> Error {
    let scenario = load_str(toml, "test.toml", &Overrides::default()).expect("valid scenario");
    let out = tempfile::tempdir().unwrap();
    match run_scenario(scenario, RunOptions::new(out.path()).workers(1)) {
        Ok(_) => panic!("the run was expected to fail"),
        Err(e) => e,
    }
}

#[test]
fn a_missing_binary_is_an_error_naming_the_field_the_path_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("valkey-server");
    let err = run_error(&short_run(&server(&path)));
    assert!(matches!(err, Error::ServerBinary { .. }), "{err:?}");
    let text = err.to_string();
    for needle in [
        &format!("{}: no such file", path.display()),
        "`redis.server`",
        "scripts/fetch-servers",
    ] {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
}

/// A server without XAUTOCLAIM (here one that renamed it away) refuses a
/// `reclaim` before the run starts, rather than failing every reclaim.
#[test]
fn reclaim_on_a_server_without_xautoclaim_fails_at_setup() {
    let config = r#"config = ["rename-command XAUTOCLAIM \"\""]"#;
    let err = run_error(&short_run(config));
    assert!(matches!(err, Error::ServerLacks { .. }), "{err:?}");
    let text = err.to_string();
    for needle in ["has no XAUTOCLAIM", "which group `g`'s `reclaim` needs"] {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
}

/// The default binary, `redis-server` from PATH, is recorded too.
#[test]
fn the_default_server_is_recorded_with_its_features() {
    let s = run_summary(&short_run(""));
    let server = s.redis.server.as_ref().expect("recorded");
    assert_eq!(server.label(), format!("redis {}", s.redis.version));
    let binary = server.binary.as_deref().unwrap_or_default();
    assert!(binary.ends_with("/redis-server"), "{server:?}");
    assert!(server.has(StreamFeature::Xautoclaim), "{server:?}");
}

/// `--server` as a user types it: a missing binary exits 2 with the error,
/// before any server starts, and no panic.
#[test]
fn the_server_flag_names_a_missing_binary_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-server");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_streamdrill"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "scenarios/quickstart.toml", "--quiet", "--out"])
        .arg(dir.path())
        .arg("--server")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let expected = format!("{}: no such file; set `redis.server`", path.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
