//! The terminal table's "event sourcing" section: per checking group and
//! phase, how far it finished aggregates out of version order, and per group
//! with a projection, its read model against the stream. Only runs with a
//! `check_order` or `projection` group have it.

use std::fmt::Write;

use super::fit;
use crate::report::format::projection_cost;
use crate::report::summary::Summary;

pub(super) fn order_table(out: &mut String, s: &Summary) {
    let checking: Vec<_> = (s.groups.iter())
        .map(|g| (g, g.order_by_phase()))
        .filter(|(_, phases)| !phases.is_empty())
        .collect();
    if checking.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<18}{:>10}{:>12}{:>9}{:>9}{:>10}",
        "event sourcing", "aggs-ooo", "events-ooo", "gaps", "repeats", "max-dist"
    );
    for (g, phases) in checking {
        for (phase, o) in phases {
            let label = match phase {
                "measured" => fit(&g.name, 17),
                _ => format!("  {phase}"),
            };
            let _ = writeln!(
                out,
                "{:<18}{:>10}{:>12}{:>9}{:>9}{:>10}",
                label,
                o.aggregates_out_of_order,
                o.events_out_of_order,
                o.gaps,
                o.repeats,
                o.max_distance_versions
            );
        }
    }
    let _ = writeln!(
        out,
        "  out of version order per aggregate, across each group's consumers (docs/event-sourcing.md)"
    );
}

/// Per group with a projection: its model checked against the stream.
pub(super) fn projection_table(out: &mut String, s: &Summary) {
    let projecting: Vec<_> = (s.groups.iter())
        .filter_map(|g| Some((g, g.projection.as_ref()?)))
        .collect();
    if projecting.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<18}{:>11}{:>6}{:>10}{:>9}{:>9}{:>9}",
        "projection", "mode", "aggs", "divergent", "double", "missing", "skipped"
    );
    for (g, p) in projecting {
        let skipped = p.skipped.map_or("-".to_string(), |n| n.to_string());
        let _ = writeln!(
            out,
            "{:<18}{:>11}{:>6}{:>10}{:>9}{:>9}{:>9}",
            fit(&g.name, 17),
            p.mode,
            p.aggregates,
            p.divergent,
            p.double_applied,
            p.missing,
            skipped
        );
        if let Some(why) = &p.readback_error {
            let _ = writeln!(out, "  not read back: {why}");
        }
        let _ = writeln!(out, "  cost: {}", projection_cost(g));
    }
    let _ = writeln!(
        out,
        "  read model against the stream per aggregate, after the drain (docs/event-sourcing.md)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::OrderStats;
    use crate::report::summary::tests::test_summary;

    /// The test summary with its group checking order.
    fn checking_summary() -> Summary {
        let mut s = test_summary();
        let g = &mut s.groups[0];
        g.measured.order = Some(OrderStats {
            events_out_of_order: 231,
            aggregates_out_of_order: 20,
            gaps: 177,
            repeats: 3,
            max_distance_versions: 5,
        });
        if let Some(w) = g.warmup.as_mut() {
            w.order = Some(OrderStats::default());
        }
        s
    }

    #[test]
    fn the_section_shows_each_phase_only_for_checking_groups() {
        assert!(!crate::report::render_table(&test_summary()).contains("event sourcing"));
        let text = crate::report::render_table(&checking_summary());
        let rows: Vec<&str> = (text.lines())
            .skip_while(|l| !l.starts_with("event sourcing"))
            .take(3)
            .collect();
        let words = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(words(rows[1]), ["billing", "20", "231", "177", "3", "5"]);
        assert_eq!(words(rows[2]), ["warmup", "0", "0", "0", "0", "0"]);
        assert!(
            text.lines()
                .all(|l| l.chars().count() <= super::super::MAX_WIDTH)
        );
    }

    #[test]
    fn the_projection_rows_show_each_projecting_group() {
        assert!(!crate::report::render_table(&test_summary()).contains("\nprojection"));
        let mut s = test_summary();
        s.groups[0].projection = Some(crate::metrics::projection::ProjectionCheck {
            mode: "idempotent".into(),
            aggregates: 20,
            skipped: Some(23),
            ..Default::default()
        });
        let text = crate::report::render_table(&s);
        let row = (text.lines())
            .skip_while(|l| !l.starts_with("projection"))
            .nth(1)
            .unwrap();
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(words, ["billing", "idempotent", "20", "0", "0", "0", "23"]);
        assert!(
            text.lines()
                .all(|l| l.chars().count() <= super::super::MAX_WIDTH)
        );
    }
}
