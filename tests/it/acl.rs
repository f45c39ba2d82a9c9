//! An ACL user limited to the run's keys and commands, with the rule
//! docs/acl.md gives, runs shipped scenarios against a server the test
//! starts, used as an external Redis; a run that would send a command its
//! user may not send stops before anything is written, naming the command
//! (docs/acl.md, "The preflight").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use streamdrill::Error;
use streamdrill::connect::Target;
use streamdrill::coordinator::check_permissions;
use streamdrill::metrics::StreamFeature;
use streamdrill::plan::Plan;
use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::scenario::{Overrides, Scenario, load_file, load_str};
use streamdrill::server::RedisServer;

use crate::support::{client, run_loaded, server};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The first `ACL SETUSER` line of docs/acl.md: the rule every run without
/// command-sending faults needs, as the arguments after `ACL SETUSER`.
fn documented_rule() -> Vec<String> {
    let doc = std::fs::read_to_string(root().join("docs/acl.md")).unwrap();
    let line = (doc.lines())
        .find(|l| l.starts_with("ACL SETUSER "))
        .expect("docs/acl.md gives the rule");
    line.split_whitespace().skip(2).map(String::from).collect()
}

/// The documented rule with `extra` rules after it and those in `without`
/// left out; returns the URL that logs in as its user.
fn user(server: &RedisServer, extra: &[&str], without: &[&str]) -> String {
    let mut rule = documented_rule();
    rule.retain(|r| !without.contains(&r.as_str()));
    rule.extend(extra.iter().map(|r| r.to_string()));
    let (name, password) = (
        &rule[0],
        &rule.iter().find_map(|r| r.strip_prefix('>')).unwrap(),
    );
    let mut admin = client(server);
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&rule)
        .query::<()>(&mut admin)
        .unwrap_or_else(|e| panic!("ACL SETUSER {}: {e}", rule.join(" ")));
    format!("redis://{name}:{password}@127.0.0.1:{}", server.port())
}

/// A shipped scenario against `url` as an external Redis, with `sets` overrides.
fn shipped(file: &Path, url: &str, sets: &[&str]) -> streamdrill::Result<Scenario> {
    let mut overrides = Overrides::default();
    overrides.push("redis.mode", "external");
    overrides.push("redis.url", url);
    for set in sets {
        let (path, value) = set.split_once('=').unwrap();
        overrides.push(path, value);
    }
    load_file(file, &overrides)
}

fn scenario(name: &str) -> PathBuf {
    root().join("scenarios").join(name)
}

/// How many times Redis ran `command` (refused or queued-and-discarded
/// ones do not count).
fn calls(server: &RedisServer, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut client(server))
        .unwrap();
    let line = format!("cmdstat_{command}:calls=");
    (info.lines())
        .find_map(|l| l.strip_prefix(line.as_str()))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

fn keys_on(server: &RedisServer) -> u64 {
    redis::cmd("DBSIZE").query(&mut client(server)).unwrap()
}

fn preflight(plan: &Plan, url: &str) -> streamdrill::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(check_permissions(plan, &Target::new(url, None).unwrap()))
}

#[test]
fn the_quickstart_runs_as_a_user_limited_to_its_keys() {
    let server = server();
    let url = user(&server, &[], &[]);
    let quickstart = scenario("quickstart.toml");
    let s = run_loaded(shipped(&quickstart, &url, &["duration=2s", "warmup=500ms"]).unwrap()).0;
    let (p, w) = (&s.produce, &s.warmup);
    assert_eq!(
        (p.acked, p.errors, w.produce_acked),
        (3000, 0, 1000),
        "{p:?}"
    );
    for g in &s.groups {
        let warmup = g.warmup.as_ref().unwrap();
        assert_eq!(g.measured.lost + warmup.lost, 0, "{}", g.name);
        assert_eq!(g.measured.processed, Some(p.acked), "{}", g.name);
        assert_eq!(warmup.processed, Some(w.produce_acked), "{}", g.name);
        assert!(g.drained, "{}", g.name);
    }
    let features = &s.redis.server.as_ref().unwrap().features;
    assert!(
        features.contains(&StreamFeature::Xautoclaim)
            && features.contains(&StreamFeature::GroupLag),
        "the feature probe ran as the user: {features:?}"
    );
    assert_eq!(keys_on(&server), 0, "the run deleted its keys as the user");
}

/// Reclaim and dead-lettering (XAUTOCLAIM, XPENDING, MULTI/EXEC, the
/// dead-letter stream's key), the most any shipped scenario asks of a user.
#[test]
fn the_poison_drill_dead_letters_as_a_user_limited_to_its_keys() {
    let server = server();
    let url = user(&server, &[], &[]);
    let sets = [
        "duration=2s",
        "warmup=500ms",
        "groups.0.reclaim.min_idle=200ms",
        "groups.0.reclaim.every=50ms",
    ];
    let poison = scenario("drill-poison-events.toml");
    let s = run_loaded(shipped(&poison, &url, &sets).unwrap()).0;
    assert_eq!(s.produce.errors, 0, "{:?}", s.produce);
    let mut dead_lettered = 0;
    for g in &s.groups {
        let warmup = g.warmup.as_ref().unwrap();
        for phase in [&g.measured, warmup] {
            assert_eq!(phase.lost, 0, "{}: {phase:?}", g.name);
            let settled = phase.processed.unwrap() + phase.dead_lettered;
            assert_eq!(Some(settled), phase.produced_acked, "{}: {phase:?}", g.name);
            dead_lettered += phase.dead_lettered;
        }
    }
    assert!(dead_lettered > 0, "poison events were dead-lettered");
    let dlq: u64 = s.verify.dead_letter.iter().map(|d| d.length).sum();
    assert_eq!(dlq, dead_lettered, "{:?}", s.verify.dead_letter);
    assert_eq!(keys_on(&server), 0);
}

/// Every shipped scenario that can run against a server of one's own passes
/// the preflight as the documented user, and docs/acl.md's table names
/// every shipped scenario; the rest need a managed server, and say so.
#[test]
fn every_shipped_scenario_an_external_server_can_run_passes_the_preflight() {
    let server = server();
    let url = user(&server, &[], &[]);
    let doc = std::fs::read_to_string(root().join("docs/acl.md")).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let (mut checked, mut slowest) = (Vec::new(), Duration::ZERO);
    for file in &files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let named = doc.contains(&format!("`{stem}`"))
            || (doc.split('`'))
                .filter_map(|t| t.strip_suffix('*'))
                .any(|prefix| !prefix.is_empty() && stem.starts_with(prefix));
        assert!(
            named,
            "docs/acl.md, \"Shipped scenarios\" does not name {stem}"
        );
        let scenario = match shipped(file, &url, &[]) {
            Ok(s) => s,
            Err(e) => {
                assert!(e.to_string().contains("managed"), "{stem}: {e}");
                continue;
            }
        };
        let plan = Plan::new(scenario, "acl-check".into());
        let started = Instant::now();
        preflight(&plan, &url).unwrap_or_else(|e| panic!("{stem}: {e}"));
        slowest = slowest.max(started.elapsed());
        checked.push(stem);
    }
    println!(
        "preflight of {} scenarios: the slowest took {slowest:?}",
        checked.len()
    );
    for stem in ["quickstart", "drill-consumer-crash", "drill-poison-events"] {
        assert!(checked.iter().any(|c| c == stem), "{checked:?}");
    }
    assert_eq!(keys_on(&server), 0, "the preflight writes nothing");
}

/// A CLIENT KILL fault, which the documented rule does not allow.
fn client_kill_run(url: &str) -> String {
    format!(
        r#"
name = "acl-kill"
duration = "2s"
[redis]
mode = "external"
url = "{url}"
[[producers]]
stream = "orders"
rate = 100
[[groups]]
stream = "orders"
name = "billing"
[[faults]]
action = "client_kill"
at = "500ms"
"#
    )
}

#[test]
fn a_fault_the_user_may_not_send_stops_the_run_before_anything_is_written() {
    let server = server();
    let url = user(&server, &[], &[]);
    let scenario = load_str(
        &client_kill_run(&url),
        "acl-kill.toml",
        &Overrides::default(),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = match run_scenario(scenario, RunOptions::new(out.path()).workers(1)) {
        Ok(_) => panic!("the run was expected to be refused"),
        Err(e) => e,
    };
    let text = err.to_string();
    let Error::Refused { refusals, user, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(user, "drill");
    let [refused] = &refusals[..] else {
        panic!("only the fault's command is refused: {text}")
    };
    assert_eq!(refused.command, "CLIENT KILL TYPE normal SKIPME yes");
    assert_eq!(refused.needed_for, "fault client_kill at 0.5s");
    assert!(refused.reply.starts_with("NOPERM"), "{text}");
    assert!(text.contains("ACL SETUSER drill +client|kill"), "{text}");
    assert_eq!(keys_on(&server), 0, "nothing was written: {text}");
    // Not even the feature probe (the runner's DEL of the run's keys, which
    // follows every external run, finds none).
    for command in ["xgroup|create", "xadd"] {
        assert_eq!(calls(&server, command), 0, "{command} ran");
    }
}

/// MULTI refused: the commands after it would run, so nothing is sent after it.
#[test]
fn a_user_without_multi_is_refused_before_any_command_runs() {
    let server = server();
    let url = user(&server, &["+client|kill"], &["+multi"]);
    let scenario = load_str(
        &client_kill_run(&url),
        "acl-kill.toml",
        &Overrides::default(),
    )
    .unwrap();
    let err = preflight(&Plan::new(scenario, "acl-check".into()), &url).unwrap_err();
    let Error::Refused { refusals, .. } = &err else {
        panic!("{err:?}")
    };
    let commands: Vec<&str> = refusals.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(commands, ["MULTI"], "{err}");
    assert!(
        err.to_string().contains("ACL SETUSER drill +multi"),
        "{err}"
    );
    for command in ["client|kill", "xgroup|create", "xadd", "del"] {
        assert_eq!(calls(&server, command), 0, "{command} ran");
    }
    assert_eq!(keys_on(&server), 0);
}
