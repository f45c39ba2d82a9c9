//! Safe trimming (docs/event-sourcing.md, "Safe trimming"), on short runs
//! of the shipped `scenarios/es-trim-safety.toml`: without a trim policy the
//! slow group loses events to `trimmed_unread` (split exactly out of
//! `lost`, which stays 0), its read position reaches the trimmed head, and
//! Redis's own XINFO, watched during a run on the test's server, agrees;
//! with `trim_policy = "acked"` on Redis 8.2.3 (skipped, saying so, when
//! scripts/fetch-servers has not fetched it) it loses nothing and the stream
//! grows past `maxlen` instead; Redis 7.0.15 refuses the policy before the
//! run starts, in the library and on the command line.

use std::path::{Path, PathBuf};

use streamdrill::Error;
use streamdrill::report::{GroupSummary, Summary};
use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::scenario::{Overrides, Scenario, load_file};

use crate::support::run_loaded;

/// The shipped scenario, 3 s long, with `extra` overrides.
fn scenario(extra: &[&str]) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/es-trim-safety.toml");
    let mut overrides = vec!["duration=3s".to_string(), "warmup=1s".to_string()];
    overrides.extend(extra.iter().map(|s| s.to_string()));
    let overrides = Overrides::parse(&overrides).unwrap();
    load_file(&path, &overrides).expect("the shipped scenario loads")
}

fn group<'a>(s: &'a Summary, name: &str) -> &'a GroupSummary {
    s.groups.iter().find(|g| g.name == name).unwrap()
}

/// Whole run: (acked, processed, trimmed_unread, lost).
fn outcomes(g: &GroupSummary) -> (u64, u64, u64, u64) {
    (
        g.whole_run_opt(|p| p.produced_acked).unwrap(),
        g.whole_run_opt(|p| p.processed).unwrap(),
        g.whole_run(|p| p.trimmed_unread.expect("a trimmed stream reports it")),
        g.whole_run(|p| p.lost),
    )
}

/// What Redis said of the stream once the run was over: (entries-added, length).
fn stream(s: &Summary) -> (u64, u64) {
    let v = &s.verify.streams[0];
    (v.entries_added, v.length)
}

#[test]
fn without_a_policy_the_slow_group_loses_events_to_trimming_and_only_to_trimming() {
    let (s, dir) = run_loaded(scenario(&[]));
    let (added, length) = stream(&s);
    assert_eq!(added, s.produce.acked + s.warmup.produce_sent);
    assert_eq!(length, 200, "maxlen = 200, exact");

    let fast = group(&s, "fast");
    let (acked, processed, trimmed, lost) = outcomes(fast);
    println!("fast: acked {acked} processed {processed} trimmed_unread {trimmed} lost {lost}");
    assert_eq!((processed, trimmed, lost), (acked, 0, 0));

    let slow = group(&s, "slow");
    let (acked, processed, trimmed, lost) = outcomes(slow);
    let trim = slow
        .trim
        .as_ref()
        .expect("a trimmed stream's group has trim figures");
    println!(
        "slow: acked {acked} processed {processed} trimmed_unread {trimmed} lost {lost}; {trim:?}"
    );
    assert!(trimmed > 0, "the slow group fell behind the trimmed head");
    assert_eq!(lost, 0, "every gone event is put down to trimming");
    assert_eq!(processed + trimmed, acked, "nothing else happened to them");
    // Redis's own count of what was trimmed bounds it: entries-added - XLEN.
    assert_eq!(trim.trimmed_entries, added - length);
    assert!(trimmed <= trim.trimmed_entries);
    assert!(trim.classified, "{trim:?}");
    assert_eq!(trim.min_head_distance, Some(0), "it fell off the end");
    assert!(trim.samples > 0);
    let fast_trim = fast.trim.as_ref().unwrap();
    assert!(
        fast_trim.min_head_distance.is_some_and(|d| d > 0),
        "{fast_trim:?}"
    );

    let html = std::fs::read_to_string(dir.path.join("index.html")).unwrap();
    assert!(
        html.contains("<h2>Event sourcing</h2>"),
        "trimming brings the section"
    );
    assert!(html.contains("trimmed unread"));
    let table = streamdrill::report::render_table(&s);
    assert!(table.contains("trimmed"), "{table}");
}

/// `.servers/redis-8.2.3/redis-server` if scripts/fetch-servers fetched it.
fn redis_8() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".servers/redis-8.2.3/redis-server");
    if path.is_file() {
        return Some(path);
    }
    println!(
        "skipped: {} is absent; run scripts/fetch-servers to fetch it (the ACKED trim policy \
         needs Redis 8.2)",
        path.display()
    );
    None
}

#[test]
fn with_the_acked_policy_on_redis_8_2_the_slow_group_loses_nothing() {
    let Some(binary) = redis_8() else {
        return;
    };
    let server = format!("redis.server={:?}", binary.to_str().unwrap());
    let (s, _dir) = run_loaded(scenario(&["streams.0.trim_policy=\"acked\"", &server]));
    assert_eq!(s.redis.version, "8.2.3");
    let (added, length) = stream(&s);
    for name in ["fast", "slow"] {
        let g = group(&s, name);
        let (acked, processed, trimmed, lost) = outcomes(g);
        let trim = g.trim.as_ref().unwrap();
        println!(
            "{name}: acked {acked} processed {processed} trimmed_unread {trimmed} lost {lost}; {trim:?}"
        );
        assert_eq!((processed, trimmed, lost), (acked, 0, 0), "{name}");
        assert_eq!(trim.policy.as_deref(), Some("acked"));
        assert!(!trim.classified, "nothing unread is trimmed under ACKED");
    }
    // Trimming still ran, behind the slow group: the stream kept what it
    // had not acknowledged and grew past maxlen.
    assert!(added - length > 0, "acknowledged entries were trimmed");
    assert!(
        length > 200,
        "XLEN {length}: unacknowledged entries were kept"
    );
}

#[test]
fn redis_7_0_refuses_the_acked_policy_before_the_run_starts() {
    let out = tempfile::tempdir().unwrap();
    let options = RunOptions::new(out.path()).workers(1);
    let err = match run_scenario(scenario(&["streams.0.trim_policy=\"acked\""]), options) {
        Ok(_) => panic!("Redis 7.0 cannot trim by ACKED"),
        Err(e) => e,
    };
    assert!(matches!(err, Error::ServerLacks { .. }), "{err:?}");
    let text = err.to_string();
    for needle in [
        "scenario `es-trim-safety`'s `streams[0].trim_policy = \"acked\"`",
        "KEEPREF | DELREF | ACKED",
        "--server .servers/redis-8.2.3/redis-server",
        "remove `trim_policy`",
    ] {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
    // The run directory may exist; no run means no summary in it.
    for dir in std::fs::read_dir(out.path()).unwrap() {
        let summary = dir.unwrap().path().join("summary.json");
        assert!(!summary.exists(), "{} was written", summary.display());
    }
}

/// As a user types it: the one-line override on the default Redis 7.0
/// exits 2 naming the file, the field and the fix, and nothing panics.
#[test]
fn the_cli_names_the_file_when_redis_7_0_refuses_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_streamdrill"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "scenarios/es-trim-safety.toml",
            "--quiet",
            "--duration",
            "2s",
        ])
        .args(["--set", "streams.0.trim_policy=acked", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for needle in [
        "scenarios/es-trim-safety.toml: scenario `es-trim-safety`'s `streams[0].trim_policy",
        "--server .servers/redis-8.2.3/redis-server",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// What redis-cli would say once the slow group has drained: XINFO GROUPS's
/// `entries-read` and `lag` for `slow`, and XINFO STREAM's `entries-added`
/// and `length`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seen {
    entries_read: u64,
    lag: u64,
    entries_added: u64,
    length: u64,
}

/// One look at the run's stream on `conn`, if the slow group has caught up
/// with every entry written (its figures cannot change any more).
fn look(conn: &mut redis::Connection, total: u64) -> Option<Seen> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("sd:es-trim-safety-*:orders")
        .query(conn)
        .ok()?;
    let key = keys.first()?;
    let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query(conn)
        .ok()?;
    let stream: std::collections::HashMap<String, redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(key)
        .query(conn)
        .ok()?;
    let number = |m: &std::collections::HashMap<String, redis::Value>, f: &str| {
        redis::from_redis_value::<u64>(m.get(f)?.clone()).ok()
    };
    let text = |m: &std::collections::HashMap<String, redis::Value>, f: &str| {
        redis::from_redis_value::<String>(m.get(f)?.clone()).ok()
    };
    let slow = groups
        .iter()
        .find(|g| text(g, "name").as_deref() == Some("slow"))?;
    let caught_up = number(slow, "pending") == Some(0)
        && text(slow, "last-delivered-id") == text(&stream, "last-generated-id")
        && number(&stream, "entries-added") == Some(total);
    caught_up.then(|| Seen {
        entries_read: number(slow, "entries-read").unwrap_or(0),
        lag: number(slow, "lag").unwrap_or(0),
        entries_added: number(&stream, "entries-added").unwrap_or(0),
        length: number(&stream, "length").unwrap_or(0),
    })
}

/// The ledger's split checked against Redis's own view: run against a
/// server of the test's, watched with XINFO until the run deletes its keys.
/// Redis counts in `entries-read` only the entries it delivered, so once
/// `slow` has drained, its `lag` is the entries trimmed before it read them.
#[test]
fn the_slow_groups_trimmed_unread_is_what_redis_says_it_never_read() {
    let server = crate::support::server();
    let mut scenario = scenario(&[
        "redis.mode=external",
        &format!("redis.url={:?}", server.url()),
    ]);
    scenario.duration = streamdrill::scenario::Dur::from_secs(3);
    let total = 3 * 400;
    let run = std::thread::spawn(move || run_loaded(scenario));
    let mut conn = crate::support::client(&server);
    let (mut seen, mut looks) = (None, 0);
    while !run.is_finished() {
        // Until the run deletes its keys: the last look after the drain.
        if let Some(now) = look(&mut conn, total) {
            (seen, looks) = (Some(now), looks + 1);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let (s, _dir) = run.join().expect("the run");
    let seen = seen.expect("XINFO saw the slow group drained before the keys went");
    let slow = group(&s, "slow");
    let (acked, processed, trimmed, lost) = outcomes(slow);
    println!(
        "redis ({looks} looks after the drain): {seen:?}; ledger: acked {acked} processed {processed} trimmed_unread {trimmed} lost {lost}"
    );
    assert_eq!(seen.entries_added, acked);
    assert_eq!(
        seen.entries_read, processed,
        "one delivery per processed event"
    );
    assert_eq!(
        seen.lag, trimmed,
        "the entries Redis never delivered to slow"
    );
    assert_eq!(
        slow.trim.as_ref().unwrap().trimmed_entries,
        seen.entries_added - seen.length
    );
    assert_eq!(lost, 0);
}
