//! index.html's trimming table, in the "Event sourcing" section: per group
//! on a trimmed stream, what trimming took from it and how close it came to
//! the trimmed head (docs/event-sourcing.md, "Safe trimming").

use super::table;
use crate::report::summary::Summary;

pub(super) fn trim_table(summary: &Summary) -> String {
    let rows: Vec<Vec<String>> = (summary.groups.iter())
        .filter_map(|g| {
            let t = g.trim.as_ref()?;
            let unread = g.whole_run_opt(|p| p.trimmed_unread);
            let dash = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
            Some(vec![
                g.name.clone(),
                t.policy.clone().unwrap_or_else(|| "-".into()),
                t.trimmed_entries.to_string(),
                dash(unread),
                dash(t.min_head_distance),
                // Why gone events stayed lost, when some did.
                (t.unclassified_why.clone())
                    .filter(|_| g.whole_run(|p| p.lost) > 0)
                    .unwrap_or_default(),
            ])
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let headers = [
        "group",
        "trim policy",
        "entries trimmed",
        "trimmed unread",
        "min distance to the trimmed head",
        "lost, not put down to trimming, because",
    ];
    format!(
        "<p>Trimming, whole run: entries removed from each group's stream, events \
         trimmed before the group read them (gone unprocessed, apart from lost), and the \
         fewest entries between its read position and the trimmed head over the per-second \
         samples (0: it fell off the end).</p>\n{}",
        table(&headers, &rows)
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::metrics::TrimSafety;
    use crate::report::schema_tests::{missing, resolve};

    const SCHEMA: &str = include_str!("../../../schema/summary.schema.json");

    /// A summary whose one group reads a trimmed stream and fell off its end.
    fn trimmed_summary() -> crate::report::summary::Summary {
        let mut summary = crate::report::summary::tests::test_summary();
        let g = &mut summary.groups[0];
        g.measured.trimmed_unread = Some(40);
        g.warmup.as_mut().unwrap().trimmed_unread = Some(2);
        g.trim = Some(TrimSafety {
            policy: Some("keepref".into()),
            trimmed_entries: 900,
            min_head_distance: Some(0),
            samples: 9,
            classified: false,
            unclassified_why: Some("a fault".into()),
        });
        summary
    }

    #[test]
    fn trimming_figures_are_in_the_schema_in_both_phases() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let instance = serde_json::to_value(trimmed_summary()).unwrap();
        assert_eq!(
            missing(&schema, &schema, &instance, ""),
            Vec::<String>::new()
        );
        let group = &instance["groups"][0];
        let group_schema = resolve(&schema, &schema["properties"]["groups"]["items"]);
        let phase_schema = &schema["$defs"]["group_phase"]["properties"];
        assert_eq!(group["trimmed_unread"], 40);
        assert!(group_schema["properties"].get("trimmed_unread").is_some());
        assert_eq!(group["warmup"]["trimmed_unread"], 2);
        assert!(phase_schema.get("trimmed_unread").is_some());
        let documented = schema["$defs"]["trim_safety"]["properties"]
            .as_object()
            .unwrap();
        let keys: Vec<&String> = group["trim"].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6, "every field is set: {keys:?}");
        assert!(keys.iter().all(|k| documented.contains_key(*k)), "{keys:?}");
    }

    #[test]
    fn a_trimmed_stream_brings_the_event_sourcing_section_and_others_do_not() {
        let plain = crate::report::summary::tests::test_summary();
        assert!(
            !super::super::index_html(&plain, &Default::default(), &[]).contains("Event sourcing")
        );
        assert!(!crate::report::render_table(&plain).contains("\ntrimming "));
        let summary = trimmed_summary();
        let html = super::super::index_html(&summary, &Default::default(), &[]);
        assert!(html.contains("<h2>Event sourcing</h2>"));
        assert!(html.contains("trimmed unread"));
        let text = crate::report::render_table(&summary);
        assert!(text.contains("\ntrimming "), "{text}");
        assert!(text.contains("trimmed unread 42 (whole run)"), "{text}");
        // The ledger still adds up with the new outcome in it.
        let m = &summary.groups[0].measured;
        assert_eq!(m.outcomes_total().unwrap(), m.produced_acked.unwrap() + 40);
    }

    /// Trimmed unread events are gone unprocessed: the lost objective and
    /// compare's `lost` count them, as they did before the split.
    #[test]
    fn the_lost_objective_counts_events_trimmed_unread() {
        let mut summary = trimmed_summary();
        summary.groups[0].measured.lost = 0;
        summary.groups[0].warmup.as_mut().unwrap().lost = 0;
        let slo = crate::scenario::Slo {
            lost: Some(0),
            ..Default::default()
        };
        let report = crate::report::slo::evaluate(&slo, &summary);
        let check = (report.checks.iter())
            .find(|c| c.name == "lost[billing]")
            .unwrap();
        assert!(!check.passed, "{check:?}");
        let note = check.note.as_deref().unwrap_or_default();
        assert_eq!(note, "42 of them trimmed before the group read them");
    }
}
