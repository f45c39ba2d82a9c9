//! The terminal table's trimming lines, part of its event-sourcing figures:
//! per group on a trimmed stream, what trimming took from it and how close
//! it came to the trimmed head (docs/event-sourcing.md, "Safe trimming").
//! Only runs with a trimmed stream have them.

use std::fmt::Write;

use super::fit;
use crate::report::summary::Summary;

pub(super) fn trim_table(out: &mut String, s: &Summary) {
    let trimmed: Vec<_> = (s.groups.iter())
        .filter_map(|g| Some((g, g.trim.as_ref()?)))
        .collect();
    if trimmed.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{:<18}{:>9}{:>10}{:>16}{:>10}",
        "trimming", "policy", "trimmed", "trimmed-unread", "min-dist"
    );
    for (g, t) in trimmed {
        let unread = g.whole_run_opt(|p| p.trimmed_unread);
        let _ = writeln!(
            out,
            "{:<18}{:>9}{:>10}{:>16}{:>10}",
            fit(&g.name, 17),
            t.policy.as_deref().unwrap_or("-"),
            t.trimmed_entries,
            unread.map_or("-".to_string(), |n| n.to_string()),
            t.min_head_distance
                .map_or("-".to_string(), |n| n.to_string()),
        );
        // Why gone events stayed lost, when some did.
        if let Some(why) = t
            .unclassified_why
            .as_ref()
            .filter(|_| g.whole_run(|p| p.lost) > 0)
        {
            let _ = writeln!(out, "  lost, not put down to trimming: {why}");
        }
    }
    let _ = writeln!(
        out,
        "  whole run: entries trimmed from the stream, events trimmed before the group read \
         them, least entries between its cursor and the trimmed head (0: it fell off the end)"
    );
}
