//! Schema versions (docs/event-sourcing.md, "Schema versions"), on a short
//! run of the shipped `scenarios/es-schema-migration.toml` against a server
//! the test starts, whose keys the run leaves behind so that redis-rs reads
//! the stream and the dead-letter stream independently: the producers'
//! count per type and version is what the stream holds, the group that
//! understands only v1 dead-letters exactly the v2 events (and the
//! dead-letter stream holds exactly those), the one that understands v2
//! upcasts exactly the v1 events, and the ledger adds up.

use std::collections::BTreeMap;
use std::path::Path;

use redis::Value;
use streamdrill::report::Summary;
use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::scenario::{Overrides, load_file, load_str};

use crate::support::{assert_ledger_adds_up, client, server};

/// The shipped scenario, 3 s long with its steps at 1 s and 2 s, against `url`.
fn migration(url: &str) -> streamdrill::scenario::Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/es-schema-migration.toml");
    let mut overrides = Overrides::default();
    for (path, value) in [
        ("redis.mode", "external"),
        ("redis.url", url),
        ("duration", "3s"),
        ("warmup", "500ms"),
        ("producers.0.events.0.versions.1.at", "1s"),
        ("producers.0.events.0.versions.2.at", "2s"),
    ] {
        overrides.push(path, value);
    }
    load_file(&path, &overrides).expect("the shipped scenario loads")
}

/// Each entry's fields of `key`, read with XRANGE in pages.
fn entries(conn: &mut redis::Connection, key: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut from = "-".to_string();
    loop {
        let page: Value = redis::cmd("XRANGE")
            .arg(key)
            .arg(&from)
            .arg("+")
            .arg("COUNT")
            .arg(1000)
            .query(conn)
            .unwrap();
        let Value::Array(items) = page else {
            panic!("XRANGE {key}: {page:?}")
        };
        let Some(last) = items.len().checked_sub(1) else {
            return out;
        };
        for (i, item) in items.into_iter().enumerate() {
            let Value::Array(parts) = item else { panic!() };
            let [Value::BulkString(id), Value::Array(fields)] = &parts[..] else {
                panic!("{parts:?}")
            };
            let text = |v: &Value| match v {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            };
            out.push(
                fields
                    .chunks(2)
                    .map(|f| (text(&f[0]), text(&f[1])))
                    .collect(),
            );
            if i == last {
                from = format!("({}", String::from_utf8_lossy(id));
            }
        }
    }
}

fn produced(s: &Summary, field: &str) -> u64 {
    let kinds = s
        .event_kinds
        .as_ref()
        .expect("a versioned run counts kinds");
    let k = kinds.iter().find(|k| match k.version {
        Some(v) => format!("{}.v{v}", k.kind) == field,
        None => k.kind == field,
    });
    k.map_or(0, |k| k.produced)
}

#[test]
fn a_v2_migration_dead_letters_v2_in_the_v1_group_and_upcasts_v1_in_the_v2_group() {
    let server = server();
    let url = format!("redis://127.0.0.1:{}", server.port());
    let out = tempfile::tempdir().unwrap();
    let options = RunOptions::new(out.path()).workers(1).keep_keys();
    let report = run_scenario(migration(&url), options).expect("the run");
    let s = report.summary;
    assert_ledger_adds_up(&s);

    // What the producers counted is what the stream holds, kind by kind.
    let mut conn = client(&server);
    let stream = entries(&mut conn, &format!("sd:{}:orders", s.run_id));
    let mut in_stream: BTreeMap<String, u64> = BTreeMap::new();
    for e in &stream {
        *in_stream.entry(e["type"].clone()).or_default() += 1;
    }
    println!("in the stream: {in_stream:?}");
    let kinds = s.event_kinds.clone().unwrap();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    for (field, n) in &in_stream {
        assert_eq!(produced(&s, field), *n, "{field}");
    }
    let total: u64 = kinds.iter().map(|k| k.produced).sum();
    assert_eq!(total, s.produce.acked + s.warmup.produce_acked);
    assert_eq!(total, stream.len() as u64);
    let (v1, v2) = (
        produced(&s, "OrderPlaced.v1"),
        produced(&s, "OrderPlaced.v2"),
    );
    assert!(
        v1 > 100 && v2 > 100,
        "both versions were written: {v1}, {v2}"
    );

    let group = |name: &str| s.groups.iter().find(|g| g.name == name).unwrap();
    let versions = |name: &str| group(name).versions.clone().expect("per-group versions");
    let dead_lettered = |name: &str| {
        let g = group(name);
        g.measured.dead_lettered + g.warmup.as_ref().unwrap().dead_lettered
    };
    for g in &s.groups {
        assert_eq!(g.measured.lost, 0, "{}", g.name);
        assert_eq!(g.measured.duplicates, 0, "{}", g.name);
    }

    // legacy understands v1 only: every v2 event is dead-lettered, none lost.
    let legacy = versions("legacy");
    assert_eq!(legacy.dead_lettered_unknown, v2);
    assert_eq!(dead_lettered("legacy"), v2, "the ledger's dead_lettered");
    assert_eq!(legacy.upcast, 0);
    // The dead-letter stream, read independently, holds exactly those.
    let dlq_key = format!("sd:{}:orders:dlq", s.run_id);
    let xlen: u64 = redis::cmd("XLEN").arg(&dlq_key).query(&mut conn).unwrap();
    assert_eq!(xlen, v2, "XLEN {dlq_key}");
    let dlq = entries(&mut conn, &dlq_key);
    assert!(dlq.iter().all(|e| e["type"] == "OrderPlaced.v2"
        && e["group"] == "legacy"
        && e["reason"] == "unknown_schema_version"
        && e.contains_key("data")
        && e.contains_key("original_id")));
    assert_eq!(s.verify.dead_letter[0].length, xlen);

    // upgraded understands v2 and upcasts v1: all processed, v1 as upcasts.
    let upgraded = versions("upgraded");
    assert_eq!(upgraded.upcast, v1);
    assert_eq!(upgraded.dead_lettered_unknown, 0);
    assert_eq!(dead_lettered("upgraded"), 0);
    let processed = |v: &streamdrill::report::GroupVersions, ty: &str, version| {
        let k = v
            .kinds
            .iter()
            .find(|k| k.kind == ty && k.version == version);
        k.unwrap().processed
    };
    assert_eq!(processed(&upgraded, "OrderPlaced", Some(1)), v1);
    // tolerant reads both as they are; every group processes every kind it
    // does not dead-letter, exactly once.
    let tolerant = versions("tolerant");
    assert_eq!((tolerant.upcast, tolerant.dead_lettered_unknown), (0, 0));
    for (name, v) in [
        ("legacy", &legacy),
        ("upgraded", &upgraded),
        ("tolerant", &tolerant),
    ] {
        for k in &v.kinds {
            let field = k
                .version
                .map_or(k.kind.clone(), |n| format!("{}.v{n}", k.kind));
            let n = produced(&s, &field);
            assert_eq!(k.processed + k.dead_lettered, n, "{name} {field}");
        }
    }
    assert_eq!(processed(&legacy, "OrderPlaced", Some(2)), 0);

    // The views show them in the event-sourcing part.
    let html = std::fs::read_to_string(report.dir.join("index.html")).unwrap();
    assert!(html.contains("<h2>Event sourcing</h2>") && html.contains("OrderPlaced.v2"));
    let table = streamdrill::report::render_table(&s);
    assert!(table.contains("\nschema versions "), "{table}");
}

#[test]
fn a_bad_version_schedule_is_refused_naming_its_field() {
    let text = "name = \"v\"\nduration = \"5s\"\n[[producers]]\nstream = \"s\"\nrate = 10\n\
                events = [{ type = \"A\", versions = [{ at = \"0s\", v1 = 1 }, \
                { at = \"6s\", v2 = 1 }] }]\n[[groups]]\nstream = \"s\"\nname = \"g\"\n\
                understands = { A = [3, 3] }\n";
    let err = load_str(text, "bad.toml", &Default::default())
        .unwrap_err()
        .to_string();
    println!("{err}");
    assert!(err.contains("bad.toml:6"), "the line: {err}");
    assert!(
        err.contains("producers[0].events[0].versions[1].at"),
        "{err}"
    );
    assert!(err.contains("not within the run"), "{err}");
    assert!(err.contains("groups[0].understands.A"), "{err}");
    // A projection would count the dead-lettered versions as missing.
    let projecting = text.replace(
        "understands = { A = [3, 3] }",
        "understands = { A = [1] }
projection = \"naive\"",
    );
    let err = load_str(&projecting, "p.toml", &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("groups[0].understands") && err.contains("projection"),
        "{err}"
    );
}

/// On a partitioned stream each consumer owns several keys: the dead-letter
/// script takes every key it reads and moves each entry from its own.
#[test]
fn owners_of_several_partitions_dead_letter_each_from_its_own_key() {
    let s = crate::support::run_summary(
        "name = \"schema-partitioned\"\nduration = \"2s\"\nwarmup = \"500ms\"\n\
         [[streams]]\nkey = \"orders\"\npartitions = 4\n\
         [[producers]]\nstream = \"orders\"\nrate = 400\n\
         events = [{ type = \"A\", versions = [{ at = \"0s\", v1 = 1, v2 = 1 }] }]\n\
         aggregates = { count = 50 }\n\
         [[groups]]\nstream = \"orders\"\nname = \"v1-only\"\nconsumers = 2\nbatch = 20\n\
         understands = { A = [1] }\n",
    );
    let v2 = produced(&s, "A.v2");
    assert!(v2 > 100, "{v2}");
    let g = &s.groups[0];
    let versions = g.versions.as_ref().unwrap();
    assert_eq!(versions.dead_lettered_unknown, v2);
    assert_eq!(
        g.measured.dead_lettered + g.warmup.as_ref().unwrap().dead_lettered,
        v2
    );
    assert_eq!(g.measured.lost, 0);
    let dlq: Vec<_> = s.verify.dead_letter.iter().map(|d| d.length).collect();
    assert_eq!(dlq, [v2], "one dead-letter stream for the four partitions");
    assert_eq!(g.pending_at_end, Some(0), "every partition acknowledged");
}
