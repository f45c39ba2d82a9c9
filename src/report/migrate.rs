//! Reading `summary.json` files of earlier schema versions: each older
//! shape is brought to today's before it is deserialized, so every view
//! (`report`, `compare`, `index.html`) renders old runs too.
//!
//! Schema 1 to 2 (docs/reports.md, "Older runs"): schema-1 group figures
//! covered the whole run, warmup and drain included, and its `processed`
//! counted processings (duplicates included) while today's counts distinct
//! events. The old figures are kept under today's names for what they
//! meant (`processings`, `deliveries`, `unacked_landed`); what schema 1 did
//! not record (distinct `processed`, `produced_acked`, `in_progress`,
//! `unknown`, the warmup's group figures, late and unsent XADDs) stays
//! absent and shows as "-". `schema_version` stays 1, so views can say the
//! figures are whole-run. SLO checks keep their text.

use serde_json::{Map, Value};

/// Brings a parsed `summary.json` of any known schema to today's shape.
pub fn to_current(mut summary: Value) -> Value {
    if summary["schema_version"].as_u64() == Some(1) {
        from_v1(&mut summary);
    }
    summary
}

fn from_v1(summary: &mut Value) {
    for group in summary["groups"].as_array_mut().into_iter().flatten() {
        if let Some(group) = group.as_object_mut() {
            rename(group, "processed", "processings");
            rename(group, "delivered", "deliveries");
            rename(group, "processed_unacked_writes", "unacked_landed");
        }
    }
    for check in summary["slo"]["checks"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let Some(check) = check.as_object_mut() else {
            continue;
        };
        let name = check.get("name").and_then(Value::as_str).unwrap_or("");
        // Schema 1 judged loss and errors over the whole run, rates and
        // latencies over the measured phase.
        let whole_run = ["lost", "duplicates", "acked_but_gone", "errors"]
            .iter()
            .any(|p| name.starts_with(p));
        let scope = if whole_run { "whole_run" } else { "measured" };
        check.insert("scope".into(), scope.into());
        check.insert("kind".into(), "text".into());
    }
}

fn rename(object: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(v) = object.remove(from) {
        object.insert(to.into(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Summary;

    /// A schema-1 summary as streamdrill 0.1.0 wrote it before phases (trimmed
    /// to the parts that changed; the rest as today's).
    fn v1_file() -> Value {
        let mut v = serde_json::to_value(crate::report::summary::tests::test_summary()).unwrap();
        v["schema_version"] = 1.into();
        let g = v["groups"][0].as_object_mut().unwrap();
        for key in [
            "produced_acked",
            "processed",
            "in_progress",
            "unknown",
            "warmup",
        ] {
            g.remove(key);
        }
        g.remove("processings");
        g.remove("deliveries");
        g.remove("unacked_landed");
        g.insert("processed".into(), 6_500.into());
        g.insert("delivered".into(), 6_502.into());
        g.insert("processed_unacked_writes".into(), 3.into());
        v["slo"] = serde_json::json!({"passed": false, "checks": [
            {"name": "lost[billing]", "threshold": "<= 0", "actual": "2", "passed": false},
            {"name": "e2e_p99[billing]", "threshold": "<= 5ms", "actual": "10ms", "passed": false}
        ]});
        v["warmup"]["e2e_latency_us"] = serde_json::json!([]);
        for key in [
            "intended",
            "late",
            "failed",
            "indeterminate",
            "unanswered",
            "unsent",
        ] {
            v["produce"].as_object_mut().unwrap().remove(key);
        }
        v
    }

    #[test]
    fn a_schema_1_file_reads_with_its_figures_under_todays_names() {
        let s: Summary = serde_json::from_value(to_current(v1_file())).unwrap();
        assert_eq!(s.schema_version, 1, "views say the figures are whole-run");
        let g = &s.groups[0];
        assert_eq!(
            (g.measured.processings, g.measured.deliveries),
            (6_500, 6_502)
        );
        assert_eq!(g.measured.unacked_landed, 3);
        assert_eq!((g.measured.processed, g.measured.in_progress), (None, None));
        assert!(g.warmup.is_none());
        assert_eq!((s.produce.late, s.produce.unsent), (None, None));
        let lost = &s.slo.checks[0];
        assert_eq!(lost.scope, crate::report::slo::Scope::WholeRun);
        assert_eq!(
            (
                lost.objective.threshold_text(),
                lost.objective.actual_text()
            ),
            ("<= 0".into(), "2".into())
        );
        assert_eq!(s.slo.checks[1].scope, crate::report::slo::Scope::Measured);
    }

    #[test]
    fn todays_files_pass_unchanged() {
        let v = serde_json::to_value(crate::report::summary::tests::test_summary()).unwrap();
        assert_eq!(to_current(v.clone()), v);
    }
}
