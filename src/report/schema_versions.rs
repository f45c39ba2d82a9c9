//! Schema versions in `summary.json`: per kind of event (type and version)
//! what producers had acknowledged, and per group what it processed, upcast
//! and dead-lettered as a version it does not understand. Whole run; only
//! in runs that write a versioned type. See
//! docs/event-sourcing.md, "Schema versions".

use serde::{Deserialize, Serialize};

use super::summary::Summary;
use crate::metrics::{Merge, RunMetrics, VersionCounts};
use crate::scenario::event_kinds;

/// One kind of event the producers wrote, and how many Redis acknowledged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ProducedKind {
    pub stream: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Absent for an unversioned type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// XADDs of this kind that got an entry id, late ones included.
    pub produced: u64,
}

/// What one group did with each kind of its stream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct GroupVersions {
    /// Events upcast from an older version, all kinds together.
    pub upcast: u64,
    /// Events moved to the dead-letter stream because the group does not
    /// understand their version, all kinds together.
    pub dead_lettered_unknown: u64,
    pub kinds: Vec<GroupKind>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GroupKind {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Processings, redeliveries included, upcast ones too.
    pub processed: u64,
    pub upcast: u64,
    pub dead_lettered: u64,
}

/// `OrderPlaced.v2`, or the bare name of an unversioned type: what its
/// events' `type` field says.
pub fn kind_label(kind: &str, version: Option<u32>) -> String {
    version.map_or_else(|| kind.to_string(), |v| format!("{kind}.v{v}"))
}

/// Fills the summary's `event_kinds` and each group's `versions`, in a run
/// that wrote a versioned type; leaves them absent otherwise.
pub fn fill(summary: &mut Summary, metrics: &RunMetrics) {
    let kinds = event_kinds(&summary.scenario);
    if kinds.is_empty() {
        return;
    }
    let produced = metrics.produce.merged().kinds;
    summary.event_kinds = Some(
        (kinds.iter().enumerate())
            .map(|(i, k)| ProducedKind {
                stream: k.stream.clone(),
                kind: k.kind.clone(),
                version: k.version,
                produced: produced.get(i),
            })
            .collect(),
    );
    for (g, m) in summary.groups.iter_mut().zip(&metrics.groups) {
        let mut counts = m.stats.warmup.versions.clone();
        counts.merge(&m.stats.measured.versions);
        let of_stream = (kinds.iter().enumerate()).filter(|(_, k)| k.stream == g.stream);
        g.versions = Some(group_versions(&counts, of_stream));
    }
}

fn group_versions<'a>(
    counts: &VersionCounts,
    kinds: impl Iterator<Item = (usize, &'a crate::scenario::EventKind)>,
) -> GroupVersions {
    let kinds: Vec<GroupKind> = kinds
        .map(|(i, k)| GroupKind {
            kind: k.kind.clone(),
            version: k.version,
            processed: counts.processed.get(i),
            upcast: counts.upcast.get(i),
            dead_lettered: counts.dead_lettered.get(i),
        })
        .collect();
    GroupVersions {
        upcast: kinds.iter().map(|k| k.upcast).sum(),
        dead_lettered_unknown: kinds.iter().map(|k| k.dead_lettered).sum(),
        kinds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema_tests::{missing, resolve};
    use serde_json::Value;

    #[test]
    fn version_figures_are_in_the_schema() {
        let schema: Value =
            serde_json::from_str(include_str!("../../schema/summary.schema.json")).unwrap();
        let mut summary = crate::report::summary::tests::test_summary();
        summary.event_kinds = Some(vec![ProducedKind {
            stream: "orders".into(),
            kind: "OrderPlaced".into(),
            version: Some(2),
            produced: 5,
        }]);
        summary.groups[0].versions = Some(GroupVersions {
            upcast: 1,
            dead_lettered_unknown: 2,
            kinds: vec![GroupKind {
                kind: "OrderPlaced".into(),
                version: None,
                processed: 3,
                upcast: 1,
                dead_lettered: 2,
            }],
        });
        let instance = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            missing(&schema, &schema, &instance, ""),
            Vec::<String>::new()
        );
        let documented = |def: &str, value: &Value| {
            let props = schema["$defs"][def]["properties"].as_object().unwrap();
            let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
            assert!(
                keys.iter().all(|k| props.contains_key(*k)),
                "{def}: {keys:?}"
            );
        };
        documented("produced_kind", &instance["event_kinds"][0]);
        documented("group_versions", &instance["groups"][0]["versions"]);
        documented("group_kind", &instance["groups"][0]["versions"]["kinds"][0]);
        assert!(schema["properties"].get("event_kinds").is_some());
        let group = resolve(&schema, &schema["properties"]["groups"]["items"]);
        assert!(group["properties"].get("versions").is_some());
    }
}
