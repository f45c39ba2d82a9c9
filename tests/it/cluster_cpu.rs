//! Per-shard Redis CPU and the hot shard
//! (docs/cluster.md, "Per-shard Redis CPU"): a cluster run reports each
//! primary's CPU beside the sum, and Zipf aggregate popularity puts more
//! of the entries on one shard than uniform popularity does, over the
//! very same placement of keys.

use streamdrill::report::Summary;
use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::server::cluster::slot_ranges;
use streamdrill::slot::key_slot;

use crate::support::assert_ledger_adds_up;

const SHARDS: u16 = 3;
const PARTITIONS: u32 = 6;

fn scenario(popularity: &str) -> String {
    format!(
        r#"
name = "cluster-cpu"
duration = "3s"
warmup = "1s"
drain_timeout = "5s"
[redis]
cluster = {{ shards = {SHARDS} }}
[[streams]]
key = "orders"
partitions = {PARTITIONS}
[[producers]]
stream = "orders"
rate = 1500
aggregates = {{ count = 1000, {popularity} }}
[[groups]]
stream = "orders"
name = "billing"
consumers = {PARTITIONS}
block = "50ms"
"#
    )
}

/// A run id whose partition keys fall two on each shard, so uniform
/// popularity spreads the entries evenly and only Zipf makes a hot shard.
fn balanced_run_id() -> String {
    let ranges = slot_ranges(SHARDS);
    (0..)
        .map(|i| format!("cpu{i}"))
        .find(|id| {
            let mut per = vec![0; ranges.len()];
            for p in 0..PARTITIONS {
                let slot = key_slot(format!("sd:{id}:orders:p{p}").as_bytes());
                per[ranges
                    .iter()
                    .position(|r| (r.0..=r.1).contains(&slot))
                    .unwrap()] += 1;
            }
            per.iter().all(|n| *n == 2)
        })
        .unwrap()
}

fn run(popularity: &str, run_id: &str) -> (Summary, tempfile::TempDir) {
    let toml = scenario(popularity);
    let s = streamdrill::scenario::load_str(&toml, "test.toml", &Default::default())
        .unwrap_or_else(|e| panic!("invalid scenario: {e}"));
    let out = tempfile::tempdir().unwrap();
    let options = RunOptions::new(out.path())
        .workers(1)
        .named(format!("run-{run_id}"), run_id);
    let report = run_scenario(s, options).unwrap_or_else(|e| panic!("run failed: {e}"));
    assert_ledger_adds_up(&report.summary);
    (report.summary, out)
}

/// The hottest shard's share of what Redis counted (XINFO entries-added).
fn hottest_share(s: &Summary) -> f64 {
    let c = s.cluster.as_ref().expect("a cluster run");
    let per = c.entries_per_shard(|key| {
        (s.verify.streams.iter())
            .find(|v| v.key == key)
            .map(|v| v.entries_added)
    });
    let total: u64 = per.iter().sum();
    assert_eq!(
        total, s.verify.produce_acked,
        "every acknowledged write counted"
    );
    *per.iter().max().unwrap() as f64 / total.max(1) as f64
}

#[test]
fn each_shard_reports_its_cpu_and_zipf_makes_one_shard_hot() {
    let id = balanced_run_id();
    let (uniform, zipf) = std::thread::scope(|scope| {
        let uniform = scope.spawn(|| run(r#"popularity = "uniform""#, &id));
        let zipf = scope.spawn(|| run(r#"popularity = "zipf", exponent = 2.0"#, &id));
        (uniform.join().unwrap(), zipf.join().unwrap())
    });
    for (s, _) in [&uniform, &zipf] {
        let c = s.cluster.as_ref().unwrap();
        assert_eq!(c.shards.len(), c.primaries.len(), "one per primary: {c:?}");
        let summed = (s.load.as_ref())
            .and_then(|l| l.cpu_cores)
            .expect("Redis CPU");
        let mut sum = 0.0;
        for shard in &c.shards {
            let mean = shard.cpu_cores_mean.expect("two readings or more");
            let max = shard.cpu_cores_max.expect("a busiest second");
            assert!(mean >= 0.0 && max >= mean - 1e-9, "{shard:?}");
            sum += mean;
        }
        // The same INFO replies, per primary and summed: they agree.
        assert!(
            (sum - summed).abs() <= 0.01 + 0.02 * summed,
            "shards {sum} against the sum {summed}"
        );
        assert!(summed > 0.0, "the primaries served the run");
    }
    let (u, z) = (hottest_share(&uniform.0), hottest_share(&zipf.0));
    println!("hottest shard's share of the entries: uniform {u:.3}, zipf {z:.3}");
    assert!(u < 0.5, "two partitions a shard, uniform: {u}");
    assert!(z > u + 0.2, "zipf {z} against uniform {u}");

    let s = &zipf.0;
    let table = streamdrill::report::render_table(s);
    assert!(table.contains("cpu avg/max"), "{table}");
    let dir = zipf.1.path().join(format!("run-{id}"));
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.contains("Redis CPU (cores, measured window)"));
    let csv = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with("shard0.redis_cpu_cores,shard1.redis_cpu_cores,shard2.redis_cpu_cores"),
        "{header}"
    );
}
