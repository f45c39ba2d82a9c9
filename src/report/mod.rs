//! What a run leaves behind, data first: `summary.json` is the source of truth
//! (`summary`), judged against the scenario's objectives (`slo`), and every
//! other view is rendered from it: the terminal table (`table`), the CSV time
//! series (its column names in `columns`) and HdrHistogram interval logs
//! (`files`), `.hgrm` percentile distributions (`hgrm`), plots (`plot`), the
//! self-contained `index.html` (`html`), and run-against-run comparisons
//! with CI gates (`compare`).
//!
//! The runner (`runner::run_scenario`) calls `Summary::build` with the
//! collector's `RunMetrics`, then `write_run`, which renders the views; the
//! CLI prints `render`'s table. `read_summary` lets a later command
//! (`report`, `compare`) re-render or re-judge an old run. Knows neither
//! actix nor redis.

pub mod capacity;
pub mod columns;
pub mod compare;
pub mod environment;
pub mod files;
pub mod format;
pub mod groups;
pub mod hgrm;
pub mod html;
pub mod migrate;
pub mod plot;
pub mod schema_versions;
pub mod slo;
pub mod summary;
pub mod table;
pub mod utc;

pub use compare::{Comparison, Gate};
pub use environment::{HarnessCost, MachineInfo, RedisInfo, TlsUse};
pub use files::{
    HISTOGRAM_DIR, LEDGER_FILE, SUMMARY_FILE, TIMESERIES_FILE, read_summary, write_ledger_file,
    write_run,
};
pub use format::format_us;
pub use groups::{GroupPhase, GroupSummary};
pub use html::render_views;
pub use schema_versions::{GroupKind, GroupVersions, ProducedKind};
pub use slo::{SloCheck, SloReport, evaluate};
pub use summary::{ProduceSummary, Summary, SummaryContext, WarmupSummary};
pub use table::{render, render as render_table};
pub use utc::rfc3339;

#[cfg(test)]
pub(crate) mod schema_tests {
    //! summary.json must satisfy schema/summary.schema.json: every key a
    //! `required` list names is present, at every level the schema describes.

    use serde_json::Value;

    const SCHEMA: &str = include_str!("../../schema/summary.schema.json");

    /// The schema that describes a value: the one a `$ref` names, or the
    /// one branch of an `anyOf` besides `{"type": "null"}` (a nullable field).
    pub(super) fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
        let branches = schema.get("anyOf").and_then(Value::as_array);
        let not_null: Vec<&Value> = (branches.into_iter().flatten())
            .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if let ([one], Some(_)) = (not_null.as_slice(), branches.filter(|b| b.len() == 2)) {
            return resolve(root, one);
        }
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.trim_start_matches('#');
                resolve(
                    root,
                    root.pointer(pointer)
                        .unwrap_or_else(|| panic!("dangling $ref {r}")),
                )
            }
            None => schema,
        }
    }

    /// Returns the paths of required keys missing from `instance`.
    pub(super) fn missing(
        root: &Value,
        schema: &Value,
        instance: &Value,
        path: &str,
    ) -> Vec<String> {
        let schema = resolve(root, schema);
        let mut out = Vec::new();
        if let (Some(object), Some(required)) = (instance.as_object(), schema.get("required")) {
            for key in required
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !object.contains_key(key) {
                    out.push(format!("{path}/{key}"));
                }
            }
            for (key, sub) in schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(value) = object.get(key) {
                    out.extend(missing(root, sub, value, &format!("{path}/{key}")));
                }
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), instance.as_array()) {
            for (i, value) in array.iter().enumerate() {
                out.extend(missing(root, items, value, &format!("{path}/{i}")));
            }
        }
        out
    }

    #[test]
    fn serialized_summary_has_every_required_key() {
        let schema: Value = serde_json::from_str(SCHEMA).expect("schema is valid JSON");
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        let top: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(top.len() >= 12, "{top:?}");
        let summary = super::summary::tests::test_summary();
        let instance = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            missing(&schema, &schema, &instance, ""),
            Vec::<String>::new()
        );
        let keys = instance.as_object().unwrap().keys();
        let undocumented: Vec<&String> = keys
            .filter(|k| schema["properties"].get(k.as_str()).is_none())
            .collect();
        assert!(
            undocumented.is_empty(),
            "keys not in the schema: {undocumented:?}"
        );
    }

    #[test]
    fn replay_figures_are_in_the_schema() {
        use crate::metrics::replay::{ReplayPass, ReplayReport, SnapshotReport};
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let mut summary = super::summary::tests::test_summary();
        summary.groups[0].replay = Some(ReplayReport {
            snapshots: Some(SnapshotReport {
                memory_bytes_before: Some(1),
                memory_bytes_after: Some(1),
                tail: ReplayPass::default(),
                ..SnapshotReport::default()
            }),
            error: Some("x".into()),
            ..ReplayReport::default()
        });
        let instance = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            missing(&schema, &schema, &instance, ""),
            Vec::<String>::new()
        );
        let defs = &schema["$defs"];
        let replay = &instance["groups"][0]["replay"];
        for (def, value) in [
            ("replay", replay),
            ("replay_pass", &replay["full"]),
            ("snapshots", &replay["snapshots"]),
            ("replay_pass", &replay["snapshots"]["tail"]),
        ] {
            for key in value.as_object().unwrap().keys() {
                assert!(defs[def]["properties"].get(key).is_some(), "{def}.{key}");
            }
        }
    }

    #[test]
    fn order_figures_are_in_the_schema_in_both_phases() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let mut summary = super::summary::tests::test_summary();
        let order = Some(crate::metrics::OrderStats {
            events_out_of_order: 2,
            ..Default::default()
        });
        summary.groups[0].measured.order = order;
        summary.groups[0].warmup.as_mut().unwrap().order = order;
        let instance = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            missing(&schema, &schema, &instance, ""),
            Vec::<String>::new()
        );
        let group = &instance["groups"][0];
        let documented = schema["$defs"]["order"]["properties"].as_object().unwrap();
        for o in [&group["order"], &group["warmup"]["order"]] {
            let keys: Vec<&String> = o.as_object().unwrap().keys().collect();
            assert!(keys.iter().all(|k| documented.contains_key(*k)), "{keys:?}");
        }
        let group_schema = resolve(&schema, &schema["properties"]["groups"]["items"]);
        assert!(group_schema["properties"].get("order").is_some());
        assert!(
            schema["$defs"]["group_phase"]["properties"]
                .get("order")
                .is_some()
        );
    }

    #[test]
    fn every_key_of_a_fault_window_is_in_the_schema() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let mut summary = super::summary::tests::test_summary();
        summary.faults.push(crate::metrics::FaultWindow {
            name: "client_kill".into(),
            kind: "client_kill".into(),
            target: Some("clients".into()),
            applied: false,
            error: Some("CLIENT KILL closed no connection".into()),
            clients_killed: Some(0),
            first_ack_after_s: Some(0.0),
            lag_recovered_after_s: Some(1.0),
            first_write_after_s: Some(0.1),
            all_writes_after_s: Some(0.2),
            in_flight_at_start: Some(3),
            recovered_after_s: Some(0.5),
            ..Default::default()
        });
        let instance = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            missing(&schema, &schema, &instance, ""),
            Vec::<String>::new()
        );
        let documented = &schema["properties"]["faults"]["items"]["properties"];
        let window = instance["faults"][0].as_object().unwrap();
        assert_eq!(window.len(), 14, "every field is set: {window:?}");
        let undocumented: Vec<&String> = (window.keys())
            .filter(|k| documented.get(k.as_str()).is_none())
            .collect();
        assert!(
            undocumented.is_empty(),
            "not in the schema: {undocumented:?}"
        );
    }

    /// A summary.json written before fault outcomes were recorded: no kind,
    /// target, applied or error, and null for an absent option in the
    /// scenario. It loads, its fault reads as applied, and it renders.
    #[test]
    fn an_older_drill_summary_still_loads_and_renders() {
        use crate::scenario::{Dur, Fault, FaultKind};
        let mut summary = super::summary::tests::test_summary();
        summary.scenario.faults.push(Fault {
            at: Dur::from_secs(2),
            kind: FaultKind::CrashConsumer {
                consumer: "billing/0".into(),
                restart_after: None,
            },
        });
        summary.faults.push(crate::metrics::FaultWindow {
            name: "crash_consumer billing/0".into(),
            kind: "crash_consumer".into(),
            target: Some("billing/0".into()),
            start_s: 2.0,
            end_s: 9.0,
            ..Default::default()
        });
        let mut old = serde_json::to_value(&summary).unwrap();
        let window = old["faults"][0].as_object_mut().unwrap();
        for key in ["kind", "target", "applied"] {
            window
                .remove(key)
                .unwrap_or_else(|| panic!("{key} is written"));
        }
        old["scenario"]["faults"][0]["restart_after"] = Value::Null;
        let read: super::Summary = serde_json::from_value(old).unwrap();
        assert_eq!(read.scenario.faults, summary.scenario.faults);
        let w = &read.faults[0];
        assert!(w.applied && w.error.is_none() && w.kind.is_empty(), "{w:?}");
        let text = super::render(&read);
        assert!(!text.contains("NOT APPLIED"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("crash_consumer billing/0  "))
        );
    }

    #[test]
    fn checker_notices_a_missing_key() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let mut instance = serde_json::to_value(super::summary::tests::test_summary()).unwrap();
        instance["groups"][0]
            .as_object_mut()
            .unwrap()
            .remove("lost");
        instance["produce"]["latency_us"]
            .as_object_mut()
            .unwrap()
            .remove("p999");
        let mut found = missing(&schema, &schema, &instance, "");
        found.sort();
        assert_eq!(found, ["/groups/0/lost", "/produce/latency_us/p999"]);
    }
}
