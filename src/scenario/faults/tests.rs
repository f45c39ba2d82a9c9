//! Validation of fault timelines through `load_str`, as a user meets it:
//! every rule's field and text, and the flat `[[faults]]` table read and
//! written back.

use super::*;
use crate::scenario::{Dur, Overrides, ProducerRef, Scenario, load_str};

const BASE: &str = r#"
name = "drill"
duration = "10s"
[[producers]]
stream = "s"
rate = 100
[[groups]]
stream = "s"
name = "billing"
consumers = 2
reclaim = { min_idle = "1s", every = "200ms" }
[[faults]]
action = "crash_consumer"
at = "2s"
consumer = "billing/1"
restart_after = "3s"
"#;

fn error(edit: &str) -> String {
    let o = Overrides::parse(&[edit.to_string()]).unwrap();
    load_str(BASE, "drill.toml", &o).unwrap_err().to_string()
}

#[test]
fn a_valid_drill_loads() {
    let s = load_str(BASE, "drill.toml", &Overrides::default()).unwrap();
    assert_eq!(resolve_consumer(&s, "billing/1"), Ok((0, 1)));
}

#[test]
fn faults_must_name_real_consumers_within_the_run() {
    assert!(error("faults.0.consumer=billing/2").contains("consumers 0 to 1"));
    assert!(error("faults.0.consumer=shipping/0").contains("groups: billing"));
    assert!(error("faults.0.consumer=billing").contains("\"<group>/<index>\""));
    assert!(error("faults.0.at=10s").contains("faults[0].at"));
    assert!(error("groups.0.reclaim.min_idle=0s").contains("reclaim.min_idle"));
    assert!(error("faults.0.action=explode").contains("crash_consumer"));
    let kill = Overrides::parse(&[
        "faults=[{action=\"kill_redis\", at=\"2s\"}]".to_string(),
        "redis.mode=external".into(),
        "redis.url=redis://h:1".into(),
    ])
    .unwrap();
    let e = load_str(BASE, "drill.toml", &kill).unwrap_err().to_string();
    assert!(e.contains("managed Redis"), "{e}");
}

fn with_faults(faults: &str, extra: &[&str]) -> Result<Scenario, String> {
    let mut edits = vec![format!("faults=[{faults}]")];
    edits.extend(extra.iter().map(|e| e.to_string()));
    let o = Overrides::parse(&edits).unwrap();
    load_str(BASE, "drill.toml", &o).map_err(|e| e.to_string())
}

#[test]
fn network_faults_load_and_check_their_window() {
    let latency = r#"{action="network_latency", at="1s", duration="2s", delay="20ms"}"#;
    let s = with_faults(latency, &[]).unwrap();
    let spec = s.faults[0].kind.spec();
    assert_eq!(
        spec.target,
        Target::Network {
            link: Link::Clients,
            shard: None
        }
    );
    assert_eq!(spec.lasts, Lasts::within_run(Dur::from_secs(2)));
    let ok = [
        r#"{action="network_blackhole", at="1s", duration="9s"}"#,
        r#"{action="network_bandwidth", at="1s", duration="1s", bytes_per_s="1MiB"}"#,
        r#"{action="network_reset", at="9s"}"#,
    ];
    for f in ok {
        with_faults(f, &[]).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    // Against an external TCP Redis too: the proxy is on the harness side.
    let external = ["redis.mode=external", "redis.url=redis://h:1"];
    with_faults(latency, &external).unwrap();
    let bad = [
        (
            r#"{action="network_blackhole", at="8s", duration="3s"}"#,
            "ends after the run",
        ),
        (
            r#"{action="network_blackhole", at="1s", duration="0s"}"#,
            "more than 0s",
        ),
        (
            r#"{action="network_latency", at="1s", duration="1s", delay="0s"}"#,
            ".delay",
        ),
        (
            r#"{action="network_bandwidth", at="1s", duration="1s", bytes_per_s=0}"#,
            "bytes_per_s",
        ),
        (r#"{action="network_reset", at="10s"}"#, "faults[0].at"),
        (
            r#"{action="network_reset", at="1s", duration="1s"}"#,
            "duration",
        ),
    ];
    for (f, want) in bad {
        let e = with_faults(f, &[]).expect_err(f);
        assert!(e.contains(want), "{f}: {e}");
    }
    let two = format!("{latency}, {}", latency.replace("at=\"1s\"", "at=\"2s\""));
    assert!(
        with_faults(&two, &[])
            .unwrap_err()
            .contains("overlaps faults[0]")
    );
    let after = latency.replace("at=\"1s\"", "at=\"3s\"");
    with_faults(&format!("{latency}, {after}"), &[]).unwrap();
}

#[test]
fn slow_consumer_checks_target_factor_and_window() {
    let slow = |fields: &str| {
        format!(r#"{{action="slow_consumer", at="2s", consumer="billing/1", {fields}}}"#)
    };
    let ms = ["groups.0.processing=1ms"];
    for ok in [
        r#"duration="8s", factor=1000"#,
        r#"duration="1s", factor=1.5"#,
    ] {
        with_faults(&slow(ok), &ms).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let factor = "more than 1 and at most 1000, e.g. factor = 5";
    let bad = [
        (r#"duration="1s", factor=1"#, "`faults[0].factor`: 1 cannot"),
        (r#"duration="1s", factor=0.5"#, factor),
        (r#"duration="1s", factor=-3"#, factor),
        (r#"duration="1s", factor=1000.5"#, factor),
        (r#"duration="1s", factor=nan"#, "NaN cannot be used"),
        (r#"duration="1s", factor=inf"#, "inf cannot be used"),
        // Type errors and missing or unknown fields name the fault's table
        // (serde's tagged enums lose the span), so the text names the field.
        (r#"duration="1s", factor="5x""#, "a number for `factor`"),
        (r#"duration="1s""#, "missing field `factor`"),
        (r#"factor=5"#, "missing field `duration`"),
        (
            r#"duration="1s", factor=5, restart_after="1s""#,
            "unknown field",
        ),
        (
            r#"duration="0s", factor=5"#,
            "`faults[0].duration`: must be more",
        ),
        (
            r#"duration="9s", factor=5"#,
            "2s + 9s ends after the run (10s)",
        ),
    ];
    for (fields, want) in bad {
        let e = with_faults(&slow(fields), &ms).expect_err(fields);
        assert!(e.contains(want), "{fields}: {e}");
    }
    // One consumer, named as for crash and stall (not a whole group), of
    // a group with a processing time for the factor to multiply.
    let ok = slow(r#"duration="1s", factor=5"#);
    for (consumer, want) in [
        ("billing", "\"<group>/<index>\""),
        ("billing/2", "consumers 0 to 1"),
        ("billing/1", "give it one, e.g. processing = \"1ms\""),
    ] {
        let e = with_faults(&ok.replace("billing/1", consumer), &[]).unwrap_err();
        assert!(
            e.contains("`faults[0].consumer`") && e.contains(want),
            "{e}"
        );
    }
    // In a file, the error points at the line.
    let file = BASE
        .replace("\"crash_consumer\"", "\"slow_consumer\"")
        .replace("restart_after = \"3s\"", "duration = \"1s\"\nfactor = 0.5");
    let o = Overrides::parse(&ms.map(String::from)).unwrap();
    let e = load_str(&file, "drill.toml", &o).unwrap_err().to_string();
    assert!(e.starts_with("drill.toml:17: `faults[0].factor`"), "{e}");
    // Two slowdowns of one consumer at once are refused; apart, or of
    // two consumers, they are fine.
    let window = |at: &str, c: &str| {
        format!(r#"{{action="slow_consumer", at="{at}", consumer="{c}", duration="2s", factor=5}}"#)
    };
    let two = |at, consumer| format!("{}, {}", window("1s", "billing/0"), window(at, consumer));
    let e = with_faults(&two("2s", "billing/0"), &ms).unwrap_err();
    assert!(e.contains("`faults[1].at`: overlaps faults[0]"), "{e}");
    for (at, consumer) in [("3s", "billing/0"), ("2s", "billing/1")] {
        let faults = two(at, consumer);
        with_faults(&faults, &ms).unwrap_or_else(|e| panic!("{faults}: {e}"));
    }
}

#[test]
fn producers_are_named_by_label_or_index() {
    let o = Overrides::parse(&[
        "producers=[{stream=\"s\", rate=10, count=2}, {stream=\"t\", name=\"api\", rate=5}]"
            .to_string(),
    ])
    .unwrap();
    let s = load_str(BASE, "drill.toml", &o).unwrap();
    let name = |n: &str| resolve_producer(&s, &ProducerRef::Name(n.into()));
    assert_eq!(name("s/1"), Ok(1));
    assert_eq!(name("api/0"), Ok(2));
    assert_eq!(resolve_producer(&s, &ProducerRef::Index(2)), Ok(2));
    assert!(name("t/0").unwrap_err().contains("s/0..2, api/0..1"));
    assert!(name("s/2").is_err());
    let e = resolve_producer(&s, &ProducerRef::Index(3)).unwrap_err();
    assert!(e.contains("0 to 2"), "{e}");
}

#[test]
fn network_faults_need_a_tcp_redis() {
    let reset = r#"{action="network_reset", at="1s"}"#;
    let unix = ["redis.mode=external", "redis.url=unix:///tmp/redis.sock"];
    let e = with_faults(reset, &unix).unwrap_err();
    assert!(e.contains("plain TCP url"), "{e}");
    let tls = [
        "redis.mode=external",
        "redis.url=\"rediss://db.example:6380\"",
    ];
    let e = with_faults(reset, &tls).unwrap_err();
    assert!(e.contains("managed TLS server (tls = true)"), "{e}");
}

#[test]
fn server_faults_check_redis_mode_and_window() {
    let external = ["redis.mode=external", "redis.url=redis://h:1"];
    let managed_only = [
        r#"{action="freeze_redis", at="1s", duration="1s"}"#,
        r#"{action="restart_redis", at="1s"}"#,
        r#"{action="debug_sleep", at="1s", duration="1s"}"#,
    ];
    for f in managed_only {
        with_faults(f, &[]).unwrap_or_else(|e| panic!("{f}: {e}"));
        let e = with_faults(f, &external).expect_err(f);
        let name = f.split('"').nth(1).unwrap();
        assert!(e.contains(&format!("{name} needs a managed Redis")), "{e}");
    }
    for f in [
        r#"{action="client_kill", at="1s"}"#,
        r#"{action="client_pause", at="1s", duration="1s"}"#,
    ] {
        with_faults(f, &external).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    let bad = [
        (
            r#"{action="client_pause", at="9s", duration="2s"}"#,
            "ends after the run",
        ),
        (
            r#"{action="freeze_redis", at="1s", duration="0s"}"#,
            "more than 0s",
        ),
        (r#"{action="debug_sleep", at="1s"}"#, "duration"),
    ];
    for (f, want) in bad {
        let e = with_faults(f, &[]).expect_err(f);
        assert!(e.contains(want), "{f}: {e}");
    }
    let trimmed = ["streams=[{key=\"s\", maxlen=10}]"];
    let e = with_faults(r#"{action="restart_redis", at="1s"}"#, &trimmed).unwrap_err();
    assert!(e.contains("restart_redis reads the streams back"), "{e}");
}

#[test]
fn a_fault_is_at_and_its_kind_written_flat_and_read_back() {
    let s = load_str(BASE, "drill.toml", &Overrides::default()).unwrap();
    let crash = Fault {
        at: Dur::from_secs(2),
        kind: FaultKind::CrashConsumer {
            consumer: "billing/1".into(),
            restart_after: Some(Dur::from_secs(3)),
        },
    };
    assert_eq!(s.faults, [crash]);
    // TOML, as `--set` and the scenario file write it, and JSON, as
    // summary.json keeps it: flat, and read back the same.
    let toml_text = toml::to_string(&s).unwrap();
    assert!(
        toml_text.contains("[[faults]]\naction = \"crash_consumer\"\nconsumer = \"billing/1\"\n"),
        "{toml_text}"
    );
    assert_eq!(
        load_str(&toml_text, "again.toml", &Overrides::default()).unwrap(),
        s
    );
    let json = serde_json::to_value(&s.faults[0]).unwrap();
    assert_eq!(json["action"], "crash_consumer");
    assert_eq!(json["at"], "2s");
    assert_eq!(serde_json::from_value::<Fault>(json).unwrap(), s.faults[0]);
    // Older summary.json files wrote an absent option as null.
    let old = r#"{"action": "crash_producer", "at": "1s", "producer": 0, "restart_after": null}"#;
    let fault: Fault = serde_json::from_str(old).unwrap();
    let no_restart = FaultKind::CrashProducer {
        producer: ProducerRef::Index(0),
        restart_after: None,
    };
    assert_eq!(fault.kind, no_restart);
}

#[test]
fn a_fault_table_reports_its_own_mistakes() {
    // BASE's fault: `[[faults]]` on line 12 (where a missing field points), `at` on 14.
    let cases = [
        // `at` is read on its own: its errors point at its line.
        (
            "at = \"2s\"",
            "at = \"5 parsecs\"",
            ":14: `faults[0].at`: expected a duration",
        ),
        (
            "at = \"2s\"\n",
            "",
            ":12: `faults[0].at`: missing field `at`",
        ),
        (
            "\"crash_consumer\"",
            "\"client_kill\"",
            "unknown field `consumer`",
        ),
        (
            "\"crash_consumer\"",
            "\"stall_consumer\"",
            "unknown field `restart_after`",
        ),
        (
            "consumer = \"billing/1\"\n",
            "",
            // The kind's fields are read as one table: its line and name.
            ":12: `faults[0]`: missing field `consumer`",
        ),
    ];
    for (from, to, want) in cases {
        let text = BASE.replace(from, to);
        let e = load_str(&text, "drill.toml", &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{to}: {e}");
    }
}

#[test]
fn each_kind_says_what_it_targets_and_needs() {
    let kind = |f: &str| with_faults(f, &[]).unwrap().faults[0].kind.clone();
    let kill = kind(r#"{action="kill_redis", at="1s"}"#);
    let spec = kill.spec();
    assert_eq!(spec.target, Target::ServerProcess);
    assert!(spec.managed_redis && spec.read_back == ReadBack::Always);
    assert_eq!(spec.lasts, Lasts::UntilRestart(Some(Dur::from_secs(1))));
    assert_eq!(
        (kill.action(), kill.label()),
        ("kill_redis".into(), "kill_redis".into())
    );
    let crash = kind(r#"{action="crash_consumer", at="1s", consumer="billing/0"}"#);
    assert_eq!(crash.spec().target.name().as_deref(), Some("billing/0"));
    assert_eq!(crash.spec().lasts, Lasts::UntilRestart(None));
    assert_eq!(crash.label(), "crash_consumer billing/0");
    let pause = kind(r#"{action="client_pause", at="1s", duration="500ms"}"#);
    assert_eq!(
        (pause.spec().target, pause.label().as_str()),
        (Target::ServerCommand, "client_pause 500ms")
    );
    assert_eq!(
        pause.spec().target.name(),
        None,
        "server faults have no target name"
    );
}

/// Faults on replication: a failover needs the replica, and the
/// replication link needs it until the failover.
mod replication {
    use super::super::{Link, Target};
    use crate::scenario::{Overrides, load_str};

    /// A managed primary and replica, 1000/s for 10 s, a failover at 8 s.
    const BASE: &str = r#"
    name = "drill"
    duration = "10s"
    [redis]
    replica = true
    [[producers]]
    stream = "s"
    rate = 1000
    [[faults]]
    action = "failover"
    at = "8s"
    "#;

    fn target(s: &crate::scenario::Scenario, i: usize) -> Target<'_> {
        s.faults[i].kind.spec().target
    }

    fn load(extra: &str, edits: &[&str]) -> Result<crate::scenario::Scenario, String> {
        let o = Overrides::parse(&edits.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap();
        load_str(&format!("{BASE}{extra}"), "drill.toml", &o).map_err(|e| e.to_string())
    }

    const BLACKHOLE: &str = "[[faults]]\naction = \"network_blackhole\"\nat = \"5s\"\n\
                             duration = \"4s\"\nlink = \"replication\"\n";

    #[test]
    fn the_replication_link_takes_network_faults_before_the_failover() {
        let s = load(BLACKHOLE, &[]).unwrap();
        assert_eq!(
            target(&s, 1),
            Target::Network {
                link: Link::Replication,
                shard: None
            }
        );
        assert_eq!(
            target(&s, 0),
            Target::ServerProcess,
            "a failover is no network fault"
        );
        // The default is the harness's connections, and it is not written out.
        let clients = load(&BLACKHOLE.replace("link = \"replication\"\n", ""), &[]).unwrap();
        assert_eq!(
            target(&clients, 1),
            Target::Network {
                link: Link::Clients,
                shard: None
            }
        );
        let written = toml::to_string(&clients).unwrap();
        assert!(!written.contains("link"), "{written}");
        // One blackhole per link at a time: both links at once is fine.
        let both = format!("{BLACKHOLE}{}", BLACKHOLE.replace("replication", "clients"));
        load(&both, &[]).unwrap();
        let e = load(&format!("{BLACKHOLE}{BLACKHOLE}"), &[]).unwrap_err();
        assert!(e.contains("faults[2].at") && e.contains("same link"), "{e}");
        for other in [
            "network_latency\"\ndelay = \"5s",
            "network_bandwidth\"\nbytes_per_s = \"1KiB",
        ] {
            let f = BLACKHOLE.replace("network_blackhole", other);
            load(&f, &[]).unwrap_or_else(|e| panic!("{other}: {e}"));
        }
        let reset = "[[faults]]\naction = \"network_reset\"\nat = \"2s\"\nlink = \"replication\"\n";
        load(reset, &[]).unwrap();
        // The plan keeps the harness's connections out of it: no client
        // proxy, no shortened timeouts, and the window says which link.
        let plan = crate::plan::Plan::new(s, "run".into());
        assert!(plan.has_replication_faults() && !plan.has_network_faults());
        assert_eq!(plan.faults[1].label, "network_blackhole (replication)");
        assert_eq!(plan.response_timeout(), crate::plan::RESPONSE_TIMEOUT);
    }

    #[test]
    fn the_replication_link_needs_a_managed_replica_and_a_time_before_the_failover() {
        let e = load(BLACKHOLE, &["redis.replica=false"]).unwrap_err();
        assert!(e.contains("faults[1].link"), "{e}");
        assert!(e.contains("replica = true"), "{e}");
        assert!(e.contains("drill.toml"), "names the file: {e}");
        let late = BLACKHOLE
            .replace("at = \"5s\"", "at = \"8s\"")
            .replace("4s", "1s");
        let e = load(&late, &[]).unwrap_err();
        assert!(
            e.contains("faults[1].at") && e.contains("after the failover at 8s"),
            "{e}"
        );
        let e = load(BLACKHOLE, &["redis.mode=external", "redis.url=redis://h:1"]).unwrap_err();
        assert!(e.contains("faults[1].link") && e.contains("managed"), "{e}");
        let e = load(&BLACKHOLE.replace("\"replication\"", "\"replicas\""), &[]).unwrap_err();
        assert!(e.contains("clients") && e.contains("replication"), "{e}");
    }

    #[test]
    fn server_faults_after_a_failover_are_allowed() {
        for fault in [
            "action = \"client_kill\"\nat = \"9s\"",
            "action = \"client_pause\"\nat = \"9s\"\nduration = \"500ms\"",
            "action = \"kill_redis\"\nat = \"9s\"\nrestart_after = \"100ms\"",
        ] {
            load(&format!("[[faults]]\n{fault}\n"), &[]).unwrap_or_else(|e| panic!("{fault}: {e}"));
        }
    }
}
