//! index.html's schema-versions table, part of its "Event sourcing"
//! section: per group and kind of event, produced, processed, upcast and
//! dead-lettered as an unknown version. Empty unless the run writes a
//! versioned type. See docs/event-sourcing.md, "Schema versions".

use super::table;
use crate::report::schema_versions::kind_label;
use crate::report::summary::Summary;

pub(super) fn versions_table(summary: &Summary) -> String {
    let Some(kinds) = &summary.event_kinds else {
        return String::new();
    };
    let mut rows = Vec::new();
    for g in &summary.groups {
        let Some(v) = &g.versions else { continue };
        for k in &v.kinds {
            let produced = (kinds.iter())
                .find(|p| p.stream == g.stream && p.kind == k.kind && p.version == k.version)
                .map_or(0, |p| p.produced);
            let mut row = vec![g.name.clone(), kind_label(&k.kind, k.version)];
            row.extend([produced, k.processed, k.upcast, k.dead_lettered].map(|n| n.to_string()));
            rows.push(row);
        }
    }
    let headers = [
        "group",
        "kind (type.version)",
        "produced",
        "processed",
        "upcast",
        "dead-lettered (unknown version)",
    ];
    format!(
        "<p>Schema versions, whole run: each kind of event produced, and what each \
         group did with it. A version a group does not understand goes to the \
         dead-letter stream (<code>&lt;stream&gt;:dlq</code>), acknowledged and \
         counted dead-lettered; an older one it upcasts is processed and counted \
         as an upcast.</p>\n{}",
        table(&headers, &rows)
    )
}

#[cfg(test)]
mod tests {
    use crate::report::schema_versions::{GroupKind, GroupVersions, ProducedKind};
    use crate::report::summary::tests::test_summary;

    #[test]
    fn a_versioned_run_alone_brings_the_event_sourcing_section() {
        let mut summary = test_summary();
        let ts = crate::report::plot::Timeseries::default();
        let html = super::super::index_html(&summary, &ts, &[]);
        assert!(!html.contains("Schema versions"));
        summary.event_kinds = Some(vec![ProducedKind {
            stream: summary.groups[0].stream.clone(),
            kind: "OrderPlaced".into(),
            version: Some(1),
            produced: 9,
        }]);
        summary.groups[0].versions = Some(GroupVersions {
            upcast: 9,
            dead_lettered_unknown: 0,
            kinds: vec![GroupKind {
                kind: "OrderPlaced".into(),
                version: Some(1),
                processed: 9,
                upcast: 9,
                dead_lettered: 0,
            }],
        });
        let html = super::super::index_html(&summary, &ts, &[]);
        assert!(html.contains("<h2>Event sourcing</h2>"));
        let row = "<td>billing</td><td>OrderPlaced.v1</td><td>9</td><td>9</td><td>9</td><td>0</td>";
        assert!(html.contains(row), "{html}");
    }
}
