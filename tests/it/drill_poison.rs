//! Poison events: a fraction of events always fails processing, is reclaimed
//! until `max_deliveries`, then moved to the dead-letter stream. The ledger
//! must count exactly the poison events as dead-lettered, and none as lost.

use redis::Commands;
use streamdrill::plan::Poison;
use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::scenario::{Overrides, load_str};

use crate::support::{client, server};

const SEED: u64 = 7;
const FRACTION: f64 = 0.05;

/// 1000 events in 1 s; 5% poison in group "billing", claimed after 200 ms
/// idle; a second group on the same stream has no poison at all.
fn scenario(url: &str) -> String {
    format!(
        r#"
name = "poison"
seed = {SEED}
duration = "1s"
drain_timeout = "10s"
[redis]
mode = "external"
url = "{url}"
[[producers]]
stream = "s"
rate = 1000
[[groups]]
stream = "s"
name = "billing"
consumers = 2
batch = 50
reclaim = {{ min_idle = "200ms", every = "100ms" }}
max_deliveries = 2
poison = {{ fraction = {FRACTION} }}
[[groups]]
stream = "s"
name = "audit"
"#
    )
}

#[test]
fn poison_events_end_in_the_dead_letter_stream_not_lost() {
    let redis = server();
    let out = tempfile::tempdir().unwrap();
    let toml = scenario(&redis.url());
    let parsed = load_str(&toml, "poison.toml", &Overrides::default()).expect("valid scenario");
    let options = RunOptions::new(out.path()).workers(1);
    let s = run_scenario(parsed, options).expect("run succeeds").summary;

    // One producer (id 0), every XADD acknowledged: seqs 0..acked.
    assert_eq!(s.produce.errors, 0);
    let acked = s.verify.produce_acked;
    assert_eq!(acked, 1000);
    let poison = Poison {
        fraction: FRACTION,
        seed: SEED,
    };
    let expected = (0..acked).filter(|&seq| poison.is_poison(0, seq)).count() as u64;
    assert!(expected > 20, "enough poison to test with: {expected}");

    let billing = &s.groups[0];
    assert_eq!(billing.measured.dead_lettered, expected, "{billing:?}");
    assert_eq!(
        (
            billing.measured.lost,
            billing.measured.stranded,
            billing.measured.unread
        ),
        (0, 0, 0)
    );
    assert_eq!(
        billing.measured.processings,
        acked - expected + billing.measured.duplicates
    );
    assert!(
        billing.measured.redelivered >= expected,
        "poison is redelivered first"
    );
    assert!(billing.drained && billing.pending_at_end == Some(0));

    let audit = &s.groups[1];
    assert_eq!(
        (
            audit.measured.processings,
            audit.measured.dead_lettered,
            audit.measured.lost
        ),
        (acked, 0, 0)
    );

    // XLEN of the dead-letter stream, read from Redis at the end of the run.
    assert_eq!(s.verify.dead_letter.len(), 1);
    let dlq = &s.verify.dead_letter[0];
    assert!(dlq.key.ends_with(":s:dlq"), "{}", dlq.key);
    assert_eq!(dlq.length, expected);
    // An external run cleans up after itself, dead letters included.
    let mut conn = client(&redis);
    let left: Vec<String> = conn.keys("sd:*").unwrap();
    assert!(left.is_empty(), "keys left behind: {left:?}");
}
