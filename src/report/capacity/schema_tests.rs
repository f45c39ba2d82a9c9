//! capacity.json must satisfy schema/capacity.schema.json: every key a
//! `required` list names is present, and every key written is described,
//! at every level the schema describes.

use serde_json::Value;

use crate::report::schema_tests::{missing, resolve};

const SCHEMA: &str = include_str!("../../../schema/capacity.schema.json");

/// Paths of keys in `instance` that the schema's `properties` do not describe.
fn undocumented(root: &Value, schema: &Value, instance: &Value, path: &str) -> Vec<String> {
    let schema = resolve(root, schema);
    let mut out = Vec::new();
    if let (Some(object), Some(props)) = (instance.as_object(), schema.get("properties")) {
        for (key, value) in object {
            match props.get(key) {
                Some(sub) => out.extend(undocumented(root, sub, value, &format!("{path}/{key}"))),
                None => out.push(format!("{path}/{key}")),
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), instance.as_array()) {
        for (i, value) in array.iter().enumerate() {
            out.extend(undocumented(root, items, value, &format!("{path}/{i}")));
        }
    }
    out
}

fn instance() -> Value {
    let mut c = super::example::example_capacity();
    c.interrupted = true;
    c.servers[1].error = Some("redis-server exited".into());
    serde_json::to_value(&c).unwrap()
}

#[test]
fn serialized_capacity_has_every_required_key_and_no_other() {
    let schema: Value = serde_json::from_str(SCHEMA).expect("schema is valid JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        super::CAPACITY_SCHEMA_VERSION
    );
    let instance = instance();
    assert_eq!(
        missing(&schema, &schema, &instance, ""),
        Vec::<String>::new()
    );
    assert_eq!(
        undocumented(&schema, &schema, &instance, ""),
        Vec::<String>::new()
    );
    // Every top-level key the schema documents is one the record can hold.
    let written: Vec<&String> = instance.as_object().unwrap().keys().collect();
    let documented: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(
        written.len(),
        documented.len(),
        "{written:?} vs {documented:?}"
    );
}

#[test]
fn every_criterion_and_bound_is_in_the_schema() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let instance = instance();
    let criteria = &schema["$defs"]["criterion"]["properties"]["criterion"]["enum"];
    let steps = (instance["servers"].as_array().unwrap().iter())
        .flat_map(|s| s["steps"].as_array().unwrap());
    let mut seen: Vec<&Value> = steps.filter_map(|st| st["verdict"].get("failed")).collect();
    seen.dedup();
    for failed in seen {
        let kind = &failed["criterion"];
        assert!(
            criteria.as_array().unwrap().contains(kind),
            "{kind} not in the schema"
        );
    }
    let bounds = schema["$defs"]["result"]["properties"]["bound"]["enum"]
        .as_array()
        .unwrap();
    use super::Bound::*;
    for bound in [
        Found,
        HarnessLimited,
        Ceiling,
        BelowStart,
        Unconfirmed,
        Incomplete,
    ] {
        let written = serde_json::to_value(bound).unwrap();
        assert!(bounds.contains(&written), "{written} not in the schema");
    }
}

#[test]
fn checker_notices_a_missing_and_an_undocumented_key() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let mut instance = instance();
    let step = &mut instance["servers"][0]["steps"][2];
    step.as_object_mut().unwrap().remove("harness_cpu_cores");
    step["surprise"] = 1.into();
    let result = &mut instance["servers"][1]["result"];
    result.as_object_mut().unwrap().remove("bound");
    result["limit"]["why"] = "nullable objects are checked too".into();
    assert_eq!(
        missing(&schema, &schema, &instance, ""),
        [
            "/servers/0/steps/2/harness_cpu_cores",
            "/servers/1/result/bound"
        ]
    );
    assert_eq!(
        undocumented(&schema, &schema, &instance, ""),
        ["/servers/0/steps/2/surprise", "/servers/1/result/limit/why"]
    );
}
