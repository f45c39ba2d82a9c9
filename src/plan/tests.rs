//! The plan's unit tests: keys, seeds, targets and timeouts.

use super::*;
use crate::scenario::{Overrides, load_str};

fn plan(faults: &str) -> Plan {
    let toml = format!(
        "name = \"n\"\nduration = \"10s\"\n[[producers]]\nstream = \"s\"\nrate = 10\n{faults}"
    );
    let scenario = load_str(&toml, "n.toml", &Overrides::default()).unwrap();
    Plan::new(scenario, "run".into())
}

#[test]
fn network_faults_shorten_the_response_timeout_and_read_back() {
    let quiet = plan("");
    assert!(!quiet.has_network_faults() && !quiet.reads_back());
    assert_eq!(quiet.response_timeout(), RESPONSE_TIMEOUT);
    let latency = plan(
        "[[faults]]\naction = \"network_latency\"\nat = \"1s\"\nduration = \"2s\"\n\
         delay = \"300ms\"\njitter = \"50ms\"\n",
    );
    assert!(latency.has_network_faults() && latency.reads_back());
    assert_eq!(latency.faults[0].label, "network_latency 300ms ±50ms");
    assert_eq!(
        latency.response_timeout(),
        NETWORK_DRILL_RESPONSE_TIMEOUT + Duration::from_millis(350)
    );
    let reset = plan("[[faults]]\naction = \"network_reset\"\nat = \"1s\"\n");
    let clients = FaultTarget::Network {
        link: crate::scenario::Link::Clients,
        shard: None,
    };
    assert_eq!(reset.faults[0].target, clients);
    assert_eq!(reset.response_timeout(), NETWORK_DRILL_RESPONSE_TIMEOUT);
}

/// A run stopped early is judged against the target of what it ran:
/// half a 0 -> 1000/s ramp asked for 250/s, not the whole ramp's 500/s.
#[test]
fn a_partitioned_stream_is_its_keys_in_order() {
    let toml = "name = \"n\"\nduration = \"10s\"\n[[streams]]\nkey = \"s\"\npartitions = 3\n\
                [[producers]]\nstream = \"s\"\nrate = 10\n[[producers]]\nstream = \"t\"\n\
                rate = 10\n[[groups]]\nname = \"g\"\nstream = \"s\"\nconsumers = 3\n";
    let scenario = load_str(toml, "n.toml", &Overrides::default()).unwrap();
    let plan = Plan::new(scenario, "run".into());
    let keys: Vec<&str> = plan.streams.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        ["sd:run:s:p0", "sd:run:s:p1", "sd:run:s:p2", "sd:run:t"]
    );
    assert_eq!((plan.producers[0].stream, plan.groups[0].stream), (0, 0));
    assert_eq!(plan.partitions(0).len(), 3);
    assert_eq!(
        plan.partitions(0)[2].partition,
        Some(Partition { index: 2, count: 3 })
    );
    assert_eq!(plan.partitions(plan.producers[1].stream)[0].key, "sd:run:t");
    assert_eq!(plan.groups[0].dead_letter_key, "sd:run:s:dlq");
}

#[test]
fn the_target_covers_the_window_measured() {
    let toml = "name = \"n\"\nduration = \"10s\"\n[[producers]]\nstream = \"s\"\n\
                start_rate = 0\nstages = [{ duration = \"10s\", rate = 1000 }]\n";
    let scenario = load_str(toml, "n.toml", &Overrides::default()).unwrap();
    let ramp = Plan::new(scenario, "run".into());
    assert!((ramp.target_rate_per_s() - 500.0).abs() < 1e-6);
    assert!((ramp.target_rate_until(5.0) - 250.0).abs() < 1e-6);
    assert!(
        (ramp.target_rate_until(99.0) - 500.0).abs() < 1e-6,
        "capped at the schedule"
    );
}

/// The seeds every actor draws from, pinned: a scenario and seed must
/// replay the same events in every version.
#[test]
fn derived_seeds_stay_as_they_were() {
    let pinned = [
        (
            derive_seed(42, SeedKind::Producer, 0, 3),
            0x2260_0b92_7135_a081,
        ),
        (
            derive_seed(42, SeedKind::Group, 1, 0),
            0x8526_f2eb_9b90_c275,
        ),
        (
            derive_seed(42, SeedKind::Consumer, 2, 0),
            0xec42_bcc1_5959_2497,
        ),
        (
            derive_seed(42, SeedKind::Poison, 7, 1000),
            0x76c2_11e9_04b2_74be,
        ),
        (
            derive_seed(42, SeedKind::ReplicationLink, 0, 0),
            0x53ad_348a_f3dd_af4b,
        ),
    ];
    for (i, (derived, was)) in pinned.into_iter().enumerate() {
        assert_eq!(derived, was, "case {i}");
    }
    let toml = "name = \"n\"\nduration = \"10s\"\nseed = 42\n[[producers]]\nstream = \"s\"\n\
                rate = 10\ncount = 2\n[[groups]]\nstream = \"s\"\nname = \"g\"\n";
    let scenario = load_str(toml, "n.toml", &Overrides::default()).unwrap();
    let seeded = Plan::new(scenario, "run".into());
    assert_eq!(seeded.producers[1].seed, 0x4333_bd5d_d9fd_b573);
    assert_eq!(seeded.groups[0].seed, 0xd963_9a00_6c85_adb0);
    let poison = Poison {
        fraction: 0.5,
        seed: 42,
    };
    let poisoned: Vec<u64> = (0..12).filter(|&seq| poison.is_poison(3, seq)).collect();
    assert_eq!(poisoned, [0, 3, 5, 6, 8, 9, 11]);
}

#[test]
fn a_slowdown_names_its_consumer_and_factor() {
    let slow = plan(
        "[[groups]]\nstream = \"s\"\nname = \"g\"\nconsumers = 2\nprocessing = \"1ms\"\n\
         [[faults]]\naction = \"slow_consumer\"\nat = \"1s\"\nconsumer = \"g/1\"\n\
         duration = \"2s\"\nfactor = 2.5\n",
    );
    assert_eq!(slow.faults[0].label, "slow_consumer g/1 x2.5");
    let kind = crate::scenario::FaultKind::SlowConsumer {
        consumer: "g/1".into(),
        duration: crate::scenario::Dur::from_secs(2),
        factor: 2.5,
    };
    assert_eq!(slow.faults[0].kind, kind);
    let target = FaultTarget::Consumer { group: 0, index: 1 };
    assert_eq!(slow.faults[0].target, target);
    assert!(!slow.reads_back(), "a slowdown cuts no write off");
}

/// The segments of a run together run every producer, consumer and fault
/// exactly once, whatever N.
#[test]
fn segments_together_are_the_whole_plan() {
    let toml = "name = \"n\"\nduration = \"10s\"\n[[producers]]\nstream = \"s\"\nrate = 10\n\
                count = 4\nconnections = 2\n[[producers]]\nstream = \"t\"\nrate = 10\n\
                [[groups]]\nname = \"g\"\nstream = \"s\"\nconsumers = 3\n\
                [[faults]]\naction = \"crash_consumer\"\nat = \"1s\"\nconsumer = \"g/2\"\n\
                [[faults]]\naction = \"crash_producer\"\nat = \"1s\"\nproducer = \"t/0\"\n\
                [[faults]]\naction = \"client_pause\"\nat = \"2s\"\nduration = \"1s\"\n";
    let scenario = load_str(toml, "n.toml", &Overrides::default()).unwrap();
    let whole = Plan::new(scenario, "run".into());
    for count in 1..5 {
        let plans: Vec<Plan> = (0..count)
            .map(|index| whole.clone().in_segment(Segment { index, count }))
            .collect();
        let mut producers: Vec<u32> = (plans.iter())
            .flat_map(|p| p.producers_run().map(|p| p.id).collect::<Vec<_>>())
            .collect();
        producers.sort_unstable();
        assert_eq!(producers, [0, 1, 2, 3, 4], "N = {count}");
        let consumers: usize = plans
            .iter()
            .map(|p| p.consumers_run(&p.groups[0]).count())
            .sum();
        assert_eq!(consumers, 3, "N = {count}");
        let faults: usize = plans.iter().map(|p| p.faults.len()).sum();
        assert_eq!(faults, 3, "N = {count}");
        // Producers that share a connection share a segment.
        for p in &plans {
            for group in p.producers_by_connection() {
                assert!(group.iter().all(|x| x.connection == group[0].connection));
            }
        }
        let rate: f64 = plans.iter().map(Plan::target_rate_per_s).sum();
        assert!((rate - 20.0).abs() < 1e-9, "N = {count}: {rate}");
    }
}
