//! The terminal table's schema-versions rows, part of its event-sourcing
//! figures: per group and kind of event (type and version), what was
//! produced, what the group processed, upcast and dead-lettered as a
//! version it does not understand. Only runs that write a versioned type
//! have them. See docs/event-sourcing.md, "Schema versions".

use std::fmt::Write;

use super::fit;
use crate::report::schema_versions::{ProducedKind, kind_label};
use crate::report::summary::Summary;

fn produced(kinds: &[ProducedKind], stream: &str, kind: &str, version: Option<u32>) -> u64 {
    (kinds.iter())
        .find(|k| k.stream == stream && k.kind == kind && k.version == version)
        .map_or(0, |k| k.produced)
}

pub(super) fn versions_table(out: &mut String, s: &Summary) {
    let Some(kinds) = &s.event_kinds else {
        return;
    };
    let _ = writeln!(
        out,
        "\n{:<18}{:<24}{:>10}{:>11}{:>9}{:>12}",
        "schema versions", "kind", "produced", "processed", "upcast", "dlq-unknown"
    );
    for g in &s.groups {
        let Some(v) = &g.versions else { continue };
        for (i, k) in v.kinds.iter().enumerate() {
            let group = if i == 0 {
                fit(&g.name, 17)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{:<18}{:<24}{:>10}{:>11}{:>9}{:>12}",
                group,
                fit(&kind_label(&k.kind, k.version), 23),
                produced(kinds, &g.stream, &k.kind, k.version),
                k.processed,
                k.upcast,
                k.dead_lettered
            );
        }
    }
    let _ = writeln!(
        out,
        "  whole run; unknown versions go to <stream>:dlq, counted dead-lettered (docs/event-sourcing.md)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema_versions::{GroupKind, GroupVersions};
    use crate::report::summary::tests::test_summary;

    #[test]
    fn each_group_shows_each_kind_only_in_versioned_runs() {
        let plain = crate::report::render_table(&test_summary());
        assert!(!plain.contains("schema versions"));
        let mut s = test_summary();
        let stream = s.groups[0].stream.clone();
        s.event_kinds = Some(vec![ProducedKind {
            stream,
            kind: "OrderPlaced".into(),
            version: Some(2),
            produced: 7,
        }]);
        s.groups[0].versions = Some(GroupVersions {
            upcast: 0,
            dead_lettered_unknown: 7,
            kinds: vec![GroupKind {
                kind: "OrderPlaced".into(),
                version: Some(2),
                processed: 0,
                upcast: 0,
                dead_lettered: 7,
            }],
        });
        let text = crate::report::render_table(&s);
        let row = (text.lines())
            .skip_while(|l| !l.starts_with("schema versions"))
            .nth(1)
            .unwrap();
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(words, ["billing", "OrderPlaced.v2", "7", "0", "0", "7"]);
        assert!(
            text.lines()
                .all(|l| l.chars().count() <= super::super::MAX_WIDTH)
        );
    }
}
