//! Network drills through the fault proxy against real redis-server processes:
//! added latency shows in the measured XADD service time, and a blackhole
//! turns writes into errors or indeterminate writes, never into silent loss.

use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::scenario::{Overrides, load_str};

use crate::support::run_summary as run;

const LOAD: &str = r#"
name = "network"
duration = "1500ms"
warmup = "500ms"
[[producers]]
stream = "s"
rate = 200
[[groups]]
stream = "s"
name = "g"
"#;

/// The latency fault covers the whole run, so the measured phase is all
/// inside it; the baseline is the same run without any fault (and no proxy).
#[test]
fn added_latency_raises_the_xadd_service_time() {
    let latency = r#"
[[faults]]
action = "network_latency"
at = "0s"
duration = "1500ms"
delay = "20ms"
"#;
    let baseline = run(LOAD);
    let slow = run(&format!("{LOAD}{latency}"));
    let (before_us, during_us) = (
        baseline.produce.service_time_us.p50,
        slow.produce.service_time_us.p50,
    );
    eprintln!("XADD service time p50: {before_us} us without, {during_us} us with 20 ms latency");
    assert!(
        during_us >= before_us + 20_000,
        "p50 {before_us} us -> {during_us} us"
    );
    assert!(during_us < before_us + 60_000, "p50 {during_us} us");
    assert_eq!(slow.faults.len(), 1);
    assert_eq!(slow.faults[0].name, "network_latency 20ms");
    assert_eq!(slow.produce.errors, 0, "slower is not failed");
    let g = &slow.groups[0];
    assert_eq!(
        (
            g.whole_run(|p| p.lost),
            g.whole_run(|p| p.unread),
            g.whole_run(|p| p.stranded)
        ),
        (0, 0, 0),
        "{g:?}"
    );
    assert!(g.drained);
}

/// 2.5 s of blackhole outlasts the drill's 2 s response timeout: the first
/// XADDs sent into it time out (indeterminate), the rest are answered late
/// when it heals, and the held ones land in the stream after all.
#[test]
fn a_blackhole_yields_indeterminate_writes_never_silent_loss() {
    let s = run(r#"
name = "blackhole"
duration = "4s"
warmup = "500ms"
drain_timeout = "10s"
[[producers]]
stream = "s"
rate = 200
[[groups]]
stream = "s"
name = "g"
consumers = 2
reclaim = { min_idle = "1s", every = "200ms" }
[[faults]]
action = "network_blackhole"
at = "1s"
duration = "2500ms"
"#);
    let errors = s.produce.errors + s.warmup.produce_errors;
    let d = s
        .durability
        .as_ref()
        .expect("streams read back after a blackhole");
    eprintln!("blackhole: {errors} produce errors, {d:?}");
    assert!(errors > 0, "XADDs timed out in the blackhole");
    assert!(d.indeterminate > 0, "{d:?}");
    assert_eq!(d.acked_but_gone, 0, "{d:?}");
    // Redis's own count is what was acknowledged plus the held writes that landed.
    let added: u64 = s.verify.streams.iter().map(|st| st.entries_added).sum();
    assert_eq!(added, d.acked + d.indeterminate_landed, "{:?}", s.verify);
    let g = &s.groups[0];
    assert_eq!(
        (
            g.whole_run(|p| p.lost),
            g.whole_run(|p| p.unread),
            g.whole_run(|p| p.stranded)
        ),
        (0, 0, 0),
        "{g:?}"
    );
    assert_eq!(g.unexpected, 0);
    assert_eq!(
        g.whole_run(|p| p.unacked_landed),
        d.indeterminate_landed,
        "every landed write was processed, and only those"
    );
    assert!(g.drained);
    assert_eq!(s.faults[0].name, "network_blackhole");
    let window_s = s.faults[0].end_s - s.faults[0].start_s;
    assert!((window_s - 2.5).abs() < 0.2, "{:?}", s.faults[0]);
}

/// A reset breaks every connection once: writes in flight are indeterminate,
/// the connections come back by themselves, and nothing is lost.
#[test]
fn a_reset_breaks_connections_that_then_recover() {
    let s = run(&format!(
        "{}{}",
        LOAD.replace("1500ms", "2s"),
        "[[faults]]\naction = \"network_reset\"\nat = \"1s\"\n"
    ));
    let g = &s.groups[0];
    eprintln!(
        "reset: produce errors {}, consumer errors {}",
        s.produce.errors,
        g.whole_run(|p| p.errors)
    );
    assert!(
        g.whole_run(|p| p.errors) > 0,
        "the consumer's blocking read was reset"
    );
    assert_eq!(
        (
            g.whole_run(|p| p.lost),
            g.whole_run(|p| p.unread),
            g.whole_run(|p| p.stranded)
        ),
        (0, 0, 0),
        "{g:?}"
    );
    assert!(g.drained);
    let d = s.durability.as_ref().expect("read back");
    assert_eq!(d.acked_but_gone, 0, "{d:?}");
    // 100 measured events were intended before the reset (0.5 s at 200/s);
    // at least 50 of the 200 after it acknowledged means writing went on.
    // Not more: a loaded machine stalls and leaves more in flight at the reset.
    assert!(
        s.produce.acked > 150,
        "producers kept writing after the reset: {:?}",
        s.produce
    );
    assert_eq!(s.faults[0].name, "network_reset");
}

/// The proxy sits on the harness side, so network faults work against an
/// external Redis too; a proxied URL keeps the database number.
#[test]
fn network_faults_work_against_an_external_redis() {
    let redis = crate::support::server();
    let external = format!(
        "[redis]\nmode = \"external\"\nurl = \"{}/3\"\n",
        redis.url()
    );
    let s = run(&format!(
        "{LOAD}{external}{}",
        "[[faults]]\naction = \"network_latency\"\nat = \"0s\"\nduration = \"1500ms\"\ndelay = \"20ms\"\n"
    ));
    assert!(s.produce.service_time_us.p50 >= 20_000, "{:?}", s.produce);
    assert_eq!(s.groups[0].whole_run(|p| p.lost), 0);
    assert!(s.verify.consistent, "{:?}", s.verify);
    // Cleanup deletes in db 3: had the proxied connections lost the database
    // number, the streams would be left behind in db 0.
    for db in [0, 3] {
        let mut conn = redis::Client::open(format!("{}/{db}", redis.url()))
            .and_then(|c| c.get_connection())
            .expect("connect");
        let size: u64 = redis::cmd("DBSIZE").query(&mut conn).expect("DBSIZE");
        assert_eq!(size, 0, "keys left in db {db}");
    }
}

#[test]
fn an_unreachable_redis_is_named_not_the_proxy() {
    let toml = format!(
        "{LOAD}[redis]\nmode = \"external\"\nurl = \"redis://127.0.0.1:1\"\n\
         [[faults]]\naction = \"network_reset\"\nat = \"1s\"\n"
    );
    let scenario = load_str(&toml, "t.toml", &Overrides::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let options = RunOptions::new(out.path()).workers(1);
    let err = run_scenario(scenario, options)
        .err()
        .expect("no server on port 1");
    let text = err.to_string();
    assert!(text.contains("reach Redis at 127.0.0.1:1"), "{text}");
}
